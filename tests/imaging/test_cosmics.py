"""Cosmic-ray detection on seeded synthetic exposures with known truth: Moffat stars of
FWHM 3-4 pixels on Poisson sky with read noise, single-pixel hits and short tracks.

Tolerances: at least 95% of the injected cosmic-ray pixels are found (their amplitudes
are 15 to 300 times the sky noise, tracks 15 to 150 times, per pixel 0.6 to 1.4 times
that); no pixel within 3 pixels of the centre of a star peaking above 20σ is flagged;
flagged pixels more than 2 pixels from any injected one (growth may take a neighbour or
two, as it should for real hits whose charge spreads) number at most 30 on 512 × 512,
about 1 in 10,000: the noise excursions above 4.5σ that L.A.Cosmic by design cannot tell
from a faint hit.
"""

import numpy as np
import pytest
from astropy.modeling.models import Moffat2D
from scipy import ndimage

from targets.imaging.cosmics import cosmic_rays

GAIN, READ_NOISE, SKY = 2.0, 5.0, 400.0


def render_stars(shape, x, y, peak, fwhm, beta=2.5, radius=15):
    """Moffat stars, each integrated over pixels on a 3 x 3 grid, on a zero image."""
    image = np.zeros(shape)
    alpha = np.asarray(fwhm) / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    sub = (-1 / 3, 0.0, 1 / 3)
    for xi, yi, pi, ai in zip(x, y, peak, alpha):
        cx, cy = int(xi), int(yi)
        star = Moffat2D(pi, xi - cx, yi - cy, ai, beta)
        stamp = sum(star(xx + sx, yy + sy) for sx in sub for sy in sub) / 9.0
        rows = slice(max(cy - radius, 0), min(cy + radius + 1, shape[0]))
        cols = slice(max(cx - radius, 0), min(cx + radius + 1, shape[1]))
        image[rows, cols] += stamp[rows.start - cy + radius:rows.stop - cy + radius,
                                   cols.start - cx + radius:cols.stop - cx + radius]
    return image


def exposure(seed, shape=(512, 512), n_stars=150, n_hits=150, n_tracks=40):
    """A seeded exposure in ADU (sky included) with stars (peaks 30 to 20,000 ADU,
    log-uniform; FWHM 3-4 pixels) and cosmic rays more than 10 pixels from any star.

    Returns ``(image, truth, stars)``: ``truth`` is True on injected cosmic-ray pixels,
    ``stars`` rows of ``(x, y, peak)``.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    x, y = rng.uniform(10, nx - 10, n_stars), rng.uniform(10, ny - 10, n_stars)
    peak = np.exp(rng.uniform(np.log(30.0), np.log(20000.0), n_stars))
    model = SKY + render_stars(shape, x, y, peak, rng.uniform(3.0, 4.0, n_stars))
    image = (rng.poisson(model * GAIN) + rng.normal(0.0, READ_NOISE, shape)) / GAIN
    noise = np.sqrt(SKY * GAIN + READ_NOISE ** 2) / GAIN

    near_star = np.zeros(shape, bool)
    near_star[np.round(y).astype(int), np.round(x).astype(int)] = True
    near_star = ndimage.binary_dilation(near_star, np.ones((21, 21), bool))
    truth = np.zeros(shape, bool)
    while truth.sum() < n_hits:
        r, c = rng.integers(0, ny), rng.integers(0, nx)
        if not near_star[r, c] and not truth[r, c]:
            truth[r, c] = True
            image[r, c] += noise * np.exp(rng.uniform(np.log(15.0), np.log(300.0)))
    tracks = 0
    while tracks < n_tracks:
        r, c = rng.uniform(0, ny), rng.uniform(0, nx)
        length, angle = rng.uniform(3.0, 15.0), rng.uniform(0.0, np.pi)
        t = np.linspace(0.0, length, int(length * 3) + 2)
        rows = np.round(r + t * np.sin(angle)).astype(int)
        cols = np.round(c + t * np.cos(angle)).astype(int)
        if rows.max() >= ny or cols.min() < 0 or cols.max() >= nx:
            continue
        pixels = np.unique(rows * nx + cols)
        if near_star.flat[pixels].any() or truth.flat[pixels].any():
            continue
        amplitude = noise * np.exp(rng.uniform(np.log(15.0), np.log(150.0)))
        image.flat[pixels] += amplitude * rng.uniform(0.6, 1.4, pixels.size)
        truth.flat[pixels] = True
        tracks += 1
    return image, truth, np.column_stack([x, y, peak])


def star_cores(shape, stars, min_peak):
    """True within 3 pixels of the centre of each star peaking above ``min_peak`` ADU."""
    bright = stars[stars[:, 2] > min_peak]
    cores = np.zeros(shape, bool)
    cores[np.round(bright[:, 1]).astype(int), np.round(bright[:, 0]).astype(int)] = True
    return ndimage.binary_dilation(cores, np.ones((7, 7), bool))


NOISE = np.sqrt(SKY * GAIN + READ_NOISE ** 2) / GAIN
"""The sky's noise in ADU."""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cosmic_rays_finds_hits_and_tracks_and_leaves_stars(seed):
    image, truth, stars = exposure(seed)
    before = image.copy()
    cosmic = cosmic_rays(image, gain=GAIN, read_noise=READ_NOISE)
    np.testing.assert_array_equal(image, before)
    assert cosmic.dtype == bool and cosmic.shape == image.shape
    assert cosmic[truth].mean() >= 0.95
    assert not cosmic[star_cores(image.shape, stars, 20 * NOISE)].any()
    far = ~ndimage.binary_dilation(truth, np.ones((5, 5), bool))
    assert (cosmic & far).sum() <= 30


def test_cosmic_rays_with_the_sky_subtracted_given_as_background():
    image, truth, _ = exposure(4, shape=(256, 256), n_stars=40, n_hits=40, n_tracks=10)
    plain = cosmic_rays(image, gain=GAIN, read_noise=READ_NOISE)
    subtracted = cosmic_rays(image - SKY, gain=GAIN, read_noise=READ_NOISE, background=SKY)
    assert (plain != subtracted).sum() <= 2  # float32 rounding of L+ may tip a pixel
    assert subtracted[truth].mean() >= 0.95


def test_cosmic_rays_skips_masked_and_missing_pixels():
    image, truth, _ = exposure(5, shape=(256, 256), n_stars=40, n_hits=40, n_tracks=10)
    image[:, 100] += 50 * NOISE  # a hot column, in the bad-pixel mask
    image[30:33, 200:203] = np.nan  # e.g. where the flat was dead
    mask = np.zeros(image.shape, bool)
    mask[:, 100] = True
    cosmic = cosmic_rays(image, gain=GAIN, read_noise=READ_NOISE, mask=mask)
    assert not cosmic[:, 100].any() and not cosmic[30:33, 200:203].any()
    found = cosmic[truth & ~mask].mean()
    assert found >= 0.95
    # unmasked, the column is sharp along its whole length: all of it is flagged
    assert cosmic_rays(image, gain=GAIN, read_noise=READ_NOISE)[:, 100].mean() > 0.9


def test_cosmic_rays_leaves_saturated_stars_to_the_saturation_mask():
    rng = np.random.default_rng(6)
    shape = (128, 128)
    model = SKY + render_stars(shape, [40.3, 90.6], [50.2, 80.7], [3e5, 1e5], [3.5, 3.5])
    image = (rng.poisson(model * GAIN) + rng.normal(0.0, READ_NOISE, shape)) / GAIN
    image = np.minimum(image, 60000.0)  # flat-topped cores with steep edges
    image[100, 20] += 100 * NOISE
    cosmic = cosmic_rays(image, gain=GAIN, read_noise=READ_NOISE, saturation_level=60000.0)
    assert cosmic[100, 20] and cosmic.sum() <= 3


def test_cosmic_rays_at_the_edges_of_the_image():
    rng = np.random.default_rng(7)
    image = (rng.poisson(SKY * GAIN, (64, 64)) + rng.normal(0, READ_NOISE, (64, 64))) / GAIN
    hits = [(0, 0), (0, 30), (63, 63), (40, 63), (63, 5)]
    for r, c in hits:
        image[r, c] += 40 * NOISE
    cosmic = cosmic_rays(image, gain=GAIN, read_noise=READ_NOISE)
    assert all(cosmic[r, c] for r, c in hits)
    assert cosmic.sum() <= len(hits) * 3


@pytest.mark.parametrize("kwargs, message", [
    ({"gain": 0.0}, "gain must be positive"),
    ({"read_noise": -1.0}, "read_noise must be >= 0"),
    ({"sigma_clip": 0.0}, "sigma_clip must be positive"),
    ({"mask": np.zeros((3, 3), bool)}, r"mask has shape \(3, 3\)"),
])
def test_cosmic_rays_fails(kwargs, message):
    arguments = {"gain": GAIN, "read_noise": READ_NOISE, **kwargs}
    with pytest.raises(ValueError, match=message):
        cosmic_rays(np.ones((20, 20)), **arguments)


def test_cosmic_rays_fails_on_a_cube():
    with pytest.raises(ValueError, match="must be 2-d"):
        cosmic_rays(np.ones((2, 20, 20)), gain=GAIN, read_noise=READ_NOISE)
