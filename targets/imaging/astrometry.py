"""Astrometric calibration of an exposure: background, source detection, seeing, matching
to a reference catalogue and the fit of a TAN (+SIP) WCS.

Everything here takes numpy arrays and astropy objects and returns new ones; inputs are
never modified. Pixel coordinates are 0-based (the centre of the first pixel is
``(0, 0)``, as in numpy, sep and ``WCS.pixel_to_world``); FITS ``CRPIX`` counts from 1.

The chain, which `solve_astrometry` runs in one call:

1. `measure_background` — sep's mesh background and noise.
2. `detect_sources` — `sep.extract` above the noise, windowed centroids, aperture and
   Kron photometry, and a Moffat FWHM for bright isolated stars.
3. `match_to_reference` — find the header WCS's pointing, rotation and scale error by
   voting on source–reference offsets, then pair stars by mutual nearest neighbour.
4. `fit_wcs` — weighted least squares of a TAN projection plus, where an F-test says the
   data need it, SIP polynomial distortion, with iterative outlier rejection.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import sep
from astropy import units as u
from astropy.stats import sigma_clipped_stats
from astropy.table import Table
from astropy.wcs import WCS, NoConvergence, Sip
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy import ndimage
from scipy.optimize import least_squares
from scipy.special import fdtrc
from scipy.spatial import cKDTree

from ..errors import AstrometryError

__all__ = [
    "AstrometricSolution",
    "AstrometryError",
    "Background",
    "Matches",
    "Seeing",
    "detect_sources",
    "fit_wcs",
    "match_to_reference",
    "measure_background",
    "pixel_scale",
    "seeing_fwhm",
    "solve_astrometry",
]

DEFAULT_KERNEL = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
"""SExtractor's ``default.conv``: a 3x3 pyramid, the detection filter of both."""

_SEP_MASKED = 0x20 | 0x40
"""sep's aperture flags APER_HASMASKED and APER_ALLMASKED."""


# --------------------------------------------------------------------------- background


@dataclass(frozen=True)
class Background:
    """The sky under an image, as sep's mesh interpolation measures it."""

    level: np.ndarray
    """Background per pixel, in the image's units."""
    rms: np.ndarray
    """Background noise per pixel, in the image's units."""
    global_level: float
    """Mean of the mesh background."""
    global_rms: float
    """Mean of the mesh noise."""


def _as_sep_image(image, mask=None, weight=None):
    """Return a native-endian, C-contiguous float64 copy of ``image`` and the mask sep
    should use (``mask``, non-finite pixels and zero weights), as a bool array.

    sep refuses big-endian (FITS) and non-contiguous arrays; non-finite values would
    poison its sums, so they are masked and set to 0 in the copy.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"the image must be 2-D, not of shape {image.shape}")
    data = np.array(image, dtype=np.float64, order="C", copy=True)
    bad = ~np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != data.shape:
            raise ValueError(f"the mask's shape {mask.shape} differs from the image's "
                             f"{data.shape}; pass the mask of this image")
        bad |= mask.astype(bool)
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape != data.shape:
            raise ValueError(f"the weight map's shape {weight.shape} differs from the "
                             f"image's {data.shape}; pass the weight map of this image")
        bad |= ~(weight > 0)  # also catches NaN
    data[bad] = 0.0
    return data, np.ascontiguousarray(bad)


def measure_background(image, mask=None, *, box_size=64, filter_size=3):
    """Measure the sky background and its noise with `sep.Background`.

    Parameters
    ----------
    image : `numpy.ndarray`
        2-D image, any float or int dtype and byte order.
    mask : `numpy.ndarray`, optional
        True (non-zero) where pixels are bad; non-finite pixels are masked too.
    box_size : `int`
        Mesh size in pixels: several times the largest star, smaller than the scale on
        which the sky varies.
    filter_size : `int`
        Median filter over meshes, which removes meshes spoiled by bright stars.

    Returns
    -------
    background : `Background`
    """
    data, bad = _as_sep_image(image, mask)
    bkg = sep.Background(data, mask=bad, bw=box_size, bh=box_size, fw=filter_size,
                         fh=filter_size)
    return Background(level=bkg.back(), rms=bkg.rms(), global_level=float(bkg.globalback),
                      global_rms=float(bkg.globalrms))


# ---------------------------------------------------------------------------- detection


def _moffat_model(params, dx, dy):
    """A circular Moffat averaged over each pixel's sub-pixel samples (last axis), plus
    a constant; ``dx``, ``dy`` are sample offsets from the stamp's centre pixel."""
    amplitude, x0, y0, alpha, beta, const = params
    r2 = (dx - x0) ** 2 + (dy - y0) ** 2
    return amplitude * np.mean((1.0 + r2 / alpha ** 2) ** -beta, axis=-1) + const


def _fit_moffat_fwhm(data, bad, x, y, half_size, oversample=3):
    """FWHM (pixels) of a pixel-integrated circular Moffat fitted to each star; NaN where
    the stamp leaves the image, holds masked pixels or the fit fails."""
    ny, nx = data.shape
    offsets = np.arange(-half_size, half_size + 1)
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    n = offsets.size
    full = (n, n, oversample, oversample)
    dx = np.broadcast_to(offsets[None, :, None, None] + sub[None, None, :, None],
                         full).reshape(n, n, -1)
    dy = np.broadcast_to(offsets[:, None, None, None] + sub[None, None, None, :],
                         full).reshape(n, n, -1)
    fwhm = np.full(len(x), np.nan)
    for k, (xk, yk) in enumerate(zip(x, y)):
        cx, cy = int(round(xk)), int(round(yk))
        if not (half_size <= cx < nx - half_size and half_size <= cy < ny - half_size):
            continue
        window = (slice(cy - half_size, cy + half_size + 1),
                  slice(cx - half_size, cx + half_size + 1))
        if bad[window].any():
            continue
        stamp = data[window]
        peak = stamp.max()
        if not peak > 0:
            continue
        p0 = [peak * 1.2, xk - cx, yk - cy, half_size / 3.0, 3.0, 0.0]
        lower = [0.0, -1.5, -1.5, 0.3, 1.1, -np.inf]
        upper = [np.inf, 1.5, 1.5, 3.0 * half_size, 30.0, np.inf]
        try:
            fit = least_squares(lambda p: (_moffat_model(p, dx, dy) - stamp).ravel(), p0,
                                bounds=(lower, upper), x_scale=[peak, 0.1, 0.1, 0.3, 1, 1],
                                xtol=1e-6)
        except ValueError:
            continue
        _, _, _, alpha, beta, _ = fit.x
        if fit.success:
            fwhm[k] = 2.0 * alpha * np.sqrt(2.0 ** (1.0 / beta) - 1.0)
    return fwhm


def _extract(data, threshold, **kwargs):
    """`sep.extract`, growing its pixel stack and sub-object limit when a crowded image
    overflows them, instead of failing. (sep counts a pixel again for each deblending
    level it is in, so the stack may need more entries than the image has pixels.)"""
    while True:
        try:
            return sep.extract(data, threshold, **kwargs)
        except Exception as err:
            message = str(err)
            if "pixel buffer full" in message and sep.get_extract_pixstack() < 8 * data.size:
                sep.set_extract_pixstack(min(4 * sep.get_extract_pixstack(), 8 * data.size))
            elif "deblending overflow" in message and sep.get_sub_object_limit() < 65536:
                sep.set_sub_object_limit(4 * sep.get_sub_object_limit())
            else:
                raise


def _interpolated(sub, bad, reach=2):
    """The image to detect on: masked pixels within ``reach`` pixels of good ones take
    the nearest good pixel's value, as SExtractor's ``INTERP_TYPE`` does, so that a bad
    column or a cosmic ray through a star does not split it in two. Returns the image
    and the pixels still masked (the inside of wide masked areas)."""
    if not bad.any():
        return sub, bad
    distance, (rows, columns) = ndimage.distance_transform_edt(bad, return_indices=True)
    filled = sub[rows, columns]
    return filled, np.ascontiguousarray(distance > reach)


def _measure(sub, bad, err, gain, objects):
    """Kron flux, half-light radius and windowed centroid of ``objects`` on the
    background-subtracted image ``sub``: a dict of arrays."""
    x_iso, y_iso = objects["x"], objects["y"]
    # sep computes theta in single precision: a source along the y axis gets float32's
    # pi/2, a hair above the double's, which sep's own aperture functions then refuse.
    a, b, theta = objects["a"], objects["b"], np.clip(objects["theta"], -np.pi / 2, np.pi / 2)
    # Kron ("auto") flux, with a minimum circular aperture as in SExtractor.
    kron, _ = sep.kron_radius(sub, x_iso, y_iso, a, b, theta, 6.0, mask=bad)
    kron = np.where(np.isfinite(kron) & (kron > 0), kron, 2.5)
    flux_auto, flux_auto_err, _ = sep.sum_ellipse(
        sub, x_iso, y_iso, a, b, theta, 2.5 * kron, err=err, mask=bad, gain=gain, subpix=1)
    small = kron * np.sqrt(a * b) < 1.75
    if small.any():
        flux_auto[small], flux_auto_err[small], _ = sep.sum_circle(
            sub, x_iso[small], y_iso[small], 1.75, err=err, mask=bad, gain=gain, subpix=1)
    r50, _ = sep.flux_radius(sub, x_iso, y_iso, 6.0 * a, 0.5,
                             normflux=np.where(flux_auto > 0, flux_auto, objects["flux"]),
                             mask=bad, subpix=5)
    r50 = np.where(np.isfinite(r50) & (r50 > 0), r50, np.sqrt(a * b))
    # Windowed centroids (SExtractor's XWIN_IMAGE); where winpos fails or wanders off,
    # keep the isophotal one. Masked pixels in the window (flag 0x20) are not a failure.
    xwin, ywin, win_flag = sep.winpos(sub, x_iso, y_iso, 2.0 / 2.35 * r50, mask=bad)
    failed = ((win_flag & ~0x20) != 0) | ~np.isfinite(xwin) | (
        np.hypot(xwin - x_iso, ywin - y_iso) > 2)
    return {"flux_auto": flux_auto, "flux_auto_err": flux_auto_err,
            "r50": r50, "xwin": np.where(failed, x_iso, xwin),
            "ywin": np.where(failed, y_iso, ywin), "failed": failed}


def _without_neighbours(sub, bad, err, segmap, segment_id, obj):
    """A cutout around ``obj`` in which its neighbours' pixels are replaced by their
    mirror images through its centre (or masked where the mirror is another object's
    too), as SExtractor's ``MASK_TYPE CORRECT`` does; None if no neighbour is near.

    Returns ``((x0, y0), (sub, bad, err))``: the cutout's origin and its arrays.
    """
    radius = int(np.ceil(np.clip(15.0 * obj["a"], 8.0, 50.0)))
    x, y = int(round(float(obj["x"]))), int(round(float(obj["y"])))
    ny, nx = sub.shape
    y0, y1, x0, x1 = max(y - radius, 0), min(y + radius + 1, ny), max(x - radius, 0), \
        min(x + radius + 1, nx)
    seg = segmap[y0:y1, x0:x1]
    others = (seg != 0) & (seg != segment_id)
    if not others.any():
        return None
    cut, cut_bad = sub[y0:y1, x0:x1].copy(), bad[y0:y1, x0:x1].copy()
    yy, xx = np.nonzero(others)
    my, mx = 2 * (y - y0) - yy, 2 * (x - x0) - xx
    inside = (my >= 0) & (my < seg.shape[0]) & (mx >= 0) & (mx < seg.shape[1])
    usable = np.zeros(yy.size, bool)
    usable[inside] = ~others[my[inside], mx[inside]] & ~cut_bad[my[inside], mx[inside]]
    cut[yy[usable], xx[usable]] = cut[my[usable], mx[usable]]
    cut[yy[~usable], xx[~usable]] = 0.0
    cut_bad[yy[~usable], xx[~usable]] = True
    return (x0, y0), (cut, cut_bad, np.ascontiguousarray(err[y0:y1, x0:x1]))


def detect_sources(image, mask=None, *, weight=None, background=None, threshold=5.0,
                   minarea=5, filter_kernel=DEFAULT_KERNEL, deblend_nthresh=32,
                   deblend_cont=0.005, saturation=None, gain=None, aperture_radius=None,
                   max_psf_stars=150):
    """Detect sources with sep and measure their positions, shapes, fluxes and FWHM.

    Parameters
    ----------
    image : `numpy.ndarray`
        Flat-fielded 2-D image including its background (ADU or electrons).
    mask : `numpy.ndarray`, optional
        True where pixels are bad; they are neither detected nor summed.
    weight : `numpy.ndarray`, optional
        Inverse variance per pixel; when given it is the detection noise (zero weight
        masks the pixel), otherwise the background's rms is.
    background : `Background`, optional
        The image's background; measured with `measure_background` when not given.
    threshold : `float`
        Detection threshold in units of the noise per pixel (after sep's default 3×3
        matched filter).
    minarea : `int`
        Minimum number of pixels above the threshold.
    filter_kernel : `numpy.ndarray` or None
        The kernel the image is convolved with before thresholding (SExtractor's
        ``FILTER_NAME``); None for none. The default is SExtractor's ``default.conv``.
    deblend_nthresh, deblend_cont : `int`, `float`
        Deblending: thresholds between the detection level and the peak, and the
        fraction of the flux a branch needs to become an object of its own
        (SExtractor's ``DEBLEND_NTHRESH`` and ``DEBLEND_MINCONT``).
    saturation : `float`, optional
        Level (image units, background included) at which pixels saturate; sources whose
        peak reaches 95% of it are marked ``saturated``.
    gain : `float`, optional
        Electrons per image unit, adds the sources' Poisson noise to flux errors.
    aperture_radius : `float`, optional
        Radius in pixels of the ``flux`` aperture; by default twice the median FWHM,
        which holds ~95% of a Moffat star's light (see
        `targets.imaging.photometry.aperture_correction`).
    max_psf_stars : `int`
        How many of the brightest clean, isolated sources get a Moffat fit for ``fwhm``.

    Returns
    -------
    sources : `astropy.table.Table`
        One row per source, brightest first, with ``x``, ``y`` (windowed centroid,
        0-based pixels), ``xy_err`` (approximate centroid error per axis, pixels),
        ``x_iso``, ``y_iso`` (isophotal centroid), ``a``, ``b``, ``theta`` (isophotal
        shape; pixels, radians), ``peak`` (above background), ``flux``, ``flux_err``
        (circular aperture), ``flux_auto``, ``flux_auto_err`` (Kron), ``flux_radius``
        (half-light radius), ``fwhm`` (Moffat FWHM in pixels, NaN when not fitted),
        ``snr``, ``flag`` (sep's flags), ``saturated``, ``masked`` (aperture holds bad
        pixels). ``meta['aperture_radius']`` is the aperture used.

    Raises
    ------
    AstrometryError
        Raised if nothing is detected.
    """
    data, bad = _as_sep_image(image, mask, weight)
    if background is None:
        background = measure_background(data, bad)
    sub = data - background.level
    sub[bad] = 0.0
    if weight is not None:
        with np.errstate(divide="ignore"):
            err = np.where(bad, background.rms, 1.0 / np.sqrt(np.asarray(weight, float)))
    else:
        err = background.rms
    err = np.ascontiguousarray(err, dtype=np.float64)

    detection, unfilled = _interpolated(sub, bad)
    objects, segmap = _extract(detection, threshold, err=err, mask=unfilled, minarea=minarea,
                               filter_kernel=filter_kernel, filter_type="conv",
                               deblend_nthresh=deblend_nthresh, deblend_cont=deblend_cont,
                               segmentation_map=True)
    if len(objects) == 0:
        raise AstrometryError(
            f"no sources above {threshold} sigma in the {data.shape[1]}x{data.shape[0]} "
            "image; check that it is exposed and flat-fielded, or lower the threshold")
    order = np.argsort(-objects["flux"])
    objects, segment_ids = objects[order], order + 1
    x_iso, y_iso = objects["x"], objects["y"]
    a, b, theta = objects["a"], objects["b"], objects["theta"]
    measured = _measure(sub, bad, err, gain, objects)
    for i in range(len(objects)):
        cutout = _without_neighbours(sub, bad, err, segmap, segment_ids[i], objects[i])
        if cutout is not None:
            (x0, y0), parts = cutout
            one = objects[i:i + 1].copy()
            one["x"] -= x0
            one["y"] -= y0
            again = _measure(*parts, gain, one)
            again["xwin"] += x0
            again["ywin"] += y0
            for name, values in again.items():
                measured[name][i] = values[0]
    flux_auto, flux_auto_err, r50, xwin, ywin, failed = (
        measured[name] for name in ("flux_auto", "flux_auto_err", "r50", "xwin", "ywin",
                                    "failed"))

    snr = np.where(flux_auto_err > 0, flux_auto / np.where(flux_auto_err > 0,
                                                            flux_auto_err, 1), 0.0)
    peak = objects["peak"]
    local_bkg = background.level[np.clip(np.rint(y_iso).astype(int), 0, data.shape[0] - 1),
                                 np.clip(np.rint(x_iso).astype(int), 0, data.shape[1] - 1)]
    saturated = np.zeros(len(objects), bool)
    if saturation is not None:
        # Saturated cores are often masked, so look at the input pixels near the centre.
        raw = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=-np.inf)
        near = ndimage.maximum_filter(raw >= 0.95 * saturation, size=5)
        saturated = (peak + local_bkg >= 0.95 * saturation) | near[
            np.clip(np.rint(y_iso).astype(int), 0, data.shape[0] - 1),
            np.clip(np.rint(x_iso).astype(int), 0, data.shape[1] - 1)]

    # FWHM from a Moffat fit to bright, clean, isolated sources.
    fwhm = np.full(len(objects), np.nan)
    tree = cKDTree(np.column_stack([xwin, ywin]))
    bright = (objects["flag"] == 0) & (snr > 20) & np.isfinite(r50)
    size = 2.0 * float(np.median(r50[bright] if bright.any() else r50[np.isfinite(r50)]
                                 if np.isfinite(r50).any() else [1.0]))
    half_size = int(np.clip(np.ceil(2.0 * size), 4, 25))
    n_near = np.array([len(n) for n in tree.query_ball_point(np.column_stack([xwin, ywin]),
                                                             2.5 * half_size)])
    candidates = np.flatnonzero((objects["flag"] == 0) & ~saturated & (snr > 30)
                                & (n_near == 1) & ~failed)[:max_psf_stars]
    fwhm[candidates] = _fit_moffat_fwhm(sub, bad, xwin[candidates], ywin[candidates],
                                        half_size)

    if aperture_radius is None:
        typical = np.nanmedian(fwhm) if np.isfinite(fwhm).any() else 1.18 * size
        aperture_radius = 2.0 * typical
    flux, flux_err, aper_flag = sep.sum_circle(sub, xwin, ywin, aperture_radius, err=err,
                                               mask=bad, gain=gain, subpix=5)
    masked = (aper_flag & _SEP_MASKED) != 0
    # Centroid error per axis: the PSF's sigma over S/N, a fair approximation both for
    # source- and for background-limited stars.
    sigma_psf = np.where(np.isfinite(fwhm), fwhm, 1.18 * r50) / 2.3548
    xy_err = np.sqrt(2.0) * sigma_psf / np.maximum(snr, 1.0)

    sources = Table({
        "x": xwin, "y": ywin, "xy_err": xy_err, "x_iso": x_iso, "y_iso": y_iso,
        "a": a, "b": b, "theta": theta, "peak": peak, "flux": flux, "flux_err": flux_err,
        "flux_auto": flux_auto, "flux_auto_err": flux_auto_err, "flux_radius": r50,
        "fwhm": fwhm, "snr": snr, "flag": objects["flag"] | aper_flag,
        "saturated": saturated,
        "masked": masked,
    })
    sources.meta["aperture_radius"] = float(aperture_radius)
    return sources


# ------------------------------------------------------------------------------- seeing


@dataclass(frozen=True)
class Seeing:
    """The typical FWHM of point sources on an exposure."""

    fwhm: float
    """Median FWHM in pixels."""
    fwhm_arcsec: float | None
    """The same in arcsec, when a WCS was given."""
    scatter: float
    """Robust standard deviation of the stars' FWHM, pixels."""
    n_stars: int
    """Number of stars the median is over."""


def pixel_scale(wcs):
    """Mean pixel scale of ``wcs`` in arcsec per pixel (at the reference point)."""
    return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)


def seeing_fwhm(sources, wcs=None, *, min_stars=5):
    """Robust median FWHM of the clean, unsaturated point sources in ``sources``.

    Uses the ``fwhm`` column of `detect_sources`; galaxies, blends and cosmic rays are
    removed by 3-sigma clipping around the median.

    Raises
    ------
    AstrometryError
        Raised if fewer than ``min_stars`` sources have a fitted FWHM.
    """
    usable = (np.isfinite(sources["fwhm"]) & (sources["flag"] == 0) & ~sources["saturated"]
              & ~sources["masked"])
    values = np.asarray(sources["fwhm"][usable], float)
    if values.size < min_stars:
        raise AstrometryError(
            f"only {values.size} sources have a measured FWHM (need {min_stars}); the "
            "exposure has too few bright isolated stars: lower detect_sources' threshold "
            "or measure seeing on a longer exposure")
    _, median, std = sigma_clipped_stats(values, sigma=3.0, maxiters=10)
    kept = np.abs(values - median) <= 3.0 * max(std, 1e-6)
    arcsec = None if wcs is None else float(median) * pixel_scale(wcs)
    return Seeing(fwhm=float(median), fwhm_arcsec=arcsec, scatter=float(std),
                  n_stars=int(kept.sum()))


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Matches:
    """Pairs of a detected source and a reference star."""

    source_index: np.ndarray
    """Row of each pair in the source table."""
    reference_index: np.ndarray
    """Row of each pair in the reference catalogue."""
    separation: np.ndarray
    """Distance in pixels after the fitted transform (header WCS → image)."""
    shift: tuple = (0.0, 0.0)
    """Offset (x, y) in pixels of the image from where the header WCS puts the field."""
    rotation: float = 0.0
    """Rotation in degrees of the image relative to the header WCS."""
    scale: float = 1.0
    """Ratio of the image's scale (pixels per arcsec) to the header's."""

    def __len__(self):
        return len(self.source_index)


def pixels_near_image(wcs, ra, dec, shape, margin):
    """Pixel positions (an N x 2 array of x, y) of the sky positions within ``margin``
    pixels of an image of ``shape``, NaN for the others.

    A distortion (SIP) polynomial is fitted on the image and diverges far from it, where
    inverting it fails; so only the positions the linear projection puts near the image
    go through it, and any it still cannot invert are NaN.
    """
    ra, dec = np.atleast_1d(np.asarray(ra, float)), np.atleast_1d(np.asarray(dec, float))
    ny, nx = shape
    xy = np.full((ra.size, 2), np.nan)
    with np.errstate(invalid="ignore"):
        linear = wcs.wcs_world2pix(np.column_stack([ra, dec]), 0)
    near = (np.isfinite(linear).all(axis=1) & (linear[:, 0] > -margin)
            & (linear[:, 0] < nx + margin) & (linear[:, 1] > -margin)
            & (linear[:, 1] < ny + margin))
    if near.any():
        try:
            with np.errstate(invalid="ignore"):
                xy[near] = wcs.all_world2pix(np.column_stack([ra[near], dec[near]]), 0)
        except NoConvergence as err:
            found = np.array(err.best_solution, dtype=float).reshape(-1, 2)
            for failed in (err.divergent, err.slow_conv):
                if failed is not None:
                    found[np.asarray(failed, int)] = np.nan
            xy[near] = found
    return xy


def _reference_radec(reference, ra_column="ra", dec_column="dec"):
    """Reference positions in degrees, honouring the columns' units when they have any."""
    for name in (ra_column, dec_column):
        if name not in reference.colnames:
            raise ValueError(f"the reference catalogue has no column {name!r} (it has "
                             f"{reference.colnames}); name the columns with ra_column and "
                             "dec_column")
    out = []
    for name in (ra_column, dec_column):
        col = reference[name]
        out.append(np.asarray(col.quantity.to_value(u.deg) if col.unit is not None else col,
                              float))
    return out


def _reference_errors(reference, ra_column="ra", dec_column="dec"):
    """Per-axis reference position errors in arcsec; 0 where the catalogue gives none.

    The error columns are ``<ra_column>_error`` and ``<dec_column>_error`` (the
    `targets.reference` convention; ``_err`` is accepted too), in their unit if they
    have one, in arcsec otherwise.
    """
    errs = []
    for base in (ra_column, dec_column):
        name = _error_column(reference, base)
        if name is None:
            errs.append(np.zeros(len(reference)))
            continue
        col = reference[name]
        errs.append(np.asarray(col.quantity.to_value(u.arcsec) if col.unit is not None
                               else col, float))
    return np.nan_to_num(np.hypot(*errs) / np.sqrt(2.0), nan=0.0)


def _error_column(table, column):
    """The name of ``column``'s error column in ``table`` (``_error`` or ``_err``), or None."""
    for suffix in ("_error", "_err"):
        if column + suffix in table.colnames:
            return column + suffix
    return None


def _source_xy(sources):
    return np.column_stack([np.asarray(sources["x"], float), np.asarray(sources["y"], float)])


def _usable_sources(sources):
    """Sources fit to pin down the astrometry: finite, unsaturated, no bad pixels."""
    usable = np.isfinite(np.asarray(sources["x"], float)) & np.isfinite(
        np.asarray(sources["y"], float))
    for name in ("saturated", "masked"):
        if name in sources.colnames:
            usable &= ~np.asarray(sources[name], bool)
    return usable


def _poly_terms(u_, v_, degree):
    """Design matrix of all monomials u^p v^q, p + q <= degree, and their (p, q)."""
    powers = [(p, d - p) for d in range(degree + 1) for p in range(d, -1, -1)]
    return np.column_stack([u_ ** p * v_ ** q for p, q in powers]), powers


def _fit_transform(ref_xy, src_xy, centre, degree):
    """Least-squares polynomial map reference pixel → source pixel, and its predictions."""
    scale = max(np.abs(ref_xy - centre).max(), 1.0)
    a, _ = _poly_terms(*((ref_xy - centre) / scale).T, degree)
    coef, *_ = np.linalg.lstsq(a, src_xy, rcond=None)
    return lambda xy: _poly_terms(*((xy - centre) / scale).T, degree)[0] @ coef


def _mutual_nearest(src_xy, pred_xy, radius):
    """Index pairs (source, reference) that are each other's nearest within ``radius``."""
    if len(src_xy) == 0 or len(pred_xy) == 0:
        return np.array([], int), np.array([], int), np.array([])
    d_rs, i_rs = cKDTree(src_xy).query(pred_xy, distance_upper_bound=radius)
    d_sr, i_sr = cKDTree(pred_xy).query(src_xy, distance_upper_bound=radius)
    ref = np.flatnonzero(np.isfinite(d_rs))
    src = i_rs[ref]
    mutual = i_sr[src] == ref
    return src[mutual], ref[mutual], d_rs[ref][mutual]


def match_to_reference(sources, reference, wcs_guess, *, search_radius=60.0,
                       match_radius=1.0, max_rotation=1.0, max_scale=0.01, min_matches=10,
                       max_sources=2000, shape=None, ra_column="ra", dec_column="dec"):
    """Pair detected sources with reference stars although the header WCS is off.

    The header's pointing error is found first: every source–reference pair closer than
    ``search_radius`` votes for its offset in a 2-D histogram, for a grid of trial
    rotations and scales; the true offset piles up in one cell while chance pairs spread
    evenly. The winning offset, rotation and scale seed an iterative polynomial fit
    (affine, then quadratic when there are enough pairs, which absorbs moderate field
    distortion) of reference to source pixels; finally sources and reference stars that
    are each other's nearest neighbour within ``match_radius`` (or 4 times the fit's
    rms, if larger) are paired.

    Parameters
    ----------
    sources : `astropy.table.Table`
        Needs ``x``, ``y`` (0-based pixels); brighter first (as `detect_sources` sorts
        them) if there are more than ``max_sources``.
    reference : `astropy.table.Table`
        Needs ``ra``, ``dec`` (degrees unless the columns carry units).
    wcs_guess : `astropy.wcs.WCS`
        The header WCS.
    search_radius : `float`
        Largest pointing error to look for, arcsec.
    match_radius : `float`
        Final pairing radius, arcsec.
    max_rotation, max_scale : `float`
        Largest rotation (degrees) and relative scale error of the header WCS to look for.
    min_matches : `int`
        Fewest pairs accepted as a solution.
    max_sources : `int`
        Use at most this many (the first) sources for the search.
    shape : `tuple`, optional
        Image shape ``(ny, nx)``; by default ``wcs_guess.array_shape``, or the extent of
        the sources.

    Returns
    -------
    matches : `Matches`

    Raises
    ------
    AstrometryError
        Raised if no offset stands out above chance coincidences or fewer than
        ``min_matches`` pairs are found; the message suggests what to check.
    """
    ref_ra, ref_dec = _reference_radec(reference, ra_column, dec_column)
    src_all = _source_xy(sources)
    src_rows = np.flatnonzero(_usable_sources(sources))[:max_sources]
    src_xy = src_all[src_rows]
    scale_px = pixel_scale(wcs_guess)
    if shape is None:
        shape = wcs_guess.array_shape
    if shape is None:
        shape = (src_all[:, 1].max() + 1, src_all[:, 0].max() + 1)
    ny, nx = shape
    centre = np.array([(nx - 1) / 2.0, (ny - 1) / 2.0])
    radius = search_radius / scale_px

    margin = radius + 2.0 * max_rotation * np.pi / 180 * np.hypot(nx, ny)
    ref_all = pixels_near_image(wcs_guess, ref_ra, ref_dec, (ny, nx), margin)
    inside = (np.isfinite(ref_all).all(axis=1) & (ref_all[:, 0] > -margin)
              & (ref_all[:, 0] < nx + margin) & (ref_all[:, 1] > -margin)
              & (ref_all[:, 1] < ny + margin))
    ref_rows = np.flatnonzero(inside)
    ref_xy = ref_all[ref_rows]
    where = (f"header WCS pointing RA, Dec = {wcs_guess.wcs.crval[0]:.5f}, "
             f"{wcs_guess.wcs.crval[1]:.5f} deg")
    if len(src_xy) < min_matches or len(ref_xy) < min_matches:
        raise AstrometryError(
            f"{len(src_xy)} usable sources and {len(ref_xy)} reference stars near the field "
            f"({where}); at least {min_matches} of each are needed: check that the "
            "reference catalogue covers this field and that sources were detected")

    pairs = cKDTree(ref_xy).sparse_distance_matrix(cKDTree(src_xy), radius,
                                                   output_type="ndarray")
    if len(pairs) < min_matches:
        raise AstrometryError(
            f"only {len(pairs)} source-reference pairs lie within {search_radius}\" of each "
            f"other ({where}); the header WCS is further off than search_radius or the "
            "reference catalogue is of another field: check the catalogue or increase "
            "search_radius")
    i_ref, i_src = pairs["i"], pairs["j"]
    rel = ref_xy[i_ref] - centre
    offset = src_xy[i_src] - ref_xy[i_ref]
    rmax = max(np.abs(rel).max(), 1.0) * np.sqrt(2.0)
    cell = max(2.0, match_radius / scale_px)
    step = cell / rmax  # smear at the field's edge at most half a cell per axis
    rotations = np.arange(-max_rotation, max_rotation + 1e-9,
                          np.degrees(step)) if max_rotation > 0 else np.zeros(1)
    scales = 1.0 + (np.arange(-max_scale, max_scale + 1e-12, step) if max_scale > 0
                    else np.zeros(1))
    n_cells = int(np.ceil(2 * radius / cell)) + 2
    best = (-1, None)
    for rot in rotations:
        c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
        for sc in scales:
            m = sc * np.array([[c, -s], [s, c]]) - np.eye(2)
            d = offset - rel @ m.T
            idx = np.floor((d + radius) / cell).astype(int) + 1
            idx = idx[((idx >= 0) & (idx < n_cells)).all(axis=1)]
            hist = np.bincount(idx[:, 1] * n_cells + idx[:, 0],
                               minlength=n_cells * n_cells).reshape(n_cells, n_cells)
            box = hist[:-1, :-1] + hist[1:, :-1] + hist[:-1, 1:] + hist[1:, 1:]
            k = int(box.argmax())
            if box.flat[k] > best[0]:
                best = (int(box.flat[k]), (rot, sc, k // box.shape[1], k % box.shape[1], d))
    peak, (rot, sc, row, col, d) = best
    chance = len(pairs) * (2 * cell) ** 2 / (np.pi * radius ** 2)
    if peak < max(min_matches, chance + 6.0 * np.sqrt(chance) + 3.0):
        raise AstrometryError(
            f"no pointing offset within {search_radius}\" stands out ({peak} pairs agree, "
            f"{chance:.1f} expected by chance; {where}): the reference catalogue does not "
            "seem to cover this field, or the header WCS is off by more than "
            "search_radius, max_rotation or max_scale")

    # Seed: the pairs in the winning 2x2 cells, then iterate a polynomial fit.
    lo = (np.array([col, row]) - 1) * cell - radius
    sel = ((d >= lo) & (d < lo + 2 * cell)).all(axis=1)
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    linear = sc * np.array([[c, -s], [s, c]])
    shift = np.median(d[sel], axis=0)
    pred = centre + (ref_xy - centre) @ linear.T + shift
    tol = 2.0 * cell
    final_radius = match_radius / scale_px
    for iteration in range(6):
        s_idx, r_idx, dist = _mutual_nearest(src_xy, pred, tol)
        if len(s_idx) < min_matches:
            break
        degree = 2 if len(s_idx) >= 40 and iteration >= 2 else 1
        transform = _fit_transform(ref_xy[r_idx], src_xy[s_idx], centre, degree)
        pred = transform(ref_xy)
        resid = np.hypot(*(pred[r_idx] - src_xy[s_idx]).T)
        sigma = np.median(resid) / np.sqrt(np.log(4.0))  # per axis, from the radial median
        tol = max(final_radius, 4.0 * sigma)
    s_idx, r_idx, dist = _mutual_nearest(src_xy, pred, tol)
    if len(s_idx) < min_matches:
        raise AstrometryError(
            f"only {len(s_idx)} sources match the reference catalogue within "
            f"{tol * scale_px:.2f}\" (need {min_matches}; {where}); check that the "
            "catalogue covers the field and reaches the exposure's depth, or lower "
            "min_matches")
    # The affine part of the final map, for the record.
    aff = _fit_transform(ref_xy[r_idx], src_xy[s_idx], centre, 1)
    origin, ex, ey = aff(np.array([centre, centre + [1, 0], centre + [0, 1]]))
    jac = np.column_stack([ex - origin, ey - origin])
    return Matches(source_index=src_rows[s_idx], reference_index=ref_rows[r_idx],
                   separation=dist, shift=tuple(float(v) for v in origin - centre),
                   rotation=float(np.degrees(np.arctan2(jac[1, 0] - jac[0, 1],
                                                        jac[0, 0] + jac[1, 1]))),
                   scale=float(np.sqrt(abs(np.linalg.det(jac)))))


# ------------------------------------------------------------------------------ fitting


@dataclass(frozen=True)
class AstrometricSolution:
    """A fitted WCS and how well it fits the reference stars."""

    wcs: WCS
    """TAN WCS (``RA---TAN-SIP`` with forward and inverse SIP when distortion was fit)."""
    rms: float
    """Root mean square of the 2-D residuals of the stars used, arcsec:
    ``sqrt(mean(dra² + ddec²))``, with ``dra`` on the sky (times cos Dec)."""
    rms_ra: float
    """Residual rms along RA (on the sky), arcsec."""
    rms_dec: float
    """Residual rms along Dec, arcsec."""
    n_stars: int
    """Reference stars used in the final fit, after outlier rejection."""
    n_matched: int
    """Pairs handed to the fit, before outlier rejection."""
    sip_degree: int
    """Degree of the SIP polynomial; 0 when the data did not need distortion."""
    matches: Matches
    """The pairs fitted; ``used`` says which survived outlier rejection."""
    used: np.ndarray
    """Per pair of ``matches``, whether it is in the final fit."""
    residuals: np.ndarray
    """Per pair, (dra, ddec) in arcsec: reference minus fitted position."""
    sources: Table | None = field(default=None, repr=False)
    """The sources `solve_astrometry` detected, or None when `fit_wcs` was called alone."""


def _gnomonic(ra, dec, ra0, dec0):
    """Standard coordinates (xi, eta) in degrees of (ra, dec) about (ra0, dec0)."""
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cos_c
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cos_c
    return np.degrees(xi), np.degrees(eta)


def _inverse_gnomonic(xi, eta, ra0, dec0):
    """(ra, dec) in degrees of standard coordinates (xi, eta) in degrees."""
    x, y = np.radians(xi), np.radians(eta)
    d0 = np.radians(dec0)
    denom = np.cos(d0) - y * np.sin(d0)
    ra = ra0 + np.degrees(np.arctan2(x, denom))
    dec = np.degrees(np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, denom)))
    return np.mod(ra, 360.0), dec


def _weighted_polyfit(u_, v_, ra, dec, weight, degree, crval):
    """Fit xi, eta = poly(u, v) about a tangent point re-centred on the constant term.

    Returns the tangent point, the coefficient arrays for xi and eta, the term powers
    and the residuals (xi, eta) in degrees.
    """
    scale = max(np.abs(u_).max(), np.abs(v_).max(), 1.0)
    design, powers = _poly_terms(u_ / scale, v_ / scale, degree)
    sw = np.sqrt(weight)[:, None]
    for _ in range(4):
        xi, eta = _gnomonic(ra, dec, *crval)
        coef, *_ = np.linalg.lstsq(design * sw, np.column_stack([xi, eta]) * sw, rcond=None)
        shift = coef[0]
        crval = _inverse_gnomonic(shift[0], shift[1], *crval)
        if np.hypot(*shift) < 1e-10:  # degrees
            break
    xi, eta = _gnomonic(ra, dec, *crval)
    coef, *_ = np.linalg.lstsq(design * sw, np.column_stack([xi, eta]) * sw, rcond=None)
    resid = np.column_stack([xi, eta]) - design @ coef
    unscale = np.array([scale ** -(p + q) for p, q in powers])
    return crval, coef * unscale[:, None], powers, resid


def _build_wcs(crval, crpix, coef, powers, degree, wcs_guess):
    """A TAN(-SIP) WCS from fitted polynomial coefficients of xi, eta in (u, v)."""
    lookup = dict(zip(powers, coef))
    cd = np.array([[lookup[(1, 0)][0], lookup[(0, 1)][0]],
                   [lookup[(1, 0)][1], lookup[(0, 1)][1]]])
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crpix = crpix
    w.wcs.crval = crval
    w.wcs.cd = cd
    if wcs_guess.wcs.radesys:
        w.wcs.radesys = wcs_guess.wcs.radesys
        if np.isfinite(wcs_guess.wcs.equinox):
            w.wcs.equinox = wcs_guess.wcs.equinox
    w.pixel_shape = wcs_guess.pixel_shape
    if degree >= 2:
        inv = np.linalg.inv(cd)
        a = np.zeros((degree + 1, degree + 1))
        b = np.zeros((degree + 1, degree + 1))
        for (p, q), c in lookup.items():
            if p + q >= 2:
                a[p, q], b[p, q] = inv @ c
        ap, bp = _inverse_sip(a, b, degree, w.pixel_shape or (2 * crpix[0], 2 * crpix[1]),
                              crpix)
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.sip = Sip(a, b, ap, bp, crpix)
    w.wcs.set()
    return w


def _inverse_sip(a, b, degree, pixel_shape, crpix):
    """Fit SIP's inverse polynomials (AP, BP; one degree higher) on a pixel grid."""
    order = degree + 1
    gx = np.linspace(0.5, pixel_shape[0] + 0.5, 40) - crpix[0]
    gy = np.linspace(0.5, pixel_shape[1] + 0.5, 40) - crpix[1]
    uu, vv = (g.ravel() for g in np.meshgrid(gx, gy))
    f = sum(a[p, q] * uu ** p * vv ** q for p in range(degree + 1) for q in range(degree + 1))
    g = sum(b[p, q] * uu ** p * vv ** q for p in range(degree + 1) for q in range(degree + 1))
    big_u, big_v = uu + f, vv + g
    scale = max(np.abs(big_u).max(), np.abs(big_v).max())
    design, powers = _poly_terms(big_u / scale, big_v / scale, order)
    keep = [k for k, (p, q) in enumerate(powers) if p + q >= 1]
    coef, *_ = np.linalg.lstsq(design[:, keep], np.column_stack([uu - big_u, vv - big_v]),
                               rcond=None)
    ap = np.zeros((order + 1, order + 1))
    bp = np.zeros((order + 1, order + 1))
    for k, c in zip(keep, coef):
        p, q = powers[k]
        ap[p, q], bp[p, q] = c / scale ** (p + q)
    return ap, bp


def _clipped_fit(u_, v_, ra, dec, sigma, degree, crval, clip, usable, max_iter=10):
    """Weighted polynomial fit of the ``usable`` pairs with iterative rejection of those
    whose residual exceeds ``clip`` times its (robustly rescaled) error; returns the fit
    and the kept mask."""
    keep = usable.copy()
    n_terms = (degree + 1) * (degree + 2) // 2
    weight = 1.0 / sigma ** 2
    for _ in range(max_iter):
        if keep.sum() <= n_terms + 2:
            raise AstrometryError(
                f"only {keep.sum()} matched stars survive outlier rejection, too few to fit "
                f"a degree-{degree} astrometric model; use a lower sip_degree or a deeper "
                "reference catalogue")
        crval_k, coef, powers, _ = _weighted_polyfit(
            u_[keep], v_[keep], ra[keep], dec[keep], weight[keep], degree, crval)
        xi, eta = _gnomonic(ra, dec, *crval_k)
        design, _ = _poly_terms(u_, v_, degree)
        resid = np.column_stack([xi, eta]) - design @ coef
        chi = np.hypot(*resid.T) / sigma
        # For Gaussian errors chi^2 is chi^2 with 2 dof, whose median is 2 ln 2.
        s = np.sqrt(np.median(chi[keep] ** 2) / (2.0 * np.log(2.0)))
        new_keep = usable & (chi <= clip * max(s, 1e-12))
        if (new_keep == keep).all():
            break
        keep = new_keep
    return crval_k, coef, powers, resid, keep


def fit_wcs(sources, reference, matches, wcs_guess, *, sip_degree="auto", max_sip_degree=3,
            sip_alpha=1e-3, clip=4.0, error_floor=0.005, ra_column="ra", dec_column="dec"):
    """Fit a TAN WCS, with SIP distortion where the data need it, to matched stars.

    The model is the FITS TAN(-SIP) one: standard coordinates (xi, eta) about CRVAL are
    a polynomial in (u, v) = pixel - CRPIX, with CRPIX kept from ``wcs_guess``. Each
    iteration is a weighted linear least-squares fit; CRVAL moves to the polynomial's
    constant term until it vanishes. Weights are 1 / (reference error² + centroid error²
    + ``error_floor``²) per axis. Pairs whose residual exceeds ``clip`` times their
    (robustly rescaled) per-axis error are rejected, and the fit repeats until none
    change; for Gaussian errors a good pair is lost with probability exp(-clip²/2).

    Choosing SIP (``sip_degree='auto'``): degrees 2, 3, … ``max_sip_degree`` are tried
    in turn, each against the degree adopted so far (1 = pure TAN at the start); a
    degree is adopted when an F-test on the weighted chi² of the stars both fits keep
    says its extra terms lower the residuals with false-alarm probability below
    ``sip_alpha``. A degree is only tried with at least 4 stars per fitted term.

    Sources marked ``saturated`` or ``masked`` stay in the matches but out of the fit.

    Parameters
    ----------
    sources : `astropy.table.Table`
        ``x``, ``y`` (0-based pixels) and, optionally, ``xy_err`` (pixels).
    reference : `astropy.table.Table`
        ``ra``, ``dec`` and optionally ``ra_error``, ``dec_error`` (arcsec unless the
        columns carry units).
    matches : `Matches`
        From `match_to_reference`.
    wcs_guess : `astropy.wcs.WCS`
        Supplies CRPIX, the frame, the image shape and the starting CRVAL.
    sip_degree : ``'auto'``, `int` or `None`
        ``None`` or 0 for pure TAN, 2 or more for that SIP degree.
    max_sip_degree : `int`
        Highest degree ``'auto'`` tries.
    sip_alpha : `float`
        False-alarm probability below which ``'auto'`` adopts a higher degree.
    clip : `float`
        Rejection threshold for the 2-D residual, in (rescaled) standard deviations per
        axis.
    error_floor : `float`
        Added in quadrature to every star's error, arcsec.

    Returns
    -------
    solution : `AstrometricSolution`

    Raises
    ------
    AstrometryError
        Raised if there are too few pairs for the model.
    """
    if sip_degree == "auto":
        degrees = [1] + list(range(2, max_sip_degree + 1))
    elif sip_degree in (None, 0, 1):
        degrees = [1]
    elif isinstance(sip_degree, (int, np.integer)) and sip_degree >= 2:
        degrees = [int(sip_degree)]
    else:
        raise ValueError(f"sip_degree must be 'auto', None, 0 or an integer >= 2, not "
                         f"{sip_degree!r}")
    s_idx = np.asarray(matches.source_index)
    r_idx = np.asarray(matches.reference_index)
    if len(s_idx) < 6:
        raise AstrometryError(f"{len(s_idx)} matched stars cannot constrain a WCS (need at "
                              "least 6); check the match to the reference catalogue")
    ref_ra, ref_dec = _reference_radec(reference, ra_column, dec_column)
    ra, dec = ref_ra[r_idx], ref_dec[r_idx]
    xy = _source_xy(sources)[s_idx]
    scale = pixel_scale(wcs_guess)
    xy_err = (np.asarray(sources["xy_err"], float)[s_idx] if "xy_err" in sources.colnames
              else np.zeros(len(s_idx)))
    sigma_arcsec = np.sqrt(_reference_errors(reference, ra_column, dec_column)[r_idx] ** 2
                           + np.nan_to_num(xy_err * scale) ** 2 + error_floor ** 2)
    sigma = sigma_arcsec / 3600.0
    crpix = np.array(wcs_guess.wcs.crpix, float)
    u_, v_ = xy[:, 0] + 1.0 - crpix[0], xy[:, 1] + 1.0 - crpix[1]
    usable = _usable_sources(sources)[s_idx]
    crval0 = np.array(wcs_guess.wcs.crval, float)

    fits = {}
    chosen = None
    for degree in degrees:
        n_terms = (degree + 1) * (degree + 2) // 2
        if chosen is not None and len(s_idx) < 4 * n_terms:
            break  # too few stars to test this many terms
        fits[degree] = _clipped_fit(u_, v_, ra, dec, sigma, degree, crval0, clip, usable)
        if chosen is None:
            chosen = degree
            continue
        common = fits[chosen][4] & fits[degree][4]
        chi2 = {}
        for d in (chosen, degree):
            _, _, _, resid = _weighted_polyfit(u_[common], v_[common], ra[common],
                                               dec[common], 1.0 / sigma[common] ** 2, d,
                                               crval0)
            chi2[d] = np.sum((resid / sigma[common, None]) ** 2)
        p_lo = 2 * (chosen + 1) * (chosen + 2) // 2
        p_hi = 2 * n_terms
        dof = 2 * common.sum() - p_hi
        if dof <= 0:
            break
        f_stat = ((chi2[chosen] - chi2[degree]) / (p_hi - p_lo)) / (chi2[degree] / dof)
        if fdtrc(p_hi - p_lo, dof, f_stat) < sip_alpha:  # the F distribution's survival
            chosen = degree

    crval, coef, powers, resid, keep = fits[chosen]
    wcs = _build_wcs(crval, crpix, coef, powers, chosen, wcs_guess)
    # Residuals through the WCS itself, on the sky: reference minus fitted position.
    fit_ra, fit_dec = wcs.all_pix2world(xy[:, 0], xy[:, 1], 0)
    dra = ((ra - fit_ra + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec)) * 3600.0
    ddec = (dec - fit_dec) * 3600.0
    residuals = np.column_stack([dra, ddec])
    rms_ra = float(np.sqrt(np.mean(dra[keep] ** 2)))
    rms_dec = float(np.sqrt(np.mean(ddec[keep] ** 2)))
    return AstrometricSolution(
        wcs=wcs, rms=float(np.hypot(rms_ra, rms_dec)), rms_ra=rms_ra, rms_dec=rms_dec,
        n_stars=int(keep.sum()), n_matched=len(s_idx),
        sip_degree=chosen if chosen >= 2 else 0, matches=matches, used=keep,
        residuals=residuals)


def solve_astrometry(image, reference, wcs_guess, *, mask=None, weight=None,
                     background=None, sources=None, saturation=None, gain=None,
                     threshold=5.0, sip_degree="auto", search_radius=60.0, match_radius=1.0,
                     min_matches=10, ra_column="ra", dec_column="dec"):
    """Detect, match and fit in one call: the astrometric solution of an exposure.

    Runs `detect_sources` (unless ``sources`` are given), `match_to_reference` against
    the header WCS, `fit_wcs`, then matches once more through the fitted WCS (within
    ``match_radius`` or 5 times the first fit's rms, whichever is larger), which
    recovers stars in distorted corners, and fits again. The final matches include
    saturated and masked sources (for the photometry to see and skip); the fit does not
    use them.

    Returns
    -------
    solution : `AstrometricSolution`
        With ``sources`` set to the detected (or given) sources.

    Raises
    ------
    AstrometryError
        Raised if too few sources are detected or matched; the message says which.
    """
    if sources is None:
        sources = detect_sources(image, mask, weight=weight, background=background,
                                 threshold=threshold, saturation=saturation, gain=gain)
    shape = np.shape(image)
    kwargs = dict(ra_column=ra_column, dec_column=dec_column)
    matches = match_to_reference(sources, reference, wcs_guess, search_radius=search_radius,
                                 match_radius=match_radius, min_matches=min_matches,
                                 shape=shape, **kwargs)
    solution = fit_wcs(sources, reference, matches, wcs_guess, sip_degree=sip_degree,
                       **kwargs)
    # Re-match through the fitted WCS.
    ref_ra, ref_dec = _reference_radec(reference, ra_column, dec_column)
    radius = max(match_radius, 5.0 * solution.rms) / pixel_scale(solution.wcs)
    pred = pixels_near_image(solution.wcs, ref_ra, ref_dec, shape,
                             2.0 * radius + 0.05 * max(shape))
    ok = np.isfinite(pred).all(axis=1)
    usable = np.flatnonzero(np.isfinite(_source_xy(sources)).all(axis=1))
    s_idx, r_idx, dist = _mutual_nearest(_source_xy(sources)[usable],
                                         pred[ok], radius)
    if len(s_idx) >= max(min_matches, 6):
        rematched = Matches(source_index=usable[s_idx],
                            reference_index=np.flatnonzero(ok)[r_idx], separation=dist,
                            shift=matches.shift, rotation=matches.rotation,
                            scale=matches.scale)
        solution = fit_wcs(sources, reference, rematched, wcs_guess, sip_degree=sip_degree,
                           **kwargs)
    return dataclasses.replace(solution, sources=sources)
