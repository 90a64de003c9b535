"""Association of source lists into a running catalogue of 10⁶ objects in PostgreSQL:
AWE's `targets.associate` (read the list's sources and the objects near it through the
zones index, pair them, update the matched objects' running sums and photometry,
insert the new objects, append every source to its object's light curve, record the
association; one transaction) side by side with an in-memory
``astropy.coordinates.search_around_sky`` pass over the same positions, which only
finds the pairs and updates nothing.

The catalogue: 10⁶ objects uniform over a 10-square-degree field (10⁵ per square
degree), each with five earlier detections' running sums and r-band photometry, written
in the order of the zones index. An
image is a square of the field holding ~1,000 (or ~10,000) objects; its source list
has a counterpart of 95% of them (moved by their 0.05 arcsec position errors) and 5%
new sources. Each image is written to the database first (not timed), then associated
(timed). astropy is timed twice: against the objects of the image's area (as
`associate` reads them) and against the whole catalogue (building the SkyCoord and
its tree, as a user holding the catalogue in memory would).

Run it with ``python bench/association.py [--url SERVER] [--images 5]``; it creates a
database of its own on the server (``--url``, default the machine's PostgreSQL; see
``bench/scratch.py``) and drops it at the end.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from scratch import SERVER, scratch_postgresql  # bench/scratch.py, before bench/ leaves the path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
import sqlalchemy as sa  # noqa: E402
from astropy import units as u  # noqa: E402
from astropy.coordinates import SkyCoord, search_around_sky  # noqa: E402

import persistence  # noqa: E402
from targets import Object, ObjectPhotometry, Source, SourceList, associate  # noqa: E402
from targets.imaging.skymatch import zone_of  # noqa: E402
from targets.sky import sky_columns  # noqa: E402

FIELD = (150.0, 2.0, 3.1623)  # centre ra, dec and side (degrees): 10 square degrees
DENSITY = 1e5  # objects per square degree
ERROR = 0.05  # arcsec


def populate(n, rng):
    """Write ``n`` objects (with r photometry) uniform over `FIELD`; return their
    positions."""
    ra0, dec0, side = FIELD
    ra = ra0 + rng.uniform(-side / 2, side / 2, n) / np.cos(np.radians(dec0))
    dec = dec0 + rng.uniform(-side / 2, side / 2, n)
    # Written in the order of the sky index, as a survey writes its catalogue image by
    # image (or as PostgreSQL's CLUSTER on the zones index leaves it).
    order = np.lexsort((ra, zone_of(dec)))
    ra, dec = ra[order], dec[order]
    chunk = 200_000
    for start in range(0, n, chunk):
        part = slice(start, min(start + chunk, n))
        m = part.stop - part.start
        w = np.full(m, 5 / ERROR ** 2)
        flux = rng.lognormal(np.log(100.0), 1.0, m)
        with persistence.current_database().transaction() as connection:
            ids = persistence.insert_many(Object, {
                "ra": ra[part], "dec": dec[part], "ra_err": np.full(m, ERROR / np.sqrt(5)),
                "dec_err": np.full(m, ERROR / np.sqrt(5)), **sky_columns(ra[part], dec[part]),
                "ref_ra": ra[part], "ref_dec": dec[part], "w_xi": w, "s_xi": np.zeros(m),
                "w_eta": w, "s_eta": np.zeros(m), "n_detections": np.full(m, 5),
                "first_mjd": np.full(m, 60000.0), "last_mjd": np.full(m, 60004.0)},
                connection=connection)
            sw = 5 / (0.02 * flux) ** 2
            persistence.insert_many(ObjectPhotometry, {
                "object": ids, "filter": ["r"] * m, "n": np.full(m, 5), "shift": flux,
                "s1": np.zeros(m), "s2": np.zeros(m), "sw": sw, "swf": np.zeros(m),
                "swff": np.zeros(m), "flux": flux, "flux_err": 1 / np.sqrt(sw),
                "mag": 23.9 - 2.5 * np.log10(flux), "mag_err": np.full(m, 0.01)},
                connection=connection)
        print(f"  {part.stop:,} objects written", flush=True)
    return ra, dec


def write_catalogue(db, n, rng):
    """`populate` ``db`` with ``n`` objects and refresh the planner's statistics; return
    the objects' positions."""
    print(f"writing a catalogue of {n:,} objects ...")
    ra, dec = populate(n, rng)
    with db.transaction() as connection:
        connection.exec_driver_sql("ANALYZE")
    return ra, dec


def image(ra, dec, n_objects, mjd, rng):
    """Write a source list over a square of the field holding ~``n_objects`` objects;
    return it and its sources' positions."""
    ra0, dec0, side = FIELD
    half = np.sqrt(n_objects / DENSITY) / 2
    cra = ra0 + rng.uniform(-side / 2 + half, side / 2 - half) / np.cos(np.radians(dec0))
    cdec = dec0 + rng.uniform(-side / 2 + half, side / 2 - half)
    cos = np.cos(np.radians(cdec))
    inside = (np.abs(dec - cdec) < half) & (np.abs((ra - cra) * cos) < half)
    seen = np.flatnonzero(inside)
    seen = seen[rng.uniform(size=seen.size) < 0.95]
    n_new = int(0.05 * inside.sum())
    sra = np.concatenate([ra[seen] + rng.normal(0, ERROR, seen.size) / 3600 / cos,
                          cra + rng.uniform(-half, half, n_new) / cos])
    sdec = np.concatenate([dec[seen] + rng.normal(0, ERROR, seen.size) / 3600,
                           cdec + rng.uniform(-half, half, n_new)])
    n = sra.size
    flux = rng.lognormal(np.log(100.0), 1.0, n)
    footprint = [cra - half / cos, cdec - half, cra + half / cos, cdec - half,
                 cra + half / cos, cdec + half, cra - half / cos, cdec + half]
    with persistence.current_database().transaction() as connection:
        list_id = persistence.insert_many(SourceList, {
            "filter": ["r"], "mjd": [mjd], "n_sources": [n], "ra": [cra], "dec": [cdec],
            "footprint": [footprint], "limiting_mag": [24.0]}, connection=connection)[0]
        persistence.insert_many(Source, {
            "sourcelist": [list_id] * n, "number": np.arange(1, n + 1), "mjd": [mjd] * n,
            "filter": ["r"] * n, "ra": sra, "dec": sdec, "ra_err": np.full(n, ERROR),
            "dec_err": np.full(n, ERROR), "flux": flux, "flux_err": 0.02 * flux,
            "mag_aper": 23.9 - 2.5 * np.log10(flux), "snr": np.full(n, 50.0),
            **sky_columns(sra, sdec)}, connection=connection)
    return SourceList.load(int(list_id)), sra, sdec, inside


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=SERVER, help="the PostgreSQL server")
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=5, help="images of each size")
    args = parser.parse_args()
    with scratch_postgresql(args.url) as url:
        db = persistence.connect(url)
        rng = np.random.default_rng(1)
        ra, dec = write_catalogue(db, args.objects, rng)
        print(f"\n{'sources':>8} {'AWE associate':>14} {'sources/s':>10} "
              f"{'astropy (area)':>15} {'astropy (all)':>14}")
        for n_objects in (1_000, 10_000):
            ours, near_times, all_times, sizes = [], [], [], []
            for k in range(args.images):
                source_list, sra, sdec, inside = image(ra, dec, n_objects, 60010.0 + k, rng)
                start = time.perf_counter()
                record = associate(source_list)
                ours.append(time.perf_counter() - start)
                sizes.append(record.n_sources)
                sources = SkyCoord(sra * u.deg, sdec * u.deg)
                start = time.perf_counter()
                search_around_sky(sources, SkyCoord(ra[inside] * u.deg, dec[inside] * u.deg),
                                  1.0 * u.arcsec)
                near_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                catalogue = SkyCoord(ra * u.deg, dec * u.deg)
                search_around_sky(sources, catalogue, 1.0 * u.arcsec)
                all_times.append(time.perf_counter() - start)
            n = statistics.median(sizes)
            t = statistics.median(ours)
            print(f"{n:>8,.0f} {t * 1e3:>11.1f} ms {n / t:>10,.0f} "
                  f"{statistics.median(near_times) * 1e3:>12.1f} ms "
                  f"{statistics.median(all_times) * 1e3:>11.1f} ms")
        print(f"\n(median of {args.images} images each; PostgreSQL "
              f"{db.execute(sa.text('SHOW server_version'))[0][0]}; the catalogue holds "
              f"{Object.all().count():,} objects at the end)")
        db.close()


if __name__ == "__main__":
    main()
