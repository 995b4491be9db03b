"""Majority and best-of-k accuracy for many samples (k > K_EXACT).

Where the expected number of race votes (majority) or answers (best-of-k) lambda = k s is
below LAMBDA_POISSON, the count is taken as Poisson(lambda) and the accuracy read from a
precomputed (lambda, pi) table; above it, a one-term Edgeworth expansion of C - W
(majority) or a second-order delta method (best-of-k). See strategies.py for the model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from planner.accuracy import special
from planner.accuracy.inner_tables import _N_POISSON, _PI_GRID, _inner_on_grid, _locked

# Few expected votes / answers: beyond K_EXACT, where the expected number of race votes
# (majority) or answers (best-of-k) lambda = k s is below LAMBDA_POISSON, the count is
# taken as Poisson(lambda) and the accuracy read from a precomputed (lambda, pi) table;
# above it the Edgeworth (majority) / delta-method (best-of-k) expansions apply.
LAMBDA_POISSON = 30.0
_LAM_STEP = 0.125
_LAM_GRID = np.arange(0.0, LAMBDA_POISSON + 2 * _LAM_STEP, _LAM_STEP)


@_locked
@lru_cache(maxsize=64)
def _poisson_table(kind: str, rho: float) -> np.ndarray:
    """T[j, i] = sum_n Pois(n; lambda_i) H(n; pi_j): accuracy when the number of votes
    (answers) is Poisson(lambda) and each is correct with probability pi (cached; built
    once when two threads ask at once). Stored pi-major, (pi, lambda): a lookup's four
    corners lie in two rows of 2 KB, and the effect nodes of one problem (one pi, several
    lambda) read the same rows (_poisson_lookup)."""
    H = _inner_on_grid(kind, float(rho), _N_POISSON)                 # (N+1, P)
    n = np.arange(_N_POISSON + 1, dtype=float)[:, None]
    lam = _LAM_GRID[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        logpmf = n * np.log(lam) - lam - special.gammaln(n + 1)
    pmf = np.where(lam > 0, np.exp(logpmf), (n == 0).astype(float))  # (N+1, L)
    return H.T @ pmf                                                  # (P, L)


def _poisson_lookup(table: np.ndarray, lam, pi) -> np.ndarray:
    """Bilinear interpolation of a pi-major (pi, lambda) table; lam < LAMBDA_POISSON."""
    lam, pi = np.broadcast_arrays(np.asarray(lam, float), np.asarray(pi, float))
    shape = lam.shape
    lam, pi = lam.ravel(), pi.ravel()
    # the arithmetic of (t00 (1 - dp) + t01 dp) (1 - dl) + (t10 (1 - dp) + t11 dp) dl,
    # step by step in place (same operations, same order: the same values)
    dl = lam / _LAM_STEP
    np.clip(dl, 0.0, len(_LAM_GRID) - 1.001, out=dl)
    il = dl.astype(np.int64)
    dl -= il
    dp = pi * (len(_PI_GRID) - 1)
    np.clip(dp, 0.0, len(_PI_GRID) - 1.001, out=dp)
    i = dp.astype(np.int64)
    dp -= i
    # flat gathers without bounds checks (il <= columns - 2 and ip <= rows - 2 by the
    # clips above): ~2.5x faster than 2-D fancy indexing on the 8 MB table, same values
    flat = table.reshape(-1)
    i *= table.shape[1]
    i += il
    t00 = flat.take(i, mode="clip")
    i += 1
    t10 = flat.take(i, mode="clip")
    i += table.shape[1]
    t11 = flat.take(i, mode="clip")
    i -= 1
    t01 = flat.take(i, mode="clip")
    a = 1 - dp
    t00 *= a
    t01 *= dp
    t00 += t01
    t10 *= a
    t11 *= dp
    t10 += t11
    np.subtract(1, dl, out=a)
    t00 *= a
    t10 *= dl
    t00 += t10
    return t00.reshape(shape)


def majority_coeffs(p, t):
    """k-independent terms of the large-k majority approximations (see _majority_normal)."""
    p = np.asarray(p)
    t = np.asarray(t)
    mu = p - t
    r = np.clip(1.0 - p - t, 0.0, 1.0)
    var = np.maximum(p + t - mu * mu, 0.0)
    sd = np.sqrt(var)
    ok = sd > 1e-6
    sd_safe = np.where(ok, sd, 1.0)
    a = np.where(ok, mu / sd_safe, np.sign(mu) * 1e6)
    m3 = p * (1.0 - mu) ** 3 + t * (-1.0 - mu) ** 3 + r * (-mu) ** 3
    b = np.where(ok, m3 / (6.0 * sd_safe ** 3), 0.0)
    with np.errstate(divide="ignore"):
        lr = np.log(r)
    s = p + t
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = np.where(s > 0, p / np.where(s > 0, s, 1.0), 0.0)
    return a, b, lr, s, pi


def majority_from_coeffs(coeffs, k):
    a, b, lr, s, pi = coeffs
    sk = np.sqrt(k)
    y = np.clip(sk * a, -40.0, 40.0)
    phi = np.exp(-0.5 * y * y) * 0.3989422804014327
    out = special.ndtr(y) + phi * b * (y * y - 1.0) / sk - 0.5 * np.exp(k * lr)
    out = np.where(s > 0, np.clip(out, 0.0, 1.0), 0.0)
    lam = k * s
    few = lam < LAMBDA_POISSON
    if np.any(few):
        tab = _poisson_table("majority", 0.0)
        lam_b, pi_b = np.broadcast_to(lam, out.shape), np.broadcast_to(pi, out.shape)
        out = np.array(out, copy=True)
        out[few] = _poisson_lookup(tab, lam_b[few], pi_b[few])
    return out


def majority_large_k(p, t, k) -> np.ndarray:
    """majority_from_coeffs(majority_coeffs(p, t), k) in double precision, each node
    evaluated by one of the two approximations only: the Poisson table where
    k (p + t) < LAMBDA_POISSON, the Edgeworth expansion elsewhere."""
    p, t, k = np.broadcast_arrays(np.asarray(p, float), np.asarray(t, float), np.asarray(k, float))
    s = p + t
    out = np.zeros(p.shape)
    lam = k * s
    few = lam < LAMBDA_POISSON
    if few.any():
        pf, sf = p[few], s[few]
        with np.errstate(divide="ignore", invalid="ignore"):
            pif = np.where(sf > 0, pf / np.where(sf > 0, sf, 1.0), 0.0)
        out[few] = _poisson_lookup(_poisson_table("majority", 0.0), lam[few], pif)
    many = ~few & (s > 0)
    if many.any():
        pm, tm, km = p[many], t[many], k[many]
        a, b, lr, _, _ = majority_coeffs(pm, tm)
        sk = np.sqrt(km)
        y = np.clip(sk * a, -40.0, 40.0)
        phi = np.exp(-0.5 * y * y) * 0.3989422804014327
        with np.errstate(under="ignore"):
            v = special.ndtr(y) + phi * b * (y * y - 1.0) / sk - 0.5 * np.exp(km * lr)
        out[many] = np.clip(v, 0.0, 1.0)
    return out


def _majority_normal(p, t, k):
    """P(C > W) + 1/2 P(C = W >= 1) for large k: one-term Edgeworth expansion of the
    lattice variable D = C - W evaluated at the lattice point 0 (which gives the
    mid-point value P(D < 0) + 1/2 P(D = 0)), minus the all-diffuse case r^k counted
    there as a tie. Error against the exact recursion over random (p, t): mean 1.2e-3,
    max 0.02 at k = 17, shrinking as 1/k; averaged over a profile's problems < 2e-4."""
    return majority_from_coeffs(majority_coeffs(p, t), k)


def best_of_k_coeffs(p, w, rho):
    """k-independent terms of the large-k best-of-k approximations: plateau f0, the 1/k
    coefficient of the second-order delta method, ln z (z = no-answer rate), the answer
    rate, the share of answers that are correct, and rho."""
    p = np.asarray(p)
    w = np.asarray(w)
    D1 = rho * p + w
    ok = D1 > 0
    D1s = np.where(ok, D1, 1.0)
    f0 = np.where(ok, rho * p / D1s, 0.0)
    # |c1| is only large where few answers are expected (the Poisson table applies there);
    # bounded so that single precision copies stay finite
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # D1 ~ 1e-110 underflows
        c1 = np.clip(np.where(ok, rho * p * w * (1.0 - rho) / D1s ** 3, 0.0), -1e30, 1e30)
        c1 = np.where(np.isfinite(c1), c1, 0.0)
    ans = np.clip(p + w, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lz = np.log(np.clip(1.0 - p - w, 0.0, 1.0))
        pi = np.where(ans > 0, p / np.where(ans > 0, ans, 1.0), 0.0)
    return f0, c1, lz, ans, pi, float(rho)


def best_of_k_from_coeffs(coeffs, k):
    f0, c1, lz, ans, pi, rho = coeffs
    out = np.clip(f0 + c1 / k, 0.0, 1.0) * (1.0 - np.exp(k * lz))
    lam = k * ans
    few = lam < LAMBDA_POISSON
    if np.any(few):
        tab = _poisson_table("best-of-k", rho)
        lam_b, pi_b = np.broadcast_to(lam, out.shape), np.broadcast_to(pi, out.shape)
        out = np.array(out, copy=True)
        out[few] = _poisson_lookup(tab, lam_b[few], pi_b[few])
    return out


def _best_of_k_delta(p, w, rho, k):
    """Large-k best-of-k: second-order delta method for E[rho C / (rho C + W)], (C, W)
    multinomial, rho p / (rho p + w) + rho p w (1 - rho) / (k (rho p + w)^3), times
    P(some answer); where fewer than LAMBDA_POISSON answers are expected, the Poisson
    table instead."""
    return best_of_k_from_coeffs(best_of_k_coeffs(p, w, float(np.asarray(rho).ravel()[0])), k)
