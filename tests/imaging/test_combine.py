"""`targets.imaging.combine`: against ccdproc where both do the same thing, against a
pixel-by-pixel reading of the docstring where ccdproc cannot follow, and on its promises
about blocks, reads and errors.

Tolerances: results are float32 for float32 frames, so values agree to 1e-6 relative
(float32 rounding is 6e-8); uncertainties, sums of squares in a different order, to
1e-5 relative.
"""

import itertools
import math
import tracemalloc

import ccdproc
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.stats import mad_std

from targets.imaging.combine import (Combined, _Scratch, _sorted, _sorting_network,
                                     _v_sorting_network, combine)

VALUE_TOLERANCE = 1e-6
UNCERTAINTY_TOLERANCE = 1e-5


def noisy_frames(n_frames=9, shape=(12, 15), seed=1, dtype=np.float32):
    """Frames at 1000 ADU with 10 ADU of noise and, in 5 % of the pixels, outliers of
    50 to 5000 ADU either way."""
    rng = np.random.default_rng(seed)
    frames = rng.normal(1000.0, 10.0, (n_frames, *shape))
    hit = rng.random(frames.shape) < 0.05
    frames[hit] += rng.choice([-1, 1], hit.sum()) * rng.uniform(50, 5000, hit.sum())
    return [frame.astype(dtype) for frame in frames]


def by_ccdproc(frames, method, **options):
    """``ccdproc.combine`` of the frames, as CCDData in ADU."""
    method = {"mean": "average"}.get(method, method)
    return ccdproc.combine([CCDData(frame, unit="adu") for frame in frames],
                           method=method, **options)


def by_the_docstring(frames, method, *, weights=None, masks=None, uncertainties=None,
                     clip="sigma", sigma_lower=3.0, sigma_upper=3.0, max_iterations=None,
                     clip_min=None, clip_max=None, n_low=0, n_high=0):
    """`combine` one pixel at a time, as its docstring describes it."""
    values = np.array(frames, dtype=np.float64)
    shape = values.shape[1:]

    def per_pixel(items):
        return np.array([np.broadcast_to(np.asarray(item, np.float64), shape)
                         for item in items])

    weight = np.ones_like(values) if weights is None else per_pixel(weights)
    sigma = None if uncertainties is None else per_pixel(uncertainties)
    bad = ~np.isfinite(values) | (weight == 0)
    if masks is not None:
        bad |= np.array([np.zeros(shape, bool) if mask is None else mask for mask in masks])
    if clip_min is not None:
        bad |= values < clip_min
    if clip_max is not None:
        bad |= values > clip_max
    data, uncertainty = np.full(shape, np.nan), np.full(shape, np.nan)
    count = np.zeros(shape, int)
    for pixel in np.ndindex(shape):
        x = values[(slice(None), *pixel)]
        good = [i for i in np.argsort(x, kind="stable") if not bad[(i, *pixel)]]
        kept = good[n_low:len(good) - n_high]
        passes = 0
        while clip == "sigma" and kept and (max_iterations is None
                                            or passes < max_iterations):
            passes += 1
            centre, scale = np.median(x[kept]), mad_std(x[kept])
            survivors = [i for i in kept if centre - scale * sigma_lower <= x[i]
                         <= centre + scale * sigma_upper]
            if survivors == kept:
                break
            kept = survivors
        count[pixel] = len(kept)
        if not kept:
            continue
        xs, ws = x[kept], weight[(kept, *pixel)]
        mean = np.sum(ws * xs) / np.sum(ws)
        if sigma is not None:
            spread = math.sqrt(np.sum(ws**2 * sigma[(kept, *pixel)] ** 2))
        else:
            spread = math.sqrt(np.sum(ws**2 * (xs - mean) ** 2)) if len(kept) > 1 else np.nan
        if method == "mean":
            data[pixel], uncertainty[pixel] = mean, spread / np.sum(ws)
        elif method == "sum":
            data[pixel], uncertainty[pixel] = np.sum(ws * xs), spread
        else:
            data[pixel] = np.median(xs)
            uncertainty[pixel] = math.sqrt(math.pi / 2) * spread / len(kept)
    return data, uncertainty, count


def assert_close(actual, expected, tolerance=VALUE_TOLERANCE):
    """Equal to ``tolerance`` relative, NaN where the other is NaN."""
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=0, equal_nan=True)


def assert_as_the_docstring_says(frames, method, **options):
    combined = combine(frames, method, **options)
    data, uncertainty, count = by_the_docstring(frames, method, **options)
    np.testing.assert_array_equal(combined.count, count)
    np.testing.assert_array_equal(combined.mask, count == 0)
    assert_close(combined.data, data)
    assert_close(combined.uncertainty, uncertainty, UNCERTAINTY_TOLERANCE)
    return combined


def test_sorting_networks_sort_every_zero_one_input():
    # A comparator network sorts every input if it sorts every input of 0s and 1s.
    for n in range(1, 13):
        columns = np.array(list(itertools.product([0, 1], repeat=n)), np.float32).T
        given = columns.copy()
        ranked = _sorted(columns, _sorting_network(n), _Scratch(), "ranked")
        np.testing.assert_array_equal(ranked, np.sort(columns, axis=0))
        np.testing.assert_array_equal(columns, given)  # the input is left as it was
        # distances from a median fall then rise: 1s, then 0s, then 1s
        falls_then_rises = np.array([[1] * a + [0] * (n - a - b) + [1] * b
                                     for a in range(n + 1) for b in range(n + 1 - a)],
                                    np.float64).T
        ranked = _sorted(falls_then_rises, _v_sorting_network(n), _Scratch(), "ranked")
        np.testing.assert_array_equal(ranked, np.sort(falls_then_rises, axis=0))


@pytest.mark.parametrize("method", ["median", "mean", "sum"])
@pytest.mark.parametrize("spelling", [(np.ma.median, mad_std), ("median", "mad_std")])
@pytest.mark.parametrize("n_frames", [4, 9, 17])
def test_one_sigma_clipping_pass_agrees_with_ccdproc(method, spelling, n_frames):
    frames = noisy_frames(n_frames)
    ours = combine(frames, method, sigma_lower=3, sigma_upper=2.5, max_iterations=1)
    theirs = by_ccdproc(frames, method, sigma_clip=True, sigma_clip_low_thresh=3,
                        sigma_clip_high_thresh=2.5, sigma_clip_func=spelling[0],
                        sigma_clip_dev_func=spelling[1])
    assert_close(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.mask, theirs.mask)
    assert 0 < np.count_nonzero(ours.count < len(frames))  # something was clipped
    if method != "median":  # ccdproc's median uncertainty is a MAD; ours is documented
        assert_close(ours.uncertainty, theirs.uncertainty.array, UNCERTAINTY_TOLERANCE)


@pytest.mark.parametrize("method", ["median", "mean"])
def test_min_max_clipping_agrees_with_ccdproc(method):
    frames = noisy_frames(seed=2)
    ours = combine(frames, method, clip=None, clip_min=900, clip_max=1100)
    theirs = by_ccdproc(frames, method, minmax_clip=True, minmax_clip_min=900,
                        minmax_clip_max=1100)
    assert_close(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.mask, theirs.mask)


@pytest.mark.parametrize("method", ["median", "mean"])
def test_extrema_clipping_agrees_with_ccdproc(method):
    frames = noisy_frames(seed=3)
    ours = combine(frames, method, clip=None, n_low=1, n_high=2)
    theirs = by_ccdproc(frames, method, clip_extrema=True, nlow=1, nhigh=2)
    assert_close(ours.data, theirs.data)
    assert (ours.count == len(frames) - 3).all()


@pytest.mark.parametrize("method", ["mean", "sum"])
@pytest.mark.parametrize("per", ["frame", "pixel"])
def test_weights_agree_with_ccdproc(method, per):
    # Without rejection: ccdproc divides a weighted mean by the weights of all frames,
    # rejected or not.
    frames = noisy_frames(seed=4)
    rng = np.random.default_rng(4)
    weights = (rng.uniform(0.5, 2.0, len(frames)) if per == "frame"
               else rng.uniform(0.5, 2.0, (len(frames), *frames[0].shape)))
    ours = combine(frames, method, weights=weights, clip=None)
    theirs = by_ccdproc(frames, method, weights=np.asarray(weights))
    assert_close(ours.data, theirs.data)


def test_a_cosmic_ray_among_six_frames_is_rejected():
    frames = [np.full((3, 4), level, np.float32)
              for level in (100.0, 101.0, 99.0, 100.5, 99.5, 100.0)]
    frames[2][1, 2] += 1000.0
    theirs = by_ccdproc(frames, "mean", sigma_clip=True)  # mean centre, std scale
    ours = combine(frames, "mean")
    # ccdproc keeps it: six values never lie 3 standard deviations from their mean
    assert theirs.data[1, 2] == pytest.approx(1000.0 / 6 + 100.0)
    assert ours.count[1, 2] == 5
    assert ours.data[1, 2] == pytest.approx((100.0 + 101.0 + 100.5 + 99.5 + 100.0) / 5)
    assert (ours.count == 6).sum() == 11


def test_clipping_iterates_until_no_pixel_changes():
    frames = noisy_frames(n_frames=11, seed=5)
    for frame in frames[:3]:  # a second pass finds what the first pass's wide MAD hid
        frame[4:8] += 60.0
    once = combine(frames, "mean", max_iterations=1)
    converged = assert_as_the_docstring_says(frames, "mean")
    assert (converged.count <= once.count).all()
    assert (converged.count < once.count).any()
    twice = combine(frames, "mean", max_iterations=2)
    assert (converged.count <= twice.count).all() and (twice.count <= once.count).all()


@pytest.mark.parametrize("n_frames", [9, 10])
@pytest.mark.parametrize("n_low, n_high", [(3, 0), (0, 2), (2, 1)])
def test_the_scale_is_that_of_the_kept_values_only(n_frames, n_low, n_high):
    # Skewed values, extrema taken off one side and clipping iterated: the values
    # outside each pixel's run of kept ranks never enter its MAD (see _clipped_runs).
    rng = np.random.default_rng(n_frames + 10 * n_low + 100 * n_high)
    frames = list(rng.exponential(100.0, (n_frames, 40, 40)) ** 1.5)
    assert_as_the_docstring_says(frames, "mean", sigma_lower=1.5, sigma_upper=1.5,
                                 n_low=n_low, n_high=n_high)


@pytest.mark.parametrize("method", ["median", "mean", "sum"])
@pytest.mark.parametrize("extrema", [0, 1])
def test_masks_non_finite_values_and_thresholds_reject_before_clipping(method, extrema):
    frames = noisy_frames(seed=6)
    rng = np.random.default_rng(6)
    masks = [rng.random(frames[0].shape) < 0.2 for _ in frames]
    masks[3] = None  # a frame without a mask
    frames[1][0, 0], frames[2][0, 1] = np.nan, -np.inf
    for mask in masks[:3] + masks[4:]:
        mask[5, 5] = True
    frames[3][5, 5] = np.inf  # nothing is left at (5, 5)
    combined = assert_as_the_docstring_says(frames, method, masks=masks, clip_min=0,
                                            n_low=extrema, n_high=extrema)
    assert combined.mask[5, 5] and np.isnan(combined.data[5, 5])
    assert combined.mask.sum() == 1


def test_per_pixel_weights_with_clipping():
    frames = noisy_frames(seed=7)
    rng = np.random.default_rng(7)
    weights = rng.uniform(0.0, 2.0, (len(frames), *frames[0].shape))
    weights[weights < 0.2] = 0.0  # zero weight rejects
    assert_as_the_docstring_says(list(frames), "mean", weights=list(weights))
    assert_as_the_docstring_says(list(frames), "sum", weights=list(weights))


def test_extrema_among_equal_values_are_taken_in_frame_order():
    rng = np.random.default_rng(8)
    frames = [rng.integers(0, 3, (6, 7)).astype(np.int16) for _ in range(6)]
    combined = assert_as_the_docstring_says(frames, "mean", weights=[1, 2, 3, 4, 5, 6],
                                            clip=None, n_low=2, n_high=1)
    assert (combined.count == 3).all()


@pytest.mark.parametrize("method", ["median", "mean", "sum"])
def test_uncertainties_are_propagated(method):
    frames = noisy_frames(seed=9)
    rng = np.random.default_rng(9)
    sigmas = [rng.uniform(5, 15, frames[0].shape) for _ in frames[:-1]] + [12.0]
    weights = None if method == "median" else rng.uniform(0.5, 2, len(frames))
    assert_as_the_docstring_says(frames, method, uncertainties=sigmas, weights=weights)


@pytest.mark.parametrize("method", ["median", "mean", "sum"])
def test_uncertainty_from_scatter_without_rejection(method):
    frames = noisy_frames(seed=10)
    combined = combine(frames, method, clip=None)
    spread = np.std(np.array(frames, np.float64), axis=0) / math.sqrt(len(frames))
    expected = {"mean": spread, "sum": spread * len(frames),
                "median": math.sqrt(math.pi / 2) * spread}[method]
    assert_close(combined.uncertainty, expected, UNCERTAINTY_TOLERANCE)


def test_one_kept_value_has_no_estimated_uncertainty():
    frames = [np.array([[1.0, 2.0]]), np.array([[np.nan, 4.0]])]
    combined = combine(frames, "mean", clip=None)
    assert combined.data[0, 0] == 1.0 and np.isnan(combined.uncertainty[0, 0])
    assert combined.uncertainty[0, 1] == pytest.approx(1.0 / math.sqrt(2))


def test_working_in_blocks_changes_nothing():
    frames = noisy_frames(n_frames=7, shape=(40, 33), seed=11)
    masks = [frame > 1500 for frame in frames]
    whole = combine(frames, "mean", masks=masks, n_low=1)
    in_blocks = combine(frames, "mean", masks=masks, n_low=1, memory_limit=10_000)
    for name in ("data", "uncertainty", "count", "mask"):
        np.testing.assert_array_equal(getattr(in_blocks, name), getattr(whole, name))


class RowReads:
    """An array that can only be read by slicing rows, and records the rows read."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.reads = []

    def __getitem__(self, rows):
        self.reads.append(range(*rows.indices(self.shape[0])))
        return self._array[rows].copy()

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole array was read at once")

    def rows_read(self):
        return sorted(row for read in self.reads for row in read)


def test_inputs_are_read_once_in_blocks():
    frames = noisy_frames(n_frames=5, shape=(30, 20), seed=12)
    rng = np.random.default_rng(12)
    inputs = {"frames": [RowReads(frame) for frame in frames],
              "masks": [RowReads(rng.random(frames[0].shape) < 0.1) for _ in frames],
              "weights": [RowReads(rng.uniform(1, 2, frames[0].shape)) for _ in frames],
              "uncertainties": [RowReads(np.full(frames[0].shape, 10.0)) for _ in frames]}
    combined = combine(inputs["frames"], "mean", masks=inputs["masks"],
                       weights=inputs["weights"], uncertainties=inputs["uncertainties"],
                       memory_limit=20_000)
    for name, arrays in inputs.items():
        for array in arrays:
            assert len(array.reads) > 1, f"{name} were not read in blocks"
            assert array.rows_read() == list(range(30)), f"{name} rows not read once"
    expected = combine(frames, "mean", masks=[a._array for a in inputs["masks"]],
                       weights=[a._array for a in inputs["weights"]],
                       uncertainties=[a._array for a in inputs["uncertainties"]])
    np.testing.assert_array_equal(combined.data, expected.data)


def test_memory_mapped_fits_frames(tmp_path):
    frames = noisy_frames(n_frames=5, shape=(30, 20), seed=13)
    for index, frame in enumerate(frames):
        fits.writeto(tmp_path / f"frame{index}.fits", frame)
    hdus = [fits.open(tmp_path / f"frame{index}.fits", memmap=True) for index in range(5)]
    try:
        combined = combine([hdu[0].data for hdu in hdus], "median", memory_limit=20_000)
    finally:
        for hdu in hdus:
            hdu.close()
    np.testing.assert_array_equal(combined.data, combine(frames, "median").data)


@pytest.mark.parametrize("method", ["median", "mean"])
def test_working_memory_stays_within_the_limit(method):
    frames = noisy_frames(n_frames=10, shape=(200, 300), seed=14)
    per_pixel = {"masks": [frame > 1100 for frame in frames],
                 "uncertainties": [np.full(frame.shape, 10.0) for frame in frames],
                 "n_low": 1, "n_high": 1}
    if method == "mean":
        per_pixel["weights"] = [np.ones(frame.shape) for frame in frames]
    limit = 2_000_000
    for options in ({}, per_pixel):
        tracemalloc.start()
        combined = combine(frames, method, memory_limit=limit, **options)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        outputs = sum(array.nbytes for array in vars(combined).values())
        assert peak - outputs <= limit


def test_inputs_are_left_unchanged_and_types_follow_the_frames():
    frames = noisy_frames(seed=15)
    as_integers = [frame.astype(np.int16) for frame in frames]
    frames[0][0, 0] = np.nan
    copies = [frame.copy() for frame in frames]
    masks = [np.zeros(frames[0].shape, bool) for _ in frames]
    combined = combine(frames, "mean", masks=masks, n_low=1)
    for frame, copy in zip(frames, copies):
        np.testing.assert_array_equal(frame, copy)
    assert not any(mask.any() for mask in masks)
    assert isinstance(combined, Combined) and combined.data.dtype == np.float32
    assert combine([f.astype(np.float64) for f in frames]).data.dtype == np.float64
    assert combine(as_integers).data.dtype == np.float32


@pytest.mark.parametrize("frames, options, message", [
    ([], {}, "no frames to combine"),
    ([np.zeros((2, 3)), np.zeros((3, 2))], {}, r"frame 1 has shape \(3, 2\), frame 0"),
    ([np.zeros(3)], {}, "combine takes 2-D frames"),
    ([np.zeros((2, 3))], {"method": "average"}, "unknown combine method 'average'"),
    ([np.zeros((2, 3))], {"clip": "minmax"}, "unknown clip 'minmax'"),
    ([np.zeros((2, 3))], {"weights": [1.0]}, "a median is not weighted"),
    ([np.zeros((2, 3))] * 2, {"method": "mean", "weights": [1.0]},
     "weights has 1 entries for 2 frames"),
    ([np.zeros((2, 3))] * 2, {"method": "mean", "weights": [1.0, -1.0]},
     r"weights\[1\] is -1.0"),
    ([np.zeros((2, 3))] * 2, {"method": "mean", "weights": [np.ones((2, 3)),
                                                            np.full((2, 3), np.nan)]},
     r"weights\[1\] has negative or non-finite values"),
    ([np.zeros((2, 3))] * 2, {"masks": [None, np.zeros((3, 2), bool)]},
     r"masks\[1\] has shape \(3, 2\)"),
    ([np.zeros((2, 3))] * 2, {"uncertainties": [1.0, np.ones(3)]},
     r"uncertainties\[1\] has shape \(3,\)"),
    ([np.zeros((2, 3))] * 2, {"n_low": 1, "n_high": 1}, "every pixel of the 2 frames"),
    ([np.zeros((2, 3))] * 2, {"n_low": -1}, "n_low=-1"),
    ([np.zeros((2, 3))] * 2, {"sigma_upper": 0}, "sigma_upper=0"),
    ([np.zeros((2, 3))] * 2, {"max_iterations": 0}, "max_iterations=0"),
    ([np.zeros((2, 3))] * 2, {"memory_limit": 0}, "memory_limit=0"),
])
def test_combine_fails(frames, options, message):
    with pytest.raises(ValueError, match=message):
        combine(frames, **options)
