"""Test-time strategies as functions of one problem's per-sample probabilities.

Each sample of a problem is correct with probability p, gives a wrong answer with
probability w (default 1 - p) and, when truncated by the generation budget, no answer
with probability 1 - p - w. Every function is vectorized: p, w and k broadcast.

- ``pass_at_k``: perfect checker (unit tests, proofs): 1 - (1-p)^k. Over a Beta the
  expectation has the closed form 1 - B(a, b+k)/B(a, b) (difficulty.beta_pass_at_k).
- ``verify``: resample against an imperfect verifier with completeness c (accepts a
  correct answer) and soundness s (rejects a wrong one), stop at the first acceptance, up
  to k tries (Stroebl, Kapoor, Narayanan, "Inference Scaling fLaws"):
      q = c p + (1-s) w,   P = c p (1 - (1-q)^k) / q,   ceiling c p / q < 1.
  Samples without an answer are rejected.
- ``majority``: plurality vote. Wrong answers are split into one "top" wrong answer that
  takes a share eta of the wrong mass and diffuse answers that never form a plurality;
  the vote is a race between the correct answer (count C) and the top wrong one (W):
      P = P(C > W) + 1/2 P(C = W >= 1).
  Exact for k <= K_EXACT (a binomial recursion); beyond, a Poisson table where fewer than
  LAMBDA_POISSON race votes are expected, else an Edgeworth expansion of C - W.
  As k grows it saturates to 1{p > eta w} (+1/2 at equality), so over problems to
  P(p > top wrong share).
- ``best_of_k``: a reward model picks one of the k answers. Luce / Bradley-Terry choice:
  the pick is sample i with probability proportional to exp(score_i) (argmax of scores
  with Gumbel noise), correct answers having odds rho = AUC / (1 - AUC) over wrong ones,
  so the reward model ranks a random (correct, wrong) pair correctly with probability AUC:
      P = E[rho C / (rho C + W)],   plateau rho p / (rho p + w) < 1.
  (A Gaussian score separation d' converts with AUC = Phi(d'/sqrt 2).) Exact for
  k <= K_EXACT; beyond, a Poisson table where fewer than LAMBDA_POISSON answers are
  expected, else a second-order delta method.
- ``single`` = pass@1 = p.
"""

from __future__ import annotations

import numpy as np

from planner.accuracy import special
# The tables and expansions behind majority and best-of-k live in strategy_tables.py
# and inner_tables.py (exact, k <= K_EXACT) and strategy_large_k.py (Poisson / Edgeworth / delta method).
from planner.accuracy.strategy_large_k import _best_of_k_delta, _majority_normal
from planner.accuracy.strategy_tables import K_EXACT, best_of_k_table, majority_table, rho_from_auc

STRATEGIES = ("pass@k", "verify", "majority", "best-of-k", "single")


def _w(p, w):
    p = np.asarray(p, float)
    return (1.0 - p) if w is None else np.asarray(w, float)


def _flat(p, w, k, param):
    """A strategy's per-problem inputs (p, w, k and its own parameter) broadcast together and
    flattened, with the shape to give the result back in."""
    p = np.asarray(p, float)
    p, w, k, param = np.broadcast_arrays(p, _w(p, w), np.asarray(k), np.asarray(param, float))
    return p.shape, tuple(x.ravel() for x in (p, w, k, param))


def pass_at_k(p, k) -> np.ndarray:
    p = np.asarray(p, float)
    k = np.asarray(k, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -np.expm1(k * np.log1p(-np.minimum(p, 1.0)))
    return np.where(p >= 1.0, 1.0, out)


def verify(p, k, completeness, soundness, w=None) -> np.ndarray:
    p = np.asarray(p, float)
    w = _w(p, w)
    k = np.asarray(k, float)
    c = np.asarray(completeness, float)
    s = np.asarray(soundness, float)
    q = c * p + (1.0 - s) * w
    with np.errstate(divide="ignore", invalid="ignore"):
        accept_any = -np.expm1(k * np.log1p(-np.minimum(q, 1.0)))
        out = c * p * accept_any / q
    return np.where(q > 0, np.where(q >= 1.0, c * p / np.maximum(q, 1e-300), out), 0.0)


def verify_ceiling(p, completeness, soundness, w=None) -> np.ndarray:
    p = np.asarray(p, float)
    w = _w(p, w)
    q = completeness * p + (1.0 - soundness) * w
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, completeness * p / q, 0.0)


def _exact_small_k(table, p, w, param, k, out) -> np.ndarray:
    """Fill ``out`` where k <= K_EXACT from an exact table (majority or best-of-k);
    returns that mask."""
    small = k <= K_EXACT
    if np.any(small):
        kk = k[small].astype(int)
        tab = table(p[small], w[small], param[small], int(kk.max()))
        out[small] = tab[kk, np.arange(kk.size)]
    return small


def majority(p, k, eta, w=None) -> np.ndarray:
    """Majority-vote accuracy per problem (see module doc)."""
    shape, (p, w, k, eta) = _flat(p, w, k, eta)
    out = np.empty(p.shape, float)
    small = _exact_small_k(majority_table, p, w, eta, k, out)
    if np.any(~small):
        out[~small] = _majority_normal(p[~small], eta[~small] * w[~small], k[~small].astype(float))
    return out.reshape(shape)


def best_of_k(p, k, auc, w=None) -> np.ndarray:
    """Best-of-k with a reward model of ranking accuracy ``auc`` (see module doc)."""
    shape, (p, w, k, auc) = _flat(p, w, k, auc)
    out = np.empty(p.shape, float)
    small = _exact_small_k(best_of_k_table, p, w, auc, k, out)
    big = np.flatnonzero(~small)
    for v in special.unique_sorted(auc[big]):
        sel = big[auc[big] == v]
        out[sel] = _best_of_k_delta(p[sel], w[sel], float(rho_from_auc(v)), k[sel].astype(float))
    return out.reshape(shape)


def best_of_k_limit(p, auc, w=None) -> np.ndarray:
    p = np.asarray(p, float)
    w = _w(p, w)
    rho = rho_from_auc(auc)
    den = rho * p + w
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, rho * p / den, 0.0)
