"""Raw data: the chips of the instruments, and raw frames (one per chip of a raw file).

Raw frames are made by `targets.ingest`, never by `get()`: they are the leaves every
product's lineage ends in. Their pixels are kept exactly as the telescope wrote them.
"""

import datetime
import os
from zoneinfo import ZoneInfo

from persistence import DBObject, commit_all, current_database, persistent

from .dataobject import DataObject, global_filename
from .imaging.skymatch import footprint_contains
from .instruments import night_of, night_window

__all__ = ["Chip", "RawBiasFrame", "RawDarkFrame", "RawFlatFrame", "RawFrame",
           "RawScienceFrame", "local_night", "mid_exposure_mjd"]


class Chip(DBObject):
    """A detector of an instrument: raw frames and calibrations are per chip."""

    instrument = persistent("Name of the instrument, e.g. 'SIMCAM'", str, "")
    name = persistent("Name of the chip within the instrument, e.g. 'ccd1'", str, "")
    timezone = persistent("The observatory's time zone: an IANA name, or a fixed offset "
                          "such as 'UTC+01:30' (a night runs noon to noon local time)",
                          str, "UTC")

    @classmethod
    def of(cls, instrument, name, timezone="UTC"):
        """The chip ``name`` of ``instrument``, committed on first use."""
        query = (cls.instrument == instrument) & (cls.name == name)
        found = query.first()
        if found is None:
            with current_database().named_lock(f"Chip {instrument} {name}"):
                found = query.first()
                if found is None:
                    found = cls(instrument=instrument, name=name, timezone=timezone)
                    commit_all([found])
        return found

    def tzinfo(self):
        """The `datetime.tzinfo` of `timezone`."""
        if self.timezone.startswith("UTC") and len(self.timezone) > 3:
            sign = -1 if self.timezone[3] == "-" else 1
            hours, minutes = self.timezone[4:].split(":")
            return datetime.timezone(sign * datetime.timedelta(hours=int(hours),
                                                               minutes=int(minutes)))
        return datetime.timezone.utc if self.timezone == "UTC" else ZoneInfo(self.timezone)

    def __str__(self):
        return f"{self.instrument} {self.name}"


def timezone_name(tzinfo):
    """How `Chip.timezone` records ``tzinfo`` (an IANA zone or a fixed offset)."""
    if isinstance(tzinfo, ZoneInfo):
        return tzinfo.key
    offset = tzinfo.utcoffset(None)
    if not offset:
        return "UTC"
    sign = "-" if offset < datetime.timedelta(0) else "+"
    minutes = abs(offset) // datetime.timedelta(minutes=1)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


_MJD0 = datetime.datetime(1858, 11, 17)


def mid_exposure_mjd(date_obs, exptime):
    """The modified Julian date (UTC) halfway through an exposure starting at
    ``date_obs`` (naive UTC) and lasting ``exptime`` seconds: a light curve's time."""
    return (date_obs - _MJD0).total_seconds() / 86400.0 + exptime / 2 / 86400.0


def local_night(chip, time):
    """``(start, end)`` in UTC of the night of ``time`` at ``chip``'s observatory: local
    noon to the next local noon (23 or 25 hours around a daylight-saving change)."""
    zone = chip.tzinfo()
    return night_window(night_of(time, zone), zone)


MOSAIC_REACH = 2.0
"""Largest distance (degrees) from a mosaic's pointing (``RawFrame.dec``) to its chips:
the database's first cut when looking for the chips covering a position."""


class RawFrame(DataObject):
    """One chip of a raw file: its pixels untouched, its header values, its statistics.

    The file on the data store holds the chip's image as the telescope wrote it (same
    data type and scaling), with the raw file's primary header merged into its own.
    """

    filename_prefix = "Raw"
    OBSTYPE = None
    """The observation type (`targets.instruments.OBSTYPES`) of the subclass."""

    instrument = persistent("Name of the instrument", str, "")
    chip = persistent("The chip", Chip, None)
    raw_file = persistent("Name of the raw file it came from", str, "")
    extension = persistent("Index of the chip's HDU in the raw file", int, 0)
    date_obs = persistent("Start of the exposure (UTC)", datetime.datetime, None)
    night = persistent("The night: local date at its start (noon), 'YYYY-MM-DD'", str, "")
    exptime = persistent("Exposure time [s]", float, 0.0)
    filter = persistent("Filter name", str, "")
    object = persistent("The OBJECT keyword", str, "")
    airmass = persistent("Airmass at the start", float, None)
    ra = persistent("Pointing right ascension [deg]", float, None)
    dec = persistent("Pointing declination [deg]", float, None)
    gain = persistent("Gain [e-/ADU]", float, None)
    read_noise = persistent("Read noise [e-]", float, None)
    saturation = persistent("Saturation level [ADU]", float, None)
    overscan_section = persistent("Overscan region, FITS style '[x1:x2,y1:y2]'; '' if none",
                                  str, "")
    data_section = persistent("Light-sensitive region, FITS style '[x1:x2,y1:y2]'", str, "")
    mean = persistent("Mean of the data section [ADU]", float, None)
    median = persistent("Median of the data section [ADU]", float, None)
    stdev = persistent("Robust standard deviation (1.4826 MAD) of the data section [ADU]",
                       float, None)
    minimum = persistent("Minimum of the data section [ADU]", float, None)
    maximum = persistent("Maximum of the data section [ADU]", float, None)
    usable = persistent("False once a calibration scientist rejects the frame: it is "
                        "then never selected", bool, True, mutable=True)

    def global_name(self, checksum):
        """The raw file's name with the chip's: ingesting another file of the same name
        is refused by the data store, not stored beside it."""
        stem = os.path.basename(self.raw_file)
        for ending in (".fz", ".gz", ".fits", ".fit", ".fts"):
            stem = stem[:-len(ending)] if stem.lower().endswith(ending) else stem
        return global_filename(stem, chip=self.chip.name, checksum="")


class RawBiasFrame(RawFrame):
    """A zero-second exposure with the shutter closed."""

    OBSTYPE = "bias"
    filename_prefix = "RawBias"


class RawDarkFrame(RawFrame):
    """An exposure with the shutter closed: bias plus dark current."""

    OBSTYPE = "dark"
    filename_prefix = "RawDark"


class RawFlatFrame(RawFrame):
    """An exposure of a uniformly lit dome screen or twilight sky."""

    OBSTYPE = "flat"
    filename_prefix = "RawFlat"


class RawScienceFrame(RawFrame):
    """An exposure of the sky."""

    OBSTYPE = "science"
    filename_prefix = "RawScience"

    footprint = persistent("The chip's corners on the sky by the telescope's WCS (the "
                           "pointing's error included): ra1, dec1, ..., ra4, dec4 [deg]; "
                           "empty if the header has no WCS (ingesting the file again fills "
                           "it in for frames ingested before it was recorded)", [float], [],
                           mutable=True)

    @classmethod
    def covering(cls, ra, dec, margin=0.0, where=None):
        """The usable frames whose chip (by the telescope's WCS) covers ``(ra, dec)``
        or comes within ``margin`` degrees of it, and that meet the query ``where`` if
        given; in time order."""
        near = ((cls.usable == True)  # noqa: E712
                & (cls.dec >= dec - margin - MOSAIC_REACH)
                & (cls.dec <= dec + margin + MOSAIC_REACH))
        if where is not None:
            near = near & where
        return sorted((f for f in near if f.covers(ra, dec, margin)),
                      key=lambda f: (f.date_obs, f.object_id))

    def covers(self, ra, dec, margin=0.0):
        """Whether the chip (by the telescope's WCS) covers ``(ra, dec)``, or comes
        within ``margin`` degrees of it; False without a WCS."""
        return bool(self.footprint) and bool(footprint_contains(
            list(zip(self.footprint[::2], self.footprint[1::2])), ra, dec, margin))


RAW_CLASSES = {cls.OBSTYPE: cls for cls in (RawBiasFrame, RawDarkFrame, RawFlatFrame,
                                            RawScienceFrame)}
"""The raw frame class of each observation type."""
