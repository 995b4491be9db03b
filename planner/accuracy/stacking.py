"""A per-problem prior from the task's templates, stacked with their shared shape.

Templates that carry their per-problem counts (``problem_counts``: the shipped MATH
templates do) give, besides a shared shape, which problems are hard: rasch_context fits
the Rasch model of rasch.py to them (logit p_mj = theta_m - b_j + sigma z) and keeps one
prior per problem. For the log being fitted, rasch.fit_new_model places the model on
them (its ability integrated over its posterior) and returns the posterior average over
the log's problems.

Measured on the dev file, neither prior wins everywhere: the per-problem prior is better
for models that solve many problems, the shared shape for those that solve few (README
"Fit your own"). The held-out likelihood of the samples, which chooses between the
other candidates (selection.choose_difficulty), prefers the per-problem prior almost
always, its tail included, so it cannot arbitrate. fit.fit_eval_log (under ``auto``, with
such templates) fits the shared shape alone (the template candidate, selection.py) and
stack_rasch weighs it against the per-problem prior by the quantity the profile is used
for, the error of extrapolating pass@k: the weight alpha of the per-problem prior
minimizes the squared error of the mixture (stacking, Wolpert 1992; Yao et al. 2018,
"Using stacking to average Bayesian predictive distributions", Bayesian Analysis 13(3),
with the extrapolation error as the score):

    alpha = clip(-sum_r w_r e_a,r (e_R,r - e_a,r) / sum_r w_r (e_R,r - e_a,r)^2, 0, 1),

e_a, e_R the signed errors of the shared shape and of the per-problem prior. The errors
are rehearsed on the templates (template_cv.py: each template in turn drawn down to the
log's samples per problem and predicted from the others at 10x and 100x those samples,
weights w_r a kernel in ability around the log's); where the templates cannot rehearse
it (fewer than 3, or too few samples), on the log's own splits (split_errors: each fitted
on CV_FRACTION of every problem's samples predicts pass@n against the unbiased estimate
from all n, STACK_REPEATS splits, w_r = 1). The splits check a different regime (from 10
samples per problem both priors under-predict pass@100; from 100 both over-predict the
small models' pass@10,000) and chose the more optimistic prior where it was the worse.

pass@k being linear in the grid weights, the profile's weights are alpha w_R + (1 - alpha)
w_a, and so is every bootstrap replicate (rasch.replicates and
selection.bootstrap_replicates, paired in order); the interval's widening per decade is
the RMS error of the mixture on the log's splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from planner.accuracy import logit_prior as LP
from planner.accuracy import template_cv as TC

# Splits of the log the stacking weight is measured on (each one fit per candidate).
STACK_REPEATS = 6
# The per-problem prior is built only where the templates know at least this share of
# the log's problems (an unknown problem takes the templates' average prior).
MIN_KNOWN_SHARE = 0.5
RASCH = "rasch"


@dataclass
class RaschContext:
    """A Rasch fit of the templates' counts and its per-problem priors (rasch.py)."""

    priors: dict         # problem -> grid weights at ability 0
    thetas: list         # the templates' abilities (the new model's ability prior), in the order of models
    models: list
    counts: dict = None  # model -> {problem: (n, correct)}: the templates' counts
    loo: dict = None     # model -> the priors with that model's counts left out (rasch.leave_one_out_priors)
    grids: dict = None   # model -> its counts' least-smoothed grid prior (selection.template_weights)


def template_counts(refs) -> dict:
    """model -> {problem: (n, correct)} of the templates (profile names or YAML paths)
    that carry ``problem_counts``; grid-weight arrays and templates without counts are
    skipped."""
    from planner.accuracy.profile import load_profile

    out = {}
    for ref in refs or []:
        if isinstance(ref, np.ndarray):
            continue
        spec = load_profile(ref).spec
        pc = spec.problem_counts
        if pc is not None:
            out[spec.model] = {p: (n, c) for p, n, c in zip(pc.problems, pc.n, pc.correct)}
    return out


def rasch_context(refs, problems) -> Optional[RaschContext]:
    """The Rasch prior of the templates ``refs`` for a log on ``problems``, or None where
    fewer than 2 templates carry counts or they know under MIN_KNOWN_SHARE of the log's
    problems."""
    counts = template_counts(refs)
    if len(counts) < 2:
        return None
    known = set().union(*(set(v) for v in counts.values()))
    if np.mean([str(p) in known for p in problems]) < MIN_KNOWN_SHARE:
        return None
    return _cached_rasch(counts)


def _cached_rasch(counts: dict) -> RaschContext:
    """rasch.fit_rasch, problem_priors and leave_one_out_priors of ``counts`` and each
    template's grid prior (the rehearsals of template_cv.py), through the planner's on-disk cache
    (catalog.cache_read / cache_write, kind ``rasch``), keyed by a SHA-256 of the counts,
    the source of rasch.py and logit_prior.py and numpy's version: the fit depends on the
    templates only, and costs ~1 s CPU (benchmarks/fit_speed.py). JSON, floats written exactly (repr), so a cached
    context equals a fresh one."""
    import hashlib
    import json
    from pathlib import Path

    from planner.accuracy import rasch as R
    from planner.catalog import cache_read, cache_write

    h = hashlib.sha256(json.dumps({m: sorted(v.items()) for m, v in counts.items()}, sort_keys=True).encode())
    for mod in (R, LP):
        h.update(Path(mod.__file__).read_bytes())
    h.update(np.__version__.encode())
    key = h.hexdigest() + ".json"
    raw = cache_read("rasch", key)
    if raw is not None:
        try:
            d = json.loads(raw)
            return RaschContext(priors={p: np.asarray(w, float) for p, w in d["priors"].items()},
                                thetas=[float(t) for t in d["thetas"]], models=list(d["models"]), counts=counts,
                                loo={m: {p: np.asarray(w, float) for p, w in pr.items()}
                                     for m, pr in d["loo"].items()},
                                grids={m: np.asarray(w, float) for m, w in d["grids"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            pass     # an unreadable entry: computed again
    fit = R.fit_rasch(counts)
    ctx = RaschContext(priors=R.problem_priors(fit), thetas=[fit.theta[m] for m in fit.models], models=fit.models,
                       counts=counts, loo=R.leave_one_out_priors(fit),
                       grids={m: LP.fit_grid_weights(*(np.array([v[i] for v in counts[m].values()], float)
                                                        for i in (0, 1)), min(LP.LAMBDAS)) for m in fit.models})
    cache_write("rasch", key, json.dumps({"priors": {p: w.tolist() for p, w in ctx.priors.items()},
                                          "thetas": ctx.thetas, "models": ctx.models,
                                          "loo": {m: {p: w.tolist() for p, w in pr.items()}
                                                  for m, pr in ctx.loo.items()},
                                          "grids": {m: w.tolist() for m, w in ctx.grids.items()}}).encode())
    return ctx


def _grid(spec: dict) -> np.ndarray:
    """Grid weights of a difficulty mapping (selection.spec_dict output)."""
    from planner.accuracy.selection import as_grid_weights

    if spec["kind"] == "logit_grid":
        w = np.asarray(spec["weights"], float)
        return w / w.sum()
    params = spec if spec["kind"] == "beta" else {"components": spec["components"]}
    return as_grid_weights(spec["kind"], params)


def _pass_at(w: np.ndarray, k: float) -> float:
    return float(w @ (1.0 - (1.0 - LP._expit(LP.logit_nodes())) ** k))


def split_errors(n, c, problems, ctx: RaschContext, best: str, seed: int = 0, templates=None,
                 repeats: int = STACK_REPEATS) -> tuple:
    """Signed errors (e_a, e_R) of the held-out choice's best candidate ``best`` and of
    the per-problem prior, each fitted on CV_FRACTION of every problem's samples and
    predicting pass@n (n the fewest samples of a problem) against the unbiased estimate
    from all samples, on the same random splits."""
    from planner.accuracy import rasch as R
    from planner.accuracy import selection as S
    from planner.accuracy.estimators import pass_at_k_unbiased

    n = np.asarray(n, float)
    c = np.asarray(c, float)
    k = float(n.min())
    obs = float(pass_at_k_unbiased(n, c, np.full(len(n), k)).mean())
    rng = np.random.default_rng(seed + 15485863)
    e_a, e_r = [], []
    for keep, na, ca, spec in S.split_fits(n, c, best, rng, repeats, templates):
        w_a = _grid(spec)
        w_r = R.fit_new_model([p for p, kp in zip(problems, keep) if kp], na, ca, ctx.priors, ctx.thetas)
        e_a.append(_pass_at(w_a, k) - obs)
        e_r.append(_pass_at(w_r, k) - obs)
    return np.asarray(e_a), np.asarray(e_r)


def stack_rasch(n, c, problems, choice: dict, ctx: RaschContext, replicates: list, seed: int = 0,
                templates=None) -> dict:
    """The held-out choice (selection.choose_difficulty's result, its bootstrap
    ``replicates``) stacked with the per-problem prior of ``ctx`` (module docstring).
    Returns {"alpha", "spec", "replicates", "extrapolation_error", "chosen"}."""
    from planner.accuracy import rasch as R
    from planner.accuracy.selection import spec_dict

    n = np.asarray(n, float)
    c = np.asarray(c, float)
    problems = [str(p) for p in problems]
    best = choice["plausible"][0]
    e_a, e_r = split_errors(n, c, problems, ctx, best, seed=seed, templates=templates)
    # the weight from rehearsing the extrapolation on the templates (template_cv.py); the
    # log's own splits where the templates cannot rehearse it (too few, too few samples)
    alpha = TC.local_alpha(TC.rehearsals(ctx, int(np.median(n)), seed=seed), TC.ability_proxy(n, c))
    how = "templates rehearsed"
    if alpha is None:
        alpha, how = (TC.stacking_weight(e_a, e_r) if len(e_a) else 0.5), "log's splits"
    w = alpha * R.fit_new_model(problems, n, c, ctx.priors, ctx.thetas) + (1 - alpha) * _grid(choice["spec"])
    reps_r = R.replicates(problems, n, c, ctx.priors, ctx.thetas, seed=seed, count=len(replicates))
    reps = [spec_dict("logit_grid", alpha * wr + (1 - alpha) * _grid(ra)) for wr, ra in zip(reps_r, replicates)]
    mix = alpha * e_r + (1 - alpha) * e_a
    return {"alpha": alpha, "spec": spec_dict("logit_grid", w), "replicates": reps,
            "extrapolation_error": float(np.sqrt(np.mean(mix ** 2))) if len(mix) else 0.0,
            "chosen": f"{choice['chosen']} + {RASCH} (stacked, alpha={alpha:.2f})", "alpha_from": how}
