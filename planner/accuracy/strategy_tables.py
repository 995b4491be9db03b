"""Exact majority and best-of-k accuracy for few samples (k <= K_EXACT).

The vote is a race between the correct answer and its rival (majority: the top wrong
answer; best-of-k: every wrong answer), see strategies.py. With s the share of samples in
the race and pi the share of those that are correct, the accuracy after k samples is
    T[k] = sum_n Bin(n; k, s) H[n](pi),
H[n](pi) the accuracy when n of the k samples are in the race: a binomial expectation
over the number C of correct ones. This module holds the binomial sums over n
(small_k_values), the binomial recursions they are checked against, and majority_table /
best_of_k_table; the inner tables H (closed form, Bernstein sums, cached on a pi grid)
are planner.accuracy.inner_tables.
"""

from __future__ import annotations

import numpy as np

from planner.accuracy.inner_tables import (
    _binomials,
    _h_majority,
    _PI_GRID,
    _inner_interp_rows,
    _interp_table,
    _majority_binomials,
    _odd_table,
)

K_EXACT = 32


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



_CHUNK_NODES = 1024
_S_ONE = 1e-9     # 1 - s below this: two-term expansion at s = 1
_S_RARE = 1e-7    # K s below this: one-term expansion at s = 0 (small_k_values)


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
    1e-18); nodes with s K < _S_RARE take a one-term expansion, so x >= 3e-9 in the sums
    and no product is subnormal. Nodes go in chunks of _CHUNK_NODES through preallocated
    buffers (_binomial_sums).

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
        kmin = next((k for k in need if k), 0)
        qk = np.exp((kmin - 1) * l1) if kmin else None              # (1-s)^(k-1), k = kmin
        for m, k in enumerate(need):
            if not k:
                out[m, j] = 0.0
                continue
            if m and need[m - 1] and k - 1 == 2 * (need[m - 1] - 1) + 1:
                qk = qk * qk * (1.0 - sj)                            # doubling k: squares
            elif k != kmin:
                qk = np.exp((k - 1) * l1)
            out[m, j] = k * sj * qk * pj
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
        _binomial_sums(_odd_table(K), _majority_binomials(need, K), x, pi, pi_index, out, odd=True)
    else:
        _binomial_sums(tab2, C_all, x, pi, pi_index, out, odd=False)
    if near_one.any():
        j = np.flatnonzero(near_one)
        Hn = _inner_interp_rows(kind, float(rho), pi_at(j), K)
        sj, rj = s[j], r[j]
        for m, k in enumerate(need):
            out[m, j] = sj ** k * Hn[:, k] + (k * sj ** (k - 1) * rj * Hn[:, k - 1] if k else 0.0)
    return out


def _binomial_sums(tab2, C, x, pi, pi_index, out, odd):
    """out[:, j] *= sum_n C(k, n) x_j^n H[n](pi_j) for every column j (``odd``: majority's
    sum_m x^(2m-1) H[2m-1] (C(k, 2m-1) + C(k, 2m) x), C the two blocks side by side),
    H read from the pi-grid table ``tab2`` by linear interpolation (per column, or once
    per distinct pi where ``pi_index`` maps columns to pi). Columns go in chunks of
    _CHUNK_NODES through preallocated (n, column) buffers: every step is a row operation
    over a chunk's columns (freshly allocated chunk temporaries cost more than the
    arithmetic on them: page faults), the table is read one row of n at a time (32 KB,
    in cache), and C^T times the buffer gives the k rows of ``out`` directly. Powers by a
    running product along n (columns here have s K >= _S_RARE, so x >= 3e-9 and x^32
    stays far from subnormal numbers; x <= 1e9 where 1 - s >= _S_ONE, so x^32 <= 1e288)."""
    M, w = x.size, tab2.shape[-1]
    nk = out.shape[0]
    ch = min(_CHUNK_NODES, M)
    Hb, Pb, Db = np.empty((w, ch)), np.empty((w, ch)), np.empty((w, ch))
    Rb = np.empty((C.shape[1], ch))
    CT = np.ascontiguousarray(C.T)
    lo_tab, d_tab = _split_table(tab2)
    if pi_index is not False:
        H_red = np.empty((w, pi.size))
        for a in range(0, pi.size, ch):                              # in cache-sized pieces
            b = min(a + ch, pi.size)
            _interp_cols(lo_tab, d_tab, pi[a:b], H_red[:, a:b], Db[:, :b - a])
    for start in range(0, M, ch):
        sl = slice(start, min(start + ch, M))
        m = sl.stop - start
        H, P, xs = Hb[:, :m], Pb[:, :m], x[sl]
        if pi_index is False:
            _interp_cols(lo_tab, d_tab, pi[sl], H, Db[:, :m])
        else:
            np.take(H_red, pi_index[sl], axis=1, out=H, mode="clip")
        if odd:                                                      # x^(2m-1), m = 1..w
            P[0] = xs
            P[1:] = xs * xs
        else:                                                        # x^n, n = 0..w-1
            P[0] = 1.0
            P[1:] = xs
        for n in range(1, w):                                        # in place (accumulate
            np.multiply(P[n - 1], P[n], out=P[n])                    # buffers a copy here)
        H *= P
        R = Rb[:, :m]
        np.matmul(CT, H, out=R)
        if odd:
            res = R[nk:]
            res *= xs
            res += R[:nk]
        else:
            res = R
        out[:, sl] *= res


def _interp_cols(lo_tab, d_tab, pi, out, tmp):
    """H[n](pi) by linear interpolation in a _split_table, as (n, column) into ``out``
    (``tmp`` a buffer of the same shape): the values of _interp_rows, transposed."""
    n_grid = len(_PI_GRID) - 1
    f = np.clip(pi * n_grid, 0.0, float(n_grid))
    i = np.minimum(f.astype(np.int64), n_grid - 1)
    np.take(lo_tab, i, axis=1, out=out, mode="clip")
    np.take(d_tab, i, axis=1, out=tmp, mode="clip")
    f -= i
    tmp *= f
    out += tmp
    return out


_SPLIT_TABLES: dict = {}


def _split_table(tab2: np.ndarray):
    """The left values and the differences of an _interp_table as contiguous (n, grid
    interval) arrays (kept per table: the tables are cached, so their ids are stable)."""
    got = _SPLIT_TABLES.get(id(tab2))
    if got is None or got[0] is not tab2:
        got = (tab2, np.ascontiguousarray(tab2[:, 0].T), np.ascontiguousarray(tab2[:, 1].T))
        _SPLIT_TABLES[id(tab2)] = got
    return got[1], got[2]


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
