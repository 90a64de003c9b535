"""The reduction steps of the imaging chain on arrays: what each product's ``make()``
computes once its inputs are fetched, and what a script without a database would run.

Images are float32 ADU, overscan-corrected and trimmed (`prepare`) unless said otherwise.
"""

import dataclasses
import warnings

import numpy as np
from astropy.wcs import WCS, FITSFixedWarning

from .astrometry import AstrometricSolution, measure_background, seeing_fwhm, solve_astrometry
from .ccd import (divide_flat, fits_section, normalise, saturated_pixels, subtract_bias,
                  subtract_overscan, trim, weight_map)
from .combine import MAD_TO_SIGMA, combine
from .cosmics import cosmic_rays
from .photometry import Zeropoint, aperture_correction, zeropoint_from_matches
from .pixelmaps import cold_pixels, hot_pixels

__all__ = ["MASK_BITS", "CalibratedImage", "calibrate_science", "cold_pixel_map",
           "hot_pixel_map", "master_bias", "master_flat", "prepare", "read_noise",
           "robust_sigma", "telescope_wcs"]

MASK_BITS = {"hot": 1, "cold": 2, "saturated": 4, "cosmic": 8, "no_flat": 16}
"""Bits of a calibrated image's mask: why a pixel carries no information (weight 0)."""


def robust_sigma(values):
    """1.4826 × the median absolute deviation: a standard deviation that outliers do
    not pull."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def prepare(raw, overscan, data):
    """A raw image (ADU) with the overscan (a FITS section, or '' for none) subtracted per
    row and trimmed to the ``data`` section, as float32: the first step of every
    reduction."""
    image = subtract_overscan(raw, fits_section(overscan)) if overscan else raw
    return trim(image, fits_section(data)).astype(np.float32)


def master_bias(images, *, method="mean", sigma=3.0):
    """The combined bias structure of prepared raw biases (sigma-clipped)."""
    return combine(images, method=method, clip="sigma", sigma_lower=sigma,
                   sigma_upper=sigma).data.astype(np.float32)


def read_noise(images, gain):
    """Read noise (e-) from pairs of prepared raw biases: the difference of two holds
    read noise only, so its robust scatter / sqrt(2)."""
    pairs = [robust_sigma(a - b) / np.sqrt(2) for a, b in zip(images[::2], images[1::2])]
    return float(np.median(pairs) * gain)


def hot_pixel_map(bias, darks=(), exptimes=(), *, sigma=6.0):
    """Hot pixels: from the dark current (prepared raw darks, de-biased, per second,
    median-combined) where there are darks, else from the master bias."""
    if len(darks):
        rates = [subtract_bias(d, bias) / max(t, 1e-3) for d, t in zip(darks, exptimes)]
        image = combine(rates, method="median", clip=None).data
    else:
        image = bias
    return hot_pixels(image, sigma=sigma)


def master_flat(images, bias, *, method="median", sigma=3.0):
    """The normalised combined flat of prepared raw flats: each de-biased and normalised
    to its median, combined with sigma clipping, normalised to 1 again."""
    flats = [normalise(subtract_bias(image, bias)) for image in images]
    combined = combine(flats, method=method, clip="sigma", sigma_lower=sigma,
                       sigma_upper=sigma)
    return normalise(combined.data).astype(np.float32)


def cold_pixel_map(flat, *, low=0.8, sigma=6.0):
    """Cold pixels of a master flat (see `targets.imaging.pixelmaps.cold_pixels`)."""
    return cold_pixels(flat, low=low, sigma=sigma)


@dataclasses.dataclass
class CalibratedImage:
    """What `calibrate_science` makes of one chip of a science exposure."""

    science: np.ndarray
    """Flat-fielded image (float32 ADU); 0 where masked."""
    weight: np.ndarray
    """Inverse variance (ADU⁻²); 0 where masked."""
    mask: np.ndarray
    """uint8 bits of `MASK_BITS`."""
    background: object
    """The `targets.imaging.astrometry.Background`."""
    astrometry: AstrometricSolution
    zeropoint: Zeropoint
    seeing: object
    """The `targets.imaging.astrometry.Seeing`."""


def calibrate_science(raw, *, overscan, data, bias, flat, hot, cold, saturation, gain,
                      read_noise, reference, wcs_guess, filter, exptime, cosmic_sigma=4.5,
                      detection_sigma=5.0, search_radius=60.0, aperture_min_snr=30.0):
    """Calibrate one chip of a science exposure and solve it.

    Parameters
    ----------
    raw : `numpy.ndarray`
        The raw image (ADU), overscan included.
    overscan, data : `str`
        Its overscan ('' for none) and data sections (FITS style).
    bias, flat : `numpy.ndarray`
        The master bias and the normalised master flat.
    hot, cold : `numpy.ndarray`
        Bad-pixel maps (nonzero = bad).
    saturation, gain, read_noise : `float`
        ADU, e-/ADU and e-.
    reference : `astropy.table.Table`
        Reference stars (``ra``, ``dec``, ``<filter>``, ``<filter>_error`` ...).
    wcs_guess : `astropy.wcs.WCS`
        The telescope's WCS, for the trimmed image's pixels.
    filter : `str`
        The reference catalogue's magnitude column to calibrate against.
    exptime : `float`
        Seconds.

    Raises
    ------
    targets.AstrometryError, targets.PhotometryError
        Raised if the exposure cannot be solved; the message says why.
    """
    image = prepare(raw, overscan, data)
    science = divide_flat(subtract_bias(image, bias), flat)
    mask = np.zeros(science.shape, np.uint8)
    mask[np.asarray(hot) != 0] |= MASK_BITS["hot"]
    mask[np.asarray(cold) != 0] |= MASK_BITS["cold"]
    mask[saturated_pixels(trim(raw, fits_section(data)), saturation)] |= MASK_BITS["saturated"]
    mask[~np.isfinite(science)] |= MASK_BITS["no_flat"]
    science = np.where(mask != 0, 0, science).astype(np.float32)
    background = measure_background(science, mask != 0)
    cosmics = cosmic_rays(science, gain=gain, read_noise=read_noise, sigma_clip=cosmic_sigma,
                          background=background.level, mask=mask != 0)
    mask[cosmics] |= MASK_BITS["cosmic"]
    bad = mask != 0
    science[bad] = 0
    weight = weight_map(science, flat=flat, gain=gain, read_noise=read_noise, mask=bad,
                        sky=background.level).astype(np.float32)
    solution = solve_astrometry(science, reference, wcs_guess, mask=bad, weight=weight,
                                background=background, saturation=saturation, gain=gain,
                                threshold=detection_sigma, search_radius=search_radius)
    correction = aperture_correction(science, solution.sources, mask=bad,
                                     background=background, min_snr=aperture_min_snr)
    zeropoint = zeropoint_from_matches(solution.sources, reference, _used_pairs(solution),
                                       mag_column=filter, exptime=exptime,
                                       aperture_correction=correction)
    return CalibratedImage(science, weight, mask, background, solution, zeropoint,
                           seeing_fwhm(solution.sources, solution.wcs))


def telescope_wcs(header, data):
    """The WCS of a raw header (the telescope's idea of the pointing), moved to the pixels
    of the image trimmed to the ``data`` section."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    if not wcs.has_celestial:
        raise ValueError("the raw header has no celestial WCS (CTYPE1/2, CRVAL, CRPIX, CD); "
                         "the astrometric solution starts from the telescope's: add it")
    rows, columns = fits_section(data)
    wcs.wcs.crpix -= [columns.start, rows.start]
    return wcs.celestial


def _used_pairs(solution):
    """The matches that survived the astrometric fit's outlier rejection."""
    keep = np.asarray(solution.used, bool)
    m = solution.matches
    return dataclasses.replace(m, source_index=np.asarray(m.source_index)[keep],
                               reference_index=np.asarray(m.reference_index)[keep],
                               separation=np.asarray(m.separation)[keep])
