"""How right the serving predictions are on measured runs (issue 11 item 3).

Prints, by slice (engine, model, device, precision, concurrency band), the median and
p90 of |predicted / measured - 1| for TTFT and TPOT under five predictors:

* ``engine-today``: the cost engine as it is (datasheet efficiencies, steady state);
* ``datasheet``: datasheet efficiencies, the engine profiles' documented host time, the
  closed-loop scheduler model (planner.cost.serving)
  (planner.serving_params defaults): what a device without measurements gets;
* ``in-sample``: parameters fitted per (device, engine) on all rows, scored on them;
* ``leave-deployments-out``: the deployments (every concurrency of one model, device,
  engine version, layout and lengths: planner.measured.MeasuredRuns.deployments) dealt into
  5 seeded folds, each fold predicted with parameters fitted on the other four: the split the
  dev file's held-out share was cut by (other deployments of the same source file);
* ``leave-one-model-out``: for each model, parameters fitted on the other models' rows
  of each (device, engine), scored on the left-out model's rows (the honest figure);
* ``leave-one-device-out``: for each device, the pooled fit on the other devices' rows
  only, then the device's rows predicted exactly as an unmeasured device's are (the
  replay's and every command's rule, planner.serving_carry.unmeasured: its datasheet
  plus the parameters of serving_carry.CARRIED from the fitted devices): what a device
  absent from the measurements (B200, GB200, ...) gets, measured.

``--expert-ceiling`` fits the opt-in parameter of planner.serving_fit.OPT_IN as well (the
routed experts' stream ceiling, one per die; not kept: docs/serving-experiments.md Round
14 (S1)) in every fit.

``--carry-rules`` also prints, per held-out device, the leave-one-device-out error of each
candidate rule of serving_carry.CARRY_RULES (same fits, only what carries differs): the
cross-validation that chose serving_carry.CARRY_RULE.

Fits use ``--physical-bounds`` (efficiencies at most 1). Run:
python benchmarks/serving_fidelity.py [FILE.csv] [--json] [--quick] [--carry-rules] [--expert-ceiling]
(default ../shared/data/serving-measured-hopper-dev.csv; about 80 s alone on the 2-core VM with
--carry-rules, several minutes when the VM is shared).
``--quick`` skips the two unfitted predictors and prints the in-sample, leave-deployments-out,
leave-one-model-out and leave-one-device-out lines of all rows, of each model and of each
device only (the loop a change to the decode-step physics is judged by: about two thirds of
the time). The leave-one-device-out fits (one per device, on half the rows) add about a
tenth to the time.

``--write-error-summary PATH`` also writes the measured error of each prediction path
(planner.fidelity: fitted = leave-one-model-out, carried = leave-one-device-out, datasheet,
generic = engine-today) from this run's own results, atomically, with a ``sources`` field
naming the command, the file, its SHA-256, the date and the commit; the full run only (the
datasheet figures need it), and its ``published`` section: the published check files'
error per device (benchmarks/unmeasured_devices.py's replay, the shipped profiles; nothing is
fitted on them). ``make serving-error-summary`` writes the shipped
calibration/serving-fidelity.yaml so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from planner import fidelity
from planner import serving_carry as SC
from planner.errors import InputError
from planner.measured import read_measured
from planner.replay import Prediction, Prepared
from planner.replay_scoring import summarize
from planner.serving_fit import OPT_IN, as_params, fit_all

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


DEPLOYMENT_FOLDS = 5  # folds of the leave-deployments-out cross-validation
EXTRA: tuple[str, ...] = ()  # planner.serving_fit.OPT_IN parameters fitted too (--expert-ceiling)
COMMIT = ""  # the code's commit, read at the start of a --write-error-summary run (code_commit)


def held_out(prep: Prepared, parts: dict[str, np.ndarray]) -> Prediction:
    """Each part's rows (name -> boolean row mask) predicted with parameters fitted on the
    rows of no part but the others: the one loop of every cross-validation here."""
    base = prep.run()
    ttft, tpot, profile = base.ttft_s.copy(), base.tpot_s.copy(), base.profile.copy()
    for name, held in parts.items():
        fits = fit_all(prep.runs, strict=False, physical=True, prep=prep, use=~held, extra=EXTRA)
        pred = prep.run(as_params(fits, f"fitted without {name}"))
        ttft[held], tpot[held], profile[held] = pred.ttft_s[held], pred.tpot_s[held], pred.profile[held]
    return Prediction(ttft, tpot, base.status, profile, base.group, base.device, base.model)


def leave_one_model_out(prep: Prepared) -> Prediction:
    """Each model's rows predicted with parameters fitted without that model."""
    return held_out(prep, {m: prep.model == m for m in sorted(set(prep.model[prep.status == "ok"].tolist()))})


def leave_deployments_out(prep: Prepared, folds: int = DEPLOYMENT_FOLDS, seed: int = 0) -> Prediction:
    """Grouped k-fold cross-validation over deployments (planner.measured.MeasuredRuns.deployments:
    every concurrency of one model, device, engine version, layout and lengths together): the
    deployments are dealt into ``folds`` folds in a seeded random order, and each fold's rows are
    predicted with parameters fitted on the other folds. The dev file's held-out share is other
    deployments of the same source file (its README), so this is the split it mirrors; a model
    seen in other deployments is seen here too, unlike leave-one-model-out."""
    dep = prep.runs.deployments()
    order = np.random.default_rng(seed).permutation(dep.max() + 1)
    fold = np.empty_like(order)
    fold[order] = np.arange(order.size) % folds
    row_fold = fold[dep]
    return held_out(prep, {f"fold {f + 1} of {folds} (deployments)": row_fold == f for f in range(folds)})


def device_out_fits(prep: Prepared) -> dict[str, dict]:
    """For each device D of the file: the pooled fit on the rows of the OTHER devices only
    (the rows of D never reach it), as the replay's parameter mapping."""
    out = {}
    for d in sorted(set(prep.device[prep.status == "ok"].tolist())):
        held = prep.device == d
        fits = fit_all(prep.runs, strict=False, physical=True, prep=prep, use=~held, extra=EXTRA)
        out[d] = as_params(fits, f"fitted without {d}")
    return out


def leave_one_device_out(prep: Prepared, fits: dict[str, dict], carry: tuple[str, ...] | None = None
                         ) -> Prediction:
    """Each device's rows predicted as those of a device nobody measured: its pairs are
    absent from the parameters, so they take planner.serving_carry.unmeasured, the rule
    planner.serving_profile.resolve_serving applies to B200 and the like. ``carry`` (a rule
    of serving_carry.CARRY_RULES) overrides what carries, through the same function."""
    base = prep.run()
    ttft, tpot, profile = base.ttft_s.copy(), base.tpot_s.copy(), base.profile.copy()
    for d, params in fits.items():
        held = prep.device == d
        params = {g: v for g, v in params.items() if g.split("/", 1)[0] != d}  # nothing of d, by construction
        if carry is not None:  # the same rule with another carry set, for the held-out pairs
            params = {**params, **{g: SC.unmeasured(prep.hw[g], g.split("/", 1)[1], prep.engine_of(g), params, carry)
                                   for g in prep.gnames if g.split("/", 1)[0] == d}}
        pred = prep.run(params)
        ttft[held], tpot[held], profile[held] = pred.ttft_s[held], pred.tpot_s[held], pred.profile[held]
    return Prediction(ttft, tpot, base.status, profile, base.group, base.device, base.model)


def carry_rules(prep: Prepared, fits: dict[str, dict]) -> dict[str, dict]:
    """rule -> the leave-one-device-out summary under that rule (its by_slice["device"]
    holds each held-out device's error), for every candidate of serving_carry.CARRY_RULES."""
    return {rule: summarize(leave_one_device_out(prep, fits, names), prep.runs)
            for rule, names in SC.CARRY_RULES.items()}


def code_commit() -> str:
    """The commit of the code this run imports, read when it starts (an edit made while it
    runs does not change what it predicts with); "plus uncommitted changes" where the
    package or its data differ from it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent

    def git(*a):
        try:
            return subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    if git("status", "--porcelain", "--", "planner", "calibration/serving", "engines", "hardware", "models"):
        commit += " plus uncommitted changes"
    return commit


def write_error_summary(out: str, path: str, results: dict) -> None:
    """The measured error of each prediction path (planner.fidelity.summary_doc) to ``out``,
    atomically, its sources naming this command, the measured file and the code's commit."""
    import datetime
    import hashlib

    import yaml

    from planner.files import atomic_write_text

    sources = {"command": f"python benchmarks/serving_fidelity.py --write-error-summary {Path(out).name}",
               "measured_file": Path(path).name,
               "measured_file_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
               "date": datetime.date.today().isoformat(), "commit": COMMIT,
               "devices": [str(e["value"]) for e in results["leave-one-model-out"]["by_slice"]["device"]],
               "figures": "median and p90 of |predicted / measured - 1| over every predicted row, in percent"}
    from benchmarks.unmeasured_devices import published  # the published check files' replay

    doc = fidelity.summary_doc(results, sources, fidelity.published_doc(*published()))
    atomic_write_text(out, "# Written by benchmarks/serving_fidelity.py --write-error-summary; do not edit by hand.\n"
                      "# The measured error of each prediction path (planner.fidelity): fitted = leave-one-model-out,\n"
                      "# carried = leave-one-device-out, datasheet, generic (no engine named) = engine-today;\n"
                      "# microbenchmark (a calibration profile): not measured on serving runs; published: the\n"
                      "# published check files (benchmarks/unmeasured_devices.py) per device, nothing fitted on them.\n"
                      + yaml.safe_dump(doc, sort_keys=False, width=120))
    fidelity.read(out)  # what was written reads back


def main(argv: list[str]) -> int:
    global EXTRA, COMMIT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--quick", action="store_true", help="in-sample, leave-deployments-out, LOMO and LODO lines only")
    ap.add_argument("--carry-rules", action="store_true", help="also the LODO error of each carry rule")
    ap.add_argument("--expert-ceiling", action="store_true", help="fit the opt-in expert stream ceiling too")
    ap.add_argument("--write-error-summary", metavar="PATH",
                    help="also write the measured error of each prediction path (planner.fidelity) to PATH")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # a usage error (exit 2), or --help (exit 0): main's return code
        return int(exc.code or 0)
    summary_out = args.write_error_summary
    if summary_out and args.quick:
        print("--write-error-summary needs the full run (the datasheet figures): drop --quick", file=sys.stderr)
        return 2
    if summary_out:
        COMMIT = code_commit()
    json_out, quick, rules, path = args.json, args.quick, args.carry_rules, args.file
    EXTRA = OPT_IN if args.expert_ceiling else ()
    t0 = time.perf_counter()
    try:
        runs = read_measured(path)
    except InputError as exc:  # a missing or malformed file: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prep = Prepared(runs)
    results = {} if quick else {
        "engine-today": summarize(prep.run(today=True), runs),
        "datasheet": summarize(prep.run(), runs),
    }
    fits = fit_all(runs, strict=False, physical=True, prep=prep, extra=EXTRA)
    results["in-sample"] = summarize(prep.run(as_params(fits)), runs)
    results["leave-deployments-out"] = summarize(leave_deployments_out(prep), runs)
    results["leave-one-model-out"] = summarize(leave_one_model_out(prep), runs)
    lodo_fits = device_out_fits(prep)
    results["leave-one-device-out"] = summarize(leave_one_device_out(prep, lodo_fits), runs)
    by_rule = carry_rules(prep, lodo_fits) if rules else {}
    elapsed = time.perf_counter() - t0
    if summary_out:
        write_error_summary(summary_out, path, results)
    if json_out:
        print(json.dumps({"file": path, "seconds": elapsed, "results": results, "carry_rule": SC.CARRY_RULE,
                          "carry_rules": by_rule, "fits": {g: f.values for g, f in fits.items()}}, indent=2))
        return 0
    s0 = results["in-sample" if quick else "datasheet"]
    print(f"{path}: {s0['predicted']} of {s0['rows']} rows predicted"
          + ("; not predicted: " + "; ".join(f"{n} {r}" for r, n in s0["unsupported"].items())
             if s0["unsupported"] else ""))
    print("median |error| (p90) of TTFT / TPOT; error = predicted / measured - 1\n")
    names = list(results)
    head = f"{'slice':<12} {'value':<18} {'rows':>5} " + " ".join(f"{n:>26}" for n in names)
    print(head)
    print("-" * len(head))

    def cell(st):
        a, b = st["ttft"], st["tpot"]
        if a["median_abs"] is None:
            return f"{'-':>26}"
        return f"{a['median_abs']:>5.0%} ({a['p90_abs']:>4.0%}) / {b['median_abs']:>3.0%} ({b['p90_abs']:>4.0%})".rjust(26)

    print(f"{'all':<12} {'':<18} {s0['tpot']['n']:>5} " + " ".join(cell(results[n]) for n in names))
    for n in names:  # the all-rows figures to the hundredth, to judge a change by
        a, b = results[n]["ttft"], results[n]["tpot"]
        print(f"  {n}: TTFT {a['median_abs']:.2%} (p90 {a['p90_abs']:.1%}), TPOT {b['median_abs']:.2%} "
              f"(p90 {b['p90_abs']:.1%})")
    for sl in s0["by_slice"]:
        if quick and sl not in ("model", "device"):
            continue
        for i, entry in enumerate(s0["by_slice"][sl]):
            cells = [cell(results[n]["by_slice"][sl][i]) for n in names]
            print(f"{sl:<12} {str(entry['value']):<18} {entry['tpot']['n']:>5} " + " ".join(cells))
    if by_rule:
        print(f"\nleave-one-device-out by what an unmeasured device carries (serving_carry.CARRY_RULES; "
              f"shipped: {SC.CARRY_RULE}), per held-out device:")
        for rule, st in by_rule.items():
            cells = "  ".join(f"{e['value']} {cell(e).strip()}" for e in st["by_slice"]["device"])
            print(f"  {rule:<22} all {cell(st).strip()}  {cells}")
    print(f"\nfitted per (device, engine), all rows ({elapsed:.0f} s in all):")
    for g, f in sorted(fits.items()):
        vals = ", ".join(f"{k} {v:.3g}" for k, v in f.values.items())
        limit = f" (at the physical limit: {', '.join(f.at_limit)})" if f.at_limit else ""
        print(f"  {g}: {vals}{limit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
