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

import math
from functools import lru_cache

import numpy as np

from planner.accuracy import special

K_EXACT = 32
# Few expected votes / answers: beyond K_EXACT, where the expected number of race votes
# (majority) or answers (best-of-k) lambda = k s is below LAMBDA_POISSON, the count is
# taken as Poisson(lambda) and the accuracy read from a precomputed (lambda, pi) table;
# above it the Edgeworth (majority) / delta-method (best-of-k) expansions apply.
LAMBDA_POISSON = 30.0
_LAM_STEP = 0.125
_LAM_GRID = np.arange(0.0, LAMBDA_POISSON + 2 * _LAM_STEP, _LAM_STEP)
_N_POISSON = 96
STRATEGIES = ("pass@k", "verify", "majority", "best-of-k", "single")


def _w(p, w):
    p = np.asarray(p, float)
    return (1.0 - p) if w is None else np.asarray(w, float)


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


def auc_from_dprime(dprime) -> np.ndarray:
    return special.ndtr(np.asarray(dprime, float) / np.sqrt(2.0))


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


def small_k_values(kind: str, rho: float, s, pi, need) -> np.ndarray:
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
    of subnormal numbers). Nodes go in chunks of _CHUNK_NODES (temporaries stay in cache)."""
    need = tuple(int(k) for k in np.atleast_1d(need))
    K = max(need)
    s = np.clip(np.asarray(s, float).ravel(), 0.0, 1.0)
    pi = np.asarray(pi, float).ravel()
    tab2 = _interp_table(kind, float(rho), K)
    C_all = _binomials(need, K)
    r = 1.0 - s
    near_one = r < _S_ONE
    x = s / np.where(near_one, 1.0, r)
    with np.errstate(divide="ignore"):
        lr = np.log(r)
    out = np.empty((len(need), s.size))
    for j, k in enumerate(need):                                     # (1-s)^k
        out[j] = np.exp(k * lr) if k else 1.0
    if kind == "majority" and K >= 1:
        # H[2m] = H[2m-1] (_majority_inner): sum_n C(k, n) x^n H[n] =
        # sum_m x^(2m-1) H[2m-1] (C(k, 2m-1) + C(k, 2m) x), half the columns
        tab_odd = _odd_table(K)
        C2 = _majority_binomials(need, K)
        nk = len(need)
        for start in range(0, s.size, _CHUNK_NODES):
            sl = slice(start, start + _CHUNK_NODES)
            xs = x[sl]
            H = _interp_rows(tab_odd, pi[sl])                        # (m, ceil(K/2))
            H *= _powers(xs * xs, H.shape[1] - 1)
            H *= xs[:, None]
            R = H @ C2
            out[:, sl] *= (R[:, :nk] + xs[:, None] * R[:, nk:]).T
    else:
        for start in range(0, s.size, _CHUNK_NODES):
            sl = slice(start, start + _CHUNK_NODES)
            H = _interp_rows(tab2, pi[sl])                           # (m, K+1)
            H *= _powers(x[sl], K)
            out[:, sl] *= (H @ C_all).T
    if near_one.any():
        j = np.flatnonzero(near_one)
        Hn = _inner_interp_rows(kind, float(rho), pi[j], K)
        sj, rj = s[j], r[j]
        for m, k in enumerate(need):
            out[m, j] = sj ** k * Hn[:, k] + (k * sj ** (k - 1) * rj * Hn[:, k - 1] if k else 0.0)
    return out


@lru_cache(maxsize=64)
def _poisson_table(kind: str, rho: float) -> np.ndarray:
    """T[i, j] = sum_n Pois(n; lambda_i) H(n; pi_j): accuracy when the number of votes
    (answers) is Poisson(lambda) and each is correct with probability pi (cached)."""
    H = _inner_on_grid(kind, float(rho), _N_POISSON)                 # (N+1, P)
    n = np.arange(_N_POISSON + 1, dtype=float)[:, None]
    lam = _LAM_GRID[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        logpmf = n * np.log(lam) - lam - special.gammaln(n + 1)
    pmf = np.where(lam > 0, np.exp(logpmf), (n == 0).astype(float))  # (N+1, L)
    return pmf.T @ H                                                  # (L, P)


def _poisson_lookup(table: np.ndarray, lam, pi) -> np.ndarray:
    """Bilinear interpolation of a (lambda, pi) table; lam < LAMBDA_POISSON."""
    lam = np.asarray(lam)
    pi = np.asarray(pi)
    fl = np.clip(lam / _LAM_STEP, 0.0, len(_LAM_GRID) - 1.001)
    il = fl.astype(np.int64)
    dl = fl - il
    fp = np.clip(pi * (len(_PI_GRID) - 1), 0.0, len(_PI_GRID) - 1.001)
    ip = fp.astype(np.int64)
    dp = fp - ip
    t00 = table[il, ip]
    t01 = table[il, ip + 1]
    t10 = table[il + 1, ip]
    t11 = table[il + 1, ip + 1]
    return (t00 * (1 - dp) + t01 * dp) * (1 - dl) + (t10 * (1 - dp) + t11 * dp) * dl


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


def majority(p, k, eta, w=None) -> np.ndarray:
    """Majority-vote accuracy per problem (see module doc)."""
    p = np.asarray(p, float)
    w = _w(p, w)
    p, w, k, eta = np.broadcast_arrays(p, w, np.asarray(k), np.asarray(eta, float))
    shape = p.shape
    p, w, k, eta = (x.ravel() for x in (p, w, k, eta))
    out = np.empty(p.shape, float)
    small = k <= K_EXACT
    if np.any(small):
        kk = k[small].astype(int)
        tab = majority_table(p[small], w[small], eta[small], int(kk.max()))
        out[small] = tab[kk, np.arange(kk.size)]
    if np.any(~small):
        out[~small] = _majority_normal(p[~small], eta[~small] * w[~small], k[~small].astype(float))
    return out.reshape(shape)


def majority_limit(p, eta, w=None) -> np.ndarray:
    p = np.asarray(p, float)
    t = np.asarray(eta, float) * _w(p, w)
    return np.where(p > t, 1.0, np.where((p == t) & (p > 0), 0.5, 0.0))


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
    c1 = np.clip(np.where(ok, rho * p * w * (1.0 - rho) / D1s ** 3, 0.0), -1e30, 1e30)
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


def best_of_k(p, k, auc, w=None) -> np.ndarray:
    """Best-of-k with a reward model of ranking accuracy ``auc`` (see module doc)."""
    p = np.asarray(p, float)
    w = _w(p, w)
    p, w, k, auc = np.broadcast_arrays(p, w, np.asarray(k), np.asarray(auc, float))
    shape = p.shape
    p, w, k, auc = (x.ravel() for x in (p, w, k, auc))
    out = np.empty(p.shape, float)
    small = k <= K_EXACT
    if np.any(small):
        kk = k[small].astype(int)
        tab = best_of_k_table(p[small], w[small], auc[small], int(kk.max()))
        out[small] = tab[kk, np.arange(kk.size)]
    big = np.flatnonzero(~small)
    for v in np.unique(auc[big]):
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
