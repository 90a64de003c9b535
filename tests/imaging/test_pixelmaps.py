"""Hot and cold pixel maps against injected truth: the defects are found, and bias
structure, vignetting, pixel-response non-uniformity and dust rings are not."""

import numpy as np
import pytest

from targets.imaging.pixelmaps import cold_pixels, hot_pixels


def master_bias(seed, shape=(300, 260), n_hot=60):
    """A master bias with a gradient, column pattern, 1.5 ADU noise, and ``n_hot`` hot
    pixels of 15 to 500 ADU above the level (10σ and up); returns (bias, truth)."""
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape)
    bias = 3.0 + 4.0 * y / shape[0] - 2.0 * x / shape[1] + 0.5 * np.sin(x / 3.0)
    bias += rng.normal(0.0, 1.5, shape)
    truth = np.zeros(shape, bool)
    flat_index = rng.choice(truth.size, n_hot, replace=False)
    truth.flat[flat_index] = True
    bias.flat[flat_index] += rng.uniform(15.0, 500.0, n_hot)
    return bias, truth


def test_hot_pixels_finds_the_injected_ones_and_nothing_else():
    bias, truth = master_bias(seed=1)
    before = bias.copy()
    hot = hot_pixels(bias)
    assert hot.dtype == bool and hot.shape == bias.shape
    np.testing.assert_array_equal(hot, truth)
    np.testing.assert_array_equal(bias, before)


def test_hot_pixels_survive_a_hot_cluster_and_flag_nan():
    bias, truth = master_bias(seed=2)
    bias[100:108, 50:58] += 200.0  # an 8x8 hot blob, a quarter of a 32-pixel box
    truth[100:108, 50:58] = True
    bias[5, 5] = np.nan
    truth[5, 5] = True
    np.testing.assert_array_equal(hot_pixels(bias), truth)


def test_hot_pixels_in_a_quantised_bias():
    """A bias of integers, mostly one value: the MAD is 0 and the scatter falls back to
    the standard deviation, so ordinary pixels are not all hot."""
    rng = np.random.default_rng(3)
    bias = np.round(rng.normal(0.0, 0.3, (100, 100)))
    bias[50, 50] = 40.0
    hot = hot_pixels(bias)
    assert hot[50, 50] and hot.sum() == 1


@pytest.mark.parametrize("master, kwargs, message", [
    (np.zeros(10), {}, "must be a 2-d image"),
    (np.full((10, 10), np.nan), {}, "no finite pixel"),
    (np.zeros((10, 10)), {"sigma": 0}, "sigma and block must be positive"),
])
def test_hot_pixels_fails(master, kwargs, message):
    with pytest.raises(ValueError, match=message):
        hot_pixels(master, **kwargs)


def master_flat(seed, shape=(320, 300)):
    """A normalised master flat and its truth.

    Vignetting (25% down in the corners), 1% pixel-response non-uniformity, 0.5% photon
    noise, dust: rings (radius 8-30 px, Gaussian profile σ 1.5-3 px, 5-25% deep) and
    shadows (discs of radius 5-20 px, 5-20% deep, edges blurred over 1.5 px); defects:
    three dead columns (response 0-0.3, one with its neighbour dead too), a dead
    segment of a column, and 40 scattered pixels at 5-60% response.

    Returns (flat, dead, dust): the flat, where the defects are, where the dust is.
    """
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape, dtype=float)
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    r2 = ((x - cx) ** 2 + (y - cy) ** 2) / (cx ** 2 + cy ** 2)
    flat = (1.0 - 0.25 * r2) * rng.normal(1.0, 0.01, shape)
    dust = np.zeros(shape, bool)
    for _ in range(6):
        ry, rx = rng.uniform(30, shape[0] - 30), rng.uniform(30, shape[1] - 30)
        r = np.hypot(y - ry, x - rx)
        radius, width, depth = rng.uniform(8, 30), rng.uniform(1.5, 3.0), rng.uniform(0.05, 0.25)
        profile = np.exp(-0.5 * ((r - radius) / width) ** 2)
        flat *= 1.0 - depth * profile
        dust |= profile > 0.05
    for _ in range(4):
        ry, rx = rng.uniform(20, shape[0] - 20), rng.uniform(20, shape[1] - 20)
        r = np.hypot(y - ry, x - rx)
        radius, depth = rng.uniform(5, 20), rng.uniform(0.05, 0.2)
        profile = 1.0 / (1.0 + np.exp((r - radius) / 1.5))
        flat *= 1.0 - depth * profile
        dust |= profile > 0.05
    flat *= rng.normal(1.0, 0.005, shape)  # photon noise of a stack of flats

    dead = np.zeros(shape, bool)
    for col, response in [(40, 0.0), (150, 0.3), (151, 0.1), (230, 0.2)]:
        dead[:, col] = True
        flat[:, col] *= response
    dead[200:320, 90] = True
    flat[200:320, 90] *= 0.4
    scattered = rng.choice(flat.size, 40, replace=False)
    dead.flat[scattered] = True
    flat.flat[scattered] *= rng.uniform(0.05, 0.6, 40)
    return flat, dead, dust


@pytest.mark.parametrize("seed", [1, 2])
def test_cold_pixels_finds_dead_pixels_and_not_dust_or_vignetting(seed):
    flat, dead, dust = master_flat(seed)
    assert dust.mean() > 0.08  # the test means something: a tenth of the chip is dusty
    before = flat.copy()
    cold = cold_pixels(flat)
    np.testing.assert_array_equal(cold, dead)
    np.testing.assert_array_equal(flat, before)


def test_cold_pixels_of_an_unnormalised_flat_with_bad_values():
    flat, dead, _ = master_flat(3)
    flat = 25000.0 * flat
    flat[10, 10] = np.nan
    flat[20, 20] = -5.0
    dead[10, 10] = dead[20, 20] = True
    np.testing.assert_array_equal(cold_pixels(flat), dead)


def test_cold_pixels_in_a_noisy_flat_are_not_noise():
    """A faint flat with 8% noise: 0.8 alone would be a 2.5σ cut; the 6σ condition keeps
    ordinary pixels while a dead column is still found."""
    rng = np.random.default_rng(4)
    flat = rng.normal(1.0, 0.08, (200, 200))
    flat[:, 60] = 0.1
    cold = cold_pixels(flat)
    assert cold[:, 60].all() and cold.sum() == 200


@pytest.mark.parametrize("kwargs, message", [
    ({"low": 1.5}, "low is a relative response between 0 and 1"),
    ({"sigma": -1}, "sigma must be positive"),
    ({"box": 4}, "box must be an odd integer"),
])
def test_cold_pixels_fails(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cold_pixels(np.ones((20, 20)), **kwargs)
