"""Regridding exposures onto a common sky grid, and stacking them: the arithmetic of a
coadd.

A `Grid` is a north-up gnomonic (TAN) pixel grid; `covering_grid` finds the smallest
one that holds a set of footprints. `regrid` resamples one exposure (image, inverse
variance weight map, WCS, possibly with SIP distortion) onto the part of a grid it
covers, conserving flux; `stack` combines the regridded exposures into one image with
inverse-variance weights, rejecting outliers that the masks missed.

Speed comes from not asking astropy for the position of every output pixel: the exact
transform (grid pixel → sky → input pixel) is evaluated on a lattice of every
`LATTICE_STEP`-th grid pixel, and a not-a-knot cubic spline through the lattice gives
every pixel's input position (it reproduces any cubic polynomial exactly, and the map
between two tangent planes, with or without SIP, is very nearly one over a lattice
cell; see `LATTICE_STEP` for the measured error). Along x the spline is one small
matrix product per exposure; along y each row is a sum of 4 rows of B-spline
coefficients. Everything per pixel is numpy on blocks of `BLOCK_PIXELS`.

Angles are degrees and pixel scales arcsec per pixel; pixel coordinates are zero-based
(pixel ``(0, 0)``'s centre is at ``(0, 0)``).
"""

import dataclasses
import math

import numpy as np
from astropy.wcs import WCS
from scipy.interpolate import BSpline, CubicSpline, make_interp_spline

from .skymatch import unit_vectors

__all__ = ["LATTICE_STEP", "Grid", "Regridded", "Stacked", "covering_grid", "input_pixels",
           "regrid", "stack"]

LATTICE_STEP = 64
"""Spacing, in grid pixels, of the lattice on which the exact transform is evaluated.
Against the exact per-pixel transform the spline through it is off by 1e-7 pixel for a
2048 x 4096 chip with 8 pixels of SIP distortion at a corner, rotated and at another
pixel scale (and by 4e-4 pixel, its area ratio by 4e-5, for a 400-pixel chip with 3
pixels, 40 times as curved); tests/imaging/test_regrid.py asserts < 0.01 pixel. A
coarser lattice would save little: each pixel costs the same whatever the step."""

BLOCK_PIXELS = 1 << 14
"""Output pixels resampled at once: a block's temporary arrays stay in the CPU cache
and below the allocator's threshold for fresh (page-faulting) memory. (A block of 2¹⁸
pixels made `regrid` three times slower.)"""

STACK_BLOCK_VALUES = 1 << 18
"""Frame values (frames x pixels) stacked at once."""

MEDIAN_VARIANCE = math.pi / 2
"""Variance of the median of n normally distributed values over that of their mean."""


@dataclasses.dataclass(frozen=True)
class Grid:
    """A north-up, east-left gnomonic (TAN) pixel grid on the sky, centred on its
    tangent point."""

    ra: float
    """Right ascension of the tangent point, which is the centre of the grid, degrees."""
    dec: float
    """Declination of the tangent point, degrees."""
    scale: float
    """Pixel size at the tangent point, arcsec."""
    nx: int
    """Pixels along x (east to west: right ascension decreases with x)."""
    ny: int
    """Pixels along y (south to north)."""

    @property
    def shape(self):
        """``(ny, nx)``: the shape of an image on the grid."""
        return (self.ny, self.nx)

    def wcs(self):
        """The grid's `astropy.wcs.WCS`: TAN, ``CD1_1 = -scale``, ``CD2_2 = +scale``,
        the tangent point at the centre pixel ``((nx - 1) / 2, (ny - 1) / 2)``."""
        return _tan_wcs(self.ra, self.dec, self.scale, (self.nx - 1) / 2, (self.ny - 1) / 2,
                        (self.nx, self.ny))


@dataclasses.dataclass(frozen=True, eq=False)
class Regridded:
    """One exposure resampled onto a cut-out of a `Grid`: the bounding box of the grid
    pixels it covers. A 0 x 0 cut-out (at ``(0, 0)``) means it covers none."""

    data: np.ndarray
    """float32 surface brightness, in the input's unit per grid pixel times the scale
    given to `regrid`; 0 where `weight` is 0."""
    weight: np.ndarray
    """float32 inverse variance of `data`; 0 where there is no information."""
    x0: int
    """Grid column of the cut-out's column 0."""
    y0: int
    """Grid row of the cut-out's row 0."""

    @property
    def is_empty(self):
        """Whether the exposure covers no grid pixel at all."""
        return self.data.size == 0


@dataclasses.dataclass(frozen=True, eq=False)
class Stacked:
    """The stack of regridded exposures on a whole grid."""

    data: np.ndarray
    """float32 inverse-variance weighted mean of the accepted values; 0 where no frame
    was accepted (finite everywhere, as source extraction needs)."""
    weight: np.ndarray
    """float32 sum of the accepted frames' weights: the inverse variance of `data` if
    the frames' weights are right; 0 where there is no frame."""
    count: np.ndarray
    """int16 number of frames accepted at each pixel."""


def covering_grid(footprints, scale, ra=None, dec=None, margin=0.0):
    """The smallest north-up TAN grid at ``scale`` that covers every footprint, plus
    ``margin`` on each side.

    The footprints' corners are projected onto the tangent plane (so RA 0/360 needs
    nothing special); since the sides of a TAN image are great circles, and great
    circles are straight lines in the tangent plane, covering the corners covers the
    footprints.

    Parameters
    ----------
    footprints : iterable of ``(N, 2)`` arrays
        ``(ra, dec)`` corners of each footprint, degrees, e.g. a chip's 4 corners
        (`astropy.wcs.WCS.calc_footprint` gives them).
    scale : `float`
        Pixel size, arcsec.
    ra, dec : `float`, optional
        The tangent point. The grid is always centred on it, so if it is off the
        footprints' centre the grid is made large enough to cover them symmetrically
        about it. By default it is the centre of the footprints: their corners' mean
        direction, moved to the middle of their extent in the tangent plane there (so the
        grid is no larger than it needs to be).
    margin : `float`
        Arcsec added on each side.

    Returns
    -------
    grid : `Grid`

    Raises
    ------
    ValueError
        Raised if there are no corners, ``scale`` is not positive, ``margin`` is
        negative, only one of ``ra`` and ``dec`` is given, or a corner is 90 degrees or
        more from the tangent point (no TAN grid holds it).
    """
    corners = _corners(footprints)
    if not scale > 0 or not margin >= 0:
        raise ValueError(f"scale = {scale!r} must be positive and margin = {margin!r} not "
                         "negative (both arcsec)")
    if (ra is None) != (dec is None):
        raise ValueError("give both ra and dec of the tangent point, or neither")
    if ra is None:
        ra, dec = _centre(corners, scale)
    u, v = _offsets(corners, ra, dec, scale)
    pad = margin / scale
    nx = max(1, math.ceil(2 * (np.max(np.abs(u)) + pad) - 1e-6))
    ny = max(1, math.ceil(2 * (np.max(np.abs(v)) + pad) - 1e-6))
    return Grid(float(ra), float(dec), float(scale), int(nx), int(ny))


def regrid(image, weight, wcs, grid, *, scale=1.0):
    """Resample an exposure onto the part of ``grid`` it covers, conserving flux.

    Each output pixel's position in the input is found as described in the module
    docstring. The output is the bilinear interpolation of the input there, times the
    ratio of the output pixel's area to the input pixel's (the local Jacobian
    determinant of the grid-pixel → input-pixel map, from the same spline), times
    ``scale``: a star's summed flux is the same on both pixel grids, to interpolation
    error. The weight is the bilinear interpolation of the input weight divided by
    ``(area ratio × scale)²``. It ignores that interpolation averages noise: between
    input pixel centres the noise is lower than the weight says (half of it at offsets
    of half a pixel in x and y, for uncorrelated input noise), and correlated between
    neighbouring output pixels instead, so the weight is about right for sums over
    apertures of several pixels but overstates the pixel-to-pixel scatter. An output
    pixel gets data 0 and weight 0 if any of the 4 input pixels of its bilinear stencil
    has weight 0 or non-finite data or weight, or if it falls outside the input's pixel
    centres.

    Parameters
    ----------
    image, weight : 2-D arrays of the same shape
        The exposure and its inverse variance (0 where a pixel is bad).
    wcs : `astropy.wcs.WCS`
        The exposure's WCS, celestial, SIP distortion included if it has any.
    grid : `Grid`
        The output grid.
    scale : `float`
        Photometric factor applied to the data, e.g. to bring it to a common zeropoint.

    Returns
    -------
    regridded : `Regridded`
        float32 data and weight over the bounding box of the grid pixels whose bilinear
        stencil lies within the input (weights included or not); 0 x 0 at ``(0, 0)`` if
        there are none.

    Raises
    ------
    ValueError
        Raised if ``image`` and ``weight`` differ in shape or are not 2-D with at least
        2 x 2 pixels, or ``scale`` is not positive and finite.
    """
    data, weights = _clean_input(image, weight)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale = {scale!r}: give a positive, finite photometric factor")
    box = _covered_box(wcs, data.shape, grid)
    if box is None:
        return _empty()
    lattice = _Lattice(wcs, grid, box)
    x0, x1, y0, y1 = box
    out_data = np.zeros((y1 - y0, x1 - x0), np.float32)
    out_weight = np.zeros((y1 - y0, x1 - x0), np.float32)
    rows_inside = np.zeros(y1 - y0, bool)
    columns_inside = np.zeros(x1 - x0, bool)
    for start, stop in _blocks(y1 - y0, x1 - x0):
        x, y, ratio = lattice.rows(start, stop)
        inside = _sample(data, weights, x, y, ratio * scale,
                         out_data[start:stop], out_weight[start:stop])
        rows_inside[start:stop] = inside.any(axis=1)
        columns_inside |= inside.any(axis=0)
    return _trimmed(out_data, out_weight, x0, y0, rows_inside, columns_inside)


def input_pixels(wcs, grid, x0=0, y0=0, nx=None, ny=None):
    """The input pixel positions of a box of grid pixels, as `regrid` finds them.

    Parameters
    ----------
    wcs : `astropy.wcs.WCS`
        The input's WCS.
    grid : `Grid`
        The output grid.
    x0, y0, nx, ny : `int`
        The box: ``nx`` x ``ny`` grid pixels from ``(x0, y0)``; by default the whole grid.

    Returns
    -------
    x, y : ``(ny, nx)`` float64 arrays
        Input pixel coordinates (zero-based) of each grid pixel in the box.
    """
    nx = grid.nx - x0 if nx is None else nx
    ny = grid.ny - y0 if ny is None else ny
    x, y, _ = _Lattice(wcs, grid, (x0, x0 + nx, y0, y0 + ny)).rows(0, ny)
    return x, y


def stack(frames, shape, *, sigma=3.0, min_frames_for_rejection=3, amplitude_fraction=0.3):
    """Inverse-variance weighted mean of regridded exposures, with outlier rejection.

    Rejection, one pass, at each pixel where at least ``min_frames_for_rejection``
    frames have weight: the central value ``c`` is the median of those frames' values
    (unweighted, so robust to one outlier in 3 frames), with variance
    ``var_c = (pi / 2) × sum(1 / w_i) / n²`` (the median's, as if the frames were
    equally deep). A frame's value ``d_i`` (weight ``w_i``) is rejected if

        (d_i - c)² > sigma² × (1 / w_i + var_c + (amplitude_fraction × m)²),

    ``m`` being the largest ``|c|`` at the pixel and its 8 neighbours. The first two
    terms are the noise of the difference. The third, after SWarp's ``CLIP_AMPFRAC``
    (Gruen et al. 2014, PASP 126, 158), lets a source's own profile differ between
    frames (seeing, sub-pixel sampling, registration) by that fraction of its local
    peak, so the cores and steep wings of bright stars are not clipped, while a cosmic
    ray or hot pixel on the sky, many sigma above its neighbours in every frame's
    median, is. The median frame is never rejected. Frames must therefore be on a
    common background (background-subtracted or matched): ``c`` is read as a source's
    amplitude above zero (on an unsubtracted sky rejection only gets weaker), and a sky
    offset of several sigma between frames would be rejected. Below
    ``min_frames_for_rejection`` frames nothing is rejected.

    Parameters
    ----------
    frames : iterable of `Regridded`
        The exposures on one grid; empty ones are skipped.
    shape : ``(ny, nx)``
        The grid's shape (`Grid.shape`).
    sigma : `float`
        Rejection threshold, in units of the difference's error.
    min_frames_for_rejection : `int`
        Fewest frames at a pixel for any to be rejected there.
    amplitude_fraction : `float`
        Fraction of the central value a frame may differ by beyond the noise.

    Returns
    -------
    stacked : `Stacked`
        Over the whole grid: data 0, weight 0, count 0 where no frame has weight.

    Raises
    ------
    ValueError
        Raised if a frame does not lie within ``shape``, or ``sigma`` is not positive.
    """
    ny, nx = (int(n) for n in shape)
    frames = [f for f in frames if not f.is_empty]
    for f in frames:
        if f.x0 < 0 or f.y0 < 0 or f.x0 + f.data.shape[1] > nx or f.y0 + f.data.shape[0] > ny:
            raise ValueError(f"a {f.data.shape[1]}x{f.data.shape[0]} frame at ({f.x0}, "
                             f"{f.y0}) does not lie within the {nx}x{ny} grid; regrid it "
                             "onto this grid")
    if not sigma > 0:
        raise ValueError(f"sigma = {sigma!r}: give a positive rejection threshold")
    data = np.zeros((ny, nx), np.float32)
    weight = np.zeros((ny, nx), np.float32)
    count = np.zeros((ny, nx), np.int16)
    threshold = (sigma ** 2, max(int(min_frames_for_rejection), 1), amplitude_fraction ** 2)
    for start, stop in _blocks(ny, nx * max(len(frames), 1), STACK_BLOCK_VALUES):
        low, high = max(start - 1, 0), min(stop + 1, ny)  # a row more for the neighbours
        block = _gather(frames, low, high)
        if block is not None:
            values, weights, c0, c1 = block
            kept = _kept(values, weights, *threshold)
            rows = np.s_[:, start - low:stop - low]
            _combine(values[rows], weights[rows], kept[rows], data[start:stop, c0:c1],
                     weight[start:stop, c0:c1], count[start:stop, c0:c1])
    return Stacked(data, weight, count)


# --- grids -------------------------------------------------------------------------


def _tan_wcs(ra, dec, scale, x_centre, y_centre, pixel_shape=None):
    """A north-up TAN WCS with the tangent point at zero-based pixel (x_centre, y_centre)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [x_centre + 1, y_centre + 1]
    w.wcs.cd = [[-scale / 3600.0, 0.0], [0.0, scale / 3600.0]]
    w.wcs.radesys = "ICRS"
    if pixel_shape is not None:
        w.pixel_shape = pixel_shape
    return w


def _corners(footprints):
    corners = [np.asarray(f, np.float64).reshape(-1, 2) for f in footprints]
    corners = np.concatenate(corners) if corners else np.empty((0, 2))
    if not len(corners) or not np.all(np.isfinite(corners)):
        raise ValueError("footprints: give at least one (N, 2) array of finite (ra, dec) "
                         "corners, degrees")
    return corners


def _offsets(corners, ra, dec, scale):
    """Pixel offsets (x, y) of the corners from the tangent point ``(ra, dec)``."""
    x, y = _tan_wcs(ra, dec, scale, 0.0, 0.0).world_to_pixel_values(corners[:, 0],
                                                                     corners[:, 1])
    cosine = np.dot(np.column_stack(unit_vectors(corners[:, 0], corners[:, 1])),
                    np.array(unit_vectors(ra, dec)))
    if np.any(cosine <= 1e-6) or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"footprints reach 90 degrees or more from the tangent point "
                         f"({ra:.5f}, {dec:.5f}): no TAN grid holds them; split them")
    return x, y


def _centre(corners, scale):
    """The corners' mean direction, moved to the middle of their tangent-plane extent."""
    vector = np.array(unit_vectors(corners[:, 0], corners[:, 1])).mean(axis=1)
    if np.linalg.norm(vector) < 1e-9:
        raise ValueError("footprints surround the sphere: no TAN grid holds them")
    ra = math.degrees(math.atan2(vector[1], vector[0])) % 360.0
    dec = math.degrees(math.asin(np.clip(vector[2] / np.linalg.norm(vector), -1, 1)))
    for _ in range(3):  # moving the tangent point distorts the projection a little
        u, v = _offsets(corners, ra, dec, scale)
        middle = ((u.min() + u.max()) / 2, (v.min() + v.max()) / 2)
        ra, dec = (float(c) for c in
                   _tan_wcs(ra, dec, scale, 0.0, 0.0).pixel_to_world_values(*middle))
    return ra % 360.0, dec


# --- regridding --------------------------------------------------------------------


def _empty():
    nothing = np.zeros((0, 0), np.float32)
    return Regridded(nothing, nothing.copy(), 0, 0)


def _clean_input(image, weight):
    """The image as contiguous float32 (not copied if it is), and a float32 copy of the
    weight, 0 wherever the weight or the image is unusable (the image's values there
    are never read)."""
    image, weight = np.ascontiguousarray(image, dtype=np.float32), np.asarray(weight)
    if image.ndim != 2 or image.shape != weight.shape or min(image.shape) < 2:
        raise ValueError(f"image {image.shape} and weight {weight.shape}: give 2-D arrays "
                         "of the same shape, at least 2 x 2")
    with np.errstate(invalid="ignore"):
        good = np.isfinite(image) & np.isfinite(weight) & (weight > 0)
    return image, np.where(good, weight, 0).astype(np.float32, copy=False)


def _world_to_pixel(wcs, ra, dec):
    """Pixel coordinates in ``wcs`` (SIP included) of sky positions."""
    world = (ra, dec) if wcs.wcs.lng == 0 else (dec, ra)
    return wcs.world_to_pixel_values(*world)


def _pixel_to_world(wcs, x, y):
    world = wcs.pixel_to_world_values(x, y)
    return world if wcs.wcs.lng == 0 else world[::-1]


def _covered_box(wcs, shape, grid):
    """``(x0, x1, y0, y1)`` (ends exclusive) of the grid pixels that the input's
    pixel-centre rectangle may cover, a pixel wider all round; None if none."""
    ny, nx = shape
    edge_x = np.linspace(0, nx - 1, max(2, (nx - 1) // 32 + 2))
    edge_y = np.linspace(0, ny - 1, max(2, (ny - 1) // 32 + 2))
    x = np.concatenate([edge_x, edge_x, np.zeros_like(edge_y), np.full_like(edge_y, nx - 1)])
    y = np.concatenate([np.zeros_like(edge_x), np.full_like(edge_x, ny - 1), edge_y, edge_y])
    ra, dec = _pixel_to_world(wcs, x, y)
    facing = np.dot(np.column_stack(unit_vectors(ra, dec)),
                    np.array(unit_vectors(grid.ra, grid.dec)))
    if np.any(facing <= 0.1):  # more than ~84 degrees away: nowhere near a TAN grid
        return None
    u, v = grid.wcs().world_to_pixel_values(ra, dec)
    x0, x1 = max(math.floor(u.min()) - 1, 0), min(math.ceil(u.max()) + 2, grid.nx)
    y0, y1 = max(math.floor(v.min()) - 1, 0), min(math.ceil(v.max()) + 2, grid.ny)
    return (x0, x1, y0, y1) if x1 > x0 and y1 > y0 else None


def _spline_matrices(nodes, positions):
    """Matrices taking values at ``nodes`` to the not-a-knot cubic spline through them
    at ``positions``, and to its derivative at the nodes."""
    spline = CubicSpline(nodes, np.eye(len(nodes)), axis=0)
    return spline(positions), spline.derivative()(nodes)


def _nodes(start, stop):
    """Lattice nodes over ``[start, stop - 1]``: every `LATTICE_STEP`, the last pixel,
    and at least two."""
    last = max(stop - 1, start + 1)
    nodes = np.arange(start, last, LATTICE_STEP, dtype=np.float64)
    if last - nodes[-1] < LATTICE_STEP / 4 and len(nodes) > 1:
        nodes = nodes[:-1]  # no sliver of a last cell
    return np.append(nodes, last)


class _Lattice:
    """The grid → input pixel map of a box of grid pixels: exact on a lattice, a
    cubic spline in between; rows of it on demand.

    The maps (input x, input y, area ratio) are interpolated along u once, with dense
    matrices; along v, where most of the pixels are, each row is a sum of 4 rows of
    B-spline coefficients. (A dense matrix product there is no faster, and BLAS's
    threads slow it down badly when the other core is busy.)"""

    def __init__(self, wcs, grid, box):
        x0, x1, y0, y1 = box
        u_nodes, v_nodes = _nodes(x0, x1), _nodes(y0, y1)
        u, v = np.meshgrid(u_nodes, v_nodes)
        ra, dec = grid.wcs().pixel_to_world_values(u, v)
        x, y = _world_to_pixel(wcs, ra, dec)
        along_u, du = _spline_matrices(u_nodes, np.arange(x0, x1))
        _, dv = _spline_matrices(v_nodes, v_nodes)
        determinant = (x @ du.T) * (dv @ y) - (dv @ x) * (y @ du.T)
        self.width = x1 - x0
        maps = np.hstack([values @ along_u.T for values in (x, y, np.abs(determinant))])
        degree = min(3, len(v_nodes) - 1)  # not-a-knot, as CubicSpline
        knots = make_interp_spline(v_nodes, np.zeros(len(v_nodes)), k=degree).t
        collocation = BSpline.design_matrix(v_nodes, knots, degree).toarray()
        design = BSpline.design_matrix(np.arange(y0, y1, dtype=np.float64), knots, degree)
        self.coefficients = np.linalg.solve(collocation, maps)
        self.index = design.indices.reshape(y1 - y0, degree + 1)
        self.basis = design.data.reshape(y1 - y0, degree + 1)

    def rows(self, start, stop):
        """Input ``x``, ``y`` and the output/input pixel area ratio of box rows
        ``start`` to ``stop``."""
        index, basis = self.index[start:stop], self.basis[start:stop]
        maps = basis[:, :1] * self.coefficients[index[:, 0]]
        for k in range(1, index.shape[1]):
            maps += basis[:, k:k + 1] * self.coefficients[index[:, k]]
        w = self.width
        return maps[:, :w], maps[:, w:2 * w], maps[:, 2 * w:]


def _blocks(rows, width, size=BLOCK_PIXELS):
    """``(start, stop)`` row ranges of about ``size`` pixels each."""
    step = max(1, size // max(width, 1))
    return [(start, min(start + step, rows)) for start in range(0, rows, step)]


def _sample(data, weights, x, y, factor, out_data, out_weight):
    """Bilinear samples of data and weight at (x, y), times ``factor`` and over
    ``factor²``, into the output; returns where the stencil lies within the input."""
    ny, nx = data.shape
    inside = (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    ix = np.clip(np.floor(x), 0, nx - 2).astype(np.intp)
    iy = np.clip(np.floor(y), 0, ny - 2).astype(np.intp)
    fx, fy = (x - ix).astype(np.float32), (y - iy).astype(np.float32)
    index = iy * nx + ix
    corners = [index, index + 1, index + nx, index + nx + 1]
    d, w = data.ravel(), weights.ravel()
    d00, d01, d10, d11 = (d.take(i) for i in corners)
    w00, w01, w10, w11 = (w.take(i) for i in corners)
    good = inside & (np.minimum(np.minimum(w00, w01), np.minimum(w10, w11)) > 0)
    with np.errstate(invalid="ignore", over="ignore"):  # from bad pixels, not kept
        bottom = d00 + fx * (d01 - d00)
        value = bottom + fy * (d10 + fx * (d11 - d10) - bottom)
    bottom = w00 + fx * (w01 - w00)
    weight = bottom + fy * (w10 + fx * (w11 - w10) - bottom)
    factor = factor.astype(np.float32)
    np.multiply(value, factor, out=out_data, where=good)
    np.divide(weight, factor * factor, out=out_weight, where=good)
    return inside


def _trimmed(data, weight, x0, y0, rows_inside, columns_inside):
    if not rows_inside.any():
        return _empty()
    r0, r1 = np.flatnonzero(rows_inside)[[0, -1]]
    c0, c1 = np.flatnonzero(columns_inside)[[0, -1]]
    window = np.s_[r0:r1 + 1, c0:c1 + 1]  # views: a copy costs more than the rim saves
    return Regridded(data[window], weight[window], int(x0 + c0), int(y0 + r0))


# --- stacking ----------------------------------------------------------------------


def _gather(frames, start, stop):
    """The frames' values and weights in grid rows ``start`` to ``stop``, over the
    columns ``c0`` to ``c1`` any of them covers: ``(values, weights, c0, c1)``, each
    array ``(n_frames, rows, c1 - c0)``; None if no frame reaches these rows."""
    here = [f for f in frames if f.y0 < stop and f.y0 + f.data.shape[0] > start]
    if not here:
        return None
    c0 = min(f.x0 for f in here)
    c1 = max(f.x0 + f.data.shape[1] for f in here)
    values = np.zeros((len(here), stop - start, c1 - c0), np.float32)
    weights = np.zeros_like(values)
    for k, f in enumerate(here):
        r0, r1 = max(start, f.y0), min(stop, f.y0 + f.data.shape[0])
        target = np.s_[k, r0 - start:r1 - start, f.x0 - c0:f.x0 - c0 + f.data.shape[1]]
        values[target] = f.data[r0 - f.y0:r1 - f.y0]
        weights[target] = f.weight[r0 - f.y0:r1 - f.y0]
    return values, weights, c0, c1


def _kept(values, weights, sigma2, min_frames, fraction2):
    """Which frames' values are kept at each pixel (see `stack`)."""
    valid = weights > 0
    n = valid.sum(axis=0)
    if len(values) < min_frames or not np.any(n >= min_frames):
        return valid
    centre = _median(values, valid, n)
    variance = np.divide(1.0, weights, out=np.zeros_like(weights), where=valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre_variance = MEDIAN_VARIANCE * variance.sum(axis=0) / (n * n)
    peak = _neighbourhood_max(np.abs(np.nan_to_num(centre)))
    allowed = sigma2 * (variance + centre_variance + fraction2 * peak * peak)
    deviation = values - centre
    rejected = (deviation * deviation > allowed) & (n >= min_frames)
    return valid & ~rejected


def _neighbourhood_max(image):
    """The largest value of each pixel and its 8 neighbours (within the array)."""
    rows = image.copy()
    np.maximum(rows[:, 1:], image[:, :-1], out=rows[:, 1:])
    np.maximum(rows[:, :-1], image[:, 1:], out=rows[:, :-1])
    result = rows.copy()
    np.maximum(result[1:], rows[:-1], out=result[1:])
    np.maximum(result[:-1], rows[1:], out=result[:-1])
    return result


def _median(values, valid, n):
    """Median of the valid values at each pixel (NaN where there are none)."""
    ordered = np.sort(np.where(valid, values, np.inf), axis=0)
    low = np.maximum((n - 1) // 2, 0)[None]
    high = (n // 2)[None]
    with np.errstate(invalid="ignore"):
        middle = 0.5 * (np.take_along_axis(ordered, low, axis=0)[0]
                        + np.take_along_axis(ordered, np.minimum(high, len(values) - 1),
                                             axis=0)[0])
    return np.where(n > 0, middle, np.nan)


def _combine(values, weights, kept, out_data, out_weight, out_count):
    """The weighted mean of the kept values, their total weight and number."""
    used = np.where(kept, weights, 0)
    total = used.sum(axis=0)
    np.divide((used * values).sum(axis=0), total, out=out_data, where=total > 0)
    out_weight[...] = total
    out_count[...] = kept.sum(axis=0)
