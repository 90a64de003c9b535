"""Combining frames: AWE's `targets.imaging.combine` against `ccdproc.combine`.

Both take the same seeded float32 frames (a bias-like level with read noise, cosmic rays
and a few cold pixels) and sigma-clip them the same way before a median or a mean: one
pass (all ccdproc does) with a median centre and a MAD scale, 3 sigma on either side.
ccdproc is asked for that in both its spellings: the callables ``np.ma.median`` and
``astropy.stats.mad_std``, and the names ``'median'`` and ``'mad_std'``, which take
astropy's faster compiled path to the same clipping. Each call is timed, then made
again under tracemalloc (numpy reports its allocations to it) for its peak memory, the
frames already in memory: tracing slows many small allocations more than a few large
ones, so it would skew the times. The results are compared pixel by pixel.

Run it with ``python bench/combine.py [--frames 10] [--shape 4096x2048] [--repeat 1]``.
"""

import argparse
import math
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

# bench/dataserver.py would hide the dataserver package: import the packages instead.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
import ccdproc  # noqa: E402
from astropy.nddata import CCDData  # noqa: E402
from astropy.stats import mad_std  # noqa: E402

from targets.imaging.combine import combine  # noqa: E402

METHODS = {"median": "median", "mean": "average"}
"""Our method names and ccdproc's."""

CCDPROC_CLIPPING = {"callables": (np.ma.median, mad_std), "names": ("median", "mad_std")}
"""ccdproc's two spellings of sigma clipping around the median with the MAD scale."""


def make_frames(n_frames, shape, seed=20240301):
    """Bias-like float32 frames: level 1000 ADU, noise 10 ADU, 0.1 % cosmic rays of up
    to 30000 ADU and 0.01 % cold pixels at 0."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        frame = rng.normal(1000.0, 10.0, shape).astype(np.float32)
        hits = rng.integers(0, frame.size, frame.size // 1000)
        frame.flat[hits] += rng.uniform(100.0, 30000.0, hits.size).astype(np.float32)
        frame.flat[rng.integers(0, frame.size, frame.size // 10000)] = 0.0
        frames.append(frame)
    return frames


def measured(call, repeat):
    """``call()``'s result, its best wall-clock seconds of ``repeat`` calls, and its peak
    traced bytes (from one more call)."""
    seconds = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        seconds = min(seconds, time.perf_counter() - start)
    tracemalloc.start()
    result = call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--shape", default="4096x2048", help="rows x columns")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each call this many times and keep the best")
    args = parser.parse_args()
    shape = tuple(int(size) for size in args.shape.lower().split("x"))

    frames = make_frames(args.frames, shape)
    ccds = [CCDData(frame, unit="adu") for frame in frames]  # shares the arrays
    input_bytes = sum(frame.nbytes for frame in frames)
    print(f"{args.frames} frames of {shape[0]}x{shape[1]} float32 ({input_bytes / 2**20:.0f} "
          "MiB), sigma clip 3/3 around the median with the MAD scale, one pass.")
    print(f"Times: the best wall-clock seconds of {args.repeat} call(s) each. Memory: tracemalloc's peak during "
          "one more call,\nover the input's bytes, the frames already in memory.\n")
    header = (f"{'method':7} {'ccdproc clip':12} {'ours s':>7} {'ccdproc s':>10} "
              f"{'speed-up':>9} {'ours mem':>9} {'ccdproc mem':>12} {'max rel diff':>13} "
              f"{'mask diff':>10}")
    print(header)
    print("-" * len(header))
    for ours_name, ccdproc_name in METHODS.items():
        ours, ours_seconds, ours_peak = measured(lambda: combine(
            frames, ours_name, clip="sigma", sigma_lower=3, sigma_upper=3,
            max_iterations=1), args.repeat)
        for spelling, (centre, scale) in CCDPROC_CLIPPING.items():
            theirs, theirs_seconds, theirs_peak = measured(lambda: ccdproc.combine(
                ccds, method=ccdproc_name, sigma_clip=True, sigma_clip_low_thresh=3,
                sigma_clip_high_thresh=3, sigma_clip_func=centre,
                sigma_clip_dev_func=scale), args.repeat)
            both = ~ours.mask & ~theirs.mask
            difference = (np.abs(ours.data[both] - theirs.data[both])
                          / np.abs(theirs.data[both]))
            print(f"{ours_name:7} {spelling:12} {ours_seconds:7.2f} {theirs_seconds:10.2f} "
                  f"{theirs_seconds / ours_seconds:8.1f}x {ours_peak / input_bytes:9.2f} "
                  f"{theirs_peak / input_bytes:12.2f} {difference.max():13.1e} "
                  f"{np.count_nonzero(ours.mask != theirs.mask):10d}", flush=True)


if __name__ == "__main__":
    main()
