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
the traces give. ``sigma`` pools within-problem scatter and the residual problem-level
scatter around mu(p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.accuracy import special


@dataclass(frozen=True)
class TraceLength:
    median_tokens: float
    sigma: float
    difficulty_slope: float = 0.0
    p_mean: float = 0.5

    def __post_init__(self):
        if not (self.median_tokens > 0 and self.sigma > 0):
            raise ValueError("trace length needs median_tokens > 0 and sigma > 0")

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

    def relative_finish(self, gen_len, ref_len, p, shift=0.0, extra_sigma=0.0) -> np.ndarray:
        """F(gen_len | shifted) / F(ref_len | unshifted): the factor on p_i(L_ref)."""
        num = self.cdf(gen_len, p, shift, extra_sigma)
        den = self.cdf(ref_len, p)
        return num / np.maximum(den, 1e-300)

    def mean_finish(self, gen_len, grid_nodes, grid_weights) -> float:
        """Fraction of all traces that finish within gen_len (for reports)."""
        return float(self.cdf(gen_len, grid_nodes) @ grid_weights)
