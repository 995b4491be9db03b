"""Parametric difficulty fits of the beta-binomial: one Beta and a two-Beta mixture, each
by maximum likelihood, optionally with the mean fixed at the observed pass@1 (the profile
then reproduces it exactly). Used by selection.py (the held-out choice) and fit.py."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy import optimize, special


# Beta shapes below this are a point mass at 0 or 1 for any count data; the floor keeps
# betaln finite where an optimizer's exp() underflows (inf - inf would be NaN)
MIN_SHAPE = 1e-10


def _bb_loglik(n, c, a, b):
    """Beta-binomial log-likelihood of ``c`` successes in ``n`` (shapes floored at
    :data:`MIN_SHAPE`)."""
    a, b = np.maximum(a, MIN_SHAPE), np.maximum(b, MIN_SHAPE)
    return (special.gammaln(n + 1) - special.gammaln(c + 1) - special.gammaln(n - c + 1)
            + special.betaln(c + a, n - c + b) - special.betaln(a, b))


def fit_beta(n, c, mean: Optional[float] = None) -> dict:
    """Beta-binomial MLE; with ``mean`` the mean is fixed and only the spread is fitted."""
    n = np.asarray(n, float)
    c = np.asarray(c, float)
    if mean is not None:
        m = float(np.clip(mean, 1e-6, 1 - 1e-6))

        def nll(ls):
            s = math.exp(ls)
            return -_bb_loglik(n, c, m * s, (1 - m) * s).sum()

        res = optimize.minimize_scalar(nll, bounds=(-7.0, 9.0), method="bounded", options={"xatol": 1e-6})
        s = math.exp(res.x)
        a, b = m * s, (1 - m) * s
    else:
        def nll2(th):
            return -_bb_loglik(n, c, math.exp(th[0]), math.exp(th[1])).sum()

        res = optimize.minimize(nll2, [0.0, 0.0], method="Nelder-Mead",
                                options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
        a, b = math.exp(res.x[0]), math.exp(res.x[1])
    ll = float(_bb_loglik(n, c, a, b).sum())
    return {"kind": "beta", "a": a, "b": b, "loglik": ll, "n_params": 2}


def _mix_loglik(n, c, w, a1, b1, a2, b2):
    l1 = _bb_loglik(n, c, a1, b1) + math.log(w)
    l2 = _bb_loglik(n, c, a2, b2) + math.log(1 - w)
    return np.logaddexp(l1, l2)


def fit_mixture(n, c, mean: Optional[float] = None, starts: int = 4, seed: int = 0) -> dict:
    """Two-component Beta mixture of the beta-binomial, mean fixed when given (the second
    component's mean is then determined by the first and the weight)."""
    n = np.asarray(n, float)
    c = np.asarray(c, float)
    rng = np.random.default_rng(seed)
    m_all = float(np.clip(mean if mean is not None else np.mean(c / n), 1e-6, 1 - 1e-6))

    def unpack(th):
        w = special.expit(th[0])
        m1 = special.expit(th[1])
        s1 = math.exp(th[2])
        s2 = math.exp(th[3])
        if mean is None:
            m2 = special.expit(th[4])
        else:
            m2 = (m_all - w * m1) / (1 - w)
        return w, m1, s1, m2, s2

    def nll(th):
        if abs(th[2]) > 7.0 or abs(th[3]) > 7.0:        # spreads within [e^-7, e^7]
            return 1e12
        w, m1, s1, m2, s2 = unpack(th)
        if not (1e-6 < m2 < 1 - 1e-6) or not (1e-4 < w < 1 - 1e-4):
            return 1e12
        return -_mix_loglik(n, c, w, m1 * s1, (1 - m1) * s1, m2 * s2, (1 - m2) * s2).sum()

    best = None
    for i in range(starts):
        w0 = rng.uniform(0.2, 0.8)
        m1 = rng.uniform(0.02, max(0.05, m_all * 0.9))
        m2 = (m_all - w0 * m1) / (1 - w0)
        if not 0 < m2 < 1:
            m1, m2 = m_all * 0.5, min(0.99, m_all * 1.5)
            w0 = 0.5 if m2 == m_all * 1.5 else (m2 - m_all) / (m2 - m1)
        th0 = [special.logit(w0), special.logit(m1), rng.uniform(-1, 2), rng.uniform(-1, 2)]
        if mean is None:
            th0.append(special.logit(np.clip(m2, 1e-3, 1 - 1e-3)))
        res = optimize.minimize(nll, th0, method="Nelder-Mead",
                                options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 6000})
        if best is None or res.fun < best.fun:
            best = res
    w, m1, s1, m2, s2 = unpack(best.x)
    comps = [{"weight": float(w), "a": float(m1 * s1), "b": float((1 - m1) * s1)},
             {"weight": float(1 - w), "a": float(m2 * s2), "b": float((1 - m2) * s2)}]
    return {"kind": "mixture", "components": comps, "loglik": float(-best.fun), "n_params": 5}
