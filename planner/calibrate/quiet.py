"""Was the machine quiet while we timed? The one home of the busy-machine criteria.

A benchmark is *disturbed* when either of two independent witnesses says so:

* **Contention** (:class:`LoadMonitor`, :func:`contention`): the CPU time that other
  processes took while it ran, read from ``/proc/stat`` (all CPUs' busy time) minus this
  process's own time (``os.times``: every thread of ours, torch's intra-op threads
  included). Hypervisor *steal* time and the ``guest`` columns (already inside ``user``)
  are not "busy": steal is a neighbour VM slowing our vCPUs, which the reference kernel
  sees, not another process on them. Other processes only hurt when they need more than
  the cores we leave free (``cpus - threads``), so the figure is their CPU beyond the free
  cores as a share of *our* cores, less the counters' uncertainty (:func:`counter_slack_s`:
  ``/proc/stat`` and ``os.times`` count in 10 ms ticks and /proc/stat samples them, so
  on a 50 ms benchmark a fixed 15% bar on the raw share was mostly tick noise).
* **Drift** (:class:`Sentinel`): a fixed reference kernel probed before the plan and
  after every benchmark. Its reference time is the median of the run's probes, and the
  bound is :data:`DRIFT_Z` robust standard deviations of those probes (1.4826 x MAD /
  median), kept within [:data:`DRIFT_FLOOR`, :data:`DRIFT_CEIL`]: both hold while fewer
  than half the probes are disturbed, and both come from probes taken as the benchmarks'
  neighbours are (just after a benchmark, its operands evicted), not from back-to-back
  probes, which run warmer and steadier. :data:`QUIET_PROBES` probes taken at the start,
  after waiting for a quiet moment, guard a run that was busy most of the time: when the
  run's median is beyond the bound above theirs, theirs is the reference. The old
  criterion, 15% slower than the *fastest* probe of the run, ran away as probes
  accumulated: the fastest of ~300 noisy probes sits far in the distribution's tail, so
  most later probes were "slow" even on an idle machine.

:func:`is_disturbed` combines them; :data:`MAX_DISTURBED` is the share of benchmarks that
may stay disturbed after retakes before ``planner calibrate`` refuses a profile.

torch-free: the reference kernel and the device synchronization are passed in.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

CONTENDED = 0.15
"""Share of our cores that other processes may take (beyond the free cores, after the
tick slack) before a timing is retaken. An OpenMP parallel region waits for its slowest
thread, so losing a share s of one core delays a compute-bound benchmark by up to ~s:
15% keeps a disturbed-but-accepted timing within the 10% median bar's order."""

TICK_SLACK = 1.0
"""Clock ticks that each counter's difference may be off by: /proc/stat's per-CPU busy
counters and our user and system times are read in whole ticks."""

SAMPLING_Z = 3.0
"""/proc/stat charges each tick to whatever runs at that instant, so a CPU busy a share p
of N ticks is counted with a standard deviation of sqrt(N p (1 - p)) <= sqrt(N / 4)
ticks, while our own time is exact: 3 such deviations are allowed before other
processes' time counts (a 0.3 s benchmark on two CPUs: ~12 ticks of 60)."""

QUIET_PROBES = 9
"""Reference-kernel probes at the start (after waiting for a quiet moment) that stand in
for the reference when most of the run was busy: enough for a median that four
disturbed probes of the nine do not move."""

DRIFT_Z = 4.0
"""Robust standard deviations above the quiet reference at which a probe is disturbed:
a quiet probe (normal noise) passes 4 sigma with probability ~3e-5, so over a quick
run's ~300 probes a false flag is a ~1% event; heavier tails are what the floor is for."""

DRIFT_FLOOR = 0.10
"""The drift bound never goes below 10%: a slowdown smaller than the validation's median
bar is not worth a retake, even when the reference kernel is very steady."""

DRIFT_CEIL = 0.50
"""Nor above 50%: a reference kernel whose quiet spread calls for more is no witness;
the bound stays at 50% and the run's conditions report the spread."""

MAX_DISTURBED = 0.10
"""Share of benchmarks still disturbed after retakes above which a profile is refused:
the fits are robust (soft-L1 loss) to a few outliers, not to a tenth of the points."""

QUIET_WAIT = 0.10
"""Contention below which :func:`wait_for_quiet` calls the machine quiet."""

BUSY_WARNING = 0.10
"""Share of all CPUs other processes used over a whole command above which it warns."""

MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation / its median absolute deviation


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


# ------------------------------------------------------------------------------------------
# contention: other processes' CPU time
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuSample:
    wall_s: float    # perf_counter
    busy_s: float    # all CPUs' busy time (user, nice, system, irq, softirq), seconds
    steal_s: float   # hypervisor steal, seconds (not busy: reported apart)
    own_s: float     # this process's user + system time, all threads


def parse_proc_stat(first_line: str, tick_s: float) -> tuple[float, float]:
    """(busy_s, steal_s) from the ``cpu`` line of /proc/stat: user nice system idle iowait
    irq softirq steal guest guest_nice (guest time is already counted in user/nice)."""
    parts = first_line.split()
    if not parts or parts[0] != "cpu":
        raise ValueError("not the cpu line of /proc/stat")
    v = [int(x) for x in parts[1:]] + [0] * 10
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy * tick_s, v[7] * tick_s


def counter_slack_s(wall_s: float, cpus: int, tick_s: float = 0.01) -> float:
    """CPU seconds that the measured other processes' time may be off by over ``wall_s``:
    the counters' resolution (:data:`TICK_SLACK`, ``cpus`` counters and two of ours) and
    the tick sampling (:data:`SAMPLING_Z`)."""
    ticks = wall_s / tick_s
    return (TICK_SLACK * (cpus + 2) + SAMPLING_Z * math.sqrt(cpus * ticks / 4.0)) * tick_s


def contention(other_s: float, wall_s: float, cpus: int, threads: int, tick_s: float = 0.01) -> float:
    """Share of our ``threads`` cores that other processes took over ``wall_s``: their CPU
    time beyond what the free cores (``cpus - threads``) absorb, less the counters'
    uncertainty (:func:`counter_slack_s`), clipped to [0, 1]."""
    if wall_s <= 0 or threads <= 0:
        return 0.0
    free_s = max(0, cpus - threads) * wall_s
    slack_s = counter_slack_s(wall_s, cpus, tick_s)
    return min(1.0, max(0.0, other_s - free_s - slack_s) / (min(threads, cpus) * wall_s))


class LoadMonitor:
    """Other processes' CPU time since construction (Linux /proc; None elsewhere)."""

    def __init__(self, threads: int | None = None):
        self.cpus = os.cpu_count() or 1
        self.threads = min(threads or self.cpus, self.cpus)
        self.tick_s = 1.0 / _clock_ticks()
        self.start = self._sample()

    def _sample(self) -> CpuSample | None:
        try:
            with open("/proc/stat") as fh:
                busy_s, steal_s = parse_proc_stat(fh.readline(), self.tick_s)
            t = os.times()
            return CpuSample(time.perf_counter(), busy_s, steal_s, t.user + t.system)
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def read(self) -> dict | None:
        """``{"wall_s", "other_s", "steal_s", "other_cpu", "contention"}`` since the start:
        ``other_cpu`` is other processes' share of all CPUs, ``contention`` what
        :func:`contention` makes of it for our threads."""
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end.wall_s - self.start.wall_s
        if wall <= 0:
            return None
        other = max(0.0, (end.busy_s - self.start.busy_s) - (end.own_s - self.start.own_s))
        return {"wall_s": wall, "other_s": other, "steal_s": end.steal_s - self.start.steal_s,
                "other_cpu": other / (wall * self.cpus),
                "contention": contention(other, wall, self.cpus, self.threads, self.tick_s)}

    def other_fraction(self) -> float | None:
        r = self.read()
        return None if r is None else r["other_cpu"]

    def contention(self) -> float | None:
        r = self.read()
        return None if r is None else r["contention"]


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def wait_for_quiet(max_s: float, threads: int | None = None, window_s: float = 0.5) -> bool:
    """Wait (at most ``max_s``) until other processes' contention for our threads' cores
    falls under :data:`QUIET_WAIT`."""
    end = time.perf_counter() + max_s
    while True:
        mon = LoadMonitor(threads)
        time.sleep(window_s)
        c = mon.contention()
        if c is None or c < QUIET_WAIT:
            return True
        if time.perf_counter() >= end:
            return False


# ------------------------------------------------------------------------------------------
# drift: the reference kernel
# ------------------------------------------------------------------------------------------
def drift_bound(probes_s: Sequence[float]) -> tuple[float, float, float]:
    """(reference_s, robust relative spread, bound) of reference-kernel probes: the median,
    1.4826 x MAD / median, and :data:`DRIFT_Z` spreads within the floor and ceiling."""
    med = statistics.median(probes_s)
    mad = statistics.median(abs(x - med) for x in probes_s)
    spread = MAD_TO_SIGMA * mad / med if med > 0 else 0.0
    return med, spread, min(DRIFT_CEIL, max(DRIFT_FLOOR, DRIFT_Z * spread))


class Sentinel:
    """A fixed reference kernel timed between benchmarks.

    ``probe()`` times it (the fastest of ``calls`` calls, a few milliseconds in all) and
    records the time; :meth:`settle` takes the quiet probes of the start. Another process
    or VM slowing the machine down (CPU time, memory bandwidth, even when /proc/stat
    cannot see it) slows the reference kernel too. See the module doc for the bound."""

    def __init__(self, fn: Callable[[], object], sync: Callable[[], None], calls: int = 3):
        self.fn, self.sync, self.calls = fn, sync, calls
        self.times: list[float] = []
        self.quiet: list[float] = []
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

    def settle(self, n: int = QUIET_PROBES) -> None:
        """Probe ``n`` times: the guard for a run that is busy most of the time."""
        self.quiet = [self.probe() for _ in range(n)]

    def _stats(self) -> tuple[float, float, float]:
        if not self.times:
            return float("nan"), 0.0, DRIFT_CEIL
        ref, spread, bound = drift_bound(self.times)
        if self.quiet:
            start = statistics.median(self.quiet)
            if ref > start * (1.0 + bound):  # busy most of the run: the quiet start is the reference
                ref = start
        return ref, spread, bound

    @property
    def reference(self) -> float:
        return self._stats()[0]

    @property
    def spread(self) -> float:
        return self._stats()[1]

    @property
    def bound(self) -> float:
        return self._stats()[2]

    def drift(self, seconds: float) -> float:
        """How much slower than the reference (0 = as fast, negative = faster)."""
        return seconds / self.reference - 1.0 if self.times else 0.0


def is_disturbed(contention_share: float | None, drift: float | None, drift_limit: float) -> bool:
    """A benchmark is disturbed when other processes contended for our cores beyond
    :data:`CONTENDED`, or the reference kernel around it drifted beyond ``drift_limit``."""
    return (contention_share or 0.0) > CONTENDED or (drift or 0.0) > drift_limit
