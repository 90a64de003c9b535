"""`targets.imaging.regrid`: against reproject's bilinear ``reproject_interp`` on the same
inputs, against the exact per-pixel WCS transform, and on synthetic star fields and
noise whose truth is known.

Tolerances, and why:

- Pixel values against reproject: both interpolate bilinearly at positions that differ
  only by our coordinate-lattice error (at most 4e-4 pixel here, for the 400-pixel
  chips with 3 pixels of SIP distortion, 40 times as curved as a 4096-pixel chip with
  8), so they agree to ``2e-3 × G``, ``G`` the largest difference between neighbouring
  input pixels (bounding the change of the bilinear surface over 1e-3 pixel in x and
  y), plus 1e-6 of the largest value for float32 rounding. reproject does not scale by
  the pixel area, so ours is divided by the area ratio found independently (central
  differences of the exact transform); ours is within 1e-4 of that one.
- Coordinates: < 0.01 pixel against the exact transform (the promise of
  `LATTICE_STEP`) for a 4096-pixel chip with 8 pixels of SIP distortion.
- Flux of isolated stars across a change of pixel scale: 0.5 %.
- Noise: measured on ~14,000 pixels (0.6 % statistical error), 5 %. (3-sigma rejection
  of pure noise throws away 0.2 % of 16 frames' values and adds about 1 % to the
  noise: after a false rejection the median, and the values kept, lean the other way.)
- Rejection: a cosmic ray's pixels within 3 sigma of the truth; a bright star's flux
  within 1 %.
"""

import numpy as np
import pytest
from astropy.wcs import WCS
from reproject import reproject_interp

from targets.imaging.regrid import (LATTICE_STEP, Grid, Regridded, covering_grid,
                                    input_pixels, regrid, stack)
from tests.imaging.starfield import tan_wcs

NOISE = 10.0
"""Background noise of the synthetic frames (ADU); their weight is 1 / NOISE²."""


def stars_image(wcs, shape, ra, dec, flux, sigma):
    """Gaussian stars (``sigma`` pixels) at sky positions, sampled at pixel centres: for
    ``sigma`` >= 1 pixel each sums to its flux to 1e-8."""
    image = np.zeros(shape)
    x, y = wcs.world_to_pixel_values(ra, dec)
    radius = int(np.ceil(7 * sigma))
    for xs, ys, f in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux)):
        x0, y0 = int(round(xs)), int(round(ys))
        rows = slice(max(y0 - radius, 0), min(y0 + radius + 1, shape[0]))
        cols = slice(max(x0 - radius, 0), min(x0 + radius + 1, shape[1]))
        yy, xx = np.mgrid[rows, cols]
        image[rows, cols] += (f / (2 * np.pi * sigma ** 2)
                              * np.exp(-((xx - xs) ** 2 + (yy - ys) ** 2) / (2 * sigma ** 2)))
    return image


def star_positions(wcs, shape, n, seed, border=30):
    """``n`` random sky positions at least ``border`` pixels inside the image."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(border, shape[1] - border, n)
    y = rng.uniform(border, shape[0] - border, n)
    return wcs.pixel_to_world_values(x, y)


def footprint(wcs, shape):
    """Sky corners of an image (the outer edges of its corner pixels)."""
    ny, nx = shape
    x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    return np.column_stack(wcs.pixel_to_world_values(x, y))


def sip_coefficients(shape, corner_shift):
    """SIP A and B of degree 3 (a mix of quadratic and cubic terms) that move the
    farthest corner of an image of ``shape`` by ``corner_shift`` pixels, as wide-field
    optics do (8 pixels at the corner of a 4096-pixel chip is a lot)."""
    h = max(shape) / 2
    a, b = np.zeros((4, 4)), np.zeros((4, 4))
    a[2, 0], a[0, 2], a[1, 1] = 0.15 / h ** 2, 0.25 / h ** 2, -0.1 / h ** 2
    a[3, 0], a[1, 2], a[2, 1] = 0.2 / h ** 3, 0.15 / h ** 3, -0.05 / h ** 3
    b[0, 2], b[2, 0], b[1, 1] = -0.2 / h ** 2, 0.1 / h ** 2, 0.12 / h ** 2
    b[0, 3], b[2, 1], b[1, 2] = 0.25 / h ** 3, 0.1 / h ** 3, 0.05 / h ** 3
    u = np.array([-1, 1, 1, -1]) * shape[1] / 2
    v = np.array([-1, -1, 1, 1]) * shape[0] / 2
    powers = [(u ** p) * (v ** q) for p in range(4) for q in range(4)]
    du = sum(a[p, q] * powers[4 * p + q] for p in range(4) for q in range(4))
    dv = sum(b[p, q] * powers[4 * p + q] for p in range(4) for q in range(4))
    factor = corner_shift / np.hypot(du, dv).max()
    return a * factor, b * factor


def exact_input_pixels(wcs, grid, u, v):
    """Input pixel positions of grid pixels (u, v), through astropy (SIP inverted
    iteratively)."""
    ra, dec = grid.wcs().pixel_to_world_values(u, v)
    return wcs.world_to_pixel_values(ra, dec)


def exact_area_ratio(wcs, grid, u, v, h=0.5):
    """Output over input pixel area at grid pixels (u, v): the Jacobian determinant of
    the exact grid → input map, by central differences."""
    x_east, y_east = exact_input_pixels(wcs, grid, u + h, v)
    x_west, y_west = exact_input_pixels(wcs, grid, u - h, v)
    x_north, y_north = exact_input_pixels(wcs, grid, u, v + h)
    x_south, y_south = exact_input_pixels(wcs, grid, u, v - h)
    return np.abs((x_east - x_west) * (y_north - y_south)
                  - (x_north - x_south) * (y_east - y_west)) / (2 * h) ** 2


def frames_of(rng, wcs, shape, *, masked=0.001):
    """Noise of `NOISE` and its weight map, a fraction ``masked`` of pixels at weight 0."""
    noise = rng.normal(0, NOISE, shape)
    weight = np.full(shape, 1 / NOISE ** 2, np.float32)
    weight[rng.random(shape) < masked] = 0
    return noise, weight


def aligned_wcs(grid, dx, dy, shape, rotation=0.0):
    """A WCS sharing the grid's tangent point and scale whose pixel (x, y) is grid
    pixel (x + dx, y + dy) (for rotation 0)."""
    w = grid.wcs()
    w.wcs.crpix = [w.wcs.crpix[0] - dx, w.wcs.crpix[1] - dy]
    c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
    w.wcs.cd = grid.scale / 3600 * np.array([[-c, s], [s, c]])
    w.pixel_shape = (shape[1], shape[0])
    return w


def placed(frame, shape):
    """A `Regridded` frame's data and weight on the whole grid."""
    data, weight = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    rows, cols = frame.data.shape
    data[frame.y0:frame.y0 + rows, frame.x0:frame.x0 + cols] = frame.data
    weight[frame.y0:frame.y0 + rows, frame.x0:frame.x0 + cols] = frame.weight
    return data, weight


# --- against reproject ---------------------------------------------------------------

CASES = {
    # name: (ra, dec, rotation, SIP, output scale)
    "rotated": (150.0, 2.0, 17.0, False, 0.25),
    "sip": (150.0, 2.0, 5.0, True, 0.25),
    "ra_0_360": (359.998, -5.0, -8.0, False, 0.25),
    "coarser": (150.0, 40.0, 30.0, False, 0.4),
    "finer_sip": (210.0, -60.0, -12.0, True, 0.15),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_regrid_agrees_with_reproject_interp_bilinear(case):
    ra, dec, rotation, sip, scale = CASES[case]
    shape = (300, 400)
    wcs = tan_wcs(shape, ra=ra, dec=dec, rotation=rotation,
                  sip=sip_coefficients(shape, 3.0) if sip else None)
    star_ra, star_dec = star_positions(wcs, shape, 15, seed=3)
    rng = np.random.default_rng(4)
    noise, weight = frames_of(rng, wcs, shape)
    image = (stars_image(wcs, shape, star_ra, star_dec, rng.uniform(1e3, 1e5, 15), 2.0)
             + noise).astype(np.float32)
    grid = covering_grid([footprint(wcs, shape)], scale, margin=3.0)
    before = image.copy(), weight.copy()

    ours = regrid(image, weight, wcs, grid)
    theirs, _ = reproject_interp((image, wcs), grid.wcs(), shape_out=grid.shape,
                                 order="bilinear")

    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(weight, before[1])
    rows, cols = ours.data.shape
    theirs = theirs[ours.y0:ours.y0 + rows, ours.x0:ours.x0 + cols]
    good = ours.weight > 0
    v, u = (index[::5] for index in np.nonzero(good))  # every 5th: the exact map is slow
    ratio = exact_area_ratio(wcs, grid, u + ours.x0, v + ours.y0)
    if case in ("rotated", "ra_0_360"):
        assert np.max(np.abs(ratio - 1)) < 1e-6, "same pixel scale, no distortion"
    gradient = max(np.abs(np.diff(image, axis=0)).max(), np.abs(np.diff(image, axis=1)).max())
    tolerance = 2e-3 * gradient + 1e-6 * np.abs(image).max()
    assert good.sum() > 20_000 and np.all(np.isfinite(theirs[good]))
    assert np.max(np.abs(ours.data[v, u] / ratio - theirs[v, u])) < tolerance
    assert np.all(ours.data[~good] == 0) and np.all(ours.weight[~good] == 0)
    # The weight is the interpolated weight over the squared area ratio (ours, from the
    # spline, is within 4e-5 of the exact one for the strongly distorted small chips).
    np.testing.assert_allclose(ours.weight[v, u] * ratio ** 2, 1 / NOISE ** 2, rtol=1e-4)


@pytest.mark.parametrize("scale", [0.15, 0.4])
def test_flux_of_isolated_stars_is_conserved_across_pixel_scales(scale):
    shape = (300, 400)
    wcs = tan_wcs(shape, ra=80.0, dec=-30.0, rotation=30.0, sip=sip_coefficients(shape, 3.0))
    ra, dec = star_positions(wcs, shape, 6, seed=5, border=40)
    # Keep the stars isolated: at least 30 input pixels apart.
    x, y = wcs.world_to_pixel_values(ra, dec)
    apart = np.hypot(x[:, None] - x, y[:, None] - y) + 1e9 * np.eye(len(x))
    keep = apart.min(axis=1) > 30
    ra, dec, flux = ra[keep], dec[keep], np.full(keep.sum(), 1e5)
    assert len(flux) >= 2
    image = stars_image(wcs, shape, ra, dec, flux, 2.0).astype(np.float32)
    grid = covering_grid([footprint(wcs, shape)], scale)

    ours = regrid(image, np.ones(shape), wcs, grid)

    u, v = grid.wcs().world_to_pixel_values(ra, dec)
    radius = 12 * 0.25 / scale  # 12 input pixels, 6 sigma
    vv, uu = np.mgrid[:ours.data.shape[0], :ours.data.shape[1]]
    for star_u, star_v, star_flux in zip(u - ours.x0, v - ours.y0, flux):
        aperture = np.hypot(uu - star_u, vv - star_v) < radius
        assert np.all(ours.weight[aperture] > 0)
        assert ours.data[aperture].sum() == pytest.approx(star_flux, rel=0.005)


def test_scale_multiplies_data_and_divides_weight():
    shape = (60, 80)
    wcs = tan_wcs(shape, rotation=3.0)
    rng = np.random.default_rng(6)
    image, weight = frames_of(rng, wcs, shape)
    grid = covering_grid([footprint(wcs, shape)], 0.25)
    one, three = regrid(image, weight, wcs, grid), regrid(image, weight, wcs, grid, scale=3.0)
    np.testing.assert_allclose(three.data, 3 * one.data, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(three.weight, one.weight / 9, rtol=1e-6)


def test_a_bad_pixel_zeroes_every_output_pixel_whose_stencil_touches_it():
    shape = (50, 50)
    grid = Grid(150.0, 2.0, 0.25, 60, 60)
    wcs = aligned_wcs(grid, 5.3, 4.6, shape)  # input (x, y) is grid (x + 5.3, y + 4.6)
    image, weight = np.ones(shape), np.ones(shape)
    weight[20, 30] = 0
    image[10, 10] = np.nan
    ours = regrid(image, weight, wcs, grid)
    data, out_weight = placed(ours, grid.shape)
    # Grid pixel (u, v) reads input (u - 5.3, v - 4.6): the stencils touching input
    # (30, 20) are those of grid columns 35, 36 and rows 24, 25.
    bad = np.zeros(grid.shape, bool)
    bad[24:26, 35:37] = True
    bad[14:16, 15:17] = True
    inside = np.zeros(grid.shape, bool)
    inside[5:54, 6:55] = True  # input x 0.7 .. 48.7, y 0.4 .. 48.4
    assert np.array_equal(out_weight > 0, inside & ~bad)
    assert np.all(data[~(inside & ~bad)] == 0)
    np.testing.assert_allclose(data[inside & ~bad], 1, rtol=1e-6)


# --- coordinates against the exact transform ---------------------------------------------


def test_coordinate_lattice_is_within_a_hundredth_of_a_pixel_of_the_exact_transform():
    shape = (4096, 2048)
    wcs = tan_wcs(shape, ra=120.0, dec=-35.0, rotation=25.0, sip=sip_coefficients(shape, 8.0))
    corners = np.array([[0, 0], [2047, 0], [2047, 4095], [0, 4095]], float)
    tan_only = tan_wcs(shape, ra=120.0, dec=-35.0, rotation=25.0)
    moved = tan_only.all_world2pix(wcs.all_pix2world(corners, 0), 0) - corners
    assert 7 < np.hypot(*moved.T).max() < 9, "about 8 pixels of distortion at a corner"
    grid = covering_grid([footprint(wcs, shape)], 0.3)
    x, y = input_pixels(wcs, grid)
    rng = np.random.default_rng(7)
    v = np.concatenate([rng.integers(0, grid.ny, 200_000), np.arange(grid.ny),
                        np.arange(grid.ny), np.zeros(grid.nx, int),
                        np.full(grid.nx, grid.ny - 1)])
    u = np.concatenate([rng.integers(0, grid.nx, 200_000), np.zeros(grid.ny, int),
                        np.full(grid.ny, grid.nx - 1), np.arange(grid.nx), np.arange(grid.nx)])
    exact_x, exact_y = exact_input_pixels(wcs, grid, u, v)
    near = ((exact_x > -LATTICE_STEP) & (exact_x < shape[1] + LATTICE_STEP)
            & (exact_y > -LATTICE_STEP) & (exact_y < shape[0] + LATTICE_STEP))
    error = np.hypot(x[v, u] - exact_x, y[v, u] - exact_y)[near]
    assert near.sum() > 100_000
    assert error.max() < 0.01


def test_regridding_a_ramp_recovers_the_input_column_everywhere():
    # Bilinear interpolation of a linear ramp is exact, so data / area ratio is the
    # input x of each output pixel; the weight (1 / ratio² for weight 1) gives the ratio.
    shape = (4096, 2048)
    wcs = tan_wcs(shape, ra=0.02, dec=10.0, rotation=-40.0, sip=sip_coefficients(shape, 8.0))
    ramp = np.broadcast_to(np.arange(shape[1], dtype=np.float32), shape)
    grid = covering_grid([footprint(wcs, shape)], 0.25)
    ours = regrid(ramp, np.ones(shape, np.float32), wcs, grid)
    good = ours.weight > 0
    x = ours.data[good] * np.sqrt(ours.weight[good])
    v, u = np.nonzero(good)
    exact_x, _ = exact_input_pixels(wcs, grid, u[::200] + ours.x0, v[::200] + ours.y0)
    assert good.sum() > 0.99 * (shape[0] - 1) * (shape[1] - 1)
    assert np.max(np.abs(x[::200] - exact_x)) < 0.01


# --- stacking: noise ----------------------------------------------------------------------


def noise_stack(n_frames, shift, seed=8):
    """Stack of ``n_frames`` noise frames of 160 x 160 on a 200 x 200 grid, at integer
    offsets up to 40 pixels plus ``shift`` (the same sub-pixel part for all)."""
    grid = Grid(45.0, 20.0, 0.25, 200, 200)
    rng = np.random.default_rng(seed)
    shape = (160, 160)
    frames = []
    for dx, dy in rng.integers(0, 41, (n_frames, 2)):
        wcs = aligned_wcs(grid, dx + shift, dy + shift, shape)
        noise, weight = frames_of(rng, wcs, shape, masked=0)
        frames.append(regrid(noise, weight, wcs, grid))
    return stack(frames, grid.shape)


def test_coadd_noise_falls_as_one_over_sqrt_n_and_matches_its_weight():
    # Integer shifts: interpolation copies pixels, so no noise correlation.
    measured = {}
    for n in (1, 4, 16):
        coadd = noise_stack(n, 0.0)
        everywhere = slice(41, 159)  # covered by every frame
        data = coadd.data[everywhere, everywhere]
        weight = coadd.weight[everywhere, everywhere]
        measured[n] = np.std(data)
        assert np.std(data) == pytest.approx(np.median(1 / np.sqrt(weight)), rel=0.05)
        assert np.mean(coadd.count[everywhere, everywhere]) > 0.99 * n
    assert measured[1] / measured[4] == pytest.approx(2, rel=0.05)
    assert measured[1] / measured[16] == pytest.approx(4, rel=0.05)


def test_half_pixel_shifts_halve_the_noise_that_the_weight_promises():
    # At (0.5, 0.5) each output pixel averages 4 input pixels: the noise is halved,
    # while the weight, an interpolated inverse variance, is not. The stated weight is
    # conservative by up to this factor between input pixel centres.
    coadd = noise_stack(1, 0.5)
    everywhere = slice(42, 158)
    data, weight = coadd.data[everywhere, everywhere], coadd.weight[everywhere, everywhere]
    assert np.std(data) / np.median(1 / np.sqrt(weight)) == pytest.approx(0.5, rel=0.05)


# --- stacking: rejection ---------------------------------------------------------------


def star_frames(seeing, *, seed=9, cosmic=None, shape=(160, 160)):
    """Frames of one bright and a few faint stars with the given seeing (Gaussian sigma,
    pixels), dithered by a few pixels with sub-pixel parts; ``cosmic`` = (frame, x, y,
    ADU) adds an unmasked hit. Returns the grid, the frames, their WCSs and the stars
    (ra, dec, flux)."""
    grid = Grid(150.0, 2.0, 0.25, 180, 180)
    ra = np.array([150.0, 150.003, 149.996, 150.004])
    dec = np.array([2.0, 2.004, 1.996, 1.997])
    flux = np.array([3e5, 5e3, 8e3, 2e4])
    rng = np.random.default_rng(seed)
    frames, wcs_list = [], []
    for k, sigma in enumerate(seeing):
        dx, dy = rng.uniform(5, 15, 2)
        wcs = aligned_wcs(grid, dx, dy, shape, rotation=rng.uniform(-0.5, 0.5))
        noise, weight = frames_of(rng, wcs, shape, masked=0)
        image = stars_image(wcs, shape, ra, dec, flux, sigma) + noise
        if cosmic is not None and cosmic[0] == k:
            image[cosmic[2], cosmic[1]] += cosmic[3]
        frames.append(regrid(image.astype(np.float32), weight, wcs, grid))
        wcs_list.append(wcs)
    return grid, frames, wcs_list, (ra, dec, flux)


def aperture_flux(coadd, grid, ra, dec, radius):
    u, v = grid.wcs().world_to_pixel_values(ra, dec)
    vv, uu = np.mgrid[:grid.ny, :grid.nx]
    aperture = np.hypot(uu - u, vv - v) < radius
    return coadd.data[aperture].sum(), coadd.count[aperture]


def test_a_cosmic_ray_in_one_of_five_frames_is_rejected_and_a_bright_star_is_not():
    seeing = [1.8, 1.9, 2.0, 2.1, 2.2]  # FWHM 1.06 to 1.30 arcsec, ±10 %
    grid, frames, wcs_list, (ra, dec, flux) = star_frames(seeing,
                                                          cosmic=(2, 100, 60, 3000.0))
    coadd = stack(frames, grid.shape)

    # The grid pixels whose values frame 2's input pixel (100, 60) reaches.
    u, v = grid.wcs().world_to_pixel_values(*wcs_list[2].pixel_to_world_values(100, 60))
    around = np.s_[int(v) - 1:int(v) + 3, int(u) - 1:int(u) + 3]
    truth = stack(star_frames(seeing)[1], grid.shape)  # the same frames without the hit
    sigma = 1 / np.sqrt(coadd.weight[around])
    assert np.all(np.abs(coadd.data[around] - truth.data[around]) < 3 * sigma)
    assert np.all(np.abs(coadd.data[around]) < 3 * sigma), "the sky there is 0"
    unprotected = stack(frames, grid.shape, sigma=1e9)
    assert np.max(unprotected.data[around]) > 10 * np.max(sigma), "it was a hit"

    total, _ = aperture_flux(coadd, grid, ra[0], dec[0], 14)
    assert total == pytest.approx(flux[0], rel=0.01)
    _, count = aperture_flux(coadd, grid, ra[0], dec[0], 6)
    assert np.all(count == 5), "no frame is clipped on the star's core"


def test_a_bright_star_is_not_clipped_in_three_frames_of_different_seeing():
    grid, frames, _, (ra, dec, flux) = star_frames([1.9, 2.0, 2.15], seed=10)
    coadd = stack(frames, grid.shape)
    _, count = aperture_flux(coadd, grid, ra[0], dec[0], 6)
    assert np.all(count == 3)
    total, _ = aperture_flux(coadd, grid, ra[0], dec[0], 14)
    assert total == pytest.approx(flux[0], rel=0.01)
    # Without the amplitude term, rejection by the noise alone would clip its core.
    _, count = aperture_flux(stack(frames, grid.shape, amplitude_fraction=0.0), grid,
                             ra[0], dec[0], 6)
    assert np.any(count < 3)


def test_stack_of_one_frame_is_the_frame_and_two_frames_reject_nothing():
    grid, frames, _, _ = star_frames([2.0, 2.0], cosmic=(1, 80, 80, 5000.0))
    single = stack(frames[:1], grid.shape)
    data, weight = placed(frames[0], grid.shape)
    np.testing.assert_allclose(single.data, data, rtol=1e-6, atol=1e-6)  # float32 w·d/w
    np.testing.assert_array_equal(single.weight, weight)
    assert np.array_equal(single.count, (weight > 0).astype(np.int16))
    pair = stack(frames, grid.shape)
    assert pair.count.max() == 2 and pair.count.dtype == np.int16
    assert np.all(pair.count[pair.weight > 0] >= 1)
    both = (placed(frames[0], grid.shape)[1] > 0) & (placed(frames[1], grid.shape)[1] > 0)
    assert np.all(pair.count[both] == 2)


# --- the grid ---------------------------------------------------------------------------


def assert_covers_tightly(grid, footprints, margin=0.0):
    """Every corner inside the grid's pixels, and no side more than 2 pixels + margin
    further out than the outermost corner."""
    u, v = grid.wcs().world_to_pixel_values(*np.concatenate(footprints).T)
    pad = margin / grid.scale
    assert u.min() >= -0.5 + pad - 1e-6 and u.max() <= grid.nx - 0.5 - pad + 1e-6
    assert v.min() >= -0.5 + pad - 1e-6 and v.max() <= grid.ny - 0.5 - pad + 1e-6
    assert u.min() + 0.5 <= pad + 2 and grid.nx - 0.5 - u.max() <= pad + 2
    assert v.min() + 0.5 <= pad + 2 and grid.ny - 0.5 - v.max() <= pad + 2


@pytest.mark.parametrize("margin", [0.0, 5.0])
def test_covering_grid_covers_dithered_rotated_chips_tightly(margin):
    pointings = [(0, 0, 0), (0.01, 0.005, 10), (-0.004, 0.02, -7), (0.03, -0.01, 45)]
    footprints = [footprint(tan_wcs((400, 200), ra=150 + dra, dec=2 + ddec, rotation=rot),
                            (400, 200)) for dra, ddec, rot in pointings]
    grid = covering_grid(footprints, 0.25, margin=margin)
    assert_covers_tightly(grid, footprints, margin)


def test_covering_grid_straddles_ra_0_360():
    footprints = [footprint(tan_wcs((400, 400), ra=ra, dec=-3.0), (400, 400))
                  for ra in (359.99, 0.0, 0.01)]
    grid = covering_grid(footprints, 0.25)
    assert grid.ra < 0.01 or grid.ra > 359.99
    assert grid.nx < 900, "about 0.02 deg + one chip, not the whole sky"
    assert_covers_tightly(grid, footprints)


def test_covering_grid_is_centred_on_a_given_tangent_point():
    footprints = [footprint(tan_wcs((400, 400), ra=10.0, dec=60.0), (400, 400))]
    grid = covering_grid(footprints, 0.25, ra=10.02, dec=60.0)
    assert (grid.ra, grid.dec) == (10.02, 60.0)
    u, v = grid.wcs().world_to_pixel_values(*footprints[0].T)
    centre_u, centre_v = (grid.nx - 1) / 2, (grid.ny - 1) / 2
    # Symmetric about the tangent point: the far side decides the size.
    assert np.max(np.abs(u - centre_u)) <= grid.nx / 2 <= np.max(np.abs(u - centre_u)) + 1
    assert np.max(np.abs(v - centre_v)) <= grid.ny / 2 <= np.max(np.abs(v - centre_v)) + 1


def test_grid_wcs_is_north_up_east_left_with_the_tangent_point_at_the_centre_pixel():
    grid = Grid(359.9, -45.0, 0.5, 101, 60)
    w = grid.wcs()
    np.testing.assert_allclose(w.wcs.cd, [[-0.5 / 3600, 0], [0, 0.5 / 3600]])
    np.testing.assert_allclose(w.wcs.crpix, [51.0, 30.5])
    np.testing.assert_allclose(w.pixel_to_world_values(50.0, 29.5), (359.9, -45.0))
    assert grid.shape == (60, 101) and w.pixel_shape == (101, 60)


def test_covering_grid_fails_for_footprints_too_far_apart():
    far = [np.array([[0.0, 0.0], [0.1, 0.1]]), np.array([[120.0, 0.0], [120.1, 0.1]])]
    with pytest.raises(ValueError, match="90 degrees"):
        covering_grid(far, 0.25, ra=0.0, dec=0.0)
    with pytest.raises(ValueError, match="at least one"):
        covering_grid([], 0.25)
    with pytest.raises(ValueError, match="positive"):
        covering_grid(far[:1], 0.0)


# --- empty and useless inputs ---------------------------------------------------------------


def test_an_input_with_no_weight_contributes_nothing():
    grid, frames, _, _ = star_frames([2.0, 2.0, 2.0])
    shape = (160, 160)
    wcs = aligned_wcs(grid, 8.0, 8.0, shape)
    useless = regrid(np.ones(shape), np.zeros(shape), wcs, grid)
    assert not useless.is_empty and np.all(useless.weight == 0) and np.all(useless.data == 0)
    with_it, without = stack(frames + [useless], grid.shape), stack(frames, grid.shape)
    np.testing.assert_array_equal(with_it.data, without.data)
    np.testing.assert_array_equal(with_it.count, without.count)


@pytest.mark.parametrize("ra, dec", [(150.5, 2.0), (330.0, -2.0)])  # nearby, antipodal
def test_an_input_off_the_grid_gives_an_empty_cutout_that_stack_skips(ra, dec):
    grid, frames, _, _ = star_frames([2.0, 2.0, 2.0])
    shape = (100, 100)
    wcs = tan_wcs(shape, ra=ra, dec=dec)
    off = regrid(np.ones(shape), np.ones(shape), wcs, grid)
    assert off.is_empty and off.data.shape == off.weight.shape == (0, 0)
    assert (off.x0, off.y0) == (0, 0)
    np.testing.assert_array_equal(stack(frames + [off], grid.shape).data,
                                  stack(frames, grid.shape).data)
    nothing = stack([off], grid.shape)
    assert not nothing.data.any() and not nothing.weight.any() and not nothing.count.any()


def test_regrid_fails_on_mismatched_or_too_small_inputs():
    grid = Grid(150.0, 2.0, 0.25, 50, 50)
    wcs = tan_wcs((40, 40))
    with pytest.raises(ValueError, match="same shape"):
        regrid(np.ones((40, 40)), np.ones((40, 39)), wcs, grid)
    with pytest.raises(ValueError, match="same shape"):
        regrid(np.ones((1, 40)), np.ones((1, 40)), wcs, grid)
    with pytest.raises(ValueError, match="photometric factor"):
        regrid(np.ones((40, 40)), np.ones((40, 40)), wcs, grid, scale=0.0)


def test_stack_fails_on_a_frame_outside_the_grid():
    frame = Regridded(np.ones((10, 10), np.float32), np.ones((10, 10), np.float32), 45, 0)
    with pytest.raises(ValueError, match="does not lie within"):
        stack([frame], (50, 50))


def test_a_sip_wcs_read_from_a_header_gives_the_same_result():
    # The header round trip (as CalibratedExposure stores it) keeps SIP.
    shape = (120, 160)
    wcs = tan_wcs(shape, rotation=12.0, sip=sip_coefficients(shape, 2.0))
    again = WCS(wcs.to_header(relax=True))
    rng = np.random.default_rng(11)
    image, weight = frames_of(rng, wcs, shape)
    grid = covering_grid([footprint(wcs, shape)], 0.3)
    one, other = regrid(image, weight, wcs, grid), regrid(image, weight, again, grid)
    np.testing.assert_allclose(one.data, other.data, rtol=1e-5, atol=1e-4)
