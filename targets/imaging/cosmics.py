"""Cosmic rays in a single exposure: L.A.Cosmic, Laplacian edge detection
(van Dokkum 2001, PASP 113, 1420), written from the paper.

A cosmic ray is sharper than anything the atmosphere and the telescope let through: its
edges are steeper than a star's. The Laplacian of the image measures how sharp a pixel
is compared with its four neighbours; in units of the expected noise it becomes a
significance, and a significant pixel is a cosmic ray unless the image around it has
the fine structure of a star (a compact peak that a 3×3 median keeps).

The paper's steps, and how they are computed here:

1. Laplacian of the image subsampled 2×2, negative values set to 0, block-averaged back:
   ``L+``. On the subsampled grid each sub-pixel has two neighbours inside its own pixel,
   so its Laplacian is ``2v - v_vertical - v_horizontal`` with one vertical and one
   horizontal neighbouring pixel; ``L+`` is the mean of the four clipped combinations,
   computed without building the subsampled image. Clipping before averaging is why
   the sharp edge of a cosmic ray survives next to a negative Laplacian.
2. Noise: ``N = sqrt(gain * M5 + read_noise²) / gain`` (ADU), ``M5`` the 5×5 median of
   the image; significance ``S = L+ / (2 N)``, so a one-pixel hit of ``k`` σ has
   ``S ≈ k``.
3. ``S' = S - M5(S)`` removes the smooth significance of extended objects' sampling.
4. Candidates have ``S' > sigma_clip``. A candidate is a cosmic ray when
   ``L+ / F > object_limit``, ``F = M3(I) - M7(M3(I))`` the fine structure (floored at
   a hundredth of the noise): a star's core has fine structure, a cosmic ray has none.
5. Growth: neighbours with ``S' > sigma_clip``, then their neighbours with
   ``S' > sigma_frac * sigma_clip``, join (the faint ends of tracks).
6. The cosmic-ray pixels are replaced by the median of their good 5×5 neighbours and
   the search is repeated, until nothing new is found or ``iterations`` runs out.

The medians are computed only where they can matter: a pixel whose ``L+`` is small
compared with a lower bound on its noise (from the sky level in 32-pixel boxes) cannot
have ``S'`` above the threshold, since ``M5(S) >= 0``. Full-frame median filters would
cost ten times more on a 2k × 2k chip.
"""

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

__all__ = ["cosmic_rays"]

_BOX = 32
"""Side of the boxes the sky's lower bound is measured in (pixels)."""

_SAFETY = 0.7
"""The candidate pre-selection uses ``_SAFETY * sigma_clip`` against the noise lower
bound, to absorb the 5×5 median's fluctuation below the box median."""

_CHUNK = 4096
"""Candidates handled at once (memory: about 40 kB each)."""


def cosmic_rays(image, *, gain, read_noise, sigma_clip=4.5, sigma_frac=0.3,
                object_limit=2.0, iterations=4, background=0.0, saturation_level=None,
                mask=None):
    """Pixels hit by cosmic rays in one exposure, single hits and tracks, stars left alone.

    Parameters
    ----------
    image : `numpy.ndarray`
        The exposure in ADU, bias-subtracted (flat-fielded or not), sky included: the
        sky sets the noise. If the sky was subtracted, give it as ``background``.
    gain : `float`
        Electrons per ADU.
    read_noise : `float`
        Read noise in electrons.
    sigma_clip : `float`
        Significance (in σ of the noise) a cosmic-ray pixel must reach.
    sigma_frac : `float`
        Fraction of ``sigma_clip`` a neighbour of a cosmic-ray pixel must reach to join.
    object_limit : `float`
        How much sharper than the local fine structure a cosmic ray must be
        (``L+ / F``). Raise it for undersampled images (FWHM below 2.5 pixels), where
        star cores are nearly as sharp as cosmic rays.
    iterations : `int`
        The most searches, each on the image cleaned of what was found before.
    background : `float` or `numpy.ndarray`
        Sky already subtracted from ``image`` (ADU), added back for the noise.
    saturation_level : `float`, optional
        Pixels at or above it are never flagged, nor those around them within
        ``2 + 3 R`` pixels, ``R`` the radius of a disc as large as the saturated region:
        the edges and steep inner wings of a saturated star are as sharp as a cosmic
        ray. A saturated hit is left to the saturation mask.
    mask : `numpy.ndarray` of `bool`, optional
        Known bad pixels (hot, cold): replaced before the search and never flagged.
        Non-finite pixels are treated the same way.

    Returns
    -------
    cosmic : `numpy.ndarray` of `bool`
        True where a pixel is hit by a cosmic ray.

    Raises
    ------
    ValueError
        Raised if the image is not 2-d, ``gain`` is not positive, ``read_noise`` is
        negative, the thresholds are not positive, or the mask's shape differs.
    """
    work = np.array(image, dtype=np.float64)  # a copy: cleaning writes into it
    if work.ndim != 2:
        raise ValueError(f"the image must be 2-d, got shape {work.shape}")
    if not gain > 0:
        raise ValueError(f"gain must be positive (electrons per ADU), got {gain!r}")
    if not read_noise >= 0:
        raise ValueError(f"read_noise must be >= 0 electrons, got {read_noise!r}")
    for name, value in [("sigma_clip", sigma_clip), ("sigma_frac", sigma_frac),
                        ("object_limit", object_limit), ("iterations", iterations)]:
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    excluded = ~np.isfinite(work)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != work.shape:
            raise ValueError(f"the mask has shape {mask.shape} but the image has "
                             f"{work.shape}; give the bad-pixel mask of this chip")
        excluded |= mask
    try:
        background = np.broadcast_to(np.asarray(background, dtype=np.float64), work.shape)
    except ValueError as err:
        raise ValueError(f"the background has shape {np.shape(background)} but the image "
                         f"has {work.shape}; give a number or a map of the image's shape"
                         ) from err
    sky = _sky_lower_bound(work, excluded)
    if excluded.any():
        _replace(work, np.flatnonzero(excluded), excluded, sky)
    if saturation_level is not None:
        excluded |= _near_saturation(np.asarray(image) >= saturation_level)

    noise_floor = np.sqrt(gain * np.maximum(sky + background, 0.0) + read_noise ** 2) / gain
    preselect = 2.0 * _SAFETY * sigma_clip * noise_floor
    searcher = _Searcher(gain, read_noise, background)
    found = np.zeros(work.shape, bool)
    changed = None  # where the last cleaning changed S' and L+/F; None: everywhere
    searcher.load(work)
    for _ in range(int(iterations)):
        candidates = (searcher.lplus > preselect) & ~excluded & ~found
        if changed is not None:
            candidates &= changed  # elsewhere the pixels were measured and rejected
        candidates = np.flatnonzero(candidates)
        significant = candidates[searcher.significance(candidates) > sigma_clip]
        cosmic = significant[searcher.sharpness(significant) > object_limit]
        if cosmic.size == 0:
            break
        for threshold in (sigma_clip, sigma_frac * sigma_clip):
            ring = _around(cosmic, work.shape, 1) & ~excluded & ~found
            ring.flat[cosmic] = False
            ring = np.flatnonzero(ring)
            cosmic = np.union1d(cosmic, ring[searcher.significance(ring) > threshold])
        found.flat[cosmic] = True
        _replace(work, cosmic, found | excluded, sky)
        changed = _around(cosmic, work.shape, 4)  # the 9x9 pixels a measure reads
        searcher.update(work, np.flatnonzero(_around(cosmic, work.shape, 1)))
    return found


def _near_saturation(saturated):
    """True within ``2 + 3 R`` pixels of each saturated region of equivalent radius
    ``R``: the brighter the star, the farther out its wings are steep."""
    labels, _ = ndimage.label(saturated, np.ones((3, 3), bool))
    near = saturated.copy()
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[box] == index
        margin = int(np.ceil(2 + 3 * np.sqrt(region.sum() / np.pi)))
        rows = slice(max(box[0].start - margin, 0), box[0].stop + margin)
        cols = slice(max(box[1].start - margin, 0), box[1].stop + margin)
        seed = labels[rows, cols] == index
        near[rows, cols] |= ndimage.distance_transform_edt(~seed) <= margin
    return near


def _laplacian_plus(image, pixels=None):
    """``L+``: the clipped Laplacian of the 2×2-subsampled image, averaged back (step 1);
    of every pixel, or only of ``pixels`` (flat indices). The image's edge pixels are
    their own neighbours outside it."""
    if pixels is None:
        p = np.pad(image.astype(np.float32), 1, mode="edge")  # float32: 2x faster, ample
        centre, up, down = p[1:-1, 1:-1], p[:-2, 1:-1], p[2:, 1:-1]
        left, right = p[1:-1, :-2], p[1:-1, 2:]
    else:
        ny, nx = image.shape
        rows, cols = np.divmod(pixels, nx)
        centre = image[rows, cols]
        up, down = image[np.maximum(rows - 1, 0), cols], image[np.minimum(rows + 1, ny - 1), cols]
        left, right = image[rows, np.maximum(cols - 1, 0)], image[rows, np.minimum(cols + 1, nx - 1)]
    total = np.zeros_like(centre)
    term = np.empty_like(centre)
    for vertical in (up, down):
        partial = 2.0 * centre - vertical
        for horizontal in (left, right):
            np.subtract(partial, horizontal, out=term)
            np.maximum(term, 0.0, out=term)
            total += term
    total /= 4.0
    return total


def _median(values):
    """The median along the last axis, of odd length: the middle of a partial sort."""
    middle = values.shape[-1] // 2
    return np.partition(values, middle, axis=-1)[..., middle]


def _median_windows(patches, size):
    """The ``size`` × ``size`` running median over each patch of a ``(K, n, n)`` stack:
    ``(K, n - size + 1, n - size + 1)``."""
    windows = sliding_window_view(patches, (size, size), axis=(1, 2))
    k, m = windows.shape[0], windows.shape[1]
    return _median(windows.reshape(k, m, m, size * size))


class _Searcher:
    """The significance ``S'`` and sharpness ``L+ / F`` of chosen pixels of one image,
    each pixel's computed from the 9×9 pixels around it."""

    def __init__(self, gain, read_noise, background):
        self.gain, self.read_noise = gain, read_noise
        self._background = sliding_window_view(np.pad(background, 4, mode="symmetric"),
                                               (9, 9))

    def load(self, image):
        """Measure ``image`` from now on."""
        self.shape = image.shape
        self.lplus = _laplacian_plus(image)
        self._views(image)

    def update(self, image, pixels):
        """``image`` changed around ``pixels``, whose ``L+`` must be recomputed."""
        self.lplus.flat[pixels] = _laplacian_plus(image, pixels)
        self._views(image)

    def _views(self, image):
        self._image = sliding_window_view(np.pad(image, 4, mode="symmetric"), (9, 9))
        self._lplus = sliding_window_view(np.pad(self.lplus, 2, mode="symmetric"), (5, 5))
        self._known = np.full(image.shape, np.nan)  # S' already computed

    def significance(self, pixels):
        """``S'`` of ``pixels`` (flat indices), steps 2 and 3."""
        result = self._known.flat[pixels]
        todo = np.flatnonzero(np.isnan(result))
        for start in range(0, todo.size, _CHUNK):
            part = todo[start:start + _CHUNK]
            rows, cols = np.divmod(pixels[part], self.shape[1])
            level = _median_windows(self._image[rows, cols], 5)  # M5 of the 5x5 around
            level += self._background[rows, cols][:, 2:7, 2:7]
            s = self._lplus[rows, cols] / (2.0 * self._noise(level))
            s = s.reshape(part.size, 25)
            result[part] = s[:, 12] - _median(s)
        self._known.flat[pixels] = result
        return result

    def sharpness(self, pixels):
        """``L+ / F`` of ``pixels``, step 4: how much sharper than the fine structure."""
        result = np.empty(pixels.size)
        for start in range(0, pixels.size, _CHUNK):
            part = slice(start, start + _CHUNK)
            rows, cols = np.divmod(pixels[part], self.shape[1])
            patch = self._image[rows, cols]
            smooth3 = _median_windows(patch, 3)               # M3 on the 7x7 around
            fine = smooth3[:, 3, 3] - _median(smooth3.reshape(len(rows), 49))
            level = _median(patch[:, 2:7, 2:7].reshape(len(rows), 25))
            level += self._background[rows, cols][:, 4, 4]
            fine = np.maximum(fine, 0.01 * self._noise(level))
            result[part] = self.lplus.flat[pixels[part]] / fine
        return result

    def _noise(self, level):
        """Step 2's noise (ADU) where the image's 5x5 median is ``level``."""
        return np.sqrt(self.gain * np.maximum(level, 0.0) + self.read_noise ** 2) / self.gain


def _around(pixels, shape, radius):
    """A mask of ``shape``, True within ``radius`` (a square) of ``pixels``."""
    rows, cols = np.divmod(pixels, shape[1])
    mask = np.zeros(shape, bool)
    for dy in range(-radius, radius + 1):
        r = np.clip(rows + dy, 0, shape[0] - 1)
        for dx in range(-radius, radius + 1):
            mask[r, np.clip(cols + dx, 0, shape[1] - 1)] = True
    return mask


def _replace(image, pixels, bad, sky):
    """Replace ``pixels`` of ``image`` in place by the median of the 5×5 neighbours that
    are not ``bad``; by the sky where all of them are."""
    if pixels.size == 0:
        return
    rows, cols = np.divmod(pixels, image.shape[1])
    values = sliding_window_view(np.pad(image, 2, mode="symmetric"), (5, 5))[rows, cols]
    unusable = sliding_window_view(np.pad(bad, 2, mode="symmetric"), (5, 5))[rows, cols]
    values = np.where(unusable, np.nan, values).reshape(pixels.size, 25)
    usable = ~unusable.reshape(pixels.size, 25).all(axis=1)
    replacement = sky.flat[pixels].copy()
    replacement[usable] = np.nanmedian(values[usable], axis=1)
    image.flat[pixels] = replacement


def _sky_lower_bound(image, bad):
    """A lower bound of the local sky: the median of each 32-pixel box, the smallest of
    each box and its 8 neighbours, spread back over the pixels."""
    ny, nx = image.shape
    by, bx = -(-ny // _BOX), -(-nx // _BOX)
    padded = np.full((by * _BOX, bx * _BOX), np.nan)
    padded[:ny, :nx] = np.where(bad, np.nan, image)
    boxes = padded.reshape(by, _BOX, bx, _BOX).swapaxes(1, 2).reshape(by, bx, -1)
    if np.isnan(boxes).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # boxes with no good pixel
            medians = np.nanmedian(boxes, axis=-1)
        fallback = np.nanmedian(medians) if np.isfinite(medians).any() else 0.0
        medians[~np.isfinite(medians)] = fallback
    else:
        medians = np.median(boxes, axis=-1)
    lowest = ndimage.minimum_filter(medians, size=3, mode="nearest")
    return np.repeat(np.repeat(lowest, _BOX, axis=0), _BOX, axis=1)[:ny, :nx]

