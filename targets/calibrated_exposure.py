"""CalibratedExposure: one chip of a science exposure, calibrated and solved.

Overscan, trim, de-bias, flat-field; hot, cold, saturated and cosmic-ray pixels masked;
a weight map; the background; an astrometric solution against the reference catalogue;
a photometric zeropoint; image statistics and seeing. The file holds the science image
(primary HDU, with the solved WCS and the calibration in its header), ``WEIGHT``
(inverse variance, ADU⁻²) and ``MASK`` (the bits of `MASK_BITS`).
"""

import dataclasses
import datetime
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from persistence import persistent

from .calibration import (ColdPixelMap, HotPixelMap, MasterBias, MasterFlat,
                          overscan_corrected, robust_sigma)
from .dependency import dependency
from .imaging.astrometry import measure_background, seeing_fwhm, solve_astrometry
from .imaging.ccd import divide_flat, fits_section, saturated_pixels, subtract_bias, weight_map
from .imaging.cosmics import cosmic_rays
from .imaging.photometry import aperture_correction, zeropoint_from_matches
from .parameters import ProcessParameters
from .process import ProcessTarget
from .raw import Chip, RawScienceFrame
from .reference import ReferenceCatalogue

__all__ = ["MASK_BITS", "CalibratedExposure"]

MASK_BITS = {"hot": 1, "cold": 2, "saturated": 4, "cosmic": 8, "no_flat": 16}
"""Bits of the ``MASK`` extension: why a pixel carries no information (weight 0)."""


def _calibration(cls, **extra):
    """Selectors of the ``cls`` calibration for the raw frame being calibrated."""
    def selectors(s):
        raw = s["raw"]
        found = {"chip": raw.chip, "time": raw.date_obs}
        found.update({name: getattr(raw, name) for name in extra})
        return found
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
    CODE_VERSION = "1"
    QUALITY_ASTROMETRY, QUALITY_FEW_STARS, QUALITY_PHOTOMETRY = 1, 2, 4
    """Quality flag bits set by `verify`."""
    filename_prefix = "Cal"

    raw = dependency("The raw science frame", RawScienceFrame,
                     query=lambda s: RawScienceFrame.object_id == s["raw"].object_id)
    bias = dependency("Master bias of the night", MasterBias, selectors=_calibration(MasterBias))
    flat = dependency("Master flat of the night and filter", MasterFlat,
                      selectors=_calibration(MasterFlat, filter=True))
    hot = dependency("Hot pixels", HotPixelMap, selectors=_calibration(HotPixelMap))
    cold = dependency("Cold pixels", ColdPixelMap,
                      selectors=_calibration(ColdPixelMap, filter=True))
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
        image = overscan_corrected(raw)
        with fits.open(raw.retrieve(), memmap=False) as hdul:
            header = hdul[0].header
            trimmed_raw = hdul[0].data[fits_section(raw.data_section)]
        flat = fits.getdata(self.flat.retrieve())
        science = divide_flat(subtract_bias(image, fits.getdata(self.bias.retrieve())), flat)
        mask = np.zeros(science.shape, np.uint8)
        mask[fits.getdata(self.hot.retrieve()) != 0] |= MASK_BITS["hot"]
        mask[fits.getdata(self.cold.retrieve()) != 0] |= MASK_BITS["cold"]
        mask[saturated_pixels(trimmed_raw, raw.saturation)] |= MASK_BITS["saturated"]
        mask[~np.isfinite(science)] |= MASK_BITS["no_flat"]
        science = np.where(mask != 0, 0, science).astype(np.float32)
        background = measure_background(science, mask != 0)
        cosmics = cosmic_rays(science, gain=raw.gain, read_noise=raw.read_noise,
                              sigma_clip=pars.cosmic_sigma, background=background.level,
                              mask=mask != 0)
        mask[cosmics] |= MASK_BITS["cosmic"]
        bad = mask != 0
        science[bad] = 0
        weight = weight_map(science, flat=flat, gain=raw.gain, read_noise=raw.read_noise,
                            mask=bad, sky=background.level).astype(np.float32)

        reference = self.reference.table()
        solution = solve_astrometry(science, reference, _header_wcs(header, raw),
                                    mask=bad, weight=weight, background=background,
                                    saturation=raw.saturation, gain=raw.gain,
                                    threshold=pars.detection_sigma,
                                    search_radius=pars.search_radius)
        sources = solution.sources
        correction = aperture_correction(science, sources, mask=bad, background=background,
                                         min_snr=pars.aperture_min_snr)
        zp = zeropoint_from_matches(sources, reference, _used_pairs(solution),
                                    mag_column=raw.filter, exptime=raw.exptime,
                                    aperture_correction=correction)
        seeing = seeing_fwhm(sources, solution.wcs)

        ny, nx = science.shape
        centre = solution.wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
        self.ra, self.dec = float(centre[0]), float(centre[1])
        self.background = float(np.median(background.level))
        self.background_rms = float(np.median(background.rms))
        self.seeing = float(seeing.fwhm_arcsec)
        self.astrometric_rms, self.n_reference_stars = float(solution.rms), int(solution.n_stars)
        self.sip_degree = int(solution.sip_degree)
        self.zeropoint, self.zeropoint_error = float(zp.value), float(zp.error)
        self.n_zeropoint_stars = int(zp.n_stars)
        self.masked_fraction = float(bad.mean())
        return self._write(workdir / "calibrated.fits", science, weight, mask, solution.wcs)

    def _write(self, path, science, weight, mask, wcs):
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
        fits.HDUList([fits.PrimaryHDU(science, header),
                      fits.ImageHDU(weight, name="WEIGHT"),
                      fits.ImageHDU(mask, name="MASK")]).writeto(path)
        return path

    def verify(self, path):
        pars, flags = self.process_parameters, 0
        if self.astrometric_rms > pars.max_astrometric_rms:
            flags |= self.QUALITY_ASTROMETRY
        if self.n_reference_stars < pars.min_reference_stars:
            flags |= self.QUALITY_FEW_STARS
        if self.zeropoint_error > pars.max_zeropoint_error:
            flags |= self.QUALITY_PHOTOMETRY
        self.quality_flags = flags

    def images(self):
        """``(science, weight, mask)`` arrays of the file."""
        with fits.open(self.retrieve(), memmap=False) as hdul:
            return hdul[0].data, hdul["WEIGHT"].data, hdul["MASK"].data

    def wcs(self):
        """The solved `astropy.wcs.WCS`."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            return WCS(fits.getheader(self.retrieve()))


def _header_wcs(header, raw):
    """The telescope's WCS from the raw header, moved to the trimmed image's pixels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    if not wcs.has_celestial:
        raise ValueError(f"{raw.raw_file}[{raw.extension}] has no celestial WCS in its "
                         "header; the astrometric solution starts from the telescope's")
    rows, columns = fits_section(raw.data_section)
    wcs.wcs.crpix -= [columns.start, rows.start]
    return wcs.celestial


def _used_pairs(solution):
    """The matches that survived the astrometric fit's outlier rejection."""
    keep = np.asarray(solution.used, bool)
    m = solution.matches
    return dataclasses.replace(m, source_index=np.asarray(m.source_index)[keep],
                               reference_index=np.asarray(m.reference_index)[keep],
                               separation=np.asarray(m.separation)[keep])

