"""Print the Kinetics findings as reproduced by planner (aime24, Qwen3 family, one B200).

Run: python benchmarks/kinetics_findings.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.findings import run  # noqa: E402


def main() -> None:
    t0 = time.perf_counter()
    f = run()
    print(f"searched in {time.perf_counter() - t0:.1f} s")
    print(f"{'$/request budget':>18} {'best dense':>11} {'best sparse':>12} {'gap (points)':>13}")
    for b, d, s, g in zip(f.budgets_usd, f.best_dense, f.best_sparse, f.gap_points):
        print(f"{b:>18.2e} {100 * d:>10.1f}% {100 * s:>11.1f}% {g:>13.1f}")
    print("largest generation length on the dense frontier, models under 14B:",
          ", ".join(f"{m} {g}" for m, g in f.small_models_max_gen.items()),
          f"(longest searched: {f.max_gen_len})")
    print("dense frontier (model, strategy, samples, gen_len, accuracy, $/request):")
    step = max(1, len(f.dense_frontier) // 20)
    for r in f.dense_frontier[::step]:
        print(f"  {r['model']:<11} {r['strategy']:<9} k={r['samples']:<3} L={r['gen_len']:<6} "
              f"{100 * r['accuracy']:5.1f}%  ${r['cost_usd']:.2e}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    main()
