"""Timing for the calibration benchmarks: warm-up, repeated samples and their median
(:func:`measure`) and operands rotated past the cache (:class:`Rotating`). Whether the
machine was quiet meanwhile is :mod:`planner.calibrate.quiet`'s business.

torch-free: the device synchronization is passed in as a callable.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Timing:
    seconds: float      # median time of one call
    repeats: int        # samples taken
    inner: int          # calls per sample
    spread: float       # (p75 - p25) / median of the samples


def measure(fn: Callable[[], object], sync: Callable[[], None], *, warmup: int = 2, repeats: int = 5,
            sample_s: float = 0.004, max_repeats: int | None = None, budget_s: float = 5.0) -> Timing:
    """Median seconds per call of ``fn``. Adds samples (up to ``max_repeats``) while the
    samples spread by more than 20% (another process took the CPU for a moment), within
    ``budget_s`` of timing for this benchmark."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    first = max(time.perf_counter() - t0, 1e-9)
    inner = max(1, min(100_000, int(sample_s / first)))
    for _ in range(warmup):
        for _ in range(inner):
            fn()
    sync()
    samples: list[float] = []
    max_repeats = max_repeats or 3 * repeats
    start = time.perf_counter()
    while True:
        sync()
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        samples.append((time.perf_counter() - t) / inner)
        if len(samples) < repeats:
            continue
        med = statistics.median(samples)
        q = statistics.quantiles(samples, n=4) if len(samples) >= 4 else [med, med, med]
        spread = (q[2] - q[0]) / med if med > 0 else 0.0
        if spread <= 0.2 or len(samples) >= max_repeats or time.perf_counter() - start > budget_s:
            return Timing(med, len(samples), inner, spread)


class Rotating:
    """Round-robin over copies of an operand whose total exceeds the cache."""

    def __init__(self, make: Callable[[], object], nbytes: int, cold_bytes: int, max_copies: int = 1024):
        n = 1 if nbytes >= cold_bytes else min(max_copies, math.ceil(cold_bytes / max(nbytes, 1)))
        self.items = [make() for _ in range(max(1, n))]
        self.i = 0

    def next(self):
        self.i = (self.i + 1) % len(self.items)
        return self.items[self.i]
