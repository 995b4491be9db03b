"""A nonparametric difficulty prior: point masses on a fixed grid in logit p, with
weights fitted by penalized maximum likelihood, and model choice by held-out samples.

Why. pass@k at k far beyond the samples seen is decided by the left tail of the
per-problem success distribution: 1 - pass@k = E[(1-p)^k] ~ mass of p below ~1/k
(Schaeffer et al. 2025, "How do large language monkeys get their power (laws)?": the
power-law exponent of 1 - pass@k is the exponent of the density of p near 0). A Beta
ties that tail to the bulk of the distribution; the grid prior lets the data set the
shape where they can and fills the rest smoothly.

Model. p takes the values P_j = expit(X_j), X_j = LOGIT_MIN + j * LOGIT_STEP, with
weights w = softmax(theta). theta maximizes
    sum_i log sum_j w_j P_j^c_i (1 - P_j)^(n_i - c_i)  -  lam * sum_j (theta_j+1 - theta_j)^2,
the binomial mixture likelihood of every problem's (n_i, c_i) with a first-difference
penalty: where the data say nothing (p far below 1/n) the log-density in logit p is
pulled toward flat, i.e. a density of p ~ 1/p there, a power law with exponent 0,
truncated at P_0 = expit(LOGIT_MIN) ~ 1.5e-8 (a problem never solved). The weights are then
tilted (tilt_to_mean) so that the mean is the observed pass@1.

Choice (cv_score): every candidate (Beta, two-Beta mixture, grid with each lam) is fitted
on a tenth of each problem's samples (CV_FRACTION) and scored by the predictive
log-likelihood of the other nine tenths given that tenth (log p(c) - log p(c_A) per
problem, sequence form), over CV_REPEATS random splits: a test of extrapolation by a
factor of ten in samples, the step the profile must take. The fit to the samples seen never
chooses the model.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

LOGIT_MIN = -18.0
LOGIT_MAX = 10.0
LOGIT_STEP = 0.5
LAMBDAS = (0.3, 1.0, 3.0, 10.0)
CV_REPEATS = 3
# The held-out check extrapolates: a candidate is fitted on CV_FRACTION of each problem's
# samples and scored on predicting the rest given them, a tenfold step in samples, the
# same kind of step as from 100 seen samples to pass@1000 (and, the tail being a power
# law, one decade further to pass@10000).
CV_FRACTION = 0.1


def logit_nodes(logit_min: float = LOGIT_MIN, step: float = LOGIT_STEP, count: int = None) -> np.ndarray:
    if count is None:
        count = int(round((LOGIT_MAX - logit_min) / step)) + 1
    return logit_min + step * np.arange(count)


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def binomial_seq_loglik(n, c, p) -> np.ndarray:
    """log P_j^c (1 - P_j)^(n - c) for problems (rows) and nodes (columns)."""
    n = np.asarray(n, float)[:, None]
    c = np.asarray(c, float)[:, None]
    return c * np.log(p)[None, :] + (n - c) * np.log1p(-p)[None, :]


def fit_grid_weights(n, c, lam: float, nodes_logit: np.ndarray = None) -> np.ndarray:
    """Penalized ML weights of the grid prior (see the module docstring)."""
    x = logit_nodes() if nodes_logit is None else nodes_logit
    p = _expit(x)
    ll = binomial_seq_loglik(n, c, p)
    E = np.exp(ll - ll.max(axis=1, keepdims=True))
    m = len(E)

    def f(th):
        w = np.exp(th - th.max())
        w /= w.sum()
        mix = np.maximum(E @ w, 1e-300)
        grad = -((E * w) / mix[:, None]).sum(axis=0) + m * w
        d = np.diff(th)
        pen_grad = np.zeros_like(th)
        pen_grad[:-1] -= 2 * lam * d
        pen_grad[1:] += 2 * lam * d
        return -np.log(mix).sum() + lam * d @ d, grad + pen_grad

    res = optimize.minimize(f, np.zeros(len(x)), jac=True, method="BFGS", options={"gtol": 1e-6, "maxiter": 2000})
    w = np.exp(res.x - res.x.max())
    return tilt_to_mean(w / w.sum(), p, float(np.mean(np.asarray(c, float) / np.asarray(n, float))))


def tilt_to_mean(w: np.ndarray, p: np.ndarray, mean: float) -> np.ndarray:
    """Exponential tilt w_j e^(t P_j), t such that the mean is ``mean`` (the observed
    pass@1, as the Beta and mixture fits fix it). The smoothness penalty spreads a little
    mass over the far side of the grid (p near 1 for a model that solves almost nothing),
    which would bias pass@1; the tilt removes it and barely moves p << 1, the left tail."""
    mean = float(np.clip(mean, p[0] * 1.0000001, p[-1] * 0.9999999))
    lw = np.log(np.maximum(w, 1e-300))

    def m(t):
        z = lw + t * p
        e = np.exp(z - z.max())
        return float(e @ p / e.sum()), e / e.sum()

    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if m(mid)[0] < mean:
            lo = mid
        else:
            hi = mid
    return m(0.5 * (lo + hi))[1]


def grid_seq_loglik(n, c, weights, nodes_logit: np.ndarray = None) -> np.ndarray:
    """Per-problem log marginal likelihood (sequence form) under the grid prior."""
    x = logit_nodes() if nodes_logit is None else nodes_logit
    ll = binomial_seq_loglik(n, c, _expit(x))
    top = ll.max(axis=1)
    return top + np.log(np.maximum(np.exp(ll - top[:, None]) @ np.asarray(weights, float), 1e-300))


def beta_seq_loglik(n, c, a, b) -> np.ndarray:
    from planner.accuracy import special

    n = np.asarray(n, float)
    c = np.asarray(c, float)
    return special.betaln(c + a, n - c + b) - special.betaln(a, b)


def mixture_seq_loglik(n, c, components) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        terms = [math.log(max(co["weight"], 1e-300)) + beta_seq_loglik(n, c, co["a"], co["b"]) for co in components]
        out = np.logaddexp.reduce(np.stack(terms), axis=0)
    return np.where(np.isnan(out), -np.inf, out)


def split_counts(n, c, rng: np.random.Generator, fraction: float = 0.5):
    """Split each problem's samples at random into a part of ``fraction`` of them and the
    rest: (n_A, c_A, n_B, c_B)."""
    n = np.asarray(n, np.int64)
    c = np.asarray(c, np.int64)
    n_a = np.maximum(1, np.rint(n * fraction).astype(np.int64)) * (n > 1)
    c_a = rng.hypergeometric(c, n - c, np.maximum(n_a, 1)) * (n_a > 0)
    return n_a, c_a, n - n_a, c - c_a


def cv_score(fit_fn, loglik_fn, n, c, seed: int = 0, repeats: int = CV_REPEATS,
             fraction: float = CV_FRACTION) -> float:
    """Held-out predictive log-likelihood of the rest of each problem's samples given a
    ``fraction`` of them, the candidate fitted on that fraction; summed over problems and
    repeats. fit_fn(n, c) -> params; loglik_fn(n, c, params) -> per-problem sequence
    log-likelihood."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(repeats):
        n_a, c_a, n_b, c_b = split_counts(n, c, rng, fraction)
        keep = (n_a > 0) & (n_b > 0)
        nf, cf = n_a[keep], c_a[keep]
        prm = fit_fn(nf, cf)
        with np.errstate(invalid="ignore"):
            d = loglik_fn(n[keep], c[keep], prm) - loglik_fn(nf, cf, prm)
        if not np.all(np.isfinite(d)):      # a degenerate fit (e.g. a shape at 0): never chosen
            return -np.inf
        total += float(np.sum(d))
    return total


def posterior_average(n, c, weights, nodes_logit: np.ndarray = None) -> np.ndarray:
    """Mean over problems of each problem's posterior on the grid, given its own count:
    post_ij ~ w_j P_j^c_i (1 - P_j)^(n_i - c_i). A profile holding these weights predicts
    pass@k = mean_i E[1 - (1 - p)^k | c_i, n_i] (empirical Bayes, Robbins 1956): a problem
    seen solved counts as solved at large k whatever the prior's tail says, and only the
    problems never (or rarely) solved lean on the prior. At an unpenalized maximum of the
    likelihood the prior is its own posterior average (the NPMLE fixed point), so this
    moves a smoothed or parametric prior toward what each problem showed."""
    x = logit_nodes() if nodes_logit is None else nodes_logit
    ll = binomial_seq_loglik(n, c, _expit(x))
    post = np.exp(ll - ll.max(axis=1, keepdims=True)) * np.asarray(weights, float)[None, :]
    post /= np.maximum(post.sum(axis=1, keepdims=True), 1e-300)
    return post.mean(axis=0)


def shift_weights(w: np.ndarray, steps: int) -> np.ndarray:
    """Grid weights moved ``steps`` nodes up (toward p = 1) or down; what falls off an end
    is kept on the end node."""
    return shift_stack(w, [steps])[0]


def shift_stack(w: np.ndarray, shifts) -> np.ndarray:
    """shift_weights of ``w`` (nodes on the last axis; any leading axes) by every shift of
    ``shifts`` at once: an array (len(shifts), *w.shape), gathered without a Python loop."""
    w = np.asarray(w, float)
    m = w.shape[-1]
    s = np.clip(np.asarray(list(shifts), dtype=np.int64), -(m - 1), m - 1)
    src = np.arange(m)[None, :] - s[:, None]                    # shifts x nodes: source node
    inside = (src >= 0) & (src < m)
    out = np.where(inside, np.take(w, np.clip(src, 0, m - 1), axis=-1), 0.0)   # (..., shifts, nodes)
    out = np.moveaxis(out, -2, 0)                                 # shifts, ..., nodes
    cum = np.cumsum(w, axis=-1)
    up = s > 0                          # mass beyond the top node stays on it: sum(w[m - s:])
    out[up, ..., m - 1] += np.moveaxis(cum[..., -1:] - np.take(cum, m - 1 - s[up], axis=-1), -1, 0)
    down = s < 0                        # mass below the bottom node stays on it: sum(w[:-s])
    out[down, ..., 0] += np.moveaxis(np.take(cum, -s[down] - 1, axis=-1), -1, 0)
    return out


# Template shifts tried, in grid steps (LOGIT_STEP each): +-15 in logit p.
TEMPLATE_SHIFTS = range(-30, 31)


def _mean_p_of_shifts(t: np.ndarray) -> np.ndarray:
    """Mean p (pass@1) of template ``t`` moved by each of TEMPLATE_SHIFTS."""
    p = _expit(logit_nodes())
    return shift_stack(t, TEMPLATE_SHIFTS) @ p


def matching_shift(t: np.ndarray, u: np.ndarray, curve: np.ndarray = None) -> float:
    """The shift (grid steps, fractional) that moves template ``t`` to the pass@1 of
    template ``u``: mean p of the shifted t rises with the shift, so the match is unique;
    linear interpolation between whole steps, clipped to TEMPLATE_SHIFTS. ``curve``:
    _mean_p_of_shifts of the normalized t, when the caller has it."""
    p = _expit(logit_nodes())
    target = float(np.asarray(u, float) @ p / np.sum(u))
    if curve is None:
        curve = _mean_p_of_shifts(np.asarray(t, float) / np.sum(t))
    s = np.asarray(TEMPLATE_SHIFTS, float)
    return float(np.interp(target, np.maximum.accumulate(curve), s))


# shift_log_prior depends on the templates only; a fit calls it for every candidate fit,
# split and bootstrap replicate with the same templates (exact: keyed by their bytes).
_SHIFT_PRIOR_MEMO: dict = {}
_SHIFT_PRIOR_MEMO_MAX = 64


def shift_log_prior(templates) -> list:
    """A prior over each template's shift built from the other templates (the abilities of
    the other models of the task), one log-density array over TEMPLATE_SHIFTS per template.

    Hierarchical model (Gelman et al., Bayesian Data Analysis, 3rd ed., sec. 3.2 and 5.4):
    the abilities of a task's models are exchangeable draws from a normal; template t's
    shifts to the m templates (its own 0 included), s_tu = matching_shift(t, u), are m such
    draws. The predictive for one more model under the reference prior is a Student t with
    m - 1 degrees of freedom, centre mean(s_tu), scale sd(s_tu) sqrt(1 + 1/m). With one
    template (nothing to learn the spread from) the prior is flat over TEMPLATE_SHIFTS.

    Why: a log with no successes bounds the ability from above only; under a flat prior the
    posterior runs to the lowest shift tried and pass@k collapses to ~0, whereas the other
    models say how far below them a model of the task plausibly lies."""
    import hashlib

    from scipy import stats

    tpl = [np.asarray(t, float) / np.sum(t) for t in templates]
    s = np.asarray(TEMPLATE_SHIFTS, float)
    m = len(tpl)
    if m < 2:
        return [np.zeros(len(s)) for _ in tpl]
    key = hashlib.sha256(b"".join(t.tobytes() for t in tpl)).hexdigest()
    if key in _SHIFT_PRIOR_MEMO:
        return [a.copy() for a in _SHIFT_PRIOR_MEMO[key]]
    out = []
    for t in tpl:
        curve = _mean_p_of_shifts(t)
        d = np.array([matching_shift(t, u, curve) for u in tpl])
        scale = max(float(np.std(d, ddof=1)), 1.0) * math.sqrt(1.0 + 1.0 / m)
        out.append(stats.t.logpdf(s, df=m - 1, loc=float(d.mean()), scale=scale))
    if len(_SHIFT_PRIOR_MEMO) >= _SHIFT_PRIOR_MEMO_MAX:
        _SHIFT_PRIOR_MEMO.clear()
    _SHIFT_PRIOR_MEMO[key] = [a.copy() for a in out]
    return out


def template_shift_posterior(n, c, templates) -> tuple:
    """(moved, post): for each template, the template moved by every shift of
    TEMPLATE_SHIFTS (shifts x nodes) and the posterior over those shifts, prior from
    shift_log_prior times the marginal likelihood of this log's (n_i, c_i)."""
    p = _expit(logit_nodes())
    ll = binomial_seq_loglik(n, c, p)
    E = np.exp(ll - ll.max(axis=1, keepdims=True))
    tpl = [np.asarray(t, float) / np.sum(t) for t in templates]
    moved_all, post_all = [], []
    for t, lp in zip(tpl, shift_log_prior(tpl)):
        moved = shift_stack(t, TEMPLATE_SHIFTS)
        loglik = np.log(np.maximum(E @ moved.T, 1e-300)).sum(axis=0) + lp
        q = np.exp(loglik - loglik.max())
        moved_all.append(moved)
        post_all.append(q / q.sum())
    return moved_all, post_all


def fit_template_shift(n, c, templates, rng: np.random.Generator = None) -> np.ndarray:
    """A prior shape shared across models of a task: each template (grid weights fitted on
    another model's log of the same task) is shifted along logit p (one parameter, the
    model's ability, as in a Rasch model logit p = ability - difficulty). The shift is not
    fitted but integrated over its posterior (template_shift_posterior: a prior from the
    other templates' shifts times this log's marginal likelihood), and the templates are
    averaged with equal weights (weighting them by their evidence instead was measured no
    better: docs/accuracy-fit.md "How `planner fit` works"). pass@k being linear in the weights, the result
    predicts the posterior mean of pass@k. selection.py tilts it to the observed pass@1
    unless nothing was solved (an observed 0 is not a true 0: the posterior mean stands).

    With ``rng`` one draw instead: a template at random and one shift from its posterior
    (the bootstrap replicates of selection.py, so that an interval spans the plausible
    abilities). The tail's shape comes from models sampled far more often; this log only
    places it."""
    moved, post = template_shift_posterior(n, c, templates)
    if rng is not None:
        i = int(rng.integers(len(moved)))
        return moved[i][int(rng.choice(len(post[i]), p=post[i]))]
    return np.mean([q @ mv for q, mv in zip(post, moved)], axis=0)
