"""Clients of a closed loop that the replay's TTFT leaves waiting: Little's law per row.

A closed-loop benchmark holds C requests at every moment; each lives TTFT + (osl - 1) TPOT
(measured). Where the measured TTFT exceeds the replay's by ``excess``, read the excess as
time a request spends waiting outside the engine's running set: by Little's law the
share of the C clients so waiting is ``excess / lifetime``, and the engine ran on average

    L = C (1 - excess / lifetime)

requests at once. ``C - L`` is the deficit; the script prints its median per (engine,
version, model, TP) row and concurrency column for the aggregated rows with
measurements, and per band of the token rate the loop demanded (``C osl / lifetime``,
output tokens a second), where a rate-bound stage outside the GPU (an HTTP frontend, a
tokenizer or detokenizer process serving every request in turn) would show first.

A deficit that is the same number of clients at every concurrency reads as a running
limit (max batch size, KV pool); one that scales with C as a rate limit outside the
engine; one near 0 says the replay's TTFT accounts for the wait. Negative values are
the replay waiting longer than the benchmark did. docs/serving-experiments.md, Round 31.

Run: python benchmarks/closed_loop_deficit.py [FILE.csv] [--engine E] [--min-rows N]
(default ../shared/data/serving-measured-hopper-dev.csv, every engine; ~3 s).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repeat_spread import replay_shipped, whole_number  # noqa: E402
from serving_fidelity import DEFAULT  # noqa: E402  (the dev file's one home among the benchmarks)

from planner.errors import InputError  # noqa: E402
from planner.engine_profiles import engine_names  # noqa: E402
from planner.replay_rows import in_flight  # noqa: E402

RATE_BANDS = (0.0, 2e3, 4e3, 6e3, 8e3, 1e4, 2e4, np.inf)  # output tokens a second the loop demanded


def deficit(conc, osl, ttft_s, tpot_s, predicted_ttft_s):
    """Per row: (lifetime_s, clients waiting ``C - L``, demanded token rate a second), the
    module docstring's Little's-law reading; arrays broadcast."""
    osl = np.asarray(osl, dtype=float)
    life = np.asarray(ttft_s, dtype=float) + np.maximum(osl - 1.0, 0.0) * np.asarray(tpot_s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (np.asarray(ttft_s, dtype=float) - np.asarray(predicted_ttft_s, dtype=float)) / life
        rate = np.asarray(conc, dtype=float) * osl / life
    return life, np.asarray(conc, dtype=float) * share, rate


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    ap.add_argument("--engine", default="", choices=engine_names(), help="only this engine's rows")
    ap.add_argument("--min-rows", type=whole_number, default=1, metavar="N",
                    help="table rows with at least N runs (a whole number >= 0)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # a usage error (exit 2), or --help (exit 0)
        return int(exc.code or 0)
    try:
        runs, pred = replay_shipped(args.file)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    conc = in_flight(runs)
    eng = np.array([e.strip().lower() for e in runs.engine])
    ok = (pred.status == "ok") & (runs.mode == "agg") & np.isfinite(runs.measured_ttft_s) \
        & np.isfinite(runs.measured_tpot_s) & np.isfinite(conc)
    if args.engine:
        ok &= eng == args.engine.lower()
    _, waiting, rate = deficit(conc, runs.osl, runs.measured_ttft_s, runs.measured_tpot_s, pred.ttft_s)
    rows = np.flatnonzero(ok)
    cs = sorted({int(c) for c in conc[rows]})
    key = lambda i: (eng[i], str(runs.engine_version[i] or "?"), str(pred.model[i]), int(runs.tp[i]))  # noqa: E731
    groups: dict = {}
    for i in rows:
        groups.setdefault(key(i), {}).setdefault(int(conc[i]), []).append(waiting[i])
    print(f"{args.file}: {rows.size} aggregated rows with measurements; clients waiting C - L (median) by concurrency C")
    head = f"{'engine':8} {'version':16} {'model':20} {'tp':>3} " + " ".join(f"{c:>6}" for c in cs)
    print(head)
    print("-" * len(head))
    for k in sorted(groups):
        cells = groups[k]
        if sum(len(v) for v in cells.values()) < args.min_rows:
            continue
        vals = " ".join(f"{np.median(cells[c]):6.1f}" if c in cells else f"{'':6}" for c in cs)
        print(f"{k[0]:8} {k[1][:16]:16} {k[2][:20]:20} {k[3]:>3} {vals}")
    print("\nby the token rate the loop demanded (output tokens / s): rows, median C - L, median (C - L) / C")
    for lo, hi in zip(RATE_BANDS[:-1], RATE_BANDS[1:]):
        sel = rows[(rate[rows] >= lo) & (rate[rows] < hi)]
        if sel.size:
            print(f"  {lo:>7,.0f} - {hi:<7,.0f} {sel.size:5d}  {np.median(waiting[sel]):7.2f}  "
                  f"{np.median(waiting[sel] / conc[sel]):7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
