"""The least database work an association needs, sent raw: how fast could
`targets.associate` be on this PostgreSQL server, whatever the Python around it?

It builds the catalogue of ``bench/association.py`` (10⁶ objects with r photometry, in a
database of its own) and writes its ~1,000-source images. For each image it then does
exactly the SQL work of one association, with plain psycopg2, binary COPY both ways and
no arithmetic:

1. read the list's sources, the objects in its footprint and their r photometry;
2. stage the matched objects' and photometry rows in temporary tables (made once per
   session) and update both tables from them;
3. insert the new objects with their photometry rows;
4. append every source to its object's light curve (the link rows);
5. write the association record, and commit.

Each source is paired with its nearest object within 1 arcsec, one source per object
(untimed).
The values written are the rows' own: what the SQL costs does not depend on them. The
links are also written a second time without foreign-key checks (with
``session_replication_role = replica``, which needs a superuser, then rolled back) to
show what the checks cost.

Run it with ``python bench/association_floor.py [--url SERVER] [--images 10]``.
"""

import argparse
import io
import statistics
import struct
import sys
import time
from pathlib import Path

import numpy as np

from association import image, write_catalogue  # bench/association.py, while on the path
from scratch import SERVER, scratch_postgresql

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
import persistence  # noqa: E402
from targets.imaging.skymatch import crossmatch, zone_of  # noqa: E402

COPY_HEADER = b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0)
COPY_TRAILER = b"\xff\xff"
BINARY = {"q": ">i8", "i": ">i4", "d": ">f8"}  # bigint, integer, double precision

OBJECT_SUMS = ("ra", "dec", "ra_err", "dec_err", "zone", "cx", "cy", "cz", "w_xi", "s_xi",
               "w_eta", "s_eta", "n_detections", "last_mjd", "v", "eta")
PHOTOMETRY_SUMS = ("n", "s1", "s2", "sw", "swf", "swff", "flux", "flux_err", "mag",
                   "mag_err", "v", "eta")


def to_copy(columns, kinds):
    """Numeric ``columns`` as the bytes of a binary COPY (``kinds``: q, i or d each)."""
    layout = [("fields", ">i2")]
    for k, kind in enumerate(kinds):
        layout += [(f"length{k}", ">i4"), (f"value{k}", BINARY[kind])]
    rows = np.empty(len(columns[0]), layout)
    rows["fields"] = len(columns)
    for k, (values, kind) in enumerate(zip(columns, kinds)):
        rows[f"length{k}"] = np.dtype(BINARY[kind]).itemsize
        rows[f"value{k}"] = values
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


def read(cursor, sql, kinds):
    """The columns of ``sql`` through a binary COPY (numeric and never NULL)."""
    buffer = io.BytesIO()
    cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", buffer)
    layout = [("fields", ">i2")]
    for k, kind in enumerate(kinds):
        layout += [(f"length{k}", ">i4"), (f"value{k}", BINARY[kind])]
    rows = np.frombuffer(buffer.getvalue()[len(COPY_HEADER):-len(COPY_TRAILER)], layout)
    return [rows[f"value{k}"].astype(BINARY[kind][1:]) for k, kind in enumerate(kinds)]


def write(cursor, table, names, columns, kinds):
    cursor.copy_expert(f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)",
                       io.BytesIO(to_copy(columns, kinds)))


def associate_raw(connection, list_id, footprint, sra, sdec, times):
    """One association's SQL work for source list ``list_id``; add each step's
    seconds to ``times``."""
    cursor = connection.cursor()
    clock = [time.perf_counter()]

    def lap(step):
        now = time.perf_counter()
        times.setdefault(step, []).append(now - clock[0])
        clock[0] = now

    corners = np.reshape(footprint, (-1, 2))
    margin = 5 / 3600
    dec0, dec1 = float(corners[:, 1].min() - margin), float(corners[:, 1].max() + margin)
    ra0 = float(corners[:, 0].min() - margin / np.cos(np.radians(dec1)))
    ra1 = float(corners[:, 0].max() + margin / np.cos(np.radians(dec1)))
    sources = read(cursor, "SELECT object_id, ra, dec, ra_err, dec_err, flux, flux_err, "
                   f"mag_aper, snr FROM source WHERE sourcelist = {list_id} ORDER BY number",
                   "qdddddddd")
    lap("read sources")
    objects = read(cursor, "SELECT object_id, ra, dec, ra_err, dec_err, zone, cx, cy, cz, "
                   "w_xi, s_xi, w_eta, s_eta, n_detections, last_mjd, v, eta FROM object "
                   f"WHERE zone BETWEEN {zone_of(dec0)} AND {zone_of(dec1)} "
                   f"AND ra BETWEEN {ra0} AND {ra1} AND dec BETWEEN {dec0} AND {dec1}",
                   "qddddqdddddddqddd")
    lap("read objects")
    pairs = crossmatch(sra, sdec, objects[1], objects[2], 1.0)  # untimed: not SQL
    clock[0] = time.perf_counter()
    ids = "{" + ",".join(map(str, objects[0].tolist())) + "}"
    photometry = read(cursor, "SELECT object_id, object, n, s1, s2, sw, swf, swff, flux, "
                      "flux_err, mag, mag_err, v, eta, shift FROM objectphotometry WHERE "
                      f"object = ANY('{ids}'::bigint[]) AND filter = 'r'", "qqq" + "d" * 12)
    lap("read photometry")

    first = np.unique(pairs[0], return_index=True)[1]
    matched = np.full(len(sra), -1)
    matched[pairs[0][first]] = pairs[1][first]
    paired = np.flatnonzero(matched >= 0)  # one source per object: the others start new
    second = np.ones(paired.size, bool)
    second[np.unique(matched[paired], return_index=True)[1]] = False
    matched[paired[second]] = -1
    old = matched >= 0
    rows = matched[old]
    write(cursor, "awe_stage_object", ("object_id",) + OBJECT_SUMS,
          [objects[0][rows]] + [column[rows] for column in objects[1:]], "qddddqddddddd" + "qddd")
    cursor.execute("UPDATE object SET " + ", ".join(f"{n} = s.{n}" for n in OBJECT_SUMS)
                   + " FROM awe_stage_object s WHERE object.object_id = s.object_id")
    lap("update objects")
    row_of = {o: k for k, o in enumerate(photometry[1].tolist())}
    prows = np.array([row_of[o] for o in objects[0][rows].tolist() if o in row_of], int)
    write(cursor, "awe_stage_photometry", ("object_id",) + PHOTOMETRY_SUMS,
          [photometry[0][prows], photometry[2][prows]]
          + [column[prows] for column in photometry[3:14]], "qq" + "d" * 11)
    cursor.execute("UPDATE objectphotometry SET "
                   + ", ".join(f"{n} = s.{n}" for n in PHOTOMETRY_SUMS)
                   + " FROM awe_stage_photometry s WHERE objectphotometry.object_id = "
                   "s.object_id")
    lap("update photometry")

    n_new = int((~old).sum())
    cursor.execute("SELECT nextval('awe_object_id_seq') FROM generate_series(1, %s)",
                   (2 * n_new + 1,))
    new_ids = np.array([row[0] for row in cursor.fetchall()], np.int64)
    new_objects, new_photometry, record_id = new_ids[:n_new], new_ids[n_new:-1], new_ids[-1]
    cursor.copy_expert(
        "COPY dbobject (object_id, class_name, creation_date, owner, project, privileges) "
        "FROM STDIN WITH (FORMAT csv)", io.StringIO("".join(
            f"{i},{name},2026-01-01 00:00:00,bench,default,1\n"
            for ids, name in ((new_objects, "Object"), (new_photometry, "ObjectPhotometry"))
            for i in ids.tolist())))
    ra, dec, err = sra[~old], sdec[~old], sources[3][~old]
    ones = np.ones(n_new)
    write(cursor, "object", ("object_id", "ra", "dec", "ra_err", "dec_err", "zone", "cx",
                             "cy", "cz", "ref_ra", "ref_dec", "w_xi", "s_xi", "w_eta",
                             "s_eta", "n_detections", "first_mjd", "last_mjd"),
          [new_objects, ra, dec, err, err, zone_of(dec), ones, ones, ones, ra, dec,
           1 / err ** 2, ones, 1 / err ** 2, ones, np.ones(n_new, np.int64), ones, ones],
          "qddddqddddddddd" + "qdd")
    flux = sources[5][~old]
    write(cursor, "objectphotometry", ("object_id", "object", "n", "shift", "s1", "s2", "sw",
                                       "swf", "swff", "flux", "flux_err"),
          [new_photometry, new_objects, np.ones(n_new, np.int64), flux, ones, ones, ones,
           ones, ones, flux, flux], "qqq" + "d" * 8)
    lap("insert new objects")

    object_of = np.empty(len(sra), np.int64)
    object_of[old] = objects[0][rows]
    object_of[~old] = new_objects
    positions = np.zeros(len(sra), np.int64)
    positions[old] = objects[13][rows]
    write(cursor, "object__sources", ("object_id", "idx", "ref_id"),
          [object_of, positions, sources[0]], "qiq")
    lap("append links")
    cursor.execute("INSERT INTO dbobject VALUES (%s, 'Association', now(), 'bench', "
                   "'default', 1)", (int(record_id),))
    cursor.execute("INSERT INTO association (object_id, sourcelist, n_sources, n_matched, "
                   "n_new, n_flagged_new) VALUES (%s, %s, %s, %s, %s, 0)",
                   (int(record_id), list_id, len(sra), int(old.sum()), n_new))
    lap("write record")
    times.setdefault("matched", []).append(int(old.sum()))
    connection.commit()
    lap("commit")

    cursor.execute("SET session_replication_role = replica")
    clock[0] = time.perf_counter()
    write(cursor, "object__sources", ("object_id", "idx", "ref_id"),
          [object_of, positions + 1_000_000, sources[0]], "qiq")
    lap("(links without foreign-key checks)")
    connection.rollback()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=SERVER, help="the PostgreSQL server")
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()
    with scratch_postgresql(args.url) as url:
        db = persistence.connect(url)
        rng = np.random.default_rng(1)
        ra, dec = write_catalogue(db, args.objects, rng)
        images = [image(ra, dec, 1_000, 60010.0 + k, rng) for k in range(args.images)]
        connection = db.engine.raw_connection().dbapi_connection
        cursor = connection.cursor()
        for table, columns in (("awe_stage_object", OBJECT_SUMS),
                               ("awe_stage_photometry", PHOTOMETRY_SUMS)):
            cursor.execute(f"CREATE TEMPORARY TABLE {table} ON COMMIT DELETE ROWS AS SELECT "
                           f"object_id, {', '.join(columns)} FROM "
                           f"{'object' if table.endswith('object') else 'objectphotometry'} "
                           "WITH NO DATA")
        connection.commit()
        times = {}
        for source_list, sra, sdec, _ in images:
            associate_raw(connection, source_list.object_id, source_list.footprint, sra, sdec,
                          times)
        matched = times.pop("matched")
        total = [sum(times[step][k] for step in times if not step.startswith("("))
                 for k in range(args.images)]
        print(f"\nthe SQL work of associating a ~{len(images[0][1]):,}-source image "
              f"(~{statistics.median(matched):,.0f} matched), raw, median of {args.images} "
              "images:")
        for step, seconds in times.items():
            print(f"  {statistics.median(seconds) * 1e3:7.1f} ms  {step}")
        print(f"  {statistics.median(total) * 1e3:7.1f} ms  in all")
        connection.close()
        db.close()


if __name__ == "__main__":
    main()
