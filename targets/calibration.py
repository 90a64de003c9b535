"""Calibration products of a chip's night: MasterBias, HotPixelMap, MasterFlat and
ColdPixelMap.

Each is asked for by ``chip`` and ``time`` (the observation to calibrate; the flat and
the cold pixels also by ``filter``) and is valid for the observatory's night of that
time, noon to noon local time. The algorithms are the pure functions of
`targets.imaging`; the classes fetch the inputs, call them and write the result.
"""

import numpy as np
from astropy.io import fits

from persistence import persistent

from .dependency import dependency
from .imaging.reduce import (cold_pixel_map, hot_pixel_map, master_bias, master_flat,
                             prepare, read_noise, robust_sigma)
from .parameters import ProcessParameters
from .process import CalibrationTarget
from .quality import QualityFlag, flags
from .raw import Chip, RawBiasFrame, RawDarkFrame, RawFlatFrame, local_night

__all__ = ["DEAD_RESPONSE", "ColdPixelMap", "HotPixelMap", "MasterBias", "MasterFlat",
           "dead_columns", "prepared", "write_image"]


def prepared(frame):
    """The raw frame's pixels, overscan-corrected and trimmed (`imaging.reduce.prepare`)."""
    return prepare(fits.getdata(frame.retrieve()), frame.overscan_section, frame.data_section)


def write_image(path, data, cards, extensions=()):
    """Write ``data`` (and named ``extensions``: ``(name, array)``) as FITS with
    ``cards`` in the primary header; nothing time-dependent, so that a product made
    again has the same checksum."""
    header = fits.Header()
    for key, value, comment in cards:
        header[key] = (value, comment)
    hdus = [fits.PrimaryHDU(data, header)]
    hdus += [fits.ImageHDU(array, name=name) for name, array in extensions]
    fits.HDUList(hdus).writeto(path)
    return path


def image_pixels(path):
    """The number of pixels of the primary image of the FITS file ``path``."""
    header = fits.getheader(path)
    return int(np.prod([header[f"NAXIS{k}"] for k in range(1, header["NAXIS"] + 1)]))


class ChipCalibration(CalibrationTarget):
    """A calibration of one chip, valid for the observatory's night."""

    SELECTORS = ("chip", "time")

    chip = persistent("The chip", Chip, None)

    @classmethod
    def validity_window(cls, selectors):
        """The night of ``time`` at the chip's observatory, noon to noon local time."""
        return local_night(selectors["chip"], selectors["time"])

    def filename_parts(self):
        return {"instrument": self.chip.instrument, "chip": self.chip.name,
                "filter": getattr(self, "filter", None), "time": self.timestamp_start}


def night_frames(raw_class, **equal):
    """A dependency query: the usable raw frames of ``raw_class`` of the chip's night
    (and, for a ``filter`` selector, of that filter)."""
    def query(selectors):
        start, end = ChipCalibration.validity_window(selectors)
        found = ((raw_class.chip == selectors["chip"]) & (raw_class.date_obs >= start)
                 & (raw_class.date_obs < end) & (raw_class.usable == True))  # noqa: E712
        if "filter" in selectors:
            found = found & (raw_class.filter == selectors["filter"])
        return found
    return query


def same_night(selectors):
    """Selectors of another calibration of the same chip and night."""
    return {"chip": selectors["chip"], "time": selectors["time"]}


# -- MasterBias ------------------------------------------------------------------------

class MasterBiasParameters(ProcessParameters):
    method = persistent("How the frames are combined: 'mean' or 'median'", str, "mean")
    sigma = persistent("Rejection threshold of the sigma clipping [robust sigma]",
                       float, 3.0)
    min_frames = persistent("Fewest raw biases to combine", int, 3)
    max_level = persistent("verify(): largest |mean level| after overscan subtraction "
                           "[ADU]; the overscan tracks the bias to a few ADU", float, 10.0)
    max_read_noise = persistent("verify(): largest read noise [e-]", float, 10.0)


class MasterBias(ChipCalibration):
    """The bias structure the overscan does not remove, for one chip and night: the
    overscan-corrected, trimmed raw biases combined with outlier rejection."""

    Parameters = MasterBiasParameters
    CODE_VERSION = "1"
    QUALITY_FLAGS = flags(
        QualityFlag(1, "level", "|mean level| above max_level: the data area's bias does "
                    "not follow the overscan (it drifted, or the overscan is mis-declared)"),
        QualityFlag(2, "read_noise", "read noise above max_read_noise: noisy electronics"))
    QUALITY_LEVEL = QUALITY_FLAGS["level"].bit
    QUALITY_NOISE = QUALITY_FLAGS["read_noise"].bit
    """The bits of the flags, by the names scripts used before they were named."""

    raw_biases = dependency("The night's raw biases", RawBiasFrame, many=True,
                            query=night_frames(RawBiasFrame))
    level = persistent("Mean of the master bias [ADU]", float, None)
    stdev = persistent("Robust standard deviation of the master bias [ADU]", float, None)
    read_noise = persistent("Read noise measured from pairs of raw biases [e-]", float, None)
    n_frames = persistent("Number of raw biases combined", int, 0)

    def make(self, workdir):
        pars = self.process_parameters
        frames = list(self.raw_biases)
        if len(frames) < pars.min_frames:
            raise ValueError(f"{len(frames)} raw biases for {self.chip} in the night from "
                             f"{self.timestamp_start:%Y-%m-%d %H:%M} UTC, fewer than "
                             f"min_frames={pars.min_frames}; observe more, or lower "
                             "MasterBias.min_frames")
        images = [prepared(f) for f in frames]
        master = master_bias(images, method=pars.method, sigma=pars.sigma)
        self.read_noise = read_noise(images, frames[0].gain or 1.0)
        self.level, self.stdev = float(master.mean()), robust_sigma(master)
        self.n_frames = len(frames)
        return write_image(workdir / "masterbias.fits", master, [
            ("OBJECT", "MasterBias", "AWE product"),
            ("INSTRUME", self.chip.instrument, "Instrument"),
            ("CHIP", self.chip.name, "Chip"),
            ("NCOMBINE", self.n_frames, "Raw biases combined"),
            ("RDNOISE", self.read_noise, "Read noise measured [e-]"),
        ])

    def verify(self, path):
        pars = self.process_parameters
        self.quality_flags = self.flag_bits(level=abs(self.level) > pars.max_level,
                                            read_noise=self.read_noise > pars.max_read_noise)


# -- HotPixelMap -----------------------------------------------------------------------

class HotPixelMapParameters(ProcessParameters):
    sigma = persistent("A pixel is hot this many robust sigma above its surroundings",
                       float, 6.0)
    max_hot_fraction = persistent("verify(): largest fraction of the pixels hot; SIMCAM's "
                                  "chips have about 0.02%", float, 0.005)


class HotPixelMap(ChipCalibration):
    """Pixels with excess dark current (or bias offset): from the night's darks where
    there are any, else from the master bias. 1 marks a hot pixel."""

    Parameters = HotPixelMapParameters
    CODE_VERSION = "1"
    QUALITY_FLAGS = flags(
        QualityFlag(1, "hot_pixels", "more than max_hot_fraction of the pixels hot: a warm "
                    "or damaged chip, or darks with light in them"))

    bias = dependency("The night's master bias", MasterBias, selectors=same_night)
    raw_darks = dependency("The night's raw darks (optional)", RawDarkFrame, many=True,
                           optional=True, query=night_frames(RawDarkFrame))
    n_hot = persistent("Number of hot pixels", int, 0)

    def make(self, workdir):
        darks = self.raw_darks
        hot = hot_pixel_map(fits.getdata(self.bias.retrieve()), [prepared(f) for f in darks],
                            [f.exptime for f in darks], sigma=self.process_parameters.sigma)
        self.n_hot = int(hot.sum())
        return write_image(workdir / "hotpixels.fits", hot.astype(np.uint8), [
            ("OBJECT", "HotPixelMap", "AWE product: 1 = hot pixel"),
            ("CHIP", self.chip.name, "Chip"), ("NHOT", self.n_hot, "Hot pixels")])

    def verify(self, path):
        self.quality_flags = self.flag_bits(hot_pixels=self.n_hot > image_pixels(path)
                                            * self.process_parameters.max_hot_fraction)


# -- MasterFlat ------------------------------------------------------------------------

class MasterFlatParameters(ProcessParameters):
    method = persistent("How the normalised flats are combined: 'median' or 'mean'",
                        str, "median")
    sigma = persistent("Rejection threshold of the sigma clipping [robust sigma]",
                       float, 3.0)
    min_frames = persistent("Fewest raw flats to combine", int, 3)
    min_level = persistent("Raw flats below this level [ADU] are too faint to use",
                           float, 1000.0)
    max_outlier_fraction = persistent("verify(): largest fraction of pixels deviating by "
                                      "more than 10% from 1", float, 0.01)
    max_dead_columns = persistent(
        "verify(): most dead columns tolerated (see targets.calibration.dead_columns); 1, "
        "as SIMCAM's second chip has one: a chip with more has been damaged", int, 1)


DEAD_RESPONSE = 0.5
"""A pixel of a normalised flat responding less than this is dead."""


def dead_columns(flat):
    """The indices of the dead columns of a normalised ``flat``: those with more than
    half their pixels below `DEAD_RESPONSE`, so that a column dead over most of its
    length counts, scattered cold pixels do not."""
    return np.flatnonzero(np.mean(flat < DEAD_RESPONSE, axis=0) > 0.5)


class MasterFlat(ChipCalibration):
    """The relative sensitivity of each pixel in one filter, normalised to 1: the
    bias-subtracted raw flats, each normalised, combined with rejection."""

    SELECTORS = ("chip", "filter", "time")
    Parameters = MasterFlatParameters
    CODE_VERSION = "1"
    QUALITY_FLAGS = flags(
        QualityFlag(1, "outliers", "more than max_outlier_fraction of the pixels deviate "
                    "by more than 10% from 1: bad flats, or a changed optical path"),
        QualityFlag(2, "dead_columns", "more than max_dead_columns dead columns: a "
                    "damaged chip"))
    QUALITY_OUTLIERS = QUALITY_FLAGS["outliers"].bit
    """The bit of "outliers", by the name scripts used before flags were named."""

    filter = persistent("Filter name", str, "")
    raw_flats = dependency("The night's raw flats in the filter", RawFlatFrame, many=True,
                           query=night_frames(RawFlatFrame))
    bias = dependency("The night's master bias", MasterBias, selectors=same_night)
    n_frames = persistent("Number of raw flats combined", int, 0)
    stdev = persistent("Robust standard deviation of the normalised flat", float, None)
    outlier_fraction = persistent("Fraction of pixels deviating more than 10% from 1",
                                  float, None)
    n_dead_columns = persistent("Number of dead columns (see dead_columns)", int, None)

    def make(self, workdir):
        pars = self.process_parameters
        frames = [f for f in self.raw_flats if (f.median or 0) >= pars.min_level]
        if len(frames) < pars.min_frames:
            raise ValueError(f"{len(frames)} raw {self.filter} flats of {self.chip} bright "
                             f"enough (median >= {pars.min_level} ADU) in the night from "
                             f"{self.timestamp_start:%Y-%m-%d %H:%M} UTC, fewer than "
                             f"min_frames={pars.min_frames}; observe more flats, or lower "
                             "MasterFlat.min_frames or min_level")
        flat = master_flat([prepared(f) for f in frames], fits.getdata(self.bias.retrieve()),
                           method=pars.method, sigma=pars.sigma)
        self.n_frames = len(frames)
        self.stdev = robust_sigma(flat)
        self.outlier_fraction = float(np.mean(np.abs(flat - 1) > 0.1))
        self.n_dead_columns = len(dead_columns(flat))
        return write_image(workdir / "masterflat.fits", flat, [
            ("OBJECT", "MasterFlat", "AWE product"),
            ("CHIP", self.chip.name, "Chip"), ("FILTER", self.filter, "Filter"),
            ("NCOMBINE", self.n_frames, "Raw flats combined")])

    def verify(self, path):
        pars = self.process_parameters
        self.quality_flags = self.flag_bits(
            outliers=self.outlier_fraction > pars.max_outlier_fraction,
            dead_columns=self.n_dead_columns > pars.max_dead_columns)


# -- ColdPixelMap ----------------------------------------------------------------------

class ColdPixelMapParameters(ProcessParameters):
    low = persistent("A pixel is cold below this fraction of its surroundings' response",
                     float, 0.8)
    sigma = persistent("... or this many robust sigma below them", float, 6.0)
    max_cold_fraction = persistent(
        "verify(): largest fraction of the pixels cold; 2%, as a dead column is 1.6% of "
        "the smallest chip SIMCAM simulates (64 x 64)", float, 0.02)


class ColdPixelMap(ChipCalibration):
    """Pixels that respond too little to light, from the master flat of the filter
    (cold pixels can depend on the wavelength). 1 marks a cold pixel."""

    SELECTORS = ("chip", "filter", "time")
    Parameters = ColdPixelMapParameters
    CODE_VERSION = "1"
    QUALITY_FLAGS = flags(
        QualityFlag(1, "cold_pixels", "more than max_cold_fraction of the pixels cold: a "
                    "damaged chip, or dirt on it"))

    filter = persistent("Filter name", str, "")
    flat = dependency("The night's master flat in the filter", MasterFlat,
                      selectors=lambda s: {"chip": s["chip"], "filter": s["filter"],
                                           "time": s["time"]})
    n_cold = persistent("Number of cold pixels", int, 0)

    def make(self, workdir):
        pars = self.process_parameters
        cold = cold_pixel_map(fits.getdata(self.flat.retrieve()), low=pars.low,
                              sigma=pars.sigma)
        self.n_cold = int(cold.sum())
        return write_image(workdir / "coldpixels.fits", cold.astype(np.uint8), [
            ("OBJECT", "ColdPixelMap", "AWE product: 1 = cold pixel"),
            ("CHIP", self.chip.name, "Chip"), ("FILTER", self.filter, "Filter"),
            ("NCOLD", self.n_cold, "Cold pixels")])

    def verify(self, path):
        self.quality_flags = self.flag_bits(cold_pixels=self.n_cold > image_pixels(path)
                                            * self.process_parameters.max_cold_fraction)
