"""Exact majority and best-of-k accuracy for few samples (k <= K_EXACT).

The vote is a race between the correct answer and its rival (majority: the top wrong
answer; best-of-k: every wrong answer), see strategies.py. With s the share of samples in
the race and pi the share of those that are correct, the accuracy after k samples is
    T[k] = sum_n Bin(n; k, s) H[n](pi),
H[n](pi) the accuracy when n of the k samples are in the race: a binomial expectation
over the number C of correct ones. This module holds the inner tables H (closed form,
Bernstein sums, cached on a pi grid), the binomial sums over n (small_k_values), the
binomial recursions they are checked against, and majority_table / best_of_k_table.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

K_EXACT = 32
# Largest vote count of the Poisson tables (strategy_large_k.py); the pi-grid tables hold
# at least this many rows so the two share them.
_N_POISSON = 96


def rho_from_auc(auc) -> np.ndarray:
    auc = np.clip(np.asarray(auc, float), 1e-9, 1 - 1e-9)
    return auc / (1.0 - auc)


# ---------------------------------------------------------------------------------------
# Exact small-k tables by binomial recursion (shared by majority and best-of-k)
# ---------------------------------------------------------------------------------------

def _inner_expectations(pi: np.ndarray, K: int, h) -> np.ndarray:
    """H[n] = E[h(C, n)], C ~ Bin(n, pi), for n = 0..K; pi has shape (M,). -> (K+1, M)."""
    M = pi.shape[0]
    H = np.zeros((K + 1, M))
    row = np.zeros((K + 1, M))
    row[0] = 1.0
    c_all = np.arange(K + 1, dtype=float)[:, None]
    q = 1.0 - pi
    for n in range(1, K + 1):
        new = row * q
        new[1:n + 1] += row[:n] * pi
        row = new
        H[n] = (row[:n + 1] * h(c_all[:n + 1], float(n))).sum(axis=0)
    return H


def _outer_table(s: np.ndarray, H: np.ndarray, K: int, need=None) -> np.ndarray:
    """T[k] = E[H[N]], N ~ Bin(k, s), for k = 0..K. -> (K+1, M); rows not in ``need`` are
    left at zero. Single precision (float32 result) for large M (sums of positive terms: rounding errors
    stay ~1e-6). Few wanted k (e.g. powers of two): each T[k] directly as
    sum_n Bin(n; k, s) H[n], the pmf by a ratio recursion from the lighter tail
    (min(s, 1-s), so no underflow: (1/2)^32 > 1e-10); many: the binomial recursion
    over k, which gives every row."""
    M = s.shape[0]
    dt = np.float32 if M > 20000 else np.float64
    H = H.astype(dt, copy=False)
    s = s.astype(dt)
    T = np.zeros((K + 1, M), dtype=dt)
    T[0] = H[0]
    want = np.ones(K + 1, bool) if need is None else np.isin(np.arange(K + 1), np.asarray(need))
    ks = np.flatnonzero(want[1:]) + 1
    if 2 * int((ks + 1).sum()) < K * (K + 1) // 2:
        flip = s > 0.5
        parts = []
        for flipped, sel in ((False, np.flatnonzero(~flip)), (True, np.flatnonzero(flip))):
            if len(sel):
                sl = np.minimum(s[sel], 1 - s[sel])
                parts.append((flipped, sel, sl / (1 - sl), np.log1p(-sl), H[:, sel]))
        for k in ks:
            for flipped, sel, ratio, l1, Hs in parts:
                pmf = np.exp(k * l1)
                acc = pmf * Hs[k if flipped else 0]
                tmp = np.empty_like(acc)
                for n in range(1, k + 1):
                    pmf *= ratio
                    pmf *= dt((k - n + 1) / n)
                    np.multiply(pmf, Hs[k - n if flipped else n], out=tmp)
                    acc += tmp
                T[k, sel] = acc
        return T
    row = np.zeros((K + 1, M), dtype=dt)
    row[0] = 1.0
    q = 1.0 - s
    for k in range(1, K + 1):
        new = row * q
        new[1:k + 1] += row[:k] * s
        row = new
        if want[k]:
            T[k] = np.einsum("nm,nm->m", row[:k + 1], H[:k + 1])
    return T


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


_CHUNK_NODES = 1024
_S_ONE = 1e-9     # 1 - s below this: two-term expansion at s = 1
_S_RARE = 1e-7    # K s below this: one-term expansion at s = 0 (small_k_values)


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


# Columns of a call come in groups of budget.EFFECT_NODES (a node's trace-length effect
# nodes, combinations.node_probabilities); below the reference budget every column of a
# group has the same pi (p and w scale alike with the finishing ratio), so H[n](pi) is
# interpolated once per group (_shared_pi). Groups agree to this absolute tolerance in pi
# (H moves by < 1e-11 over it).
_PI_GROUP = 6
_PI_GROUP_TOL = 1e-13


def _shared_pi(pi: np.ndarray, m: int):
    """(reduced, index) with pi[j] == reduced[index[j]] to _PI_GROUP_TOL, where groups of
    ``m`` consecutive columns that agree share one entry; None where too few groups
    agree to pay for the bookkeeping."""
    if m <= 1 or pi.size < 64 * m or pi.size % m:
        return None
    P = pi.reshape(-1, m)
    same = np.abs(P - P[:, :1]).max(axis=1) <= _PI_GROUP_TOL
    n_same = int(same.sum())
    if n_same * 4 < len(same):
        return None
    index = np.empty(P.shape, dtype=np.int64)
    index[same] = np.arange(n_same)[:, None]
    n_other = (len(same) - n_same) * m
    index[~same] = n_same + np.arange(n_other).reshape(-1, m)
    reduced = np.concatenate([P[same, 0], P[~same].ravel()])
    return reduced, index.ravel()


def small_k_values(kind: str, rho: float, s, pi, need, pi_index=None) -> np.ndarray:
    """Exact majority (kind "majority") or best-of-k ("best-of-k", reward odds rho)
    accuracy for every k in ``need`` (<= K_EXACT): T[k] = sum_n Bin(n; k, s) H[n](pi) at
    each node, s the share of samples in the race (answers), pi the share of those that
    are correct. -> (len(need), M), float64.

    H[n](pi) comes from the cached pi-grid table (linear interpolation, as before). The
    binomial sum is formed for all k at once as a matrix product: with x = s / (1-s),
    T[k] = (1-s)^k sum_n C(k, n) x^n H[n], i.e. the (M, K+1) array x^n H[n] times the
    (K+1, len(need)) binomial coefficients. All terms are positive (no cancellation), so
    the sums keep ~K eps relative precision; x^n stays below 1e9^K (no overflow) where
    1 - s >= 1e-9, and beyond, T[k] = s^k H[k] + k s^(k-1) (1-s) H[k-1] (error < k^2
    1e-18). Powers x^n, n >= 2, of x < 1e-9 are dropped (< 1e-18; keeps the products clear
    of subnormal numbers). Nodes go in chunks of _CHUNK_NODES (temporaries stay in cache).

    ``pi_index``: column j's pi is ``pi[pi_index[j]]`` (pi then holds distinct values);
    by default groups of _PI_GROUP columns with one pi are found here (_shared_pi) and
    H[n](pi) interpolated once per group."""
    need = tuple(int(k) for k in np.atleast_1d(need))
    K = max(need)
    s = np.clip(np.asarray(s, float).ravel(), 0.0, 1.0)
    pi = np.asarray(pi, float).ravel()
    if pi_index is None:
        shared = _shared_pi(pi, _PI_GROUP) if s.size == pi.size else None
        if shared is not None:
            return small_k_values(kind, rho, s, shared[0], need, shared[1])
        pi_index = False  # one pi per column; not searched for groups again
    plain = pi_index is False

    def pi_at(cols):
        return pi[cols] if plain else pi[pi_index[cols]]

    def sub(cols):
        """The (pi, pi_index) arguments of a recursive call on columns ``cols``."""
        return (pi[cols], False) if plain else (pi, pi_index[cols])

    rare = s * K < _S_RARE
    if rare.any() and K >= 1:
        # at most one vote / answer in k is likely: T[k] = k s (1-s)^(k-1) H[1] with
        # H[1](pi) = pi (majority and best-of-k alike); the terms n >= 2 add at most
        # P(N >= 2) <= (k s)^2 / 2 < 5e-15. Many nodes are here under short budgets
        # (traces truncated), a third of the search's columns.
        out = np.empty((len(need), s.size))
        j = np.flatnonzero(rare)
        sj, pj = s[j], pi_at(j)
        l1 = np.log1p(-sj)
        for m, k in enumerate(need):
            out[m, j] = k * sj * np.exp((k - 1) * l1) * pj if k else 0.0
        rest = np.flatnonzero(~rare)
        if len(rest):
            pi_r, idx_r = sub(rest)
            out[:, rest] = small_k_values(kind, rho, s[rest], pi_r, need, idx_r)
        return out
    near_one = 1.0 - s < _S_ONE
    if near_one.any() and not near_one.all():
        # every sample answers (best-of-k at long budgets): the two-term expansion below,
        # without the matrix products for those nodes
        out = np.empty((len(need), s.size))
        for sel in (near_one, ~near_one):
            pi_s, idx_s = sub(sel)
            out[:, sel] = small_k_values(kind, rho, s[sel], pi_s, need, idx_s)
        return out
    tab2 = _interp_table(kind, float(rho), K)
    C_all = _binomials(need, K)
    r = 1.0 - s
    near_one = r < _S_ONE
    x = s / np.where(near_one, 1.0, r)
    with np.errstate(divide="ignore"):
        lr = np.log(r)
    out = np.empty((len(need), s.size))
    for j, k in enumerate(need):                                     # (1-s)^k
        if j and k == 2 * need[j - 1]:
            np.multiply(out[j - 1], out[j - 1], out=out[j])          # doubling grids
        else:
            out[j] = np.exp(k * lr) if k else 1.0
    if near_one.all():
        pass                                                         # below
    elif kind == "majority" and K >= 1:
        # H[2m] = H[2m-1] (_majority_inner): sum_n C(k, n) x^n H[n] =
        # sum_m x^(2m-1) H[2m-1] (C(k, 2m-1) + C(k, 2m) x), half the columns
        tab_odd = _odd_table(K)
        C2 = _majority_binomials(need, K)
        nk = len(need)
        H_all = _rows_at(tab_odd, pi, pi_index)
        for start in range(0, s.size, _CHUNK_NODES):
            sl = slice(start, start + _CHUNK_NODES)
            xs = x[sl]
            H = H_all(sl)                                            # (m, ceil(K/2))
            H *= _powers(xs * xs, H.shape[1] - 1)
            H *= xs[:, None]
            R = H @ C2
            out[:, sl] *= (R[:, :nk] + xs[:, None] * R[:, nk:]).T
    else:
        H_all = _rows_at(tab2, pi, pi_index)
        for start in range(0, s.size, _CHUNK_NODES):
            sl = slice(start, start + _CHUNK_NODES)
            H = H_all(sl)                                            # (m, K+1)
            H *= _powers(x[sl], K)
            out[:, sl] *= (H @ C_all).T
    if near_one.any():
        j = np.flatnonzero(near_one)
        Hn = _inner_interp_rows(kind, float(rho), pi_at(j), K)
        sj, rj = s[j], r[j]
        for m, k in enumerate(need):
            out[m, j] = sj ** k * Hn[:, k] + (k * sj ** (k - 1) * rj * Hn[:, k - 1] if k else 0.0)
    return out


def _rows_at(tab2: np.ndarray, pi: np.ndarray, pi_index):
    """A function of a column slice giving the _interp_rows of those columns (a fresh
    array): interpolated per column (``pi_index`` False), or once per distinct pi and
    gathered (column j's pi is pi[pi_index[j]])."""
    if pi_index is False:
        return lambda sl: _interp_rows(tab2, pi[sl])
    H_red = _interp_rows(tab2, pi)
    return lambda sl: H_red[pi_index[sl]]


def _table_from_values(kind, rho, s, pi, K, need):
    """small_k_values as a (K+1, M) table over k = 0..K (rows not in ``need`` zero)."""
    ks = np.arange(K + 1) if need is None else np.unique(np.asarray(need, dtype=np.int64))
    T = np.zeros((K + 1, s.size))
    T[ks] = small_k_values(kind, rho, s, pi, ks)
    return T


def race_shares(p, t):
    """(s, pi): the share s = p + t of samples in the race (majority: correct or top wrong
    answer, t = eta w; best-of-k: any answer, t = w) and the share pi = p / s of those
    that are correct."""
    p = np.asarray(p, float)
    s = np.clip(p + np.asarray(t, float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = np.where(s > 0, p / np.where(s > 0, s, 1.0), 0.0)
    return s, pi


def majority_table(p, w, eta, K: int = K_EXACT, need=None) -> np.ndarray:
    """Exact majority accuracy for k = 0..K; p, w flat arrays (M,). -> (K+1, M)."""
    p = np.asarray(p, float)
    s, pi = race_shares(p, np.asarray(eta, float) * np.asarray(w, float))
    if K <= K_EXACT:
        return _table_from_values("majority", 0.0, s, pi, K, need)
    H = _inner_expectations(pi, K, _h_majority)
    return _outer_table(s, H, K, need)


def _h_luce(rho):
    def h(c, n):
        if n <= 0:
            return np.zeros((c.shape[0], rho.shape[0]))
        den = rho * c + (n - c)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, rho * c / np.where(den > 0, den, 1.0), 0.0)
    return h


def best_of_k_table(p, w, auc, K: int = K_EXACT, need=None) -> np.ndarray:
    """Exact best-of-k accuracy for k = 0..K; p, w, auc flat arrays (M,). -> (K+1, M)."""
    p = np.asarray(p, float)
    w = np.asarray(w, float)
    rho = np.broadcast_to(rho_from_auc(auc), p.shape).astype(float)
    a, pi = race_shares(p, w)
    if K <= K_EXACT and p.size and rho.min() == rho.max():
        return _table_from_values("best-of-k", float(rho[0]), a, pi, K, need)
    H = _inner_expectations(pi, K, _h_luce(rho))
    return _outer_table(a, H, K, need)
