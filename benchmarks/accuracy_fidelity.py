"""Large-k fidelity of `planner fit` on real repeated-sampling data (issue 12, items 4-5).

Protocol (../shared/data/pass-at-k-math-pythia-dev.csv: Pythia 70M..12B, 67 MATH problems,
10,000 samples each; Brown et al. 2024 via Schaeffer et al. 2025): for each model and
seed, draw 100 of every problem's 10,000 samples (hypergeometric), write the per-problem
eval log `planner fit` reads, fit a profile through fit_eval_log (the CLI's path),
predict pass@1,000 and pass@10,000 with its 80% interval, and compare with the unbiased
estimate (Chen et al. 2021) from all 10,000 samples. The truth is never seen by the fit.

    .venv/bin/python benchmarks/accuracy_fidelity.py [--seeds 5] [--samples 100] [--difficulty auto]
        [--templates shipped|none|lomo|rasch] [--weight rehearsed|equal|splits] [--json]
--samples N draws N of every problem's samples instead of 100 (a protocol the stacking
weight's kernel was not chosen on). --weight selects how the stacking weight is set:
rehearsed (default, as planner fit: template_cv.local_alpha, kernel in ability), equal
(the same rehearsals weighted equally), splits (the log's own splits, stacking.split_errors,
the method before template_cv).
By default (--templates shipped) the fit is what `planner fit` does: the task's shipped
templates (examples/templates/math--*.yaml, each one model's 10,000 samples per problem with
its per-problem counts) but the predicted model's own; with their counts the fit is the
shared shape stacked with their per-problem Rasch prior (planner/accuracy/stacking.py, the
weight from the error of extrapolating pass@k rehearsed on the templates themselves, each
drawn down to the log's samples and predicted from the others, planner/accuracy/
template_cv.py); --templates none offers none.
--templates lomo adds the shared-shape candidate (logit_prior.fit_template_shift) with
templates fitted on the OTHER six models' full 10,000 samples (leave one model out: the
model predicted never informs its own prior). --templates rasch predicts with the
per-problem Rasch prior of rasch.py instead of `planner fit`: problem difficulties fitted on
the other six models (leave one model out), this model's ability from its 100 samples per
problem; the interval from rasch.replicates (problems and samples resampled, ability drawn).
Prints, per model and k, the mean prediction, the truth, the mean |error| and the share
of seeds whose 80% interval holds the truth; then the totals.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "pass-at-k-math-pythia-dev.csv"
KS = (1000, 10000)
SEEN = 100


def read_counts(path=DATA) -> dict:
    out: dict = defaultdict(list)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["model"]].append((row["problem"], int(row["n"]), int(row["correct"])))
    return dict(out)


def lomo_templates(counts: dict, model: str) -> list:
    """Grid priors (least smoothing) of every model but ``model`` on all their samples."""
    from planner.accuracy import logit_prior as LP

    return [LP.fit_grid_weights(np.array([p[1] for p in probs]), np.array([p[2] for p in probs]), min(LP.LAMBDAS))
            for other, probs in counts.items() if other != model]


def rasch_rows(counts: dict, model: str, seeds: int, truth: dict, samples: int = SEEN) -> list:
    """--templates rasch: the per-problem prior of rasch.py, leave one model out."""
    from planner.accuracy import logit_prior as LP
    from planner.accuracy import rasch as R

    probs = counts[model]
    fit = R.fit_rasch({m: {p: (n, c) for p, n, c in pr} for m, pr in counts.items() if m != model})
    priors = R.problem_priors(fit)
    ids = [p[0] for p in probs]
    n_all = np.array([p[1] for p in probs])
    c_all = np.array([p[2] for p in probs])
    p_nodes = LP._expit(LP.logit_nodes())
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        c_seen = rng.hypergeometric(c_all, n_all - c_all, samples).astype(float)
        n_seen = np.full(len(c_seen), float(samples))
        w = R.fit_new_model(ids, n_seen, c_seen, priors, fit.theta.values())
        reps = R.replicates(ids, n_seen, c_seen, priors, fit.theta.values(), seed=seed)
        for k in KS:
            f = 1.0 - (1.0 - p_nodes) ** k
            pred = float(w @ f)
            lo, hi = np.quantile([float(r @ f) for r in reps], [0.1, 0.9])
            lo, hi = min(lo, pred), max(hi, pred)
            rows.append({"model": model, "seed": seed, "k": k, "chosen": "rasch", "predicted": pred,
                         "lo": float(lo), "hi": float(hi), "truth": truth[k], "error": pred - truth[k],
                         "covered": bool(lo <= truth[k] <= hi)})
    return rows


def run(seeds: int = 5, difficulty: str = "auto", templates: str = "shipped", models=None,
        samples: int = SEEN, weight: str = "rehearsed") -> list:
    """The benchmark's rows; ``weight`` swaps template_cv.local_alpha for the run (restored after)."""
    from planner.accuracy import template_cv as TC

    local_alpha = TC.local_alpha
    if weight == "equal":
        TC.local_alpha = lambda rows_, z: local_alpha(rows_, z, equal=True)
    elif weight == "splits":
        TC.local_alpha = lambda rows_, z: None
    try:
        rows = _run(seeds, difficulty, templates, models, samples)
    finally:
        TC.local_alpha = local_alpha
    return rows


def _run(seeds, difficulty, templates, models, samples) -> list:
    from planner.accuracy.estimators import pass_at_k_unbiased
    from planner.accuracy.fit import fit_eval_log
    from planner.accuracy.predict import predict
    from planner.accuracy.profile import Profile
    from planner.accuracy.uncertainty import interval
    from planner.errors import InputError

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        counts = read_counts()
        for model, probs in counts.items():
            if models and model not in models:
                continue
            # shipped: what `planner fit` does (the task's shipped templates but the model's own)
            tpl = {"lomo": lambda: lomo_templates(counts, model), "none": lambda: [],
                   "shipped": lambda: None, "rasch": lambda: None}[templates]()
            n_all = np.array([p[1] for p in probs])
            c_all = np.array([p[2] for p in probs])
            truth = {k: float(pass_at_k_unbiased(n_all, c_all, np.full(len(n_all), k)).mean()) for k in KS}
            if templates == "rasch":
                rows += rasch_rows(counts, model, seeds, truth, samples)
                print(f"# {model}: done", file=sys.stderr, flush=True)
                continue
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                c_seen = rng.hypergeometric(c_all, n_all - c_all, samples)
                log = Path(tmp) / f"{model.replace(' ', '_')}-{seed}.jsonl"
                log.write_text("".join(json.dumps({"problem": p[0], "n": samples, "correct": int(c)}) + "\n"
                                       for p, c in zip(probs, c_seen)))
                try:
                    res = fit_eval_log(log, model, "math", seed=seed, difficulty=difficulty, templates=tpl)
                except InputError as exc:     # a forced model refused on a degenerate log
                    print(f"# {model} seed {seed}: refused: {exc}", file=sys.stderr)
                    continue
                prof = Profile(spec=res.profile, path=str(log))
                for k in KS:
                    pred = float(predict(prof, "pass@k", k))
                    lo, hi = interval(prof, "pass@k", k)
                    rows.append({"model": model, "seed": seed, "k": k, "chosen": res.chosen, "predicted": pred,
                                 "lo": float(lo), "hi": float(hi), "truth": truth[k],
                                 "error": pred - truth[k], "covered": bool(lo <= truth[k] <= hi)})
            print(f"# {model}: done", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--difficulty", default="auto", help="planner fit --difficulty (auto, beta, logit_grid, ...)")
    ap.add_argument("--templates", choices=("shipped", "none", "lomo", "rasch"), default="shipped",
                    help="shipped (default, as planner fit): the shipped examples/templates/math--*.yaml but "
                         "the model's own; none: no template (planner fit --no-templates); lomo: add the shared-shape prior fitted on the other models (leave one model out); "
                         "rasch: the per-problem Rasch prior of the other models (leave one model out)")
    ap.add_argument("--samples", type=int, default=SEEN, help="samples seen per problem (default 100)")
    ap.add_argument("--weight", choices=("rehearsed", "equal", "splits"), default="rehearsed",
                    help="the stacking weight: rehearsed on the templates with a kernel in ability (default, as "
                         "planner fit), the same rehearsals weighted equally, or the log's own splits")
    ap.add_argument("--models", nargs="*", help="only these models (e.g. 'Pythia 70M'); default all")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not 1 <= args.samples <= 10000:
        ap.error(f"--samples: {args.samples} is not in 1..10000")
    rows = run(args.seeds, args.difficulty, args.templates, args.models, args.samples, args.weight)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'model':12s} {'k':>6s} {'predicted':>9s} {'truth':>6s} {'mean|err|':>9s} {'80% covers':>10s}  chosen")
    groups: dict = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["k"])].append(r)
    for (model, k), g in groups.items():
        print(f"{model:12s} {k:6d} {np.mean([r['predicted'] for r in g]):9.3f} {g[0]['truth']:6.3f} "
              f"{np.mean([abs(r['error']) for r in g]):9.3f} {np.mean([r['covered'] for r in g]):10.2f}  "
              + ",".join(sorted({r['chosen'] for r in g})))
    err = np.array([abs(r["error"]) for r in rows])
    width = np.mean([r["hi"] - r["lo"] for r in rows])
    print(f"all: mean |error| {err.mean():.3f}, max {err.max():.3f}, 80% interval coverage "
          f"{np.mean([r['covered'] for r in rows]):.2f}, mean width {width:.3f} "
          f"({len(rows)} predictions, {args.seeds} seeds, {args.samples} samples seen, weight {args.weight})")


if __name__ == "__main__":
    main()
