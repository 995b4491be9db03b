"""The heavy evaluation paths behind predict (predict.py): accuracies of distinct rows
(combination, samples, strategy parameters) from per-node probabilities, in chunks and
single precision (_evaluate_rows, _small_k_tables), pass@k / verify over a grid of k by
products along the sorted k in double precision (_miss_table); the majority vote's split points x*
(_majority_roots in closed form / by Newton's method, else _split_points by search); and,
for large sweeps of majority / best-of-k, interpolation between combinations
(_interpolated_rows).
"""

from __future__ import annotations

import numpy as np

from planner.accuracy import special
from planner.accuracy import strategies as S
from planner.accuracy import strategy_large_k as SL
from planner.accuracy import strategy_tables as ST

_CHUNK = 8192


def _small_k_tables(kind, p_tab, w_tab, weights, u_idx, k, param):
    """Exact majority / best-of-k expectations for rows with k <= K_EXACT."""
    vals, pinv = np.unique(param, return_inverse=True)
    pair_key = u_idx.astype(np.int64) * len(vals) + pinv.ravel()
    upairs, pair_inv = np.unique(pair_key, return_inverse=True)
    pu, pv = upairs // len(vals), vals[upairs % len(vals)]
    G = p_tab.shape[1]
    need = special.unique_sorted(k)
    exp_tab = np.empty((len(need), len(pu)))
    groups = [np.arange(len(pu))] if kind == "majority" else [np.flatnonzero(pv == v) for v in special.unique_sorted(pv)]
    for sel in groups:
        pp = p_tab[pu[sel]]
        if kind == "majority":     # eta may differ between pairs
            s, pi = ST.race_shares(pp, pv[sel, None] * w_tab[pu[sel]])
            vals_ = ST.small_k_values("majority", 0.0, s, pi, need)
        else:
            s, pi = ST.race_shares(pp, w_tab[pu[sel]])
            vals_ = ST.small_k_values("best-of-k", float(ST.rho_from_auc(pv[sel[0]])), s, pi, need)
        exp_tab[:, sel] = vals_.reshape(len(need), len(sel), G) @ weights
    return exp_tab[np.searchsorted(need, k), pair_inv.ravel()]


def _per_node_tables(strat, p_tab, w_tab, c, s, param):
    """For a strategy evaluated per row as sum_j A_j * (B_j - exp(k * l_j)) (or similar),
    the k-independent parts per combination. Scalar strategy parameters only."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if strat == "pass@k":
            return np.log1p(-np.minimum(p_tab, 1.0)), None, None
        if strat == "verify":
            q = c * p_tab + (1.0 - s) * w_tab
            amp = np.where(q > 0, c * p_tab / np.where(q > 0, q, 1.0), 0.0)
            return np.log1p(-np.minimum(q, 1.0)), amp, None
    raise ValueError(strat)


_SEARCH_POINTS = 15    # trial points per step of the x* search (a 16-fold narrowing)
_SEARCH_STEPS = 13     # 16^-13 = 2^-52, as 52 bisection steps


def _majority_roots(prof, u, log_q, delta, eta):
    """Candidates for x*, the first x with p > eta w, per pair (checked by _split_points).

    Where the budget's traces finish less often than the reference budget's
    (u < ln L_ref) every problem's finishing ratio r < 1, so the answered share is r,
    p = xq q r and p > eta w  <=>  xq q (1 + eta) > eta (r > 0), with xq the quantized x,
    increasing: x* = expit(logit(eta / ((1 + eta) q)) + delta), or 1 (never) where that
    ratio is >= 1. Elsewhere r >= 1, everything answers and p > eta w  <=>
    xq q r > eta / (1 + eta); r(x) = Phi(z) / Phi(z_ref) is smooth, so Newton's method on
    the log from the first formula's x (an upper bound: r >= 1) finds it; NaN where it
    does not settle (searched numerically)."""
    trace = prof.trace
    lref = np.log(float(prof.spec.reference_gen_len))
    c = eta / ((1.0 + eta) * np.exp(log_q))
    with np.errstate(divide="ignore"):
        x = special.expit(special.logit(np.minimum(c, 1.0)) + delta)
    x = np.where(c >= 1.0, 1.0, x)
    out = np.where((u < lref) | (c <= 0.0), x, np.nan)      # eta = 0: x* = 0 everywhere
    b = np.flatnonzero((u >= lref) & (c < 1.0) & (c > 0.0))
    if len(b):
        E = np.exp(delta[b])
        lc = np.log(c[b])
        ub = u[b]
        slope = trace.difficulty_slope / trace.sigma
        xn = x[b]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for _ in range(8):
                m = trace.log_median(xn)
                z = (ub - m) / trace.sigma
                zr = (lref - m) / trace.sigma
                Fz, Fr = special.ndtr(z), special.ndtr(zr)
                lxq = np.log(xn) - np.log(xn + (1.0 - xn) * E)
                g = lxq + np.log(Fz) - np.log(Fr) - lc
                mills = (np.exp(-0.5 * z * z) / Fz - np.exp(-0.5 * zr * zr) / Fr) * 0.3989422804014327
                dg = E / (xn * (xn + (1.0 - xn) * E)) - slope * mills
                xn = np.clip(xn - g / dg, 0.5 * xn, np.minimum(1.0, 2.0 * xn))
        out[b] = np.where(np.isfinite(xn) & (np.abs(g) < 1e-12), xn, np.nan)
    return out


def _split_points(eff, pu, pe, roots=None):
    """x* per (combination pu, eta pe): the first x with p > eta w (1 where none), from
    the closed form (roots, checked) where it applies, else searched: _SEARCH_STEPS times
    the bracket is cut at _SEARCH_POINTS points at once."""
    def h(x, sel):
        p, w = eff(x, pu[sel])
        return (1.0 + pe[sel, None]) * p - pe[sel, None] * (p + w)

    n = len(pu)
    x_star = np.full(n, np.nan)
    if roots is not None:
        # closed form where it applies, checked: h > 0 just above x* (r > 0 there)
        xa = roots(pu, pe)
        cand = np.flatnonzero(np.isfinite(xa))
        if len(cand):
            xa = xa[cand]
            up = np.minimum(1.0, xa + np.maximum(1e-13, 1e-12 * xa))
            down = np.maximum(0.0, xa - np.maximum(1e-13, 1e-12 * xa))
            hv = h(np.stack([up, down], axis=1), cand)
            good = (xa >= 1.0) | ((hv[:, 0] > 0) & ((hv[:, 1] <= 0) | (xa <= 0.0)))
            x_star[cand[good]] = xa[good]
    todo = np.flatnonzero(np.isnan(x_star))
    if len(todo):
        m = len(todo)
        rows = np.arange(m)
        lo = np.zeros(m)
        hi = np.ones(m)
        ok = h(hi[:, None], todo)[:, 0] > 0
        frac = np.arange(1, _SEARCH_POINTS + 1) / (_SEARCH_POINTS + 1)
        for _ in range(_SEARCH_STEPS):
            pts = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
            pos = h(pts, todo) > 0
            first = np.argmax(pos, axis=1)
            found = pos[rows, first]
            new_hi = np.where(found, pts[rows, first], hi)
            lo = np.where(found, np.where(first > 0, pts[rows, first - 1], lo), pts[:, -1])
            hi = new_hi
        x_star[todo] = np.where(ok, hi, 1.0)
    return x_star


_CHUNK_COMBOS = 64


def _miss_table(l_tab, ks, aw):
    """M[i, c] = sum_j aw[c, j] exp(ks[i] l_tab[c, j]) for sorted distinct k (float64):
    sum_j aw_j (1 - p_j)^k for every k of a grid at once (pass@k, verify), the rows of a
    call covering most (combination, k) pairs. Powers by multiplication along the sorted
    k: (1-p)^k_i = (1-p)^k_(i-1) (1-p)^d, d = k_i - k_(i-1), the step reused while d
    repeats and a squaring where k doubles; one exp per node only where d changes
    otherwise (relative error ~ (number of products) eps, against float32 exps per row).
    Where the trace-length problem effect multiplies the columns six-fold this keeps a
    1e5-configuration sweep near its former cost. Combinations in chunks of _CHUNK_COMBOS."""
    aw = np.broadcast_to(aw, l_tab.shape)
    out = np.empty((len(ks), l_tab.shape[0]))
    for lo in range(0, l_tab.shape[0], _CHUNK_COMBOS):
        sl = slice(lo, lo + _CHUNK_COMBOS)
        lt, a = l_tab[sl], aw[sl]
        with np.errstate(invalid="ignore"):
            P = np.exp(ks[0] * lt)
        out[0, sl] = np.einsum("cj,cj->c", P, a)
        d_prev, step = None, None
        for i in range(1, len(ks)):
            d = ks[i] - ks[i - 1]
            if d == ks[i - 1]:
                np.multiply(P, P, out=P)
            else:
                if d != d_prev:
                    step = np.exp(d * lt)
                    d_prev = d
                np.multiply(P, step, out=P)
            P[P < 1e-250] = 0.0                                      # no subnormal products
            out[i, sl] = np.einsum("cj,cj->c", P, a)
    return out


def _evaluate_rows(strat, p_tab, w_tab, weights, u, k, c, s, eta, auc):
    """Accuracy for distinct rows (u, k, params); the heavy per-node work in float32."""
    n = len(k)
    out = np.empty(n)
    if strat == "single":
        return (p_tab @ weights)[u]
    scalar = all(v.min() == v.max() for v in (c, s, eta, auc))
    if strat in ("pass@k", "verify") and scalar:
        l_tab, amp, _ = _per_node_tables(strat, p_tab, w_tab, float(c[0]), float(s[0]), None)
        ks, kinv = np.unique(k, return_inverse=True)
        if len(ks) > 1 and len(ks) * l_tab.shape[0] <= 2 * n:
            aw = weights if strat == "pass@k" else amp * weights
            miss = _miss_table(l_tab, ks, aw)                    # (len(ks), combinations)
            base = 1.0 if strat == "pass@k" else aw.sum(axis=1)[u]
            return base - miss[kinv.ravel(), u]
        l32 = l_tab.astype(np.float32)
        if strat == "verify":
            aw = (amp * weights).astype(np.float32)
        for lo in range(0, n, _CHUNK):
            sl = slice(lo, lo + _CHUNK)
            miss = np.exp(k[sl, None].astype(np.float32) * l32[u[sl]])
            if strat == "pass@k":
                out[sl] = 1.0 - miss.astype(np.float64) @ weights
            else:
                out[sl] = (aw[u[sl]] * (1.0 - miss)).sum(axis=1, dtype=np.float64)
        return out
    if strat in ("pass@k", "verify"):
        for lo in range(0, n, _CHUNK):
            sl = slice(lo, lo + _CHUNK)
            pv, wv = p_tab[u[sl]], w_tab[u[sl]]
            if strat == "pass@k":
                vals = S.pass_at_k(pv, k[sl, None])
            else:
                vals = S.verify(pv, k[sl, None], c[sl, None], s[sl, None], wv)
            out[sl] = vals @ weights
        return out
    param = auc
    small = k <= ST.K_EXACT
    if np.any(small):
        out[small] = _small_k_tables(strat, p_tab, w_tab, weights, u[small], k[small], param[small])
    big = np.flatnonzero(~small)
    if len(big):
        vals, pinv = np.unique(param[big], return_inverse=True)
        pinv = pinv.ravel()
        coeffs = []
        for v in vals:
            cf = SL.best_of_k_coeffs(p_tab, w_tab, float(ST.rho_from_auc(v)))
            coeffs.append(([np.asarray(x).astype(np.float32) for x in cf[:5]], cf[5]))
        for lo in range(0, len(big), _CHUNK):
            rows = big[lo:lo + _CHUNK]
            kk = k[rows, None].astype(np.float32)
            res = np.empty(len(rows))
            for j in range(len(vals)):
                sel = pinv[lo:lo + _CHUNK] == j
                if not np.any(sel):
                    continue
                arrs, rho = coeffs[j]
                cf = [x[u[rows[sel]]] for x in arrs] + [rho]
                v = SL.best_of_k_from_coeffs(cf, kk[sel])
                res[sel] = v.astype(np.float64) @ weights
            out[rows] = res
    return out


# ---------------------------------------------------------------------------------------
# Large sweeps of majority / best-of-k: interpolation between combinations
# ---------------------------------------------------------------------------------------
# A combination acts on every problem only through (u, q, delta) (node_probabilities), and
# the accuracy is smooth in u = ln L - shift (log-normal trace lengths) and in q = e^log_q
# (p is linear in q). With many distinct combinations the exact evaluation runs on a
# regular (u, q) grid per quantization penalty and side of u = ln(reference budget), and
# is interpolated with cubic Lagrange stencils (exact for cubics); u is clamped where
# every problem's traces are all (or none) truncated, so the accuracy is flat there.
# Spacing 0.08 in u (8% in L, about sigma/6) and 0.04 in q. Only for calls with more than
# _INTERP_MIN_COMBOS distinct combinations and where the grid is at most half as large.
# Error against exact evaluation over random sweeps of all shipped profiles (k 1-1000,
# L 1K-40K, T 128-4096, bf16/fp8/int4): mean 1e-5, max 3.5e-3 (near the kink of
# p = min(1, ...) when L exceeds the reference budget); 3-9x faster.
_INTERP_MIN_COMBOS = 2000
_H_U = 0.08
_H_Q = 0.04


def _axis_grid(lo, hi, h):
    if not hi - lo > 1e-9:
        return np.array([lo])
    n = int(np.ceil((hi - lo) / h)) + 1
    return np.linspace(lo, hi, max(n, 4))


def _stencil(t, n):
    """Cubic Lagrange stencil on a uniform axis of n points at fractional positions t
    (0..n-1): indices (R, m) and weights (R, m), m = 4 (n >= 4), 2 or 1."""
    if n == 1:
        return np.zeros((t.size, 1), np.int64), np.ones((t.size, 1))
    if n < 4:
        i = np.clip(np.floor(t).astype(np.int64), 0, n - 2)
        d = t - i
        return np.stack([i, i + 1], 1), np.stack([1 - d, d], 1)
    i = np.clip(np.floor(t).astype(np.int64), 1, n - 3)
    d = t - i
    w = np.stack([-d * (d - 1) * (d - 2) / 6, (d + 1) * (d - 1) * (d - 2) / 2,
                  -(d + 1) * d * (d - 2) / 2, (d + 1) * d * (d - 1) / 6], 1)
    return np.stack([i - 1, i, i + 1, i + 2], 1), w


def _interpolated_rows(evaluate, prof, cu, clq, cdl, rc, rk, rparams):
    trace = prof.trace
    x = prof.grid().nodes
    lm = trace.log_median(x)
    u_lo = float(lm.min()) - 9.0 * trace.sigma                       # nothing finishes below
    u_hi = max(float(lm.max()) + 9.0 * trace.sigma, np.log(prof.spec.reference_gen_len))
    cuc = np.clip(cu, u_lo, u_hi)
    cq = np.exp(clq)
    out = np.empty(len(rc))
    # every problem's answered share has a kink at u = ln(reference budget) (beyond it all
    # samples answer), so the two sides are interpolated separately
    u_ref = float(np.log(prof.spec.reference_gen_len))
    side = (cuc > u_ref).astype(np.int64)
    dvals, dinv = np.unique(cdl, return_inverse=True)
    ginv = dinv.ravel() * 2 + side
    pcols = [np.unique(v, return_inverse=True)[1].ravel() for v in rparams]
    for gi in range(2 * len(dvals)):
        dv = dvals[gi // 2]
        rows = np.flatnonzero(ginv[rc] == gi)
        if not len(rows):
            continue
        combos = np.flatnonzero(ginv == gi)
        ulo, uhi = float(cuc[combos].min()), float(cuc[combos].max())
        if gi % 2:
            ulo = u_ref
        elif uhi > u_ref - 4 * _H_U:
            uhi = u_ref
        gu = _axis_grid(ulo, uhi, _H_U)
        gq = _axis_grid(float(cq[combos].min()), float(cq[combos].max()), _H_Q)
        if 2 * len(gu) * len(gq) >= len(combos):
            out[rows] = evaluate(cu, clq, cdl, rc[rows], rk[rows], tuple(v[rows] for v in rparams))
            continue
        # distinct (k, strategy parameters) among the group's rows
        key = np.stack([rk[rows].astype(np.int64)] + [pc[rows] for pc in pcols], 1)
        ukey, kfirst, kinv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        kinv = kinv.ravel()
        nkp, nu, nq = len(ukey), len(gu), len(gq)
        pu = np.repeat(gu, nq)
        pq = np.tile(gq, nu)
        npts = nu * nq
        prow_c = np.tile(np.arange(npts), nkp)
        prow_r = rows[kfirst][np.repeat(np.arange(nkp), npts)]
        vals = evaluate(pu, np.log(pq), np.full(npts, dv), prow_c, rk[prow_r],
                        tuple(v[prow_r] for v in rparams)).reshape(nkp, nu, nq)
        cr = rc[rows]
        tu = (cuc[cr] - gu[0]) / ((gu[-1] - gu[0]) / (nu - 1)) if nu > 1 else np.zeros(len(rows))
        tq = (cq[cr] - gq[0]) / ((gq[-1] - gq[0]) / (nq - 1)) if nq > 1 else np.zeros(len(rows))
        iu, wu = _stencil(tu, nu)
        iq, wq = _stencil(tq, nq)
        flat = vals.reshape(-1)
        base = kinv * (nu * nq)
        acc = np.zeros(len(rows))
        for a in range(iu.shape[1]):
            for b in range(iq.shape[1]):
                acc += wu[:, a] * wq[:, b] * flat[base + iu[:, a] * nq + iq[:, b]]
        out[rows] = acc
    return out
