"""Timing for the calibration benchmarks: warm-up, repeated samples and their median
(:func:`measure`), operands rotated past the cache (:class:`Rotating`), the monitor of
other processes' CPU use (:class:`LoadMonitor`, :func:`wait_for_quiet`), and a reference
kernel timed between benchmarks (:class:`Sentinel`): on a shared machine a timing is
trusted only when the reference kernel ran at its usual speed just before and just after
it and other processes left the CPUs alone meanwhile; otherwise it is retaken.

torch-free: the device synchronization is passed in as a callable.
"""

from __future__ import annotations

import math
import os
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


CONTENDED = 0.15  # other processes' CPU share above which a measurement is retaken
DRIFT = 0.15      # the reference kernel this much slower than its fastest: the machine is disturbed


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


class Sentinel:
    """A fixed reference kernel (a GEMM and a streaming read) timed between benchmarks.

    ``probe()`` times it (the fastest of ``calls`` calls, a few milliseconds in all) and
    records the time. Another process or VM slowing the machine down (CPU time, memory
    bandwidth, even when /proc/stat cannot see it) slows the reference kernel too: a
    benchmark whose probe before or after is more than :data:`DRIFT` slower than the
    fastest probe of the run was disturbed."""

    def __init__(self, fn: Callable[[], object], sync: Callable[[], None], calls: int = 3):
        self.fn, self.sync, self.calls = fn, sync, calls
        self.times: list[float] = []
        self.fn()
        self.sync()

    def probe(self) -> float:
        best = float("inf")
        for _ in range(self.calls):
            self.sync()
            t = time.perf_counter()
            self.fn()
            self.sync()
            best = min(best, time.perf_counter() - t)
        self.times.append(best)
        return best

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")

    def drift(self, seconds: float) -> float:
        """How much slower than the fastest probe so far (0 = as fast)."""
        return seconds / self.best - 1.0 if self.times else 0.0


def wait_for_quiet(max_s: float, threshold: float = 0.10, window_s: float = 0.5) -> bool:
    """Wait (at most ``max_s``) until other processes use under ``threshold`` of the CPUs."""
    end = time.perf_counter() + max_s
    while True:
        mon = LoadMonitor()
        time.sleep(window_s)
        f = mon.other_fraction()
        if f is None or f < threshold:
            return True
        if time.perf_counter() >= end:
            return False


class LoadMonitor:
    """How much CPU other processes used while we measured (Linux /proc; None elsewhere).

    ``other_fraction`` = CPU time of everything but this process / (wall time x CPUs).
    Timings taken while it is high are inflated by contention; the commands warn."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as fh:
                parts = fh.readline().split()[1:]
            vals = [int(x) for x in parts]
            busy = sum(vals) - vals[3] - (vals[4] if len(vals) > 4 else 0)  # minus idle and iowait
            t = os.times()
            return time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), t.user + t.system
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def other_fraction(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        if wall <= 0:
            return None
        other = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, other) / (wall * (os.cpu_count() or 1))
