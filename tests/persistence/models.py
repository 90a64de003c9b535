"""The persistent classes the persistence tests share (as in the issue's example)."""

import datetime

from persistence import DBObject, persistent


class Ccd(DBObject):
    """A CCD."""

    name = persistent("CCD name", str, "")


class Filter(DBObject):
    """A passband."""

    name = persistent("Filter name", str, "")


class ImageStatistics(DBObject):
    """Statistics of an image's pixels."""

    mean = persistent("Mean [ADU]", float, 0.0)
    stdev = persistent("Standard deviation [ADU]", float, 0.0)


class Frame(DBObject):
    """An image of one CCD."""

    chip = persistent("The CCD", Ccd, None)
    filter = persistent("The filter", Filter, None)
    imstat = persistent("Image statistics", ImageStatistics, None)
    exptime = persistent("Exposure time [s]", float, 0.0)
    nexp = persistent("Number of exposures", int, 1)
    object_name = persistent("Target name", str, "")
    is_dark = persistent("Shutter closed", bool, False)
    date_obs = persistent("Start of exposure (UTC)", datetime.datetime, None)
    dither_offsets = persistent("Dither offsets [arcsec]", [float], [])


class ReducedFrame(Frame):
    """A frame made from raw frames."""

    raw_frames = persistent("Inputs", [Frame], [])
    flat = persistent("Flat field used", Frame, None)
    is_valid = persistent("0 invalid, 1 valid, 2 proposed", int, 1, mutable=True)
    quality_flags = persistent("Quality flag bits", int, 0, mutable=True)
    best_raw = persistent("Sharpest input", Frame, None, mutable=True)


class CalibratedFrame(ReducedFrame):
    """A reduced frame with a photometric zeropoint (a second level of inheritance)."""

    zeropoint = persistent("Photometric zeropoint [mag]", float, None)


def night(start=datetime.datetime(2026, 3, 1, 20, 0)):
    """A small committed night: 2 chips, 2 filters, 8 raw frames, 4 reduced, 1 calibrated.

    Returns a dict of the committed objects by role.
    """
    from persistence import commit_all

    chips = [Ccd(name="ccd50"), Ccd(name="ccd51")]
    filters = [Filter(name="r"), Filter(name="g")]
    flat = Frame(chip=chips[0], filter=filters[0], exptime=2.0, object_name="FLAT",
                 imstat=ImageStatistics(mean=20000.0, stdev=150.0))
    raws = [Frame(chip=chips[i % 2], filter=filters[(i // 2) % 2], exptime=10.0 * (i + 1),
                  object_name=f"field{i // 4}", date_obs=start + datetime.timedelta(minutes=i),
                  imstat=ImageStatistics(mean=100.0 + i, stdev=5.0 + i))
            for i in range(8)]
    reduced = [ReducedFrame(chip=r.chip, filter=r.filter, exptime=r.exptime,
                            object_name=r.object_name, date_obs=r.date_obs,
                            raw_frames=[r, raws[(i + 1) % 8]], flat=flat,
                            imstat=ImageStatistics(mean=1.0 + i, stdev=0.1 * (i + 1)))
               for i, r in enumerate(raws[:4])]
    calibrated = CalibratedFrame(chip=chips[1], filter=filters[1], exptime=80.0,
                                 object_name="field1", raw_frames=raws[4:], flat=flat,
                                 zeropoint=25.1)
    commit_all([flat, *raws, *reduced, calibrated])
    return {"chips": chips, "filters": filters, "flat": flat, "raws": raws,
            "reduced": reduced, "calibrated": calibrated}


class Star(DBObject):
    """A row of a catalogue, written in bulk; its brightness may be revised."""

    INDEXES = (("field", "mag"),)

    frame = persistent("The frame it was measured on", Frame, None)
    field = persistent("Field number", int, 0)
    name = persistent("Name", str, "")
    mag = persistent("Magnitude", float, None)
    flagged = persistent("Flagged", bool, False)
    revised_mag = persistent("Magnitude after revision", float, None, mutable=True)
    note = persistent("A note on the revision", str, "", mutable=True)
    doubtful = persistent("Whether the revision is in doubt", bool, False, mutable=True)
    neighbours = persistent("Stars revised together", ["Star"], [], mutable=True)
