"""Fuzz the CLI with >= 10,000 mutated copies of the shipped inputs (issue 13).

Prints the counts per outcome (clean error, valid run, and each broken promise: traceback,
hang, non-finite output, exit code, unusable message), the slowest cases in CPU seconds
and the peak memory of this process.
Run: python benchmarks/fuzz.py [N=10000] [SEED=0] [--only TEXT]   (in process, 5 s CPU
per case; the slow whole-search commands included). ``--only capacity`` runs N mutated
capacity files (only the templates whose shipped file name contains TEXT; "flags": only
out-of-range flags; "measured": mutated measured-runs CSVs through ``validate --measured``,
tests/test_fuzz_measured.py).
"""

from __future__ import annotations

import argparse
import collections
import heapq
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import fuzzing  # noqa: E402

SLOWEST_SHOWN = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=10_000)
    ap.add_argument("seed", nargs="?", type=int, default=0)
    ap.add_argument("--only", default=None,
                    help="only mutations of shipped files whose name contains this (e.g. capacity), flags, "
                         "or measured")
    args = ap.parse_args()
    n, seed = args.n, args.seed
    counts: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    slowest: list[tuple[float, str, str]] = []
    t0 = time.perf_counter()
    if args.only == "measured":
        import test_fuzz_measured

        cases = test_fuzz_measured.make_cases(n, seed=seed)
    else:
        cases = fuzzing.make_cases(n, seed=seed, heavy=True, only=args.only)
    for i, case in enumerate(cases):
        with tempfile.TemporaryDirectory() as d:
            o = fuzzing.run_in_process(case, Path(d), timeout_s=5.0)
        key = o.problem or ("valid run" if o.rc == 0 else f"clean exit {o.rc}")
        counts[key] += 1
        heapq.heappush(slowest, (o.cpu_s, case.label[:100], key))
        if len(slowest) > SLOWEST_SHOWN:
            heapq.heappop(slowest)
        if o.problem:
            example = f"{case.label[:100]} | {o.err.strip()[-200:]}"
            examples.setdefault(o.problem, example)
            print(f"case {i}: {o.problem}: {example}", file=sys.stderr, flush=True)
        if (i + 1) % 500 == 0:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{i + 1:,} cases, {time.perf_counter() - t0:.0f} s, peak {peak:.0f} MB: {dict(counts)}",
                  file=sys.stderr, flush=True)
    for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{k:>24}: {v:,}")
    for k, v in examples.items():
        print(f"first {k}: {v}")
    for cpu_s, label, key in sorted(slowest, reverse=True):
        print(f"slow: {cpu_s:.2f} s CPU  {label} ({key})")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n:,} cases in {time.perf_counter() - t0:.0f} s; peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
