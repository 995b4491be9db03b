"""Per-problem difficulty shared across the models of a task: a Rasch (item-response) prior.

Model (Rasch 1960; with a normal residual, the random-effects form of e.g. De Boeck &
Wilson 2004, "Explanatory Item Response Models", ch. 2):

    logit p_mj = theta_m - b_j + sigma * z_mj,   z_mj ~ N(0, 1),   b_j ~ N(0, tau^2)

p_mj: model m's chance to solve problem j in one sample; theta_m its ability; b_j the
problem's difficulty (the same for every model); sigma how far a model's problem ranking
departs from the shared one. fit_rasch fits theta, b, sigma, tau by maximum a posteriori
on the counts (n_mj, c_mj) of several models on the same problems: a count with both
successes and failures enters through the normal approximation of its binomial
likelihood in logit p (mean logit((c+1/2)/(n+1)), variance 1/(n p(1-p))), one with none
(or all) solved through the exact binomial likelihood integrated on a grid (censored:
it bounds the logit from one side only).

problem_priors turns a fit into one prior per problem on logit_prior's grid at ability 0:
the distribution of -b_j + sigma z, with b_j drawn from its posterior given every model's
count (a problem no model solved keeps the one-sided posterior the bound and the prior
tau give). fit_new_model places a new model on them: its ability is integrated over its
posterior (prior: a Student t from the other models' abilities, as logit_prior.
shift_log_prior; likelihood: its own counts under the per-problem priors), and the result
is the posterior average of the per-problem posteriors (logit_prior.posterior_average),
so a problem seen unsolved in 100 samples takes its large-k tail from how hard the other
models found it, not from a shape shared by all problems. A problem of the log that the
template does not know takes the average of the template's problem priors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from planner.accuracy import logit_prior as LP

# Fine grid (logit p) for the censored counts and the posterior of b: 0.1 wide steps, far
# narrower than the likelihood of a count with nothing solved (about 1 in logit p).
FINE_STEP = 0.1
FINE_MIN, FINE_MAX = -30.0, 30.0
NPMLE_ITERATIONS = 200


@dataclass
class RaschFit:
    """Fitted abilities (per model), difficulties (per problem) and the residual spread."""

    theta: dict          # model -> ability
    b: dict              # problem -> difficulty (MAP)
    sigma: float
    tau: float
    problems: list       # problem ids in the order of the count matrix
    models: list
    n: np.ndarray        # models x problems (0 where a model did not try the problem)
    c: np.ndarray


def _fine():
    return np.arange(FINE_MIN, FINE_MAX + 1e-9, FINE_STEP)


def _count_table(counts: dict):
    """counts: model -> {problem: (n, c)} -> (models, problems, n, c) arrays."""
    models = sorted(counts)
    problems = sorted({p for m in models for p in counts[m]}, key=str)
    n = np.zeros((len(models), len(problems)))
    c = np.zeros_like(n)
    col = {p: j for j, p in enumerate(problems)}
    for i, m in enumerate(models):
        for p, (nn, cc) in counts[m].items():
            n[i, col[p]], c[i, col[p]] = nn, cc
    return models, problems, n, c


def _cell_logliks(n, c):
    """Per count: a normal in logit p (mean, var) where some but not all were solved; the
    exact binomial log-likelihood on the fine grid (normalized to max 0) otherwise."""
    ph = (c + 0.5) / (n + 1.0)
    mean = np.log(ph / (1 - ph))
    var = 1.0 / np.maximum(n * ph * (1 - ph), 1e-12)
    censored = (n > 0) & ((c == 0) | (c == n))
    x = _fine()
    pfine = LP._expit(x)
    ll = c[..., None] * np.log(pfine) + (n - c)[..., None] * np.log1p(-pfine)
    ll = ll - ll.max(axis=-1, keepdims=True)
    return mean, var, censored, ll


def _censored_rows(ll, censored, tried):
    """The censored counts of _cell_logliks prepared once for _marginal_loglik: their
    indices, their log-likelihood rows and the fine grid, both cut to the columns where
    some row exceeds -746 (exp of less is exactly 0.0 in double precision, so the
    integrals below are unchanged)."""
    idx = np.nonzero(censored & tried)
    rows = ll[idx]
    keep = (rows > -746.0).any(axis=0) if len(idx[0]) else np.zeros(rows.shape[-1], bool)
    return idx, np.ascontiguousarray(rows[:, keep]), _fine()[keep]


def _marginal_loglik(mu, sigma, mean, var, tried, cens):
    """log of the likelihood of every count given logit p ~ N(mu, sigma^2) (up to a
    constant per count) and its derivatives in mu and in sigma; ``cens`` from
    _censored_rows: a censored count's likelihood is the integral of its exact binomial
    likelihood against the normal density on the fine grid."""
    s2 = sigma * sigma + var
    gauss = -0.5 * (mean - mu) ** 2 / s2 - 0.5 * np.log(s2)
    out = np.where(tried, gauss, 0.0)
    d_mu = np.where(tried, (mean - mu) / s2, 0.0)
    d_sig = np.where(tried, ((mean - mu) ** 2 / s2 ** 2 - 1.0 / s2) * sigma, 0.0)
    idx, rows, x = cens
    if len(idx[0]):
        m = mu[idx]
        u = (x[None, :] - m[:, None]) / sigma
        f = np.exp(rows - 0.5 * u * u)
        tot = np.maximum(f.sum(axis=1), 1e-300)
        fu = f * u
        out[idx] = np.log(tot) - math.log(sigma) - 0.5 * math.log(2 * math.pi) + math.log(FINE_STEP)
        d_mu[idx] = fu.sum(axis=1) / tot / sigma
        d_sig[idx] = ((fu * u).sum(axis=1) / tot - 1.0) / sigma
    return out, d_mu, d_sig


def fit_rasch(counts: dict) -> RaschFit:
    """MAP fit of the model in the module docstring to ``counts`` (model -> {problem:
    (n, correct)}); at least 2 models and 2 problems."""
    models, problems, n, c = _count_table(counts)
    n_m, n_p = n.shape
    mean, var, censored, ll = _cell_logliks(n, c)
    tried = n > 0
    cens = _censored_rows(ll, censored, tried)

    def objective(v):
        theta, b = v[:n_m], v[n_m:n_m + n_p]
        sigma, tau = math.exp(v[-2]), math.exp(v[-1])
        mu = theta[:, None] - b[None, :]
        lik, d_mu, d_sig = _marginal_loglik(mu, sigma, mean, var, tried, cens)
        obj = lik.sum() - 0.5 * np.sum(b * b) / (tau * tau) - n_p * math.log(tau)
        g = np.concatenate([d_mu.sum(axis=1), -d_mu.sum(axis=0) - b / (tau * tau),
                            [d_sig.sum() * sigma, np.sum(b * b) / (tau * tau) - n_p]])
        return -obj, -g

    p_solved = np.clip((c.sum(0) + 0.5) / (n.sum(0) + 1.0), 1e-6, 1 - 1e-6)
    b0 = -np.log(p_solved / (1 - p_solved))
    b0 = b0 - b0.mean()
    pm = np.clip((c.sum(1) + 0.5) / (n.sum(1) + 1.0), 1e-6, 1 - 1e-6)
    v0 = np.concatenate([np.log(pm / (1 - pm)), b0, [0.0, math.log(max(b0.std(), 0.5))]])
    res = optimize.minimize(objective, v0, jac=True, method="L-BFGS-B",
                            bounds=[(-40, 40)] * (n_m + n_p) + [(math.log(0.05), math.log(20.0))] * 2,
                            options={"maxiter": 3000})
    theta, b = res.x[:n_m], res.x[n_m:n_m + n_p]
    return RaschFit(theta=dict(zip(models, map(float, theta))), b=dict(zip(problems, map(float, b))),
                    sigma=float(math.exp(res.x[-2])), tau=float(math.exp(res.x[-1])), problems=problems,
                    models=models, n=n, c=c)


def _loglik_over_difficulty(theta, bb, sigma, mean, var, censored, ll, tried, per_model: bool = False) -> np.ndarray:
    """problems x candidate b: sum over models of _marginal_loglik at mu = theta_m - b, for
    every b of ``bb`` (the fine grid); with ``per_model`` the terms unsummed (models x
    problems x b). The same figures as _marginal_loglik's, arranged so a
    censored count costs one row of a matrix product: its integral over the fine grid x,
    sum_x exp(ll(x)) exp(-(x - theta_m + b)^2 / (2 sigma^2)), has a kernel that depends on
    the model only (x and b on the same grid), shared by all of that model's problems."""
    mu = theta[:, None, None] - bb[None, None, :]                 # models x 1 x b
    s2 = sigma * sigma + var[..., None]                          # models x problems x 1
    out = np.where(tried[..., None], -0.5 * (mean[..., None] - mu) ** 2 / s2 - 0.5 * np.log(s2), 0.0)
    x = _fine()
    for i in range(len(theta)):
        cols = np.nonzero(censored[i] & tried[i])[0]
        if not len(cols):
            continue
        rows = ll[i, cols]
        keep = (rows > -746.0).any(axis=0)         # exp of the rest is exactly 0.0 (_censored_rows)
        u = (x[keep, None] - theta[i] + bb[None, :]) / sigma          # fine x x candidate b
        tot = np.maximum(np.exp(rows[:, keep]) @ np.exp(-0.5 * u * u), 1e-300)
        out[i, cols] = np.log(tot) - math.log(sigma) - 0.5 * math.log(2 * math.pi) + math.log(FINE_STEP)
    return out if per_model else out.sum(axis=0)


def _difficulty_inputs(fit: RaschFit):
    mean, var, censored, ll = _cell_logliks(fit.n, fit.c)
    theta = np.array([fit.theta[m] for m in fit.models])
    return theta, mean, var, censored, ll, fit.n > 0


def _priors_from_loglik(lik: np.ndarray, fit: RaschFit) -> dict:
    """Per-problem grid priors from the log-likelihood of each problem's difficulty over
    the fine grid (problems x b): the prior of b refitted as its own posterior average,
    then -b + sigma z binned on logit_prior's grid (problem_priors)."""
    bb = _fine()
    nodes = LP.logit_nodes()
    edges = np.concatenate([[-np.inf], nodes[:-1] + LP.LOGIT_STEP / 2, [np.inf]])
    lik = np.exp(lik - lik.max(axis=1, keepdims=True))
    g = np.exp(-0.5 * bb * bb / fit.tau ** 2)
    g /= g.sum()
    for _ in range(NPMLE_ITERATIONS):      # the prior of b as its own posterior average (NPMLE fixed point)
        post = lik * g[None, :]
        post /= post.sum(axis=1, keepdims=True)
        g = post.mean(axis=0)
    # P(-b + sigma z in node cell k) = sum_b post(b) [Phi((hi + b)/sigma) - Phi((lo + b)/sigma)]
    cell = np.diff(special.ndtr((edges[None, :] + bb[:, None]) / fit.sigma), axis=1)
    w = post @ cell
    return dict(zip(fit.problems, w / w.sum(axis=1, keepdims=True)))


def problem_priors(fit: RaschFit) -> dict:
    """problem -> weights on logit_prior's grid: the distribution of -b_j + sigma z at
    ability 0, b_j from its posterior given all models' counts (module docstring)."""
    theta, mean, var, censored, ll, tried = _difficulty_inputs(fit)
    return _priors_from_loglik(_loglik_over_difficulty(theta, _fine(), fit.sigma, mean, var, censored, ll, tried),
                               fit)


def leave_one_out_priors(fit: RaschFit) -> dict:
    """model -> the problem_priors of ``fit`` with that model's counts left out of every
    problem's difficulty posterior (the other models' counts only; abilities, sigma and
    tau of the joint fit kept): the per-problem prior a model would get from the others,
    without refitting the joint model once per model (template_cv.py)."""
    theta, mean, var, censored, ll, tried = _difficulty_inputs(fit)
    per = _loglik_over_difficulty(theta, _fine(), fit.sigma, mean, var, censored, ll, tried, per_model=True)
    tot = per.sum(axis=0)
    return {m: _priors_from_loglik(tot - per[i], fit) for i, m in enumerate(fit.models)}


def ability_log_prior(thetas) -> np.ndarray:
    """Log prior over the shifts of logit_prior.TEMPLATE_SHIFTS (grid steps) for a new
    model's ability: the predictive Student t of the other models' abilities (as
    logit_prior.shift_log_prior); flat with fewer than 2."""
    s = np.asarray(LP.TEMPLATE_SHIFTS, float) * LP.LOGIT_STEP
    t = np.asarray(list(thetas), float)
    if len(t) < 2:
        return np.zeros(len(s))
    scale = max(float(np.std(t, ddof=1)), LP.LOGIT_STEP) * math.sqrt(1.0 + 1.0 / len(t))
    return stats.t.logpdf(s, df=len(t) - 1, loc=float(t.mean()), scale=scale)


def fit_new_model(problems, n, c, priors: dict, thetas, rng: np.random.Generator = None) -> np.ndarray:
    """Grid weights (a posterior average, logit_prior.posterior_average) for a model with
    counts (n_i, c_i) on ``problems``, given the per-problem priors of problem_priors and
    the other models' abilities ``thetas`` (module docstring). With ``rng`` one ability
    drawn from its posterior instead of the integral (bootstrap replicates)."""
    n = np.asarray(n, float)
    c = np.asarray(c, float)
    ll = LP.binomial_seq_loglik(n, c, LP._expit(LP.logit_nodes()))
    E = np.exp(ll - ll.max(axis=1, keepdims=True))
    default = np.mean(list(priors.values()), axis=0)
    U = np.array([priors.get(p, default) for p in problems])
    moved = LP.shift_stack(U, LP.TEMPLATE_SHIFTS)       # shifts x problems x nodes
    marg = np.einsum("spk,pk->sp", moved, E)
    logpost = np.log(np.maximum(marg, 1e-300)).sum(axis=1) + ability_log_prior(thetas)
    q = np.exp(logpost - logpost.max())
    q /= q.sum()
    if rng is not None:
        q = np.eye(len(q))[int(rng.choice(len(q), p=q))]
    post = moved * E[None, :, :]
    post /= np.maximum(post.sum(axis=2, keepdims=True), 1e-300)
    w = np.einsum("s,sk->k", q, post.mean(axis=1))
    return w / w.sum()


def replicates(problems, n, c, priors: dict, thetas, seed: int = 0, count: int = 24) -> list:
    """Bootstrap replicates of fit_new_model (as selection.bootstrap_replicates): problems
    drawn with replacement, each drawn problem's c* ~ Binomial(n, c/n), and one ability
    drawn from its posterior; grid weights each."""
    rng = np.random.default_rng(seed + 7919)
    n = np.asarray(n, float)
    c = np.asarray(c, float)
    out = []
    for _ in range(count):
        idx = rng.integers(0, len(n), len(n))
        cb = rng.binomial(n[idx].astype(np.int64), c[idx] / n[idx]).astype(float)
        out.append(fit_new_model([problems[i] for i in idx], n[idx], cb, priors, thetas, rng))
    return out
