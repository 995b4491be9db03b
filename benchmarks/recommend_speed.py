"""Wall-clock of `planner recommend` (the default scenario), start-up included.

Goal (issue 10): the default scenario within 1.5 s wall on this 2-core machine,
start-up included, from a fresh install's first run. Runs the real command in a fresh
interpreter (best of N, after one warm-up run) and prints the figures, wall and CPU; then
the same for ``examples/layouts_scenario.yaml`` (the default scenario plus pipeline, expert
and attention data parallel layouts), so the layout axis is measured too.

The child runs with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` removed from
its environment), as an installed planner runs (pip compiles a wheel's modules, `make
install` runs compileall): without it every start compiles the package's ~100 modules
again. Each scenario is timed three ways, each in a cache folder of its own
(``PLANNER_CACHE_DIR``, a temporary folder):

- computed: the planner's on-disk caches off (``PLANNER_NO_CACHE=1``: every YAML file
  parsed, every accuracy array computed);
- first run: an empty cache folder for every run, as a fresh install's first command
  meets it: what it finds is the shipped read-only cache (``precomputed/``, `make
  precompute`: the default scenario's parsed YAML and accuracy arrays);
- warm: the cache folder the warm-up run filled (parsed YAML, the search's accuracy
  arrays: catalog.read_yaml, accuracy.search_cache), as a scenario asked again runs.

Run: python benchmarks/recommend_speed.py [repeats] [--cold] [--default]
(``--cold``: the computed and first runs only; ``--default``: the default scenario only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = [sys.executable, "-m", "planner", "recommend", "--json"]
RUNS = {"default scenario": [], "layouts scenario": ["--scenario", str(ROOT / "examples" / "layouts_scenario.yaml")]}


def _children_cpu_s() -> tuple[float, float]:
    """User and system CPU seconds of the finished children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


MODES = {"computed": "computed (PLANNER_NO_CACHE=1)", "first": "first run (empty cache folder)",
         "warm": "warm (cache folder filled)"}


def time_command(cmd: list[str], repeats: int, mode: str = "warm") -> tuple[float, float, tuple, dict]:
    """Best and median wall-clock and the CPU time (user, system) of the run with the
    least user + system time, of ``cmd`` over ``repeats`` runs in ``mode`` (:data:`MODES`)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PLANNER_NO_CACHE", "PLANNER_NO_SHIPPED_CACHE")}
    if mode == "computed":
        env["PLANNER_NO_CACHE"] = "1"
    walls, best_cpu, answer = [], (float("inf"), 0.0), None
    with tempfile.TemporaryDirectory(prefix="planner-bench-") as tmp:
        env["PLANNER_CACHE_DIR"] = str(Path(tmp) / "warm")
        subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True, env=env)  # bytecode, warm cache
        for i in range(repeats):
            if mode == "first":
                env["PLANNER_CACHE_DIR"] = str(Path(tmp) / f"first{i}")
            (u0, s0), t0 = _children_cpu_s(), time.perf_counter()
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True, env=env)
            walls.append(time.perf_counter() - t0)
            u1, s1 = _children_cpu_s()
            if u1 - u0 + s1 - s0 < sum(best_cpu):
                best_cpu = (u1 - u0, s1 - s0)
            answer = json.loads(out.stdout)
    return min(walls), statistics.median(walls), best_cpu, answer


def main(repeats: int = 5, cold_only: bool = False, default_only: bool = False) -> None:
    for name, extra in RUNS.items():
        if default_only and extra:
            continue
        print(f"{name}: planner {' '.join(BASE[3:] + extra)}")
        for mode, label in MODES.items():
            if cold_only and mode == "warm":
                continue
            wall, median, cpu, answer = time_command(BASE + extra, repeats, mode)
            n = answer["evaluated"]
            if mode == "computed":
                print(f"  configurations evaluated: {n:,} (feasible {answer['feasible']:,}; "
                      f"{answer['stage_evaluations']:,} engine stage rows)")
            print(f"  {label}, {repeats} runs: best {wall:.2f} s / median {median:.2f} s wall-clock, "
                  f"best {sum(cpu):.2f} s CPU ({cpu[0]:.2f} user + {cpu[1]:.2f} system), start-up included -> {n / wall / 1e6:.2f} M configurations/s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repeats", nargs="?", type=int, default=5, help="timed runs per mode (default: %(default)s)")
    ap.add_argument("--cold", action="store_true", help="the computed and first runs only")
    ap.add_argument("--default", action="store_true", help="the default scenario only")
    args = ap.parse_args()
    main(args.repeats, args.cold, args.default)
