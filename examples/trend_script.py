"""A five-line trend script: how the noise of reduced frames follows their flat's.

Makes a small night of frames in a scratch SQLite database, then runs the trend script
that the README describes: a query, list comprehensions over attributes and references,
and a table. Run it with ``python examples/trend_script.py``.
"""

import datetime
import random
import tempfile

from persistence import DBObject, commit_all, connect, persistent


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
    raw_frames = persistent("Inputs", [Frame], [])
    flat = persistent("Flat field used", Frame, None)


def make_night():
    """Commit 32 chips' worth of flats and 320 reduced frames with known statistics."""
    rng = random.Random(1)
    chips = [Chip(name=f"ccd{50 + i}") for i in range(32)]
    flats = [Frame(chip=c, exptime=2.0, imstat=ImageStatistics(mean=2e4, stdev=rng.gauss(140, 5)))
             for c in chips]
    start = datetime.datetime(2026, 3, 1, 20, 0)
    frames = [ReducedFrame(chip=chips[i % 32], flat=flats[i % 32], exptime=300.0,
                           date_obs=start + datetime.timedelta(minutes=5 * (i // 32)),
                           imstat=ImageStatistics(mean=500.0, stdev=flats[i % 32].imstat.stdev
                                                  / 20 + rng.gauss(0, 0.2)))
              for i in range(320)]
    commit_all(frames)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        connect(f"sqlite:///{scratch}/night.db")
        make_night()

        # The trend script itself:
        q = (ReducedFrame.chip.name.like("ccd5*")) & (ReducedFrame.exptime > 10)
        x = [k.flat.imstat.stdev for k in q]
        y = [k.imstat.stdev for k in q]
        print(f"{len(x)} frames on ccd50..ccd59; noisiest flat: "
              f"{q.max('flat.imstat.stdev').chip.name}")
        print(q.order_by("imstat.stdev", descending=True)[:5].to_table(
            "object_id", "chip.name", "imstat.stdev", "flat.imstat.stdev"))
