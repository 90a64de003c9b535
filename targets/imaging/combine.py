"""Combining a stack of same-shape frames into one image: mean, median or sum, with
rejection (masks, thresholds, extrema, iterated sigma clipping), weights and
propagated uncertainty, in row blocks that read each input once."""

import functools
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Combined", "combine"]

METHODS = ("mean", "median", "sum")
"""The statistics `combine` can take of the values kept at each pixel."""

MAD_TO_SIGMA = 1.482602218505602
"""The standard deviation of a normal distribution over its median absolute deviation,
as in `astropy.stats.mad_std`."""

MEDIAN_TO_MEAN_ERROR = math.sqrt(math.pi / 2)
"""How much noisier the median of many normally distributed values is than their mean."""

BLOCK_PIXELS = 1 << 14
"""Pixels worked on at once at most: each numpy pass over a block this size stays in
the CPU cache, which matters more for speed than larger blocks would."""


@dataclass(frozen=True)
class Combined:
    """The combined image and what is known about each of its pixels."""

    data: np.ndarray
    """The combined values; NaN where `mask` is set."""
    uncertainty: np.ndarray
    """The one-sigma uncertainty of `data` (see `combine` for how it is found)."""
    count: np.ndarray
    """How many frames' values were kept at each pixel."""
    mask: np.ndarray
    """True where no value was kept, so `data` has nothing to say."""


def combine(frames, method="median", *, weights=None, masks=None, uncertainties=None,
            clip="sigma", sigma_lower=3.0, sigma_upper=3.0, max_iterations=None,
            clip_min=None, clip_max=None, n_low=0, n_high=0, memory_limit=1 << 28):
    """Combine same-shape frames pixel by pixel, rejecting outliers first.

    At each pixel the frames' values are rejected in this order: masked, non-finite
    and zero-weight values; values below ``clip_min`` or above ``clip_max``; the
    ``n_low`` lowest and ``n_high`` highest of the values left; then, with
    ``clip='sigma'``, values further than ``sigma_lower`` (below) or ``sigma_upper``
    (above) times the scale from the median of the values left, where the scale is
    ``1.482602218505602 × median(|value − median|)`` (`astropy.stats.mad_std`), repeated
    on the survivors until nothing changes or ``max_iterations`` passes are done. A
    median centre and this scale are not dragged by the outliers they are meant to find,
    which the mean and standard deviation are: a single 1000-ADU cosmic ray among six
    frames inflates the standard deviation enough to survive a 3-sigma cut.

    Parameters
    ----------
    frames : sequence of 2-D array-likes
        The frames, all of one shape; numpy memmaps (``astropy.io.fits`` data opened with
        ``memmap=True``) are read block by block, each row once.
    method : {'median', 'mean', 'sum'}
        The statistic of the kept values. ``'sum'`` adds the kept values as they are,
        without scaling for the rejected ones; scale a mean for that.
    weights : sequence of float or sequence of 2-D array-likes, optional
        One weight per frame, or one weight array per frame (shaped like the frames),
        for ``'mean'`` and ``'sum'``: the weighted mean is ``Σ w x / Σ w`` and the
        weighted sum ``Σ w x`` over the kept values. A zero weight rejects the value.
    masks : sequence of 2-D boolean array-likes or None, optional
        Per frame, True where the pixel is bad; None for a frame without a mask.
    uncertainties : sequence of float or sequence of 2-D array-likes, optional
        The one-sigma uncertainty of each frame (a number, or an array shaped like the
        frames), to be propagated.
    clip : {'sigma', None}
        ``'sigma'`` for the iterated sigma clipping above, None for none.
    sigma_lower, sigma_upper : float or None
        How many scales below and above the median a value may lie and be kept
        (inclusive); None does not clip that side.
    max_iterations : int or None
        The most sigma-clipping passes; None repeats until no pixel changes. One pass
        is what `ccdproc.combine` does.
    clip_min, clip_max : float or None
        Values below ``clip_min`` or above ``clip_max`` are rejected.
    n_low, n_high : int
        How many of the lowest and highest values left at each pixel are rejected
        (IRAF's minmax). Equal values are ranked by frame order.
    memory_limit : int
        Bytes of working memory (256 MiB unless given); the frames are worked on in blocks of rows that stay
        below it (one row at least). The outputs and the inputs are not counted.

    Returns
    -------
    combined : `Combined`
        The image (float32 for frames of float32 or of integers up to 16 bits, else
        float64), its uncertainty, the number of values kept and the mask of pixels
        where none were.

    Raises
    ------
    ValueError
        Raised if there are no frames, if a frame is not 2-D or not of the first frame's
        shape, if ``method`` or ``clip`` is unknown, if weights are given for a median,
        if weights, masks or uncertainties do not match the frames or a weight is
        negative or not finite, if an option is out of range, or if every pixel of the
        result has all its values rejected.

    Notes
    -----
    The uncertainty, with ``uncertainties`` given, is propagated through the kept
    values: ``sqrt(Σ w² σ²) / Σ w`` for the mean, ``sqrt(Σ w² σ²)`` for the sum, and for
    the median ``sqrt(π/2)`` times the unweighted mean's (the large-sample efficiency
    of a median of normal values; it overstates the error a little for three or four
    values). Without them it is estimated from the scatter of the kept values about
    their (weighted) mean ``m``: ``sqrt(Σ w² (x − m)²) / Σ w`` for the mean, which is
    ``std / sqrt(n)`` as in ccdproc when unweighted; ``sqrt(Σ w² (x − m)²)`` for the sum;
    ``sqrt(π/2) × std / sqrt(n)`` for the median. One kept value has no scatter, so its
    estimated uncertainty is NaN.

    `ccdproc.combine` agrees with one kind of rejection at a time (one sigma-clipping
    pass, as ``max_iterations=1``) and with weights without rejection. Otherwise it
    differs: it rejects extrema before thresholds and counts masked values among them,
    sigma-clips as if nothing had been masked or rejected before, and divides a
    weighted mean by the weights of every frame, rejected or not.

    Examples
    --------
    >>> import numpy as np
    >>> frames = [np.full((2, 3), 100.0), np.full((2, 3), 101.0), np.full((2, 3), 99.0),
    ...           np.full((2, 3), 100.5), np.full((2, 3), 99.5), np.full((2, 3), 1100.0)]
    >>> combine(frames, "mean").data
    array([[100., 100., 100.],
           [100., 100., 100.]])
    """
    frames = _checked_frames(frames)
    shape = frames[0].shape
    if method not in METHODS:
        raise ValueError(f"unknown combine method {method!r}; use one of {METHODS}")
    if clip not in ("sigma", None):
        raise ValueError(f"unknown clip {clip!r}; use 'sigma' or None for no sigma clipping")
    if weights is not None and method == "median":
        raise ValueError("weights apply to method='mean' and 'sum', a median is not "
                         "weighted: drop the weights or combine with method='mean'")
    for name, value in (("sigma_lower", sigma_lower), ("sigma_upper", sigma_upper)):
        if value is not None and not value > 0:
            raise ValueError(f"{name}={value!r}; give a positive number of scales, or None "
                             "not to clip that side")
    if max_iterations is not None and max_iterations < 1:
        raise ValueError(f"max_iterations={max_iterations!r}; give at least 1, or None to "
                         "clip until no pixel changes")
    for name, value in (("n_low", n_low), ("n_high", n_high)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name}={value!r}; give how many extreme values to reject, "
                             "a whole number from 0")
    if not memory_limit > 0:
        raise ValueError(f"memory_limit={memory_limit!r}; give a positive number of bytes")

    rules = _Rules(
        method=method,
        weights=_per_frame_or_pixel("weights", weights, len(frames), shape),
        masks=_checked_masks(masks, len(frames), shape),
        uncertainties=_per_frame_or_pixel("uncertainties", uncertainties, len(frames),
                                          shape),
        sigma_clip=clip == "sigma",
        sigma_lower=None if sigma_lower is None else float(sigma_lower),
        sigma_upper=None if sigma_upper is None else float(sigma_upper),
        max_iterations=max_iterations,
        clip_min=None if clip_min is None else np.float64(clip_min),
        clip_max=None if clip_max is None else np.float64(clip_max),
        n_low=int(n_low), n_high=int(n_high))
    _check_weights(rules.weights)

    dtype = np.result_type(*(frame.dtype for frame in frames), np.float32)
    combined = Combined(data=np.empty(shape, dtype), uncertainty=np.empty(shape, dtype),
                        count=np.empty(shape, np.min_scalar_type(len(frames))),
                        mask=np.empty(shape, bool))
    rows = _rows_per_block(len(frames), shape[1], dtype.itemsize, memory_limit)
    scratch = _Scratch()
    for start in range(0, shape[0], rows):
        _combine_rows(frames, slice(start, start + rows), rules, dtype, combined, scratch)

    if combined.mask.all():
        raise ValueError(
            f"every pixel of the {len(frames)} frames had all its values masked or "
            f"rejected (clip_min={clip_min}, clip_max={clip_max}, n_low={n_low}, "
            f"n_high={n_high}); check the masks, weights and thresholds, and keep "
            "n_low + n_high below the number of frames")
    return combined


@dataclass(frozen=True)
class _Rules:
    """`combine`'s options, checked and in the form the blocks use."""

    method: str
    weights: list
    masks: list
    uncertainties: list
    sigma_clip: bool
    sigma_lower: float | None
    sigma_upper: float | None
    max_iterations: int | None
    clip_min: np.float64 | None
    clip_max: np.float64 | None
    n_low: int
    n_high: int


def _checked_frames(frames):
    """The frames as a list of 2-D arrays or array-likes of one shape, not yet read."""
    frames = [frame if hasattr(frame, "shape") and hasattr(frame, "dtype")
              else np.asarray(frame) for frame in frames]
    if not frames:
        raise ValueError("there are no frames to combine; pass a sequence of 2-D arrays")
    for index, frame in enumerate(frames):
        if len(frame.shape) != 2:
            raise ValueError(f"frame {index} has shape {frame.shape}; combine takes 2-D "
                             "frames (one image extension each)")
        if frame.shape != frames[0].shape:
            raise ValueError(f"frame {index} has shape {frame.shape}, frame 0 "
                             f"{frames[0].shape}; combine frames of one shape (trim them "
                             "to one size first)")
    return frames


def _per_frame_or_pixel(name, values, n_frames, shape):
    """``values`` as a list of one float or one frame-shaped array-like per frame."""
    if values is None:
        return None
    values = list(values)
    if len(values) != n_frames:
        raise ValueError(f"{name} has {len(values)} entries for {n_frames} frames; give one "
                         "number or one array shaped like the frames per frame")
    checked = []
    for index, value in enumerate(values):
        if np.shape(value) == ():  # np.shape, unlike np.ndim, does not read an array
            checked.append(float(value))
        elif np.shape(value) == shape:
            checked.append(value)
        else:
            raise ValueError(f"{name}[{index}] has shape {np.shape(value)}, the frames "
                             f"{shape}; give a number or an array shaped like the frames")
    return checked


def _checked_masks(masks, n_frames, shape):
    """``masks`` as a list of one frame-shaped boolean array-like or None per frame."""
    if masks is None:
        return [None] * n_frames
    masks = list(masks)
    if len(masks) != n_frames:
        raise ValueError(f"masks has {len(masks)} entries for {n_frames} frames; give one "
                         "mask (or None) per frame")
    for index, mask in enumerate(masks):
        if mask is not None and np.shape(mask) != shape:
            raise ValueError(f"masks[{index}] has shape {np.shape(mask)}, the frames {shape}; "
                             "give a mask shaped like the frames, or None")
    return masks


def _check_weights(weights):
    """Refuse per-frame weights that are negative or not finite (arrays: per block)."""
    for index, weight in enumerate(weights or ()):
        if isinstance(weight, float) and not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weights[{index}] is {weight}; weights must be finite and "
                             "not negative (0 rejects the frame)")


def _rows_per_block(n_frames, width, itemsize, memory_limit):
    """How many rows to work on at once to stay within ``memory_limit`` and the cache."""
    # The frames' values five times (as read, sorted, the sort's spare planes, the
    # pixels still clipping, offsets) and a spare row, three float64 planes per frame
    # and a spare row for the sorted deviations (deviations, spares, sorted), one
    # boolean plane, per-frame weights and uncertainties in float64, and forty
    # per-pixel float64 temporaries.
    bytes_per_pixel = (n_frames * (5 * itemsize + 3 * 8 + 1 + 2 * 8) + itemsize + 8
                       + 40 * 8)
    pixels = min(BLOCK_PIXELS, memory_limit // bytes_per_pixel)
    return max(1, pixels // width)


class _Scratch:
    """Work arrays kept from block to block, each a contiguous array of any shape up to
    the size it was first asked for.

    Allocating and freeing arrays of megabytes for every block makes the C library
    hand memory back to the system and fault it in again, which costs more than the
    arithmetic done in them.
    """

    def __init__(self):
        self._buffers = {}

    def __call__(self, name, shape, dtype):
        """The work array ``name`` as an uninitialized array of ``shape`` and ``dtype``."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


def _combine_rows(frames, rows, rules, dtype, combined, scratch):
    """Combine one block of rows of the frames into ``combined``."""
    block_shape = combined.data[rows].shape
    values = scratch("values", (len(frames), *block_shape), dtype)
    for index, frame in enumerate(frames):
        values[index] = frame[rows]
    values = values.reshape(len(frames), -1)
    weights = _block(rules.weights, rows, np.float64)
    sigmas = _block(rules.uncertainties, rows, np.float64)
    _reject_bad_values(values, rules, _block(rules.masks, rows, bool), weights)

    ranked = _sorted(values, _sorting_network(len(values)), scratch, "ranked")
    n_good = _count_true(np.isfinite(ranked, out=scratch("flags", ranked.shape, bool)))
    first = np.minimum(rules.n_low, n_good)
    stop = np.maximum(n_good - rules.n_high, first)
    if rules.sigma_clip:
        _sigma_clip(ranked, first, stop, rules, scratch)
    count = stop - first
    kept = count > 0

    if weights is None and sigmas is None:
        sums = _unweighted_sums(ranked, first, stop, scratch)
    else:
        sums = _weighted_sums(values, ranked, first, stop, weights, sigmas,
                              equal_values_split=rules.n_low > 0 or rules.n_high > 0)
    median = _median_of_runs(ranked, first, count) if rules.method == "median" else None
    data, uncertainty = _statistic(rules.method, sums, count, median)

    with np.errstate(invalid="ignore"):
        combined.data[rows] = np.where(kept, data, np.nan).reshape(block_shape)
        combined.uncertainty[rows] = np.where(kept, uncertainty, np.nan).reshape(block_shape)
    combined.count[rows] = count.reshape(block_shape)
    combined.mask[rows] = ~kept.reshape(block_shape)


def _block(per_frame, rows, dtype):
    """The block of rows of each per-frame array, flattened; numbers stay numbers."""
    if per_frame is None:
        return None
    return [item if item is None or isinstance(item, float)
            else np.asarray(item[rows], dtype=dtype).ravel() for item in per_frame]


def _reject_bad_values(values, rules, masks, weights):
    """Set every value rejected before ranking to +inf, which sorts after all others."""
    for index, plane in enumerate(values):
        bad = ~np.isfinite(plane)
        if masks[index] is not None:
            bad |= masks[index]
        if rules.clip_min is not None:
            bad |= plane < rules.clip_min
        if rules.clip_max is not None:
            bad |= plane > rules.clip_max
        if weights is not None:
            weight = weights[index]
            if not isinstance(weight, float) and not (np.isfinite(weight).all()
                                                      and (weight >= 0).all()):
                raise ValueError(f"weights[{index}] has negative or non-finite values; "
                                 "weights must be finite and not negative (0 rejects)")
            bad |= weight == 0
        np.copyto(plane, np.inf, where=bad)


@functools.lru_cache
def _sorting_network(n):
    """Batcher's odd-even merge sort for ``n`` items, as ``(low, high)`` index pairs.

    Putting the smaller of items ``low`` and ``high`` at ``low`` and the larger at
    ``high``, pair after pair, sorts any ``n`` values; done on whole planes of pixels
    it is a few dozen vectorized passes, where sorting along the frame axis costs a
    call per pixel.
    """
    pairs = []
    span = 1
    while span < n:
        step = span
        while step >= 1:
            for start in range(step % span, n - step, 2 * step):
                for offset in range(min(step, n - start - step)):
                    low, high = start + offset, start + offset + step
                    if low // (2 * span) == high // (2 * span):
                        pairs.append((low, high))
            step //= 2
        span *= 2
    return tuple(pairs)


@functools.lru_cache
def _v_sorting_network(n):
    """A bitonic merge for ``n`` items that fall and then rise (a V), as index pairs.

    The distances of sorted values from their median form a V, which this sorts in
    about half the comparisons `_sorting_network` needs.
    """
    size = 1 << (n - 1).bit_length()
    pairs = []
    half = size // 2
    while half >= 1:
        for start in range(0, size, 2 * half):
            pairs.extend((low, low + half) for low in range(start, start + half)
                         if low + half < n)
        half //= 2
    return tuple(pairs)


def _sorted(stack, network, scratch, name):
    """``stack`` (frames × pixels) with each pixel's values put in order by ``network``,
    in the work array ``name``; ``stack`` is left as it is.

    Each comparison writes its minimum to a free spare plane and its maximum over the
    higher rank's plane (once that is a spare: ``stack`` is never written); a rank's
    last comparison writes straight into the result. No plane is copied in or out.
    """
    n = len(stack)
    result = scratch(name, stack.shape, stack.dtype)
    spares = scratch(f"{name} buffers", (n + 1, stack.shape[1]), stack.dtype)
    free = list(spares)
    holder = list(stack)  # holder[rank]: the plane now holding the values of that rank
    owned = [False] * n  # whether holder[rank] is a spare plane, which may be reused
    for (low, high), (low_done, high_done) in zip(network, _last_comparisons(network)):
        low_plane, high_plane = holder[low], holder[high]
        new_low = result[low] if low_done else free.pop()
        np.minimum(low_plane, high_plane, out=new_low)
        if high_done:
            np.maximum(low_plane, high_plane, out=result[high])
        elif owned[high]:
            np.maximum(low_plane, high_plane, out=high_plane)
        else:
            holder[high] = np.maximum(low_plane, high_plane, out=free.pop())
            owned[high] = True
        if owned[low]:
            free.append(low_plane)
        holder[low], owned[low] = new_low, not low_done
        if high_done:
            if owned[high]:
                free.append(holder[high])
            holder[high], owned[high] = result[high], False
    for rank in set(range(n)).difference(*network):  # a lone frame: no comparisons
        result[rank] = holder[rank]
    return result


@functools.lru_cache
def _last_comparisons(network):
    """Per pair of ``network``, whether it is the last to touch its low and its high
    index."""
    seen = set()
    last = []
    for low, high in reversed(network):
        last.append((low not in seen, high not in seen))
        seen.update((low, high))
    return tuple(reversed(last))


def _count_true(flags):
    """How many of each pixel's frames (``flags`` is frames × pixels) are set."""
    counter = np.min_scalar_type(len(flags))  # summing bytes beats summing booleans
    return flags.view(np.uint8).sum(axis=0, dtype=counter).astype(np.intp)


def _at_rank(ranked, rank):
    """Each pixel's value of the given rank; a rank out of range gives some value."""
    pixels = ranked.shape[1]
    flat_index = rank * pixels + np.arange(pixels)
    return np.take(ranked.reshape(-1), flat_index, mode="clip")


def _median_of_runs(ranked, first, count):
    """The median of the ``count`` sorted values from rank ``first`` at each pixel."""
    lower = _at_rank(ranked, first + (count - 1) // 2).astype(np.float64)
    return (lower + _at_rank(ranked, first + count // 2)) * 0.5


def _sigma_clip(ranked, first, stop, rules, scratch):
    """Narrow each pixel's kept ranks ``first:stop`` by sigma clipping, in place.

    The values kept between a lower and an upper bound are a run of ranks, so a pass
    only moves the run's ends, and a pixel whose run did not move is done: the next
    pass works on the pixels that moved. The arithmetic is in float64, so that the
    bounds fall where ccdproc's (astropy's) do.
    """
    values, pixels = ranked, slice(None)
    passes = 0
    while rules.max_iterations is None or passes < rules.max_iterations:
        passes += 1
        new_first, new_stop = _clipped_runs(values, first[pixels], stop[pixels], rules,
                                            scratch)
        moved = (new_first != first[pixels]) | (new_stop != stop[pixels])
        first[pixels], stop[pixels] = new_first, new_stop
        pixels = np.flatnonzero(moved) if isinstance(pixels, slice) else pixels[moved]
        if not pixels.size:
            return
        values = np.take(ranked, pixels, axis=1,
                         out=scratch("still clipping", (len(ranked), pixels.size),
                                     ranked.dtype))


def _clipped_runs(ranked, first, stop, rules, scratch):
    """One sigma-clipping pass: the runs of ranks within the bounds of ``first:stop``.

    The scale is the median of the ``count`` smallest deviations from the run's median
    ``c`` of all the pixel's values, those outside the run included, and that is the
    median of the run's deviations alone: a value below the run deviates from ``c`` at
    least as much as every value of the run at or below ``c``, and these, with the
    value just above ``c`` when ``count`` is even (it deviates as much as the one just
    below), are more than half the run. Likewise above. So no value needs masking.
    """
    count = stop - first
    deviation = scratch("deviation", ranked.shape, np.float64)
    flags = scratch("flags", ranked.shape, bool)
    with np.errstate(invalid="ignore"):  # pixels with nothing kept give NaN, harmlessly
        centre = _median_of_runs(ranked, first, count)
        np.subtract(ranked, centre, out=deviation)
        np.abs(deviation, out=deviation)
        deviation = _sorted(deviation, _v_sorting_network(len(ranked)), scratch,
                            "sorted deviation")
        scale = MAD_TO_SIGMA * _median_of_runs(deviation, 0, count)
        if rules.sigma_lower is not None:
            lower = centre - scale * rules.sigma_lower
            first = np.maximum(first, _count_true(np.less(ranked, lower, out=flags)))
        if rules.sigma_upper is not None:
            upper = centre + scale * rules.sigma_upper
            stop = np.minimum(stop, _count_true(np.less_equal(ranked, upper, out=flags)))
    return first, np.maximum(stop, first)


@dataclass
class _Sums:
    """Sums over the kept values ``x`` of each pixel, with ``d = x − reference``."""

    reference: np.ndarray  # midway between the lowest and highest kept value
    weight: np.ndarray  # Σ w
    weighted_offset: np.ndarray  # Σ w d
    weight_squared: np.ndarray  # Σ w²
    weight_squared_offset: np.ndarray  # Σ w² d
    weight_squared_offset_squared: np.ndarray  # Σ w² d²
    variance: np.ndarray  # Σ w² σ², None without uncertainties


def _kept_range(ranked, first, stop):
    """Each pixel's lowest and highest kept value (any values where none is kept)."""
    return _at_rank(ranked, first), _at_rank(ranked, stop - 1)


def _unweighted_sums(ranked, first, stop, scratch):
    """`_Sums` with all weights 1, from the sorted values.

    Clipping each pixel's values to its lowest and highest kept value changes just the
    rejected ones, each to a known value, so plain sums over all ranks give the sums
    over the kept ones without a test per value. The offsets from the reference, kept
    values of one pixel apart, are exact or nearly in the frames' own precision;
    they are summed in float64.
    """
    lowest, highest = _kept_range(ranked, first, stop)
    with np.errstate(invalid="ignore"):  # pixels with nothing kept give NaN, harmlessly
        reference = ((lowest + highest.astype(np.float64)) * 0.5).astype(ranked.dtype)
        lowest_offset, highest_offset = lowest - reference, highest - reference
        offsets = np.subtract(ranked, reference,
                              out=scratch("offsets", ranked.shape, ranked.dtype))
        np.maximum(offsets, lowest_offset, out=offsets)  # np.clip is slower
        np.minimum(offsets, highest_offset, out=offsets)
        below, above = first, len(ranked) - stop
        offset_sum = (offsets.sum(axis=0, dtype=np.float64)
                      - below * lowest_offset.astype(np.float64)
                      - above * highest_offset.astype(np.float64))
        np.square(offsets, out=offsets)
        offset_square_sum = (offsets.sum(axis=0, dtype=np.float64)
                             - below * np.square(lowest_offset).astype(np.float64)
                             - above * np.square(highest_offset).astype(np.float64))
    count = (stop - first).astype(np.float64)
    return _Sums(reference=reference.astype(np.float64), weight=count,
                 weighted_offset=offset_sum, weight_squared=count,
                 weight_squared_offset=offset_sum,
                 weight_squared_offset_squared=offset_square_sum, variance=None)


def _weighted_sums(values, ranked, first, stop, weights, sigmas, equal_values_split):
    """`_Sums` going through the frames in order once, for their weights and sigmas.

    A value is kept when its rank is in ``first:stop``. That is a test of its value
    against the run's lowest and highest kept values, unless extrema rejection has split
    a group of equal values there: then their order among the frames decides.
    """
    pixels = values.shape[1]
    lowest, highest = _kept_range(ranked, first, stop)
    reference = (lowest + highest) * 0.5
    kept_any = stop > first
    lowest = np.where(kept_any, lowest, np.inf).astype(values.dtype)
    highest = np.where(kept_any, highest, -np.inf).astype(values.dtype)
    if equal_values_split:
        below_lowest = _count_true(ranked < lowest)
        below_highest = _count_true(ranked < highest)
        seen_lowest = np.zeros(pixels, np.intp)
        seen_highest = np.zeros(pixels, np.intp)
    sums = _Sums(reference, *(np.zeros(pixels) for _ in range(5)),
                 variance=None if sigmas is None else np.zeros(pixels))
    for index, plane in enumerate(values):
        kept = (plane >= lowest) & (plane <= highest)
        if equal_values_split:
            at_lowest, at_highest = plane == lowest, plane == highest
            rank = np.where(at_lowest, below_lowest + seen_lowest,
                            below_highest + seen_highest)
            kept &= ~(at_lowest | at_highest) | ((rank >= first) & (rank < stop))
            seen_lowest += at_lowest
            seen_highest += at_highest
        offset = np.where(kept, plane - reference, 0.0)
        weight = np.where(kept, 1.0 if weights is None else weights[index], 0.0)
        weight_squared = weight * weight
        sums.weight += weight
        sums.weighted_offset += weight * offset
        sums.weight_squared += weight_squared
        weight_squared_offset = weight_squared * offset
        sums.weight_squared_offset += weight_squared_offset
        sums.weight_squared_offset_squared += weight_squared_offset * offset
        if sigmas is not None:
            sums.variance += weight_squared * np.square(sigmas[index])
    return sums


def _statistic(method, sums, count, median):
    """The combined value and its uncertainty at each pixel (see `combine`'s Notes)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = sums.weighted_offset / sums.weight  # the weighted mean's offset
        if sums.variance is None:
            spread = (sums.weight_squared_offset_squared
                      - 2 * shift * sums.weight_squared_offset
                      + shift * shift * sums.weight_squared)
            spread = np.where(count > 1, np.sqrt(np.maximum(spread, 0.0)), np.nan)
        else:
            spread = np.sqrt(sums.variance)
        if method == "median":
            return median, MEDIAN_TO_MEAN_ERROR * spread / count
        if method == "mean":
            return sums.reference + shift, spread / sums.weight
        return sums.weight * sums.reference + sums.weighted_offset, spread
