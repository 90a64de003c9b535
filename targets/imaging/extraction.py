"""A calibrated image's source catalogue: sep extraction with sky positions, calibrated
magnitudes and a star/galaxy indicator (what a `SourceList` holds).

Detection and the pixel measurements are `targets.imaging.astrometry.detect_sources`
(background-subtracted ``sep.extract``, SExtractor's filter and deblending, windowed
centroids with neighbours' pixels replaced by their mirror images, aperture and Kron
fluxes); this module adds what needs the astrometric and photometric solution.

Magnitudes are AB, above the atmosphere:

- ``mag`` / ``mag_err``: from the Kron ("auto") flux, for any source;
- ``mag_aper`` / ``mag_aper_err``: the aperture flux with the aperture correction
  measured on the image's bright stars, i.e. the total magnitude of a point source;
- ``flux`` / ``flux_err``: that aperture-corrected flux in microjansky (the light curve's
  unit: ``mag_aper = 23.9 - 2.5 log10(flux)``).
"""

import numpy as np
from astropy.table import Table

from ..errors import PhotometryError
from .astrometry import DEFAULT_KERNEL, detect_sources, measure_background, pixel_scale
from .photometry import aperture_correction

__all__ = ["FILTER_KERNELS", "extract_catalogue", "limiting_magnitude"]

FILTER_KERNELS = {
    "default": DEFAULT_KERNEL,
    "gauss_2.0_5x5": np.exp(-0.5 * (np.add.outer(np.arange(-2, 3) ** 2,
                                                 np.arange(-2, 3) ** 2)) / (2.0 / 2.3548) ** 2),
    "none": None,
}
"""Detection filters by name: SExtractor's ``default.conv`` (3x3 pyramid), a Gaussian
of FWHM 2 pixels on 5x5 (``gauss_2.0_5x5.conv``), or none."""

AB_MICROJANSKY = 23.9
"""The AB magnitude of 1 microjansky."""


def extract_catalogue(science, weight, mask, wcs, *, zeropoint, exptime, threshold=3.0,
                      minarea=5, deblend_nthresh=32, deblend_cont=0.005,
                      filter_kernel="default", gain=None, saturation=None):
    """Detect and measure the sources of a calibrated image.

    Parameters
    ----------
    science, weight, mask : `numpy.ndarray`
        The image (ADU, background included), its inverse variance and its mask
        (non-zero: bad), as a `CalibratedExposure` or `Coadd` file holds them.
    wcs : `astropy.wcs.WCS`
        The astrometric solution.
    zeropoint, exptime : `float`
        ``mag = -2.5 log10(ADU / exptime) + zeropoint``.
    threshold, minarea, deblend_nthresh, deblend_cont, filter_kernel
        Detection: sigma above the noise per pixel, minimum area in pixels, deblending
        thresholds and contrast, and the name of a filter in `FILTER_KERNELS`.
    gain, saturation : `float`, optional
        Electrons per ADU (source noise in the errors) and the saturation level.

    Returns
    -------
    sources : `astropy.table.Table`
        One row per source (see the module docstring for the magnitudes); ``meta``
        holds the aperture radius ``APERRAD`` (pixels), the aperture correction
        ``APCORR`` and its error ``APCORERR`` (mag) and the 5-sigma limiting magnitude
        ``MAGLIM``.
    """
    if filter_kernel not in FILTER_KERNELS:
        raise ValueError(f"unknown filter kernel {filter_kernel!r}; choose one of "
                         f"{', '.join(FILTER_KERNELS)}")
    bad = (np.asarray(mask) != 0) | ~(np.asarray(weight) > 0)
    background = measure_background(science, bad)
    found = detect_sources(science, bad, weight=weight, background=background,
                           threshold=threshold, minarea=minarea,
                           filter_kernel=FILTER_KERNELS[filter_kernel],
                           deblend_nthresh=deblend_nthresh, deblend_cont=deblend_cont,
                           saturation=saturation, gain=gain)
    radius = found.meta["aperture_radius"]
    try:
        correction = aperture_correction(science, found, mask=bad, background=background)
        apcorr, apcorr_error = correction.value, correction.error
    except PhotometryError:
        apcorr, apcorr_error = 0.0, 0.0  # too few bright stars: aperture magnitudes
    scale = pixel_scale(wcs)
    ra, dec = wcs.pixel_to_world_values(found["x"], found["y"])

    def magnitude(flux, error, correction=0.0):
        with np.errstate(divide="ignore", invalid="ignore"):
            positive = np.asarray(flux) > 0
            mag = np.where(positive, -2.5 * np.log10(np.where(positive, flux, 1) / exptime)
                           + zeropoint + correction, np.nan)
            return mag, np.where(positive, 1.0857362 * error / np.where(positive, flux, 1),
                                 np.nan)

    mag, mag_err = magnitude(found["flux_auto"], found["flux_auto_err"])
    mag_aper, mag_aper_err = magnitude(found["flux"], found["flux_err"], apcorr)
    to_microjansky = 10 ** (-0.4 * (zeropoint + apcorr - AB_MICROJANSKY)) / exptime

    psf_r50 = _point_source_radius(found)
    snr = np.asarray(found["snr"], float)
    extendedness = np.asarray(found["flux_radius"], float) / psf_r50 - 1.0
    # 1 for a point source, falling to 0 as the profile widens beyond the PSF by more
    # than its measurement error (which grows at low S/N).
    tolerance = 0.05 + 1.5 / np.maximum(snr, 1.0)
    class_star = np.exp(-0.5 * (np.maximum(extendedness, 0.0) / tolerance) ** 2)

    table = Table({
        "number": np.arange(1, len(found) + 1),
        "x": found["x"], "y": found["y"], "xy_err": found["xy_err"],
        "ra": np.asarray(ra) % 360.0, "dec": np.asarray(dec),
        "ra_err": found["xy_err"] * scale, "dec_err": found["xy_err"] * scale,
        "flux_aper": found["flux"], "flux_aper_err": found["flux_err"],
        "flux_auto": found["flux_auto"], "flux_auto_err": found["flux_auto_err"],
        "mag": mag, "mag_err": mag_err, "mag_aper": mag_aper, "mag_aper_err": mag_aper_err,
        "flux": found["flux"] * to_microjansky, "flux_err": found["flux_err"] * to_microjansky,
        "a": found["a"], "b": found["b"], "theta": found["theta"],
        "fwhm": found["fwhm"], "flux_radius": found["flux_radius"], "snr": snr,
        "flags": np.asarray(found["flag"], np.int64) | np.where(found["saturated"], 4, 0),
        "class_star": class_star,
    })
    table.meta.update(APERRAD=float(radius), APCORR=float(apcorr),
                      APCORERR=float(apcorr_error),
                      MAGLIM=limiting_magnitude(background.global_rms, radius,
                                                zeropoint + apcorr, exptime))
    return table


def _point_source_radius(sources):
    """The half-light radius of point sources: the median of bright, clean sources
    with a fitted FWHM (stars dominate those), else of all clean ones."""
    r50 = np.asarray(sources["flux_radius"], float)
    clean = (np.asarray(sources["flag"]) == 0) & ~np.asarray(sources["saturated"], bool)
    fitted = clean & np.isfinite(np.asarray(sources["fwhm"], float))
    pool = r50[fitted] if fitted.sum() >= 5 else r50[clean] if clean.any() else r50
    return float(np.median(pool))


def limiting_magnitude(noise, radius, zeropoint, exptime, snr=5.0):
    """The magnitude of a point source detected at ``snr`` in an aperture of ``radius``
    pixels on a background of ``noise`` ADU per pixel (its aperture-corrected total)."""
    return float(zeropoint - 2.5 * np.log10(snr * noise * np.sqrt(np.pi) * radius / exptime))
