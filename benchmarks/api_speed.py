"""Speed of the Python API for one configuration at a time: estimates per second in a
plain Python loop (the user who loops), after one warm-up call that loads the specs and
builds the tables.

Goal (issue 9): at least 10,000 estimates per second (0.1 ms each). The first figure is
the scalar fast path (`planner.estimate`); the second runs the same configuration
through the vectorized engine on a 1-row table, for comparison.
Run: python benchmarks/api_speed.py [N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import planner  # noqa: E402


def loop_rate(fn, n: int, repeats: int = 3, clock=time.perf_counter) -> float:
    """Best of ``repeats`` timings of n calls on ``clock``; calls per second."""
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        for i in range(n):
            fn(i)
        best = min(best, clock() - t0)
    return n / best


def main(n: int = 20_000) -> float:
    m, h = planner.load_model("llama-3.1-8b"), planner.load_hardware("h100-sxm")
    gens = (128, 256, 512, 1024)

    def by_spec(i):
        return planner.estimate(model=m, hardware=h, prompt_len=1024, gen_len=gens[i & 3], batch=1 + (i & 7))

    def by_name(i):
        return planner.estimate(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=1024, gen_len=gens[i & 3])

    by_spec(0)
    rate = loop_rate(by_spec, n)
    print(f"planner.estimate, spec objects: {rate:,.0f} estimates/s ({1e6 / rate:.1f} us each)")
    # on a shared machine wall time includes waiting for a core; CPU time does not
    cpu_rate = loop_rate(by_spec, n, clock=time.process_time)
    print(f"planner.estimate, spec objects, process CPU time: {cpu_rate:,.0f} estimates/s "
          f"({1e6 / cpu_rate:.1f} us each)")
    rate_names = loop_rate(by_name, n // 4)
    print(f"planner.estimate, catalog names: {rate_names:,.0f} estimates/s ({1e6 / rate_names:.1f} us each)")

    from planner.cost.api import columns
    from planner.cost.engine import evaluate
    from planner.cost.tables import HardwareTable, ModelTable

    mt, ht = ModelTable.build([m]), HardwareTable.build([h])

    def vectorized(i):
        cols = columns(1, model=0, hardware=0, devices=1, batch=1 + (i & 7), concurrency=0, prompt_len=1024,
                       gen_len=gens[i & 3], samples=1, weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16",
                       kv_budget=0, prefix_sharing=True)
        return evaluate(cols, mt, ht)

    rate_vec = loop_rate(vectorized, max(n // 20, 100))
    print(f"vectorized engine on 1-row arrays: {rate_vec:,.0f} estimates/s ({1e6 / rate_vec:.1f} us each)")
    print(f"goal >= 10,000 estimates/s: {'met' if rate >= 10_000 else 'NOT met'} (wall), "
          f"{'met' if cpu_rate >= 10_000 else 'NOT met'} (CPU time); "
          f"scalar path {rate / rate_vec:.0f}x the 1-row vectorized engine")
    return rate


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", nargs="?", type=int, default=20_000, help="calls per timing (default: %(default)s)")
    main(ap.parse_args().n)
