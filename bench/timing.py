"""Timing shared by the benchmarks."""

import time


def best_of(repeat, function):
    """``(seconds, result)``: the fastest of ``repeat`` calls of ``function`` and the
    last call's result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result
