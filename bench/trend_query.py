"""Trend-script benchmark: AWE batch loading against SQLAlchemy ORM lazy loading.

Each frame has a chip, image statistics and a flat that has image statistics of its
own. The trend script is::

    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]

It runs on the same data mapped twice: as AWE persistent classes, and as plain
SQLAlchemy ORM classes with the default lazy loading, side by side, on SQLite and on
PostgreSQL, for 1,000 and 10,000 frames. The table shows the median time of three runs,
the ratio (ORM / AWE) and the SQL statements each issued.

Run by hand::

    python bench/trend_query.py [--rows 1000 10000] [--postgresql URL]

``--postgresql`` names a server database to create scratch databases from (default
``postgresql://postgres@127.0.0.1:5432/postgres``); ``--no-postgresql`` skips it.
"""

import argparse
import contextlib
import datetime
import os
import statistics
import sys
import tempfile
import time

import sqlalchemy as sa
from sqlalchemy import orm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import persistence  # noqa: E402
from persistence import DBObject, persistent  # noqa: E402
from scratch import SERVER, scratch_postgresql  # noqa: E402  (bench/scratch.py)

FLATS_PER_FRAME = 0.1
CHIPS = 32
RUNS = 3


# -- the AWE mapping -------------------------------------------------------------------

class Chip(DBObject):
    name = persistent("CCD name", str, "")


class ImageStatistics(DBObject):
    mean = persistent("Mean [ADU]", float, 0.0)
    stdev = persistent("Standard deviation [ADU]", float, 0.0)


class Frame(DBObject):
    chip = persistent("The CCD", Chip, None)
    imstat = persistent("Image statistics", ImageStatistics, None)
    exptime = persistent("Exposure time [s]", float, 0.0)
    date_obs = persistent("Start of exposure (UTC)", datetime.datetime, None)


class ReducedFrame(Frame):
    flat = persistent("Flat field used", Frame, None)


# -- the same data in plain SQLAlchemy ORM ---------------------------------------------

class Base(orm.DeclarativeBase):
    pass


class OrmChip(Base):
    __tablename__ = "orm_chip"
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.Text)


class OrmImageStatistics(Base):
    __tablename__ = "orm_imstat"
    id = sa.Column(sa.Integer, primary_key=True)
    mean = sa.Column(sa.Double)
    stdev = sa.Column(sa.Double)


class OrmFrame(Base):
    __tablename__ = "orm_frame"
    id = sa.Column(sa.Integer, primary_key=True)
    reduced = sa.Column(sa.Boolean, nullable=False)
    chip_id = sa.Column(sa.ForeignKey("orm_chip.id"))
    imstat_id = sa.Column(sa.ForeignKey("orm_imstat.id"))
    flat_id = sa.Column(sa.ForeignKey("orm_frame.id"))
    exptime = sa.Column(sa.Double)
    date_obs = sa.Column(sa.DateTime)
    chip = orm.relationship(OrmChip)
    imstat = orm.relationship(OrmImageStatistics)
    flat = orm.relationship("OrmFrame", remote_side=[id])


# -- filling both ----------------------------------------------------------------------

def fill(engine, rows):
    """Write ``rows`` reduced frames and their flats, chips and statistics, both ways."""
    start = datetime.datetime(2026, 1, 1)
    flats_count = max(1, int(rows * FLATS_PER_FRAME))
    chips = [Chip(name=f"ccd{50 + i}") for i in range(CHIPS)]
    flats = [Frame(chip=chips[i % CHIPS], exptime=5.0,
                   imstat=ImageStatistics(mean=1e4, stdev=100.0 + i))
             for i in range(flats_count)]
    frames = [ReducedFrame(chip=chips[i % CHIPS], exptime=300.0,
                           date_obs=start + datetime.timedelta(minutes=i),
                           imstat=ImageStatistics(mean=500.0, stdev=float(i % 97)),
                           flat=flats[i % flats_count])
              for i in range(rows)]
    persistence.commit_all(frames)

    Base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        ochips = [OrmChip(id=i + 1, name=c.name) for i, c in enumerate(chips)]
        oflats = [OrmFrame(id=i + 1, reduced=False, chip=ochips[i % CHIPS], exptime=5.0,
                           imstat=OrmImageStatistics(mean=1e4, stdev=100.0 + i))
                  for i in range(flats_count)]
        session.add_all(oflats)
        session.add_all(
            OrmFrame(id=flats_count + i + 1, reduced=True, chip=ochips[i % CHIPS],
                     exptime=300.0, date_obs=start + datetime.timedelta(minutes=i),
                     imstat=OrmImageStatistics(mean=500.0, stdev=float(i % 97)),
                     flat=oflats[i % flats_count])
            for i in range(rows))
        session.commit()


# -- the two trend scripts -------------------------------------------------------------

def awe_trend(engine):
    q = ReducedFrame.exptime > 10
    x = [k.imstat.stdev for k in q]
    y = [k.flat.imstat.stdev for k in q]
    return x, y


def orm_trend(engine):
    with orm.Session(engine) as session:
        q = sa.select(OrmFrame).where(OrmFrame.reduced, OrmFrame.exptime > 10).order_by(OrmFrame.id)
        x = [k.imstat.stdev for k in session.scalars(q)]
        y = [k.flat.imstat.stdev for k in session.scalars(q)]
    return x, y


@contextlib.contextmanager
def counting(engine):
    """Count the SQL statements issued on ``engine`` (an executemany counts once)."""
    counter = [0]

    def count(*_):
        counter[0] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def measure(script, engine):
    times, statements, result = [], None, None
    for _ in range(RUNS):
        with counting(engine) as counter:
            began = time.perf_counter()
            result = script(engine)
            times.append(time.perf_counter() - began)
        statements = counter[0]
    return statistics.median(times), statements, result


def run(url, rows):
    db = persistence.connect(url)
    fill(db.engine, rows)
    awe_time, awe_statements, awe_result = measure(awe_trend, db.engine)
    orm_time, orm_statements, orm_result = measure(orm_trend, db.engine)
    if awe_result != orm_result:
        raise SystemExit("the two trend scripts disagree; the benchmark is invalid")
    db.close()
    return awe_time, orm_time, awe_statements, orm_statements


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--postgresql", default=SERVER)
    parser.add_argument("--no-postgresql", action="store_true")
    args = parser.parse_args()

    header = (f"{'backend':<11} {'rows':>6} {'AWE [s]':>8} {'ORM lazy [s]':>12} "
              f"{'ORM/AWE':>8} {'AWE stmts':>9} {'ORM stmts':>9}")
    print(header)
    print("-" * len(header))
    backends = ["sqlite"] + ([] if args.no_postgresql else ["postgresql"])
    for backend in backends:
        for rows in args.rows:
            with contextlib.ExitStack() as stack:
                if backend == "sqlite":
                    tmp = stack.enter_context(tempfile.TemporaryDirectory())
                    url = f"sqlite:///{tmp}/bench.db"
                else:
                    url = stack.enter_context(scratch_postgresql(args.postgresql))
                awe_time, orm_time, awe_n, orm_n = run(url, rows)
            print(f"{backend:<11} {rows:>6} {awe_time:>8.3f} {orm_time:>12.3f} "
                  f"{orm_time / awe_time:>7.1f}x {awe_n:>9} {orm_n:>9}", flush=True)


if __name__ == "__main__":
    main()
