"""Thinking budget: how a generation cap L changes the per-problem success probability.

The truncation view: a sample whose reasoning trace would be longer than L is cut off
and gives no answer, so p_i(L) = p_i(inf) * P(trace_i <= L). A profile's p_i is measured
at its reference budget L_ref (e.g. 30,768 generated tokens for Qwen3 in Kinetics), so

    p_i(L) = min(1, p_i(L_ref) * F_i(L) / F_i(L_ref)),

exact at L = L_ref by construction, smaller below it, slowly larger above it (the
log-normal tail; capped at 1).

Trace length of problem i: log-normal, ln T ~ N(mu(p_i), sigma^2) with
    mu(p) = ln(median_tokens) + difficulty_slope * (p - p_mean).
Hard problems have longer traces. Fitted on the Kinetics AIME24 traces (Qwen3-8B, 30
problems x 32 samples; Infini-AI-Lab/Kinetics cost_model/aime24/dense CSVs): median 11.9K
tokens at p = p_mean, slope -1.0 per unit p (a problem solved every time has traces
e^-1 = 0.37x as long as one never solved), sigma 0.50. Modelling the slope matters: with
an independent length distribution, accuracy at 16K would be 0.50 instead of the 0.59
the traces give.

Problem effect. ``sigma`` is the total log-sd around mu(p); it splits into a problem
effect and sample noise,

    ln T_ij = mu(p_i) + v_i + e_ij,   v_i ~ N(0, s_problem^2),  e_ij ~ N(0, s_sample^2),
    s_problem^2 = share * sigma^2,    s_sample^2 = (1 - share) * sigma^2,

``share`` the intra-class correlation of ln T (``problem_share``). A problem that needs a
long trace needs it in every sample, so k samples under a short budget are truncated
together: given v_i a sample finishes with probability
F_i(L | v) = Phi((ln L - mu(p_i) - v) / s_sample), and the strategies integrate over v by
Gauss-Hermite quadrature (``effect_nodes``; combinations.node_probabilities). Over v the
finishing share is the same log-normal as before (E_v F_i(L | v) = F_i(L)), so a single
sample's accuracy barely moves; majority, pass@k and best-of-k under a short budget drop.
Measured on the Kinetics Qwen3-8B AIME24 traces (30 problems x 32 samples, one-way ANOVA
of ln T after the slope on each problem's pass@1; 43 of 960 samples at the 30,720 cap,
counted at the cap): within-problem sd 0.277, problem-level sd 0.414, share 0.69, total
0.498 (the 0.50 above). DEFAULT_PROBLEM_SHARE is that figure; `planner fit` estimates
the share from a log's per-sample tokens (lengths.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from planner.accuracy import special

# Intra-class share of ln(trace length) variance, Kinetics Qwen3-8B AIME24 (module doc).
DEFAULT_PROBLEM_SHARE = 0.69
# Gauss-Hermite nodes over the problem effect v (see effect_nodes).
EFFECT_NODES = 6


@dataclass(frozen=True)
class TraceLength:
    median_tokens: float
    sigma: float
    difficulty_slope: float = 0.0
    p_mean: float = 0.5
    problem_share: float = 0.0

    def __post_init__(self):
        if not (self.median_tokens > 0 and self.sigma > 0):
            raise ValueError("trace length needs median_tokens > 0 and sigma > 0")
        if not 0.0 <= self.problem_share < 1.0:
            raise ValueError("trace length needs 0 <= problem_share < 1")

    @property
    def sigma_problem(self) -> float:
        return self.sigma * float(np.sqrt(self.problem_share))

    @property
    def sigma_sample(self) -> float:
        return self.sigma * float(np.sqrt(1.0 - self.problem_share))

    def effect_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Hermite nodes v_m and weights h_m (sum 1) of the problem effect
        N(0, sigma_problem^2); one node at 0 when there is none."""
        if self.sigma_problem <= 0.0:
            return np.zeros(1), np.ones(1)
        return _hermite(EFFECT_NODES, self.sigma_problem)

    def conditional_ratio(self, u, x, ref_len) -> np.ndarray:
        """F(L | x, v) / F(L_ref | x, v) for log budgets u (U,) and nodes x ((G,) or
        (U, G)): shape (U, G, M) over the effect nodes v_m (effect_nodes)."""
        v, _ = self.effect_nodes()
        x = np.asarray(x, float)
        m = self.log_median(x)[..., None] + v
        s = self.sigma_sample if len(v) > 1 else self.sigma
        num = special.ndtr((np.asarray(u, float)[:, None, None] - m) / s)
        if x.ndim == 2:
            # per-row grids (majority's split grids) share most nodes: the reference
            # budget's share once per distinct node
            xu, inv = np.unique(x, return_inverse=True)
            den = special.ndtr((np.log(float(ref_len)) - (self.log_median(xu)[:, None] + v)) / s)
            den = den[inv.reshape(x.shape)]
        else:
            den = special.ndtr((np.log(float(ref_len)) - m) / s)
        return num / np.maximum(den, 1e-300)

    def log_median(self, p) -> np.ndarray:
        return np.log(self.median_tokens) + self.difficulty_slope * (np.asarray(p, float) - self.p_mean)

    def cdf(self, gen_len, p, shift=0.0, extra_sigma=0.0) -> np.ndarray:
        """P(trace <= gen_len) for a problem with reference success p; ``shift`` moves
        the log-median (sparse attention lengthens traces), ``extra_sigma`` widens it."""
        gen_len = np.asarray(gen_len, float)
        sig = np.sqrt(self.sigma ** 2 + np.asarray(extra_sigma, float) ** 2)
        with np.errstate(divide="ignore"):
            z = (np.log(gen_len) - self.log_median(p) - shift) / sig
        return special.ndtr(z)

    def mean_finish(self, gen_len, grid_nodes, grid_weights) -> float:
        """Fraction of all traces that finish within gen_len (for reports)."""
        return float(self.cdf(gen_len, grid_nodes) @ grid_weights)


def _hermite(n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    t, w = _hermgauss(n)
    return np.sqrt(2.0) * scale * t, w / w.sum()


@lru_cache(maxsize=8)
def _hermgauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights (cached: an eigenvalue problem, ~3 ms, asked for by
    every strategy evaluation)."""
    t, w = np.polynomial.hermite.hermgauss(n)
    t.flags.writeable = False
    w.flags.writeable = False
    return t, w
