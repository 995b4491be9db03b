"""The inner tables of the exact small-k vote (planner.accuracy.strategy_tables):
H[n](pi), the accuracy when n of the k samples are in the race and a share pi of them is
correct, for n = 0..K.

Majority in closed form (_majority_inner), best-of-k as Bernstein sums by one matrix
product (_bernstein_table); both cached on a fixed grid of pi (_inner_on_grid) and read
by linear interpolation (_interp_table / _interp_rows); the binomial coefficient tables
the sums over n use. The binomial recursion they are checked against is
strategy_tables._inner_expectations.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache, wraps

import numpy as np

# Largest vote count of the Poisson tables (strategy_large_k.py); the pi-grid tables hold
# at least this many rows so the two share them.
_N_POISSON = 96



def _locked(fn):
    """A cached table builder made safe for the search's accuracy threads: one call at a
    time, so two threads asking for the same table at once build it once (lru_cache alone
    lets both compute it)."""
    lock = threading.RLock()

    @wraps(fn)
    def call(*args):
        with lock:
            return fn(*args)

    call.cache_clear = fn.cache_clear
    call.cache_info = fn.cache_info
    return call


def _h_majority(c, n):
    if n <= 0:
        return np.zeros_like(c)
    return (c > n / 2.0).astype(float) + 0.5 * (c == n / 2.0)


_PI_GRID = np.linspace(0.0, 1.0, 4097)


def _h_vectors(kind: str, rho: float, K: int) -> np.ndarray:
    """A[n, c] = h(c, n) C(n, c) for n, c = 0..K (zero above the diagonal): the Bernstein
    coefficients of H[n](pi) = sum_c A[n, c] pi^c (1 - pi)^(n - c)."""
    A = np.zeros((K + 1, K + 1))
    for n in range(1, K + 1):
        c = np.arange(n + 1, dtype=float)
        if kind == "majority":
            h = (c > n / 2.0) + 0.5 * (c == n / 2.0)
        else:
            den = rho * c + (n - c)
            h = np.where(den > 0, rho * c / np.where(den > 0, den, 1.0), 0.0)
        A[n, :n + 1] = h * np.array([math.comb(n, j) for j in range(n + 1)], dtype=float)
    return A


def _bernstein_table(A: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """H[n](pi) = sum_c A[n, c] pi^c (1-pi)^(n-c) for n = 0..K at every pi: (K+1, M).

    With t = pi / (1-pi) <= 1 (pi <= 1/2) this is (1-pi)^n sum_c A[n, c] t^c, one matrix
    product of the power table t^c with A; above 1/2 the same in s = (1-pi)/pi with the
    coefficients reversed. Every term is positive, so the sums keep full relative
    precision (like the binomial recursion they replace, ~K eps)."""
    K = A.shape[0] - 1
    out = np.empty((K + 1, pi.size))
    lowh = pi <= 0.5
    rev = np.zeros_like(A)
    for m in range(K + 1):
        rev[m, :m + 1] = A[m, m::-1]
    for sel, coef in ((lowh, A), (~lowh, rev)):
        x = pi[sel]
        if not x.size:
            continue
        small = np.minimum(x, 1.0 - x)
        t = small / (1.0 - small)                                    # <= 1
        # t^n by doubling; factors below 1e-150 dropped first, so no product is subnormal
        pw = np.empty((x.size, K + 1))
        pw[:, 0] = 1.0
        if K:
            pw[:, 1] = t
            step = np.where(t < 1e-150, 0.0, t)
            m = 2
            while m <= K:
                step = step * step
                step[step < 1e-150] = 0.0
                j = min(m, K + 1 - m)
                lo_ = np.where(pw[:, :j] < 1e-150, 0.0, pw[:, :j])
                np.multiply(lo_, step[:, None], out=pw[:, m:m + j])
                m += j
        scale = _powers(1.0 - small, K)                              # (1 - small)^n >= 2^-K
        out[:, sel] = ((pw @ coef.T) * scale).T
    return out


def _majority_inner(pi: np.ndarray, K: int) -> np.ndarray:
    """H[n](pi) = P(C > n/2) + P(C = n/2) / 2, C ~ Bin(n, pi), n = 0..K, in closed form:
    H[0] = 0, H[1] = pi, H[2m] = H[2m-1] (a fair tie-break makes an even vote worth the
    odd one before it) and H[2m+1] = H[2m-1] + C(2m, m)/2 (pi (1-pi))^m (2 pi - 1).
    Increments have one sign, so the sums keep full precision. -> (K+1, M)."""
    H = np.zeros((K + 1, pi.size))
    if K >= 1:
        H[1] = pi
    pq = pi * (1.0 - pi)
    d = 2.0 * pi - 1.0
    term = np.ones_like(pi)
    for m in range(1, K // 2 + 1):
        term = term * pq
        H[2 * m] = H[2 * m - 1]
        if 2 * m + 1 <= K:
            H[2 * m + 1] = H[2 * m - 1] + (math.comb(2 * m, m) / 2.0) * term * d
    return H


@_locked
@lru_cache(maxsize=64)
def _inner_on_grid(kind: str, rho: float, K: int) -> np.ndarray:
    """H[n](pi) on a fixed grid of pi for n <= K (cached). H[n] is a polynomial of degree
    n in pi, so linear interpolation on 4097 points is accurate to ~1e-6 for n <= 16.
    Majority in closed form (_majority_inner), best-of-k as Bernstein sums by a matrix
    product (_bernstein_table); both equal the binomial recursion _inner_expectations
    to ~1e-14, in a few ms instead of 0.05 s and 0.45 s."""
    if kind == "majority":
        return _majority_inner(_PI_GRID, K)
    return _bernstein_table(_h_vectors(kind, float(rho), K), _PI_GRID)


def _inner_interp(kind: str, rho: float, pi: np.ndarray, K: int) -> np.ndarray:
    """H[n](pi) for n = 0..K by linear interpolation in the cached pi-grid table. -> (K+1, M)."""
    return _inner_interp_rows(kind, rho, pi, K).T


@_locked
@lru_cache(maxsize=64)
def _interp_table(kind: str, rho: float, K: int) -> np.ndarray:
    """The pi-grid table of H[n], n <= K, for linear interpolation: (grid interval, 2,
    K+1), the values at the interval's left end and the differences across it (cached;
    one row gather per node)."""
    tab = _inner_on_grid(kind, float(rho), max(int(K), _N_POISSON))[:K + 1]
    return np.ascontiguousarray(np.stack([tab[:, :-1].T, np.diff(tab, axis=1).T], axis=1))


def _interp_rows(tab2: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Rows of an _interp_table at pi (linear interpolation): (M, columns)."""
    n_grid = len(_PI_GRID) - 1
    f = np.clip(pi * n_grid, 0.0, float(n_grid))
    i = np.minimum(f.astype(np.int64), n_grid - 1)
    g = tab2[i]                                                      # (M, 2, K+1)
    out = g[:, 1]
    out *= (f - i)[:, None]
    out += g[:, 0]
    return out


def _inner_interp_rows(kind: str, rho: float, pi: np.ndarray, K: int) -> np.ndarray:
    """H[n](pi) for n = 0..K, linear interpolation in the pi-grid table: (M, K+1)."""
    return _interp_rows(_interp_table(kind, float(rho), int(K)), np.asarray(pi, float))


@_locked
@lru_cache(maxsize=64)
def _odd_table(K: int) -> np.ndarray:
    """_interp_table("majority", 0, K) restricted to the odd n = 1, 3, ..., (cached)."""
    return np.ascontiguousarray(_interp_table("majority", 0.0, K)[:, :, 1::2])


@lru_cache(maxsize=256)
def _majority_binomials(ks: tuple, K: int) -> np.ndarray:
    """[C(k, 2m-1) | C(k, 2m)] for m = 1..ceil(K/2) (rows), k in ks: (m, 2 len(ks))."""
    C = _binomials(ks, K + 1)
    return np.concatenate([C[1::2][: (K + 1) // 2], C[2::2][: (K + 1) // 2]], axis=1)


@lru_cache(maxsize=256)
def _binomials(ks: tuple, K: int) -> np.ndarray:
    """C(k, n) for n = 0..K (rows) and k in ks (columns), zero for n > k."""
    C = np.zeros((K + 1, len(ks)))
    for j, k in enumerate(ks):
        C[:k + 1, j] = [math.comb(k, n) for n in range(k + 1)]
    return C


def _powers(x: np.ndarray, K: int) -> np.ndarray:
    """x^n for n = 0..K as an (m, K+1) array, by doubling: columns [n, 2n) are columns
    [0, n) times x^n. Powers n >= 2 of x < 1e-9 are set to 0 (below 1e-18, and no
    subnormal numbers in later products)."""
    pw = np.empty((x.size, K + 1))
    pw[:, 0] = 1.0
    if K == 0:
        return pw
    pw[:, 1] = x
    step = np.where(x < 1e-9, 0.0, x)
    n = 2
    while n <= K:
        step = step * step                                          # x^n
        m = min(n, K + 1 - n)
        np.multiply(pw[:, :m], step[:, None], out=pw[:, n:n + m])
        n += m
    return pw
