"""Bad-pixel maps of a chip: hot pixels from the master bias (or dark), cold pixels from
the master flat. Each map is a boolean array, True where the pixel is bad.

Both rules compare a pixel with a smooth local estimate of what it should read, in
units of a robust scatter (the MAD scaled to a Gaussian σ), so that gradients, vignetting
and dust rings never count as defects, while a few hundred defects never bias the scale.
"""

import warnings

import numpy as np
from scipy import ndimage

from .combine import MAD_TO_SIGMA

__all__ = ["cold_pixels", "hot_pixels"]

def _robust_sigma(values):
    """The MAD-based σ of the finite ``values``, or their standard deviation if more
    than half of them are equal (quantised data) and the MAD is 0."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan
    sigma = MAD_TO_SIGMA * np.median(np.abs(values - np.median(values)))
    return sigma if sigma > 0 else float(np.std(values))


def _block_background(image, block):
    """A smooth background: the median of each ``block`` × ``block`` box, interpolated
    bilinearly between box centres. Cheap, and robust to defects filling up to half a
    box."""
    ny, nx = image.shape
    by, bx = -(-ny // block), -(-nx // block)
    padded = np.full((by * block, bx * block), np.nan)
    padded[:ny, :nx] = image
    boxes = padded.reshape(by, block, bx, block).swapaxes(1, 2).reshape(by, bx, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # boxes with no finite pixel
        medians = np.nanmedian(boxes, axis=-1)
    medians[~np.isfinite(medians)] = np.nanmedian(image)
    # pixel centres in box units, box centres at integers
    y = (np.arange(ny) + 0.5) / block - 0.5
    x = (np.arange(nx) + 0.5) / block - 0.5
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return ndimage.map_coordinates(medians, [yy, xx], order=1, mode="nearest")


def _checked(image, what):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"the {what} must be a 2-d image, got shape {image.shape}")
    if not np.isfinite(image).any():
        raise ValueError(f"the {what} has no finite pixel; check that it was made "
                         "from frames that contain data")
    return image


def hot_pixels(master, *, sigma=6.0, block=32):
    """Pixels of a master bias or dark that read far above their surroundings.

    Rule: a pixel is hot when it exceeds the local background (the median of its
    ``block`` × ``block`` box, interpolated between boxes) by more than ``sigma`` times
    the frame's robust scatter around that background. At the default 6σ pure Gaussian
    noise makes one false hot pixel in a billion, i.e. none on a chip. Pixels that are not
    finite are hot too: they carry no calibration.

    Parameters
    ----------
    master : `numpy.ndarray`
        A master bias or master dark (overscan-corrected and trimmed).
    sigma : `float`
        Threshold in units of the robust scatter.
    block : `int`
        Size in pixels of the boxes the background is measured in; larger than any
        cluster of hot pixels, smaller than the scale of the bias structure.

    Returns
    -------
    hot : `numpy.ndarray` of `bool`
        True where a pixel is hot.

    Raises
    ------
    ValueError
        Raised if ``master`` is not a 2-d image with finite pixels, or ``sigma`` or
        ``block`` is not positive.
    """
    master = _checked(master, "master bias or dark")
    if not sigma > 0 or not block >= 1:
        raise ValueError(f"sigma and block must be positive, got sigma={sigma!r}, "
                         f"block={block!r}")
    excess = master - _block_background(master, int(block))
    scale = _robust_sigma(excess)
    with np.errstate(invalid="ignore"):
        return ~(excess <= sigma * scale)  # NaN compares False, so it counts as hot


def cold_pixels(flat, *, low=0.8, sigma=6.0, box=7):
    """Pixels of a flat that respond much less to light than their neighbours.

    Rule: divide the flat by its ``box`` × ``box`` running median, which follows
    vignetting, the flat's large-scale shape and dust rings (any feature wider than
    half the box), so the ratio is each pixel's response relative to its neighbours. A
    pixel is cold when its ratio is below ``low`` *and* below 1 by more than ``sigma``
    times the robust pixel-to-pixel scatter of the ratio: the first condition keeps
    the small differences a flat-field corrects exactly, the second keeps noise in a
    faint flat from making pixels cold. Pixels where the flat is not finite or not
    positive are cold too. Clusters of dead pixels wider than half the box (e.g. four
    adjacent dead columns at ``box=7``) raise the median and need a larger ``box``.

    Parameters
    ----------
    flat : `numpy.ndarray`
        A master flat, normalised or not.
    low : `float`
        The largest relative response that counts as cold.
    sigma : `float`
        The smallest deficit, in units of the ratio's robust scatter, that counts.
    box : `int`
        Side of the running-median window in pixels (odd).

    Returns
    -------
    cold : `numpy.ndarray` of `bool`
        True where a pixel is cold.

    Raises
    ------
    ValueError
        Raised if ``flat`` is not a 2-d image with finite pixels, ``low`` is not
        between 0 and 1, ``sigma`` is not positive or ``box`` is not an odd integer >= 3.
    """
    flat = _checked(flat, "flat")
    if not 0 < low < 1:
        raise ValueError(f"low is a relative response between 0 and 1, got {low!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    if not (isinstance(box, (int, np.integer)) and box >= 3 and box % 2 == 1):
        raise ValueError(f"box must be an odd integer >= 3 (pixels), got {box!r}")
    good = np.isfinite(flat) & (flat > 0)
    filled = np.where(good, flat, np.median(flat[good]) if good.any() else 1.0)
    smooth = ndimage.median_filter(filled.astype(np.float32), size=box, mode="nearest")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(good & (smooth > 0), filled / smooth, 0.0)
    scale = _robust_sigma(ratio[good])
    threshold = min(low, 1.0 - sigma * scale)
    return ~good | (ratio < threshold)
