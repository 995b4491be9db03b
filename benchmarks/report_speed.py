"""CPU seconds per capacity report: the shipped example (HTML and Markdown) and the
heaviest capacity files we can construct (tests/heavy_capacity.py: the fuzz's slowest
class of valid input).

    python benchmarks/report_speed.py [--repeat N]

Each report runs as its own `planner report` process (start-up and imports included, as a
user meets it; CPU = user + system of the child) and, after one warm-up, in this process
(what a fuzz case costs: build, plots, render). Prints one line per report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from heavy_capacity import write_heavy  # noqa: E402


def child_cpu_s(argv: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def quiet():
    return contextlib.redirect_stdout(io.StringIO())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs per report (the minimum is printed)")
    args = ap.parse_args()
    from planner.cli import main as planner_main

    exe = str(Path(sys.executable).parent / "planner")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        reports = [("example (HTML)", ROOT / "examples" / "capacity.yaml", "r.html"),
                   ("example (Markdown)", ROOT / "examples" / "capacity.yaml", "r.md")]
        reports += [(name, p, "r.md") for name, p in write_heavy(tmp).items()]
        with quiet():
            planner_main(["report", str(reports[0][1]), "-o", str(tmp / "warm.html")])  # imports, caches
        print(f"{'report':<22} {'CLI CPU s':>10} {'in-process CPU s':>17}")
        for name, path, out in reports:
            cli = min(child_cpu_s([exe, "report", str(path), "-o", str(tmp / out)]) for _ in range(args.repeat))
            best = float("inf")
            for _ in range(args.repeat):
                c0 = time.process_time()
                with quiet():
                    planner_main(["report", str(path), "-o", str(tmp / out)])
                best = min(best, time.process_time() - c0)
            print(f"{name:<22} {cli:>10.2f} {best:>17.2f}")
    print(f"(PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}: when set, every CLI run "
          "compiles the package from source)")


if __name__ == "__main__":
    main()
