"""The stacking weight measured where the profile is used: on the templates themselves.

stacking.py mixes two priors, the shared shape of the templates (logit_prior.
fit_template_shift) and their per-problem Rasch prior (rasch.py), with a weight alpha.
Measured on the dev file, which of the two extrapolates better depends on the model's
ability (the per-problem prior for models that solve many problems, the shared shape for
those that solve few: docs/accuracy-fit.md "How `planner fit` works"), and the check available on the log itself
(a tenth of its samples predicting pass@n, stacking.split_errors) answers a different
question: from 10 samples per problem both priors under-predict pass@100, from 100 both
over-predict pass@10,000 for the small models, so that check favours the more optimistic
prior where it is the worse one.

The templates were sampled far more often than the log (the shipped MATH ones 10,000
times per problem), so the extrapolation the profile makes can be rehearsed on them,
exactly: each template u in turn plays the new model. DRAWS logs of as many samples per
problem as the log being fitted are drawn from u's counts (without replacement); both
priors are built from the other templates only (the shared shape of their grids, the
per-problem prior with u's counts left out, rasch.leave_one_out_priors, its ability
prior from the others' abilities) and predict pass@k at k = n * STEPS (one and two
decades beyond the samples seen, where u has that many), against the unbiased estimate
from all of u's samples. That gives signed errors (e_a, e_R) of the two priors on models
of known ability.

The weight for the log is the stacking weight (stacking_weight below) of these errors,
each weighted by how close the rehearsed model's ability is to the log's: a normal kernel
in z = logit of the pooled pass@1 ((sum c + 1/2) / (sum n + 1), the same 100-sample
estimate for the log and for the rehearsals), bandwidth the standard deviation of the
rehearsals' z (the spread of the task's models: no tuned constant). A stacking weight
local in ability (Wolpert 1992; the locally weighted form as in Cleveland 1979, kernel
regression). The model fitted never enters: templates are other models (fit.task_templates
drops the model's own), and its log only sets n and z.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from planner.accuracy import logit_prior as LP

# Rehearsal draws per template, and the extrapolation steps rehearsed (k = n * step).
DRAWS = 2
STEPS = (10, 100)
# Templates needed: one to rehearse, and at least two others (a shape and a Rasch prior
# with an ability prior); the kernel needs rehearsals of at least 3 models.
MIN_TEMPLATES = 3


def stacking_weight(e_a, e_r, weights=None) -> float:
    """The weight alpha in [0, 1] of the second predictor minimizing the summed (with
    ``weights``, weighted) squared error of alpha e_r + (1 - alpha) e_a (stacking.py's
    docstring); 0.5 where they agree."""
    d = np.asarray(e_r, float) - np.asarray(e_a, float)
    w = np.ones(len(d)) if weights is None else np.asarray(weights, float)
    dd = float(np.sum(w * d * d))
    if len(d) == 0 or dd < 1e-18:
        return 0.5
    return float(np.clip(-float(np.sum(w * np.asarray(e_a, float) * d)) / dd, 0.0, 1.0))


def ability_proxy(n, c) -> float:
    """logit of the pooled pass@1 with half a success added (finite when nothing or
    everything was solved)."""
    p = (float(np.sum(c)) + 0.5) / (float(np.sum(n)) + 1.0)
    return float(np.log(p / (1.0 - p)))


def rehearsals(ctx, n_log: int, seed: int = 0) -> list:
    """[(z, e_a, e_R)] over templates, draws and steps (module docstring); ``ctx`` a
    stacking.RaschContext with counts and leave-one-out priors."""
    from planner.accuracy import rasch as R
    from planner.accuracy.estimators import pass_at_k_unbiased
    from planner.accuracy.selection import _posterior

    models = list(ctx.models)
    if ctx.counts is None or ctx.loo is None or len(models) < MIN_TEMPLATES:
        return []
    theta = dict(zip(models, ctx.thetas))
    arrays = {m: (list(ctx.counts[m]), np.array([v[0] for v in ctx.counts[m].values()], np.int64),
                  np.array([v[1] for v in ctx.counts[m].values()], np.int64)) for m in models}
    grids = ctx.grids or {m: LP.fit_grid_weights(a[1], a[2], min(LP.LAMBDAS)) for m, a in arrays.items()}
    p_nodes = LP._expit(LP.logit_nodes())
    rng = np.random.default_rng(seed + 3571)
    rows = []
    for u in models:
        ids, n_u, c_u = arrays[u]
        ks = [n_log * s for s in STEPS if n_log * s <= n_u.min()]
        if not ks or n_log < 1:
            continue
        rest = [m for m in models if m != u]
        truth = np.array([float(pass_at_k_unbiased(n_u, c_u, np.full(len(n_u), k)).mean()) for k in ks])
        f = 1.0 - (1.0 - p_nodes[None, :]) ** np.asarray(ks, float)[:, None]
        for _ in range(DRAWS):
            c = rng.hypergeometric(c_u, n_u - c_u, n_log).astype(float)
            n = np.full(len(c), float(n_log))
            w_a = _posterior(n, c, LP.fit_template_shift(n, c, [grids[m] for m in rest]), tilt=False)
            w_r = R.fit_new_model(ids, n, c, ctx.loo[u], [theta[m] for m in rest])
            z = ability_proxy(n, c)
            rows += [(z, ea, er) for ea, er in zip(f @ w_a - truth, f @ w_r - truth)]
    return rows


def local_alpha(rows, z: float, equal: bool = False) -> Optional[float]:
    """The stacking weight of the per-problem prior from ``rows`` (rehearsals), weighted by
    a normal kernel in ability around ``z`` (module docstring; ``equal``: every rehearsal
    weighted the same, the comparison benchmarks/accuracy_fidelity.py --weight equal runs);
    None with rehearsals of fewer than MIN_TEMPLATES distinct abilities (the caller falls
    back to the log's own splits)."""
    if len(rows) == 0:
        return None
    zs, ea, er = (np.array([r[i] for r in rows], float) for i in range(3))
    if len(np.unique(zs)) < MIN_TEMPLATES:
        return None
    if equal:
        return stacking_weight(ea, er)
    h = max(float(np.std(zs, ddof=1)), LP.LOGIT_STEP)
    return stacking_weight(ea, er, weights=np.exp(-0.5 * ((zs - z) / h) ** 2))
