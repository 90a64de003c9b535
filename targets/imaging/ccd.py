"""CCD geometry and the arithmetic of basic reduction: sections, overscan, trim,
bias and flat correction, saturation, and the noise model behind the weight map.

Every function takes numpy arrays and returns a new array; inputs are never changed.
Integer input (raw frames are 16-bit) comes back as float64, because overscan means are
not integers and differences of unsigned integers wrap around; floating input keeps its
precision, so a caller who wants to halve the memory passes float32.
"""

import re

import numpy as np

__all__ = [
    "divide_flat",
    "fits_section",
    "flat_level",
    "normalise",
    "saturated_pixels",
    "section_text",
    "subtract_bias",
    "subtract_overscan",
    "trim",
    "variance_map",
    "weight_map",
]

_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


def fits_section(text):
    """The numpy slices ``(rows, columns)`` of a FITS section such as ``'[1:50,1:100]'``.

    FITS sections (``BIASSEC``, ``TRIMSEC``, ``DATASEC``) count from 1, include both
    ends and give the column (x) range first; numpy counts from 0, excludes the end and
    indexes rows (y) first. A reversed range (``[50:1,...]``) selects the same pixels.

    Raises
    ------
    ValueError
        If ``text`` is not of the form ``[x1:x2,y1:y2]`` with positive integers.
    """
    match = _SECTION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a FITS section; write it as [x1:x2,y1:y2], "
                         "counting from 1 with both ends included, e.g. [1:2048,1:4096]")
    x1, x2, y1, y2 = map(int, match.groups())
    if min(x1, x2, y1, y2) < 1:
        raise ValueError(f"FITS section {text!r} counts from 1; 0 is not a pixel")
    return (slice(min(y1, y2) - 1, max(y1, y2)), slice(min(x1, x2) - 1, max(x1, x2)))


def section_text(slices):
    """The FITS section ``'[x1:x2,y1:y2]'`` of numpy ``(rows, columns)`` slices: the
    inverse of `fits_section`."""
    rows, columns = slices
    return f"[{columns.start + 1}:{columns.stop},{rows.start + 1}:{rows.stop}]"


def _as_float(image):
    """``image`` as a floating-point array: float input keeps its dtype, the rest float64."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-d image, got an array of shape {image.shape}")
    return image if np.issubdtype(image.dtype, np.floating) else image.astype(np.float64)


def _region(section, shape, what):
    """Check ``section`` (FITS text or a pair of slices) lies inside ``shape``; return
    it as ``(rows, columns)`` slices with explicit ``start`` and ``stop``."""
    slices = fits_section(section) if isinstance(section, str) else section
    if (not isinstance(slices, tuple) or len(slices) != 2
            or not all(isinstance(s, slice) for s in slices)):
        raise ValueError(f"the {what} must be a FITS section such as '[1:50,1:100]' or a "
                         f"pair of slices (rows, columns), got {section!r}")
    checked = []
    for axis, (s, n) in enumerate(zip(slices, shape)):
        name = ("rows", "columns")[axis]
        if s.step not in (None, 1):
            raise ValueError(f"the {what} {section!r} steps through its {name}; "
                             "give a contiguous region")
        start = 0 if s.start is None else s.start
        stop = n if s.stop is None else s.stop
        if not 0 <= start < stop <= n:
            raise ValueError(
                f"the {what} {section!r} covers {name} {start}:{stop} (0-based) but the "
                f"image has {n} {name} (shape {shape}); check the section against the "
                "image, e.g. the instrument's BIASSEC/TRIMSEC for this chip")
        checked.append(slice(start, stop))
    return tuple(checked)


def _same_shape(image, other, what, remedy):
    if other.shape != image.shape:
        raise ValueError(f"the {what} has shape {other.shape} but the image has "
                         f"{image.shape}; {remedy}")


def subtract_overscan(image, region, *, statistic="median", order=None, axis=None):
    """Subtract the bias level measured in the overscan ``region``, line by line.

    The bias drifts slowly during readout, so it is measured per line: each row (for an
    overscan strip of columns) or each column (for a strip of rows) is collapsed with
    ``statistic``, and optionally smoothed by a least-squares polynomial of degree
    ``order`` along the strip, which averages down the read noise of short lines.

    Parameters
    ----------
    image : `numpy.ndarray`
        The raw frame, overscan included.
    region : `str` or `tuple` of `slice`
        The overscan region, as a FITS section (``BIASSEC``) or as ``(rows, columns)``
        slices from `fits_section`.
    statistic : {"median", "mean"}
        How each line of the overscan is collapsed. The median ignores a hot pixel or
        a cosmic ray in the overscan; the mean has less noise.
    order : `int` or `None`
        Fit a polynomial of this degree to the line values (in the image's line index)
        and subtract the fit; `None` subtracts the line values themselves.
    axis : {0, 1, None}
        The axis the overscan is collapsed along: 1 gives one value per row, 0 one per
        column. `None` infers it: a region spanning every row but not every column is a
        strip of columns (1), one spanning every column but not every row is a strip
        of rows (0); otherwise its shorter side is collapsed.

    Returns
    -------
    corrected : `numpy.ndarray`
        The whole frame minus the overscan level, overscan columns included (trim them
        with `trim`); float64 for integer input.

    Raises
    ------
    ValueError
        Raised if the region is not inside the image, if ``statistic``, ``order`` or
        ``axis`` is not one of the values above, or if the region does not cover every
        line that needs a value and no polynomial is fitted to extrapolate.
    """
    image = _as_float(image)
    rows, cols = _region(region, image.shape, "overscan region")
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    if order is not None and (not isinstance(order, (int, np.integer)) or order < 0):
        raise ValueError(f"order must be a polynomial degree >= 0 or None, got {order!r}")
    if axis is None:
        full_rows = (rows.start, rows.stop) == (0, image.shape[0])
        full_cols = (cols.start, cols.stop) == (0, image.shape[1])
        if full_rows != full_cols:
            axis = 1 if full_rows else 0
        else:
            axis = 1 if rows.stop - rows.start >= cols.stop - cols.start else 0
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (one value per column), 1 (one value per row) "
                         f"or None (inferred), got {axis!r}")

    collapse = np.median if statistic == "median" else np.mean
    level = collapse(image[rows, cols], axis=axis)
    along = rows if axis == 1 else cols  # the lines the region gives a value for
    n_lines = image.shape[0] if axis == 1 else image.shape[1]
    if order is None:
        if (along.start, along.stop) != (0, n_lines):
            what = "rows" if axis == 1 else "columns"
            raise ValueError(
                f"the overscan region {region!r} covers {what} {along.start}:{along.stop} "
                f"of {n_lines}, so the other {what} have no overscan value; give a region "
                f"spanning all {what}, or fit a polynomial (order=...) to extrapolate")
        profile = level
    else:
        if level.size <= order:
            raise ValueError(f"a polynomial of degree {order} needs more than {order} "
                             f"overscan lines; the region {region!r} gives {level.size}")
        fit = np.polynomial.Polynomial.fit(np.arange(along.start, along.stop), level, order)
        profile = fit(np.arange(n_lines))
    profile = profile.astype(image.dtype, copy=False)
    return image - (profile[:, None] if axis == 1 else profile[None, :])


def trim(image, section):
    """A copy of the ``section`` of ``image`` (``TRIMSEC``/``DATASEC``: the light-sensitive
    pixels), so later steps never see the overscan; a copy, not a view, so that writing
    to the result cannot change the raw frame.

    Raises
    ------
    ValueError
        Raised if the section is not inside the image.
    """
    image = np.asarray(image)
    return image[_region(section, image.shape, "trim section")].copy()


def subtract_bias(image, bias):
    """``image`` minus the (master) ``bias``, which removes the bias pattern the overscan
    cannot see: both must be overscan-corrected and trimmed alike.

    Raises
    ------
    ValueError
        Raised if the shapes differ.
    """
    image = _as_float(image)
    bias = np.asarray(bias)
    _same_shape(image, bias, "bias", "trim both to the same section before subtracting")
    return image - bias


def flat_level(flat, *, region=None, mask=None):
    """The median of the finite, unmasked pixels of ``flat`` in ``region``: the level a
    flat is divided by so that its typical pixel responds with 1.

    The median, not the mean, so that dead columns, hot pixels and vignetted corners do
    not pull the level.

    Parameters
    ----------
    flat : `numpy.ndarray`
        A bias-subtracted flat.
    region : `str` or `tuple` of `slice`, optional
        Where to measure, e.g. the unvignetted centre of the chip; default everywhere.
    mask : `numpy.ndarray` of `bool`, optional
        True where a pixel is bad and must not count.

    Raises
    ------
    ValueError
        Raised if the region is outside the flat, the mask's shape differs, no good
        pixel is left, or the level is not positive (a flat without light).
    """
    flat = _as_float(flat)
    good = np.isfinite(flat)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        _same_shape(flat, mask, "mask", "give a mask made for this flat")
        good &= ~mask
    where = (slice(None), slice(None)) if region is None else _region(region, flat.shape,
                                                                       "flat region")
    values = flat[where][good[where]]
    if values.size == 0:
        raise ValueError(f"no good pixel in the flat's region {region!r}; "
                         "widen the region or check the mask")
    level = float(np.median(values))
    if not level > 0:
        raise ValueError(f"the flat's median level in {region!r} is {level}, not positive: "
                         "it saw no light or was not bias-subtracted")
    return level


def normalise(flat, *, region=None, mask=None):
    """``flat`` divided by its `flat_level`, so a typical pixel responds with 1 and
    dividing a science frame by it keeps the frame's counts.

    Parameters and errors are those of `flat_level`.
    """
    flat = _as_float(flat)
    return flat / flat.dtype.type(flat_level(flat, region=region, mask=mask))


def divide_flat(image, flat, *, min_value=0.0):
    """``image`` divided by the normalised ``flat``, correcting pixel-to-pixel and
    large-scale sensitivity.

    Where the flat is at or below ``min_value`` (or not finite) the pixel saw no usable
    light and the result is NaN: a number there would look like a measurement. Such
    pixels also belong in the bad-pixel mask (`targets.imaging.pixelmaps.cold_pixels`),
    so their weight is 0.

    Parameters
    ----------
    image : `numpy.ndarray`
        A bias-subtracted, trimmed frame.
    flat : `numpy.ndarray`
        A normalised flat (see `normalise`) of the same shape.
    min_value : `float`
        The lowest flat response still divided by.

    Raises
    ------
    ValueError
        Raised if the shapes differ.
    """
    image = _as_float(image)
    flat = np.asarray(flat)
    _same_shape(image, flat, "flat", "trim both to the same section before dividing")
    usable = np.isfinite(flat) & (flat > min_value)
    result = np.full(image.shape, np.nan, dtype=np.result_type(image, flat, np.float32))
    np.divide(image, flat, out=result, where=usable)
    return result


def saturated_pixels(raw, saturation_level):
    """True where the raw frame (ADU, before any correction) reached ``saturation_level``:
    there the counts no longer measure the light, and charge may have bled along the
    column, which the same test catches.

    Raises
    ------
    ValueError
        Raised if ``saturation_level`` is not a finite number.
    """
    if not np.isfinite(saturation_level):
        raise ValueError(f"saturation_level must be a finite number of ADU, "
                         f"got {saturation_level!r}; take it from the instrument")
    return np.asarray(raw) >= saturation_level


def variance_map(image, *, flat, gain, read_noise, sky=None):
    """The variance (ADU²) of each pixel of a bias-subtracted, flat-fielded ``image``.

    Noise model: before flat-fielding a pixel holds ``image * flat`` ADU, that is
    ``gain * image * flat`` electrons with Poisson variance equal to that number, plus
    the read noise squared; in ADU² this is divided by ``gain²``, and dividing by the
    flat divides the variance by ``flat²``::

        variance = (gain * max(signal, 0) * flat + read_noise²) / (gain² * flat²)

    Parameters
    ----------
    image : `numpy.ndarray`
        The flat-fielded frame in ADU, sky included.
    flat : `numpy.ndarray` or `float`
        The normalised flat the image was divided by (1 if it was not).
    gain : `float`
        Electrons per ADU.
    read_noise : `float`
        Read noise in electrons.
    sky : `numpy.ndarray` or `float`, optional
        The signal to use for the Poisson term instead of the pixel values. Give the
        sky level for a weight map to stack with: then stars are not down-weighted by
        their own photon noise, and the weights do not correlate with the noise.

    Raises
    ------
    ValueError
        Raised if ``gain`` is not positive or ``read_noise`` is negative.
    """
    if not gain > 0:
        raise ValueError(f"gain must be positive (electrons per ADU), got {gain!r}")
    if not read_noise >= 0:
        raise ValueError(f"read_noise must be >= 0 electrons, got {read_noise!r}")
    image = _as_float(image)
    signal = image if sky is None else np.broadcast_to(sky, image.shape)
    flat = np.asarray(flat, dtype=image.dtype)
    electrons = gain * np.maximum(signal, 0) * flat
    with np.errstate(divide="ignore", invalid="ignore"):
        return (electrons + read_noise ** 2) / (gain ** 2 * flat ** 2)


def weight_map(image, *, flat, gain, read_noise, mask=None, sky=None):
    """Inverse variance (ADU⁻²) of each pixel: the weight a pixel gets when images are
    stacked or fitted, 0 where it carries no information.

    The variance is `variance_map`'s; the weight is 0 where ``mask`` is True (hot,
    cold, saturated, cosmic-ray pixels), where the image or flat is not finite, and
    where the flat is not positive.

    Parameters
    ----------
    image, flat, gain, read_noise, sky
        As for `variance_map`.
    mask : `numpy.ndarray` of `bool`, optional
        True where a pixel is bad.

    Raises
    ------
    ValueError
        Raised as by `variance_map`, or if the mask's or flat's shape differs from the
        image's.
    """
    image = _as_float(image)
    if np.ndim(flat):
        _same_shape(image, np.asarray(flat), "flat", "give the flat the image was divided by")
    variance = variance_map(image, flat=flat, gain=gain, read_noise=read_noise, sky=sky)
    good = np.isfinite(variance) & (variance > 0) & np.isfinite(image)
    good &= np.broadcast_to(np.asarray(flat) > 0, image.shape)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        _same_shape(image, mask, "mask", "give the bad-pixel mask of this chip")
        good &= ~mask
    weight = np.zeros(image.shape, dtype=image.dtype)
    np.divide(1.0, variance, out=weight, where=good)
    return weight
