"""Signed error of the paths a device without measurements takes, by held-out device and
by whether the row's lengths are spread by its benchmark client (README "What an
unmeasured device gets"; docs/serving-experiments.md, Round 12 (integrator)).

Prints, for the datasheet path and for leave-one-device-out (the pooled fit on the other
device's rows, the held-out device predicted as an unmeasured one), the median |error| and
the signed median error of TTFT and TPOT per (device, engine, spread or fixed lengths), then
the parameters each one-device fit gives. ``--rules A,B`` scores leave-one-device-out under
those rules of planner.serving_carry.CARRY_RULES (default: the shipped one). Run:
python benchmarks/unmeasured_signed.py [FILE.csv] [--rules A,B]   (~2-4 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from serving_fidelity import DEFAULT, device_out_fits, leave_one_device_out  # noqa: E402

from planner import serving_carry as SC  # noqa: E402
from planner.measured import read_measured  # noqa: E402
from planner.replay import Prepared  # noqa: E402


def table(name: str, pred, runs) -> None:
    """One line per device, then per (device, engine, spread or fixed lengths): median |error|
    and signed median."""
    with np.errstate(all="ignore"):
        e_ttft = pred.ttft_s / runs.measured_ttft_s - 1.0
        e_tpot = pred.tpot_s / runs.measured_tpot_s - 1.0
    ok = np.isfinite(e_ttft) & np.isfinite(e_tpot)
    spread = np.asarray(runs.range_ratio) < 1.0
    engine = np.asarray(runs.engine)

    def line(label: str, m) -> None:
        print(f"{name:22s} {label:24s} rows {m.sum():4d}  "
              f"TTFT {np.median(abs(e_ttft[m])) * 100:5.1f}% ({np.median(e_ttft[m]) * 100:+6.1f}%)  "
              f"TPOT {np.median(abs(e_tpot[m])) * 100:5.1f}% ({np.median(e_tpot[m]) * 100:+6.1f}%)")

    for dev in sorted(set(pred.device[ok].tolist())):
        line(f"{dev} all", ok & (pred.device == dev))
        for e in sorted(set(engine[ok & (pred.device == dev)].tolist())):
            for sp in (True, False):
                m = ok & (pred.device == dev) & (engine == e) & (spread == sp)
                if m.any():
                    line(f"{dev} {e} {'spread' if sp else 'fixed'}", m)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    ap.add_argument("--rules", default=SC.CARRY_RULE,
                    help="comma-separated rules of planner.serving_carry.CARRY_RULES (default: %(default)s)")
    args = ap.parse_args(argv)
    rules = args.rules.split(",")
    unknown = [r for r in rules if r not in SC.CARRY_RULES]
    if unknown:
        ap.error(f"--rules: unknown rule {unknown[0]!r} (known: {', '.join(SC.CARRY_RULES)})")
    runs = read_measured(args.file)
    prep = Prepared(runs)
    print("median |error| (signed median) of TTFT and TPOT; error = predicted / measured - 1")
    table("datasheet", prep.run(), runs)
    fits = device_out_fits(prep)
    for rule in rules:
        table(f"lodo {rule}", leave_one_device_out(prep, fits, SC.CARRY_RULES[rule]), runs)
    for held, params in fits.items():
        for pair, (_, values) in sorted(params.items()):
            print(f"fitted without {held}: {pair}: " + ", ".join(f"{k} {v:.3g}" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
