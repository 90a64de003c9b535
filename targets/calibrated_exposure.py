"""CalibratedExposure: one chip of a science exposure, calibrated and solved.

Overscan, trim, de-bias, flat-field; hot, cold, saturated and cosmic-ray pixels masked;
a weight map; the background; an astrometric solution against the reference catalogue;
a photometric zeropoint; image statistics and seeing. The file holds the science image
(primary HDU, with the solved WCS and the calibration in its header), ``WEIGHT``
(inverse variance, ADU⁻²) and ``MASK`` (the bits of `MASK_BITS`). The arithmetic is
`targets.imaging.reduce.calibrate_science`.
"""

import datetime
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from persistence import persistent

from .calibration import ColdPixelMap, HotPixelMap, MasterBias, MasterFlat
from .dependency import dependency
from .imaging.reduce import MASK_BITS, calibrate_science, telescope_wcs
from .parameters import ProcessParameters
from .process import ProcessTarget
from .quality import QualityFlag, flags
from .raw import Chip, RawScienceFrame
from .reference import ReferenceCatalogue

__all__ = ["MASK_BITS", "CalibratedExposure"]


def _calibration(*also):
    """Selectors of a calibration of the raw frame being calibrated: its chip and time,
    and the raw frame's attributes named in ``also``."""
    def selectors(s):
        raw = s["raw"]
        return {"chip": raw.chip, "time": raw.date_obs,
                **{name: getattr(raw, name) for name in also}}
    return selectors


class CalibratedExposureParameters(ProcessParameters):
    cosmic_sigma = persistent("L.A.Cosmic detection threshold [sigma]", float, 4.5)
    detection_sigma = persistent("Source detection threshold [sigma]", float, 5.0)
    search_radius = persistent("Largest pointing error searched [arcsec]", float, 60.0)
    aperture_min_snr = persistent("Faintest star (signal to noise) in the aperture "
                                  "correction", float, 30.0)
    max_astrometric_rms = persistent("verify(): largest astrometric rms [arcsec]", float, 0.2)
    min_reference_stars = persistent("verify(): fewest reference stars in the fit", int, 10)
    max_zeropoint_error = persistent("verify(): largest zeropoint error [mag]", float, 0.05)


class CalibratedExposure(ProcessTarget):
    """One chip of a science exposure, calibrated, with its astrometric and photometric
    solution."""

    SELECTORS = ("raw",)
    Parameters = CalibratedExposureParameters
    CODE_VERSION = "3"  # 2: sources measured without their neighbours' light; 3: detected
    # with thin masked features interpolated
    QUALITY_FLAGS = flags(
        QualityFlag(1, "astrometry", "astrometric rms above max_astrometric_rms"),
        QualityFlag(2, "few_stars", "fewer than min_reference_stars reference stars in the "
                    "astrometric fit: the solution is poorly constrained"),
        QualityFlag(4, "photometry", "zeropoint error above max_zeropoint_error"))
    QUALITY_ASTROMETRY = QUALITY_FLAGS["astrometry"].bit
    QUALITY_FEW_STARS = QUALITY_FLAGS["few_stars"].bit
    QUALITY_PHOTOMETRY = QUALITY_FLAGS["photometry"].bit
    """The bits of the flags, by the names scripts used before they were named."""
    filename_prefix = "Cal"

    raw = dependency("The raw science frame", RawScienceFrame,
                     query=lambda s: RawScienceFrame.object_id == s["raw"].object_id)
    bias = dependency("Master bias of the night", MasterBias, selectors=_calibration())
    flat = dependency("Master flat of the night and filter", MasterFlat,
                      selectors=_calibration("filter"))
    hot = dependency("Hot pixels", HotPixelMap, selectors=_calibration())
    cold = dependency("Cold pixels", ColdPixelMap,
                      selectors=_calibration("filter"))
    reference = dependency("Reference catalogue covering the pointing", ReferenceCatalogue,
                           query=lambda s: ReferenceCatalogue.covering(s["raw"].ra,
                                                                       s["raw"].dec))

    chip = persistent("The chip", Chip, None)
    filter = persistent("Filter name", str, "")
    date_obs = persistent("Start of the exposure (UTC)", datetime.datetime, None)
    exptime = persistent("Exposure time [s]", float, 0.0)
    object = persistent("The OBJECT keyword", str, "")
    airmass = persistent("Airmass", float, None)
    ra = persistent("Right ascension of the chip's centre [deg]", float, None)
    dec = persistent("Declination of the chip's centre [deg]", float, None)
    background = persistent("Median background [ADU]", float, None)
    background_rms = persistent("Median background noise [ADU]", float, None)
    seeing = persistent("Seeing: median FWHM of stars [arcsec]", float, None)
    astrometric_rms = persistent("RMS of the astrometric fit [arcsec]", float, None)
    n_reference_stars = persistent("Reference stars in the astrometric fit", int, 0)
    sip_degree = persistent("Degree of the SIP distortion fitted (0: none)", int, 0)
    zeropoint = persistent("Zeropoint: mag = -2.5 log10(ADU/s) + zeropoint", float, None)
    zeropoint_error = persistent("Error of the zeropoint [mag]", float, None)
    n_zeropoint_stars = persistent("Stars in the zeropoint", int, 0)
    masked_fraction = persistent("Fraction of pixels masked", float, None)

    @classmethod
    def new(cls, selectors):
        raw = selectors["raw"]
        return cls(chip=raw.chip, filter=raw.filter, date_obs=raw.date_obs,
                   exptime=raw.exptime, object=raw.object, airmass=raw.airmass)

    def make(self, workdir):
        pars, raw = self.process_parameters, self.raw
        with fits.open(raw.retrieve(), memmap=False) as hdul:
            header, pixels = hdul[0].header, hdul[0].data
        result = calibrate_science(
            pixels, overscan=raw.overscan_section, data=raw.data_section,
            bias=fits.getdata(self.bias.retrieve()), flat=fits.getdata(self.flat.retrieve()),
            hot=fits.getdata(self.hot.retrieve()), cold=fits.getdata(self.cold.retrieve()),
            saturation=raw.saturation, gain=raw.gain, read_noise=raw.read_noise,
            reference=self.reference.table(), wcs_guess=telescope_wcs(header, raw.data_section),
            filter=raw.filter, exptime=raw.exptime, cosmic_sigma=pars.cosmic_sigma,
            detection_sigma=pars.detection_sigma, search_radius=pars.search_radius,
            aperture_min_snr=pars.aperture_min_snr)
        solution, zeropoint = result.astrometry, result.zeropoint
        ny, nx = result.science.shape
        self.ra, self.dec = map(float, solution.wcs.pixel_to_world_values((nx - 1) / 2,
                                                                          (ny - 1) / 2))
        self.background = float(np.median(result.background.level))
        self.background_rms = float(np.median(result.background.rms))
        self.seeing = float(result.seeing.fwhm_arcsec)
        self.astrometric_rms, self.n_reference_stars = float(solution.rms), int(solution.n_stars)
        self.sip_degree = int(solution.sip_degree)
        self.zeropoint, self.zeropoint_error = float(zeropoint.value), float(zeropoint.error)
        self.n_zeropoint_stars = int(zeropoint.n_stars)
        self.masked_fraction = float(np.mean(result.mask != 0))
        return self._write(workdir / "calibrated.fits", result, solution.wcs)

    def _write(self, path, result, wcs):
        header = wcs.to_header(relax=True)
        for key, value, comment in [
                ("OBJECT", self.object, "Target"), ("FILTER", self.filter, "Filter"),
                ("EXPTIME", self.exptime, "Exposure time [s]"),
                ("DATE-OBS", self.date_obs.isoformat(), "Start of the exposure (UTC)"),
                ("INSTRUME", self.chip.instrument, "Instrument"),
                ("CHIP", self.chip.name, "Chip"), ("BUNIT", "adu", "Pixel unit"),
                ("SKYLEVEL", self.background, "Median background [ADU]"),
                ("SKYRMS", self.background_rms, "Median background noise [ADU]"),
                ("SEEING", self.seeing, "Median stellar FWHM [arcsec]"),
                ("ASTRMS", self.astrometric_rms, "Astrometric rms [arcsec]"),
                ("ASTNREF", self.n_reference_stars, "Reference stars in the WCS fit"),
                ("MAGZP", self.zeropoint, "mag = -2.5 log10(ADU/s) + MAGZP"),
                ("MAGZPERR", self.zeropoint_error, "Zeropoint error [mag]")]:
            header[key] = (value, comment)
        fits.HDUList([fits.PrimaryHDU(result.science, header),
                      fits.ImageHDU(result.weight, name="WEIGHT"),
                      fits.ImageHDU(result.mask, name="MASK")]).writeto(path)
        return path

    def verify(self, path):
        pars = self.process_parameters
        self.quality_flags = self.flag_bits(
            astrometry=self.astrometric_rms > pars.max_astrometric_rms,
            few_stars=self.n_reference_stars < pars.min_reference_stars,
            photometry=self.zeropoint_error > pars.max_zeropoint_error)

    def images(self):
        """``(science, weight, mask)`` arrays of the file."""
        with fits.open(self.retrieve(), memmap=False) as hdul:
            return hdul[0].data, hdul["WEIGHT"].data, hdul["MASK"].data

    def wcs(self):
        """The solved `astropy.wcs.WCS`."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            return WCS(fits.getheader(self.retrieve()))

