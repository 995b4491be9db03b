"""Trace-length variance components: how much of the scatter of ln(tokens) belongs to the
problem and how much to the sample (the problem effect of budget.py).

Model (budget.py): ln T_ij = mu + slope (p_i - p_mean) + v_i + e_ij, v_i ~ N(0, s_problem^2),
e_ij ~ N(0, s_sample^2). After removing the fitted slope term, the residuals
r_ij = ln T_ij - slope (p_i - p_mean) follow a one-way random-effects layout, and the
method-of-moments (ANOVA) estimators for unbalanced groups are (Searle, Casella and
McCulloch, "Variance Components", ch. 3):

    MSW = sum_ij (r_ij - rbar_i)^2 / (N - I)                  -> E = s_sample^2
    MSB = sum_i n_i (rbar_i - rbar)^2 / (I - 1 - [slope fitted])
    n0  = (N - sum_i n_i^2 / N) / (I - 1)
    s_problem^2 = max(0, (MSB - MSW) / n0)                    -> E[MSB] = s_sample^2 + n0 s_problem^2

and the intra-class share s_problem^2 / (s_problem^2 + s_sample^2) is what a profile keeps
(``trace_length.problem_share``), applied to the profile's total sigma. The slope acts on
each problem's observed pass@1, whose binomial noise (slope^2 p(1-p)/(n-1) on average) is
removed from s_problem^2. Samples cut at the
generation cap count at the cap (they pull both variances down a little). Needs at least
two problems with two or more samples.

On the Kinetics Qwen3-8B AIME24 traces this gives within 0.277, problem 0.414, share 0.69
(budget.DEFAULT_PROBLEM_SHARE).
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def variance_components(groups: list, slope_fitted: bool = False, extra_between: float = 0.0) -> Optional[dict]:
    """One-way random-effects ANOVA of ``groups`` (a list of 1-D arrays of residual
    ln-lengths, one per problem). ``extra_between``: variance of the problem means known
    to come from elsewhere (removed from s_problem^2). None where the layout cannot
    separate the two."""
    groups = [np.asarray(g, float) for g in groups if len(g) > 0]
    sizes = np.array([len(g) for g in groups], float)
    n_groups = len(groups)
    n_total = float(sizes.sum())
    if n_groups < 3 or np.sum(sizes >= 2) < 2 or n_total - n_groups < 2:
        return None
    means = np.array([g.mean() for g in groups])
    grand = float((means * sizes).sum() / n_total)
    ssw = float(sum(((g - m) ** 2).sum() for g, m in zip(groups, means)))
    ssb = float((sizes * (means - grand) ** 2).sum())
    msw = ssw / (n_total - n_groups)
    msb = ssb / max(n_groups - 1 - int(slope_fitted), 1)
    n0 = (n_total - float((sizes ** 2).sum()) / n_total) / (n_groups - 1)
    s2_problem = max(0.0, (msb - msw) / n0 - extra_between)
    total = s2_problem + msw
    share = s2_problem / total if total > 0 else 0.0
    return {"sigma_problem": float(np.sqrt(s2_problem)), "sigma_sample": float(np.sqrt(msw)),
            "problem_share": float(share), "problems_used": int(n_groups)}


def fit_length_components(data, difficulty_slope: float = 0.0) -> Optional[dict]:
    """Variance components of a log's per-sample ``tokens`` (evallog.EvalData) after the
    trace-length slope on each problem's observed pass@1 (fit.fit_trace_length)."""
    if not data.tokens:
        return None
    p_hat = {prob: c / n for prob, n, c in zip(data.problems, data.n, data.correct)}
    p_mean = data.pass_at_1
    n_of = dict(zip(data.problems, data.n))
    groups, noise = [], []
    for prob, lst in data.tokens.items():
        t = np.array([x[0] for x in lst], float)
        groups.append(np.log(t) - difficulty_slope * (p_hat[prob] - p_mean))
        n = float(n_of[prob])
        if n > 1:
            noise.append(p_hat[prob] * (1.0 - p_hat[prob]) / (n - 1.0))
    # the slope acts on the observed pass@1, not the true one: its binomial noise
    # (unbiased estimate p(1-p)/(n-1) per problem) times slope^2 is not a length effect
    extra = difficulty_slope ** 2 * float(np.mean(noise)) if noise else 0.0
    return variance_components(groups, slope_fitted=difficulty_slope != 0.0, extra_between=extra)
