"""Torch microbenchmarks: GEMMs, memory streaming, decode attention, kernel overheads.

Every benchmark is timed the same way (:func:`measure`): one untimed call, warm-up
samples, then repeated samples of ``inner`` calls each (enough calls that a sample lasts
a few milliseconds, so timer resolution and launch jitter do not matter) and the median
per call. On cuda/mps the device is synchronized around each sample. Inputs that must
come from memory (weights, KV caches, streamed buffers) rotate over enough copies that
their total exceeds the last-level cache twice over, so a kernel never finds its operand
still cached from the previous call, which is also what happens in a real forward pass.

:func:`run` plans the list of benchmarks for a scale (``tiny`` for tests, ``quick``,
``full``), runs them with an optional progress callback and returns JSON-ready rows:
``{"kind", <shape fields>, "dtype", "flops", "bytes", "seconds", "repeats", "spread"}``.
Quick and full runs go over the plan twice, some tens of seconds apart, and keep the
faster median of each benchmark: on a shared machine another process taking the CPUs
for a few seconds only slows timings down, never speeds them up. The benchmarks that set
batch-1 decode and the end-to-end scale take a second take in the middle of each pass
(:data:`~planner.calibrate.bench_plan.SPREAD_TAKES`, :func:`~planner.calibrate.bench_plan.pass_schedule`).

Busy-machine retakes (criteria and constants: :mod:`planner.calibrate.quiet`): a
reference kernel is probed at the start (its quiet time and spread) and after every
benchmark, and the CPU time other processes took while each benchmark ran is read from
/proc/stat. A benchmark is *disturbed* when other processes took more than a share of
our cores beyond the free ones, or the reference kernel just before or after it was
slower than its quiet bound; disturbed benchmarks are retaken (after waiting for a quiet
moment) within a time budget. The rows keep ``other_cpu``, ``contention`` and ``drift``;
the result counts what stayed disturbed and by which witness (``busy``), and ``planner
calibrate`` refuses a profile with too many (:data:`~planner.calibrate.quiet.MAX_DISTURBED`).
"""

from __future__ import annotations

import time
from typing import Callable

from planner.calibrate import require_torch
from planner.calibrate.bench_plan import SCALES, Job, Plan, default_dtypes, pass_schedule, plan
from planner.calibrate.device import (check_device, cpu_count, cpu_model_name, device_fingerprint,
                                      device_memory_bytes, keep_freed_memory, last_level_cache_bytes,
                                      set_threads, synchronizer)
from planner.calibrate.end_to_end import tiny_model
from planner.calibrate.kernels import BENCHES, sentinel_kernel
from planner.calibrate.quiet import (CONTENDED, MAX_DISTURBED, QUIET_PROBES, LoadMonitor, Sentinel, is_disturbed,
                                     load_average, wait_for_quiet)
from planner.calibrate.timing import Rotating, Timing, measure

__all__ = [
    "BENCHES", "CONTENDED", "MAX_DISTURBED", "SCALES", "Job", "LoadMonitor", "Plan", "Rotating", "Timing", "check_device",
    "cpu_count", "cpu_model_name", "default_dtypes", "device_fingerprint", "device_memory_bytes", "keep_freed_memory",
    "last_level_cache_bytes", "measure", "plan", "run", "set_threads", "synchronizer", "tiny_model",
    "wait_for_quiet", "disturbed",
]

def disturbed(row: dict, drift_limit: float) -> bool:
    """Whether a benchmark row was taken while the machine was busy (see the module doc)."""
    return is_disturbed(row.get("contention"), row.get("drift"), drift_limit)


def run(device: str = "cpu", scale: str = "quick", *, threads: int | None = None, dtypes: list[str] | None = None,
        progress: Callable[[float, float, str], None] | None = None, kinds: set[str] | None = None) -> dict:
    """Run the benchmarks of ``plan(device, scale)``; returns ``{"measurements": rows,
    "threads": n, "llc_bytes": ..., "scale": ...}``. ``progress(done, total, label)`` is
    called before each benchmark (weights are rough relative costs)."""
    torch = require_torch()
    dev = check_device(device)
    n_threads = set_threads(threads)
    allocator = keep_freed_memory() if dev.type == "cpu" else None
    sync = synchronizer(dev)
    mem = device_memory_bytes(dev)
    mem_limit = min(1 << 30 if scale != "full" else 1 << 32, mem // 16)
    p = plan(dev.type, scale, dtypes, mem_limit)
    jobs = [j for j in p.jobs if kinds is None or j.kind in kinds]
    llc = last_level_cache_bytes(dev)
    cold = 2 * llc if scale != "tiny" else 1 << 20
    if scale == "tiny":
        timing = dict(warmup=1, repeats=3, sample_s=0.001, budget_s=0.5)
    elif scale == "quick":
        timing = dict(warmup=1, repeats=5, sample_s=0.003, budget_s=3.0)
    else:
        timing = dict(warmup=2, repeats=9, sample_s=0.005, budget_s=8.0)
    opts = {"sync": sync, "timing": timing}
    passes = 1 if scale == "tiny" else 2
    retake_budget = {"tiny": 0.0, "quick": 60.0, "full": 180.0}[scale]
    schedule = pass_schedule(jobs)
    total = passes * sum(jobs[i].weight for i in schedule)
    done = 0.0
    best: list[dict | None] = [None] * len(jobs)
    monitor = LoadMonitor(n_threads)
    load_start = load_average()
    sentinel = Sentinel(sentinel_kernel(torch, dev, tiny=scale == "tiny"), sync)
    if scale != "tiny":  # the tiny kernel stays in cache between back-to-back probes: no quiet start for it
        wait_for_quiet(10.0, n_threads)
        sentinel.settle(QUIET_PROBES)
    before = [sentinel.probe()]

    def one(i: int, job: Job, label: str) -> None:
        if progress:
            progress(min(done, total), total, label)
        mon = LoadMonitor(n_threads)
        t, flops, nbytes = BENCHES[job.kind](torch, dev, job.params, cold, opts)
        load = mon.read()
        after = sentinel.probe()
        row = {"kind": job.kind, **job.params, "flops": flops, "bytes": nbytes, "seconds": t.seconds,
               "repeats": t.repeats, "spread": round(t.spread, 4),
               "other_cpu": None if load is None else round(load["other_cpu"], 3),
               "contention": None if load is None else round(load["contention"], 3),
               "_probes": (before[0], after)}
        before[0] = after
        prev = best[i]
        if prev is None or _trusted_faster(row, prev, sentinel):
            if prev is not None:
                row["repeats"] += prev["repeats"]
            best[i] = row
        else:
            prev["repeats"] += t.repeats
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    def busy() -> list[int]:
        return [i for i, r in enumerate(best) if r and disturbed(_with_drift(r, sentinel), sentinel.bound)]

    retaken = 0
    with torch.inference_mode():
        for pas in range(passes):
            for i in schedule:
                job = jobs[i]
                one(i, job, job.label + (f" (pass {pas + 1}/{passes})" if passes > 1 else ""))
                done += job.weight
        # retake what another process disturbed (its CPU share, or the reference kernel's drift)
        start = time.perf_counter()
        for _ in range(3):
            todo = busy()
            if not todo or time.perf_counter() - start > retake_budget:
                break
            for i in todo:
                if time.perf_counter() - start > retake_budget:
                    break
                wait_for_quiet(min(5.0, retake_budget / 8), n_threads)
                before[0] = sentinel.probe()
                one(i, jobs[i], jobs[i].label + " (retake: the machine was busy)")
                retaken += 1
    for r in best:
        if r is not None:
            _with_drift(r, sentinel)
            r.pop("_probes", None)
    rows = [r for r in best if r is not None]
    if progress:
        progress(total, total, "done")
    other = monitor.other_fraction()
    limit = sentinel.bound
    by_cpu = sum((r.get("contention") or 0.0) > CONTENDED for r in rows)
    by_drift = sum((r.get("drift") or 0.0) > limit for r in rows)
    busy_conditions = {
        "load_average": [load_start, load_average()], "retaken": retaken,
        "disturbed": sum(disturbed(r, limit) for r in rows), "benchmarks": len(rows),
        "disturbed_by": {"contention": by_cpu, "drift": by_drift},
        "reference_kernel_s": [round(sentinel.reference, 6), round(min(sentinel.times), 6),
                               round(max(sentinel.times), 6)],
        "reference_spread": round(sentinel.spread, 4), "drift_bound": round(limit, 4),
        "criteria": f"other processes over {CONTENDED:.0%} of our cores beyond the free ones, or the reference "
                    f"kernel over {limit:.0%} slower than its quiet median",
    }
    return {"measurements": rows, "threads": n_threads, "llc_bytes": llc, "scale": scale, "passes": passes,
            "dtypes": p.dtypes, "device_type": dev.type, "other_cpu_fraction": other, "allocator": allocator,
            "busy": busy_conditions}


def _with_drift(row: dict, sentinel: Sentinel) -> dict:
    """Set ``row["drift"]``: the slower of the reference-kernel probes around it, against
    the quiet reference (:attr:`Sentinel.reference`)."""
    probes = row.get("_probes")
    if probes:
        row["drift"] = round(max(sentinel.drift(p) for p in probes), 4)
    return row


def _trusted_faster(new: dict, old: dict, sentinel: Sentinel) -> bool:
    """Keep the new take when the old was disturbed and the new is not, or (both trusted or
    both not) when it is faster: a busy machine only slows a timing down."""
    limit = sentinel.bound
    bad_new, bad_old = disturbed(_with_drift(new, sentinel), limit), disturbed(_with_drift(old, sentinel), limit)
    if bad_new != bad_old:
        return bad_old
    return new["seconds"] < old["seconds"]
