"""Wall-clock of `planner recommend --task aime24 --hardware h100-sxm`, start-up included.

Goal (issue 3): at least one million configurations evaluated within 2 s on this 2-core
machine. Runs the real command in a fresh interpreter (best of N) and prints the figures.
Run: python benchmarks/recommend_speed.py [repeats]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CMD = [sys.executable, "-m", "planner", "recommend", "--task", "aime24", "--hardware", "h100-sxm", "--json"]


def main(repeats: int = 5) -> None:
    best, answer = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run(CMD, cwd=ROOT, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - t0)
        answer = json.loads(out.stdout)
    n = answer["evaluated"]
    print(" ".join(CMD[2:]))
    print(f"configurations evaluated: {n:,} (feasible {answer['feasible']:,}; "
          f"{answer['stage_evaluations']:,} engine stage rows)")
    print(f"best of {repeats}: {best:.2f} s wall-clock, start-up included -> {n / best / 1e6:.2f} M configurations/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
