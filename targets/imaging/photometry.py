"""Photometric calibration of an exposure: aperture correction and zeropoint.

Definition used throughout AWE: the zeropoint ``zp`` of an exposure is the magnitude of
a source giving one flux unit per second in total, so that

    mag = -2.5 log10(flux / exptime) + zp

where ``flux`` is the source's *total* flux in the image's unit (ADU for images in ADU,
electrons for images in electrons; the zeropoint is then "per ADU/s" or "per e-/s",
and the two differ by 2.5 log10(gain)) and ``exptime`` is in seconds. Aperture fluxes are
brought to total flux by an aperture correction (a magnitude, ≤ 0, added to the
aperture magnitude) measured on bright isolated stars of the same exposure. No
extinction or colour term is applied: the zeropoint is that of the exposure as observed.

Pure functions: numpy arrays and astropy tables in, small dataclasses out.
"""

from dataclasses import dataclass

import numpy as np
import sep
from astropy.stats import sigma_clip
from scipy.spatial import cKDTree

from ..errors import PhotometryError
from .astrometry import _as_sep_image, _error_column, measure_background

__all__ = [
    "ApertureCorrection",
    "PhotometryError",
    "Zeropoint",
    "aperture_correction",
    "instrumental_magnitude",
    "zeropoint",
    "zeropoint_from_matches",
]


@dataclass(frozen=True)
class ApertureCorrection:
    """Magnitude to add to aperture magnitudes to get total magnitudes."""

    value: float
    """Median of -2.5 log10(total / aperture flux) over the stars used; ≤ 0."""
    error: float
    """Error of that median, mag."""
    n_stars: int
    """Stars used."""
    radius: float
    """The aperture radius, pixels."""
    total_radius: float
    """The radius taken as total, pixels."""


@dataclass(frozen=True)
class Zeropoint:
    """A photometric zeropoint: mag = -2.5 log10(flux / exptime) + value."""

    value: float
    """The zeropoint, mag (magnitude of one flux unit per second)."""
    error: float
    """Its standard error, mag: the weighted mean's error, scaled up by the scatter when
    that exceeds the stated errors, plus the aperture correction's error in quadrature."""
    n_stars: int
    """Stars used after rejecting flagged ones and outliers."""
    rms: float
    """Scatter of the individual stars' zeropoints about the value, mag."""
    used: np.ndarray
    """Per input star, whether it is in the final mean."""


def instrumental_magnitude(flux, exptime):
    """-2.5 log10(flux / exptime); NaN where the flux is not positive."""
    flux = np.asarray(flux, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, -2.5 * np.log10(np.where(flux > 0, flux, 1.0) / exptime),
                        np.nan)


def aperture_correction(image, sources, *, mask=None, background=None, radius=None,
                        total_radius=None, min_snr=100.0, max_stars=200):
    """Measure the aperture correction from bright, clean, isolated stars.

    The flux within ``radius`` is compared with that within ``total_radius``; for a
    Moffat PSF with beta ≥ 2.5 six FWHM hold all but a few millimag of the light, and
    the default ``total_radius`` is three times the aperture radius of `detect_sources`
    (twice the FWHM), i.e. six FWHM.

    Parameters
    ----------
    image : `numpy.ndarray`
        The image the sources were detected on, background included.
    sources : `astropy.table.Table`
        From `~targets.imaging.astrometry.detect_sources`.
    mask : `numpy.ndarray`, optional
        True where pixels are bad.
    background : `~targets.imaging.astrometry.Background`, optional
        Measured when not given.
    radius : `float`, optional
        Aperture radius, pixels; by default ``sources.meta['aperture_radius']``.
    total_radius : `float`, optional
        Radius taken as total; by default three times ``radius``.
    min_snr : `float`
        Only stars with at least this S/N are used.
    max_stars : `int`
        Use at most this many of the brightest candidates.

    Returns
    -------
    correction : `ApertureCorrection`

    Raises
    ------
    PhotometryError
        Raised if fewer than 3 stars qualify.
    """
    if radius is None:
        radius = sources.meta.get("aperture_radius")
        if radius is None:
            raise ValueError("the sources carry no meta['aperture_radius']; pass radius")
    if total_radius is None:
        total_radius = 3.0 * radius
    data, bad = _as_sep_image(image, mask)
    if background is None:
        background = measure_background(data, bad)
    sub = data - background.level
    xy = np.column_stack([np.asarray(sources["x"], float), np.asarray(sources["y"], float)])
    neighbours = np.array([len(n) for n in cKDTree(xy).query_ball_point(
        xy, total_radius + radius)])
    ny, nx = sub.shape
    inside = ((xy[:, 0] > total_radius) & (xy[:, 0] < nx - 1 - total_radius)
              & (xy[:, 1] > total_radius) & (xy[:, 1] < ny - 1 - total_radius))
    ok = (_clean(sources) & (np.asarray(sources["snr"], float) >= min_snr)
          & (neighbours == 1) & inside)
    rows = np.flatnonzero(ok)[:max_stars]
    if len(rows) < 3:
        raise PhotometryError(
            f"only {len(rows)} isolated unsaturated stars with S/N >= {min_snr} are on the "
            f"image (need 3) to measure the aperture correction from {radius:.1f} to "
            f"{total_radius:.1f} px; lower min_snr or pass the correction explicitly")
    f_ap, _, flag_ap = sep.sum_circle(sub, xy[rows, 0], xy[rows, 1], radius, mask=bad,
                                      subpix=5)
    f_tot, _, flag_tot = sep.sum_circle(sub, xy[rows, 0], xy[rows, 1], total_radius,
                                        mask=bad, subpix=5)
    good = (flag_ap == 0) & (flag_tot == 0) & (f_ap > 0) & (f_tot > 0)
    values = -2.5 * np.log10(f_tot[good] / f_ap[good])
    if values.size < 3:
        raise PhotometryError(f"the aperture correction has only {values.size} clean stars "
                              "(need 3); lower min_snr or pass the correction explicitly")
    clipped = sigma_clip(values, sigma=3.0, maxiters=10)
    kept = np.asarray(clipped.data[~clipped.mask])
    median = float(np.median(kept))
    error = float(1.2533 * np.std(kept) / np.sqrt(kept.size)) if kept.size > 1 else 0.0
    return ApertureCorrection(value=median, error=error, n_stars=int(kept.size),
                              radius=float(radius), total_radius=float(total_radius))


def _clean(sources):
    """Sources fit for calibration: unflagged, unsaturated, no bad pixels."""
    ok = np.ones(len(sources), bool)
    if "flag" in sources.colnames:
        ok &= np.asarray(sources["flag"]) == 0
    for name in ("saturated", "masked"):
        if name in sources.colnames:
            ok &= ~np.asarray(sources[name], bool)
    return ok


def zeropoint(flux, ref_mag, ref_mag_err, *, exptime, flux_err=None, usable=None,
              aperture_correction=0.0, aperture_correction_error=0.0, clip=3.0,
              min_stars=5, error_floor=0.005):
    """The zeropoint from stars of known magnitude: mag = -2.5 log10(flux/exptime) + zp.

    Each star gives ``zp_i = ref_mag - (-2.5 log10(flux/exptime) + aperture_correction)``
    with error ``sqrt(ref_mag_err² + (1.0857 flux_err/flux)² + error_floor²)``. The
    zeropoint is their weighted mean after iterative ``clip``-sigma rejection about the
    median (which removes variable stars, blends and mismatches).

    Parameters
    ----------
    flux : array_like
        Measured fluxes (ADU or electrons; the zeropoint is per that unit per second).
    ref_mag, ref_mag_err : array_like
        Reference magnitudes and errors in the exposure's filter.
    exptime : `float`
        Exposure time, seconds.
    flux_err : array_like, optional
        Flux errors.
    usable : array_like of `bool`, optional
        False for stars to leave out (saturated, flagged); see `zeropoint_from_matches`.
    aperture_correction, aperture_correction_error : `float`
        Added to aperture magnitudes to make them total (see `aperture_correction`).
    clip : `float`
        Rejection threshold, in standard deviations.
    min_stars : `int`
        Fewest stars accepted.
    error_floor : `float`
        Added in quadrature to each star's error, mag.

    Returns
    -------
    zeropoint : `Zeropoint`

    Raises
    ------
    PhotometryError
        Raised if fewer than ``min_stars`` usable stars remain.
    """
    if exptime is None or not exptime > 0:
        raise ValueError(f"exptime must be a positive number of seconds, not {exptime!r}")
    flux = np.asarray(flux, float)
    ref_mag = np.asarray(ref_mag, float)
    ref_mag_err = np.asarray(ref_mag_err, float)
    flux_err = np.zeros_like(flux) if flux_err is None else np.asarray(flux_err, float)
    ok = np.ones(flux.shape, bool) if usable is None else np.asarray(usable, bool).copy()
    ok &= (flux > 0) & np.isfinite(flux) & np.isfinite(ref_mag)
    ok &= np.isfinite(flux_err) & np.isfinite(ref_mag_err)
    if ok.sum() < min_stars:
        raise PhotometryError(
            f"only {ok.sum()} of {flux.size} stars have a positive flux, a reference "
            f"magnitude and no flags (need {min_stars}); use a deeper reference catalogue "
            "or a longer exposure, or lower min_stars")
    zp_i = np.full(flux.shape, np.nan)
    zp_i[ok] = ref_mag[ok] - instrumental_magnitude(flux[ok], exptime) - aperture_correction
    err_i = np.sqrt(ref_mag_err ** 2 + (1.0857 * flux_err / np.where(ok, flux, 1.0)) ** 2
                    + error_floor ** 2)
    used = ok.copy()
    for _ in range(20):
        centre = np.median(zp_i[used])
        scatter = 1.4826 * np.median(np.abs(zp_i[used] - centre))
        # Reject on the larger of the robust scatter and each star's own error.
        limit = clip * np.maximum(scatter, err_i)
        new = ok & (np.abs(zp_i - centre) <= limit)
        if (new == used).all():
            break
        used = new
    n = int(used.sum())
    if n < min_stars:
        raise PhotometryError(
            f"only {n} stars remain after {clip}-sigma rejection (need {min_stars}); the "
            "stars' zeropoints scatter too much: check the matches and the filter's "
            "reference magnitudes")
    w = 1.0 / err_i[used] ** 2
    value = float(np.sum(w * zp_i[used]) / np.sum(w))
    formal = 1.0 / np.sqrt(np.sum(w))
    chi2_red = np.sum(w * (zp_i[used] - value) ** 2) / max(n - 1, 1)
    error = float(np.hypot(formal * np.sqrt(max(chi2_red, 1.0)), aperture_correction_error))
    rms = float(np.sqrt(np.mean((zp_i[used] - value) ** 2)))
    return Zeropoint(value=value, error=error, n_stars=n, rms=rms, used=used)


def zeropoint_from_matches(sources, reference, matches, *, mag_column, exptime,
                           mag_err_column=None, flux_column="flux", aperture_correction=None,
                           min_snr=10.0, **kwargs):
    """`zeropoint` of matched sources: picks their fluxes, the reference magnitudes in
    ``mag_column`` (errors in ``mag_err_column``, by default ``<mag_column>_error`` or
    ``<mag_column>_err``) and leaves
    out flagged, saturated, masked and low-S/N (< ``min_snr``) sources.

    ``aperture_correction`` is an `ApertureCorrection` (or a float in mag); it should be
    given for aperture fluxes, and left out for fluxes that are already total.
    ``matches`` is a `~targets.imaging.astrometry.Matches`, e.g. an astrometric
    solution's (take only ``solution.used`` pairs to skip astrometric outliers).
    """
    s_idx = np.asarray(matches.source_index)
    r_idx = np.asarray(matches.reference_index)
    mag_err_column = (mag_err_column or _error_column(reference, mag_column)
                      or mag_column + "_error")
    for name in (mag_column, mag_err_column):
        if name not in reference.colnames:
            raise ValueError(f"the reference catalogue has no column {name!r} (it has "
                             f"{reference.colnames}); name the filter's magnitude columns")
    usable = _clean(sources)[s_idx]
    if "snr" in sources.colnames:
        usable &= np.asarray(sources["snr"], float)[s_idx] >= min_snr
    ap, ap_err = 0.0, 0.0
    if isinstance(aperture_correction, ApertureCorrection):
        ap, ap_err = aperture_correction.value, aperture_correction.error
    elif aperture_correction is not None:
        ap = float(aperture_correction)
    flux_err_column = flux_column + "_err"
    return zeropoint(
        np.asarray(sources[flux_column], float)[s_idx],
        np.asarray(reference[mag_column], float)[r_idx],
        np.asarray(reference[mag_err_column], float)[r_idx], exptime=exptime,
        flux_err=(np.asarray(sources[flux_err_column], float)[s_idx]
                  if flux_err_column in sources.colnames else None),
        usable=usable, aperture_correction=ap, aperture_correction_error=ap_err, **kwargs)
