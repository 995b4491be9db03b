"""The vectorized accuracy API the search calls.

    predict(profile, strategy, samples, gen_len=None, *, weight_dtype="bf16",
            act_dtype=None, kv_dtype="bf16", kv_budget=0, verifier_completeness=None,
            verifier_soundness=None, majority_top_wrong_share=None, reward_auc=None)
        -> np.ndarray of accuracies in [0, 1], the broadcast shape of the array arguments.

How one configuration is evaluated (all steps are array expressions):
1. The profile's difficulty model gives quadrature nodes x_j (success probability at the
   reference budget) and weights w_j (quadrature.py).
2. Penalties move each node: quantization in logit (penalties.py), sparse attention by a
   quality factor and longer traces; the thinking budget L scales p_j by the share of
   traces that finish, relative to the reference budget (budget.py). This gives, per
   node, the probability of a correct answer p and of a wrong answer w (the rest of the
   samples are truncated and give no answer).
3. The strategy maps (p, w, k) to the problem's accuracy (strategies.py) and the
   weights take the expectation over problems.
Step 2 depends only on (gen_len, kv_budget, dtypes), and only through (u, log q, delta)
(combination_parameters), so it runs once per distinct triple; step 3 runs once per
distinct (combination, k, strategy parameters), in chunks. Majority and best-of-k for
k <= 32 are exact binomial sums (strategies.small_k_values: one matrix product per block
of nodes, double precision); beyond, Poisson tables and the Edgeworth / delta-method
expansions; beyond 2000 distinct combinations interpolation between them, see
_interpolated_rows. Timings (2 shared cores, one BLAS thread) for 1e5 configurations =
10 k x 100 gen_len x 100 kv_budget (1e4 distinct combinations): single, pass@k, verify
50-85 ms; best-of-k ~0.2 s and majority ~0.3 s. The search's block (6 k x 6 gen_len x
4 quantizations x 2 KV dtypes x 6 kv_budget): pass@k, verify ~2 ms, best-of-k ~7 ms,
majority ~14 ms (benchmarks/accuracy_speed.py); the first call in a process also builds
the cached strategy tables (~30 ms each).
"""

from __future__ import annotations

import numpy as np

from planner.accuracy import penalties as P
from planner.accuracy import special
from planner.accuracy import strategies as S
from planner.accuracy.quadrature import split_at
from planner.errors import InputError

_CHUNK = 8192
_STRATEGY_ALIASES = {
    "pass@k": "pass@k", "passk": "pass@k", "pass_at_k": "pass@k", "coverage": "pass@k",
    "verify": "verify", "verifier": "verify",
    "majority": "majority", "vote": "majority", "majority-vote": "majority", "maj": "majority",
    "best-of-k": "best-of-k", "best_of_k": "best-of-k", "bon": "best-of-k", "best-of-n": "best-of-k",
    "single": "single", "pass@1": "single",
}


def normalize_strategy(strategy: str) -> str:
    key = str(strategy).strip().lower()
    if key not in _STRATEGY_ALIASES:
        raise InputError(f"unknown strategy (choose from {', '.join(S.STRATEGIES)})", field="strategy",
                         value=strategy)
    return _STRATEGY_ALIASES[key]


def _unit_interval(x, field: str, open_upper: bool = False) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    bad = ~np.isfinite(arr) | (arr < 0) | ((arr >= 1) if open_upper else (arr > 1))
    if np.any(bad):
        raise InputError("must lie in [0, 1" + (")" if open_upper else "]"), field=field,
                         value=float(arr[bad].ravel()[0]))
    return arr


def combination_parameters(profile, gen_len, kv_budget, wcodes, acodes, kvcodes):
    """What a (gen_len, kv_budget, dtypes) combination does to every problem, as three
    arrays over combinations: u = ln(gen_len) - (sparse log-median shift of the traces),
    log_q (sparse quality factor) and the quantization logit penalty."""
    spec = profile.spec
    L = np.asarray(gen_len, float)
    shift, _extra, log_q = P.sparse_effect(np.asarray(kv_budget, float), L, profile.trace.median_tokens)
    delta = P.quant_logit_penalty(wcodes, acodes, kvcodes) * spec.quant_sensitivity
    with np.errstate(divide="ignore"):
        u = np.log(L) - shift
    return u, np.asarray(log_q, float), np.broadcast_to(np.asarray(delta, float), u.shape)


def node_probabilities(profile, u, log_q, delta, nodes=None):
    """Per-node (p, w) for combinations given by combination_parameters: (U,) arrays ->
    two (U, G) arrays, the probability that a sample is correct and that it gives a wrong
    answer (the rest are truncated: no answer)."""
    spec = profile.spec
    trace = profile.trace
    x = profile.grid().nodes if nodes is None else np.asarray(nodes, float)
    if x.ndim == 1:
        x = x[None, :]
    delta = np.asarray(delta, float)[:, None]
    # quantization: expit(logit(x) - delta) = x / (x + (1 - x) e^delta)
    xq = np.where(delta > 0, x / (x + (1.0 - x) * np.exp(delta)), x)
    z = (np.asarray(u, float)[:, None] - trace.log_median(x)) / trace.sigma
    r = special.ndtr(z) / np.maximum(trace.cdf(float(spec.reference_gen_len), x), 1e-300)
    p = np.minimum(1.0, xq * np.exp(np.asarray(log_q, float))[:, None] * r)
    answered = np.minimum(1.0, np.maximum(p, r))
    return p, answered - p


def effective_probabilities(profile, gen_len, kv_budget, wcodes, acodes, kvcodes, nodes=None):
    """Per-node (p, w) after penalties and the thinking budget.

    Inputs are 1-D arrays over U distinct combinations; returns two (U, G) arrays: the
    probability that a sample is correct and that it gives a wrong answer."""
    cp = combination_parameters(profile, gen_len, kv_budget, wcodes, acodes, kvcodes)
    return node_probabilities(profile, *cp, nodes=nodes)


def _broadcast_inputs(samples, gen_len, kv_budget, wcodes, acodes, kvcodes, params):
    arrays = [np.asarray(samples), np.asarray(gen_len), np.asarray(kv_budget), wcodes, acodes, kvcodes]
    arrays += [np.asarray(v) for v in params]
    shape = np.broadcast_shapes(*[a.shape for a in arrays])
    return shape, [np.broadcast_to(a, shape).ravel() for a in arrays]


def _combo_index(L, T, w, a, kv):
    """Index of each row's (gen_len, kv_budget, dtypes) combination, and the combos."""
    Li = np.rint(L).astype(np.int64)
    Ti = np.rint(T).astype(np.int64)
    if Li.max(initial=0) < (1 << 27) and Ti.max(initial=0) < (1 << 24):
        key = (((Li << 24) | Ti) << 12) | (w << 8) | (a << 4) | kv
        uniq, inv = np.unique(key, return_inverse=True)
        ukv = uniq & 15
        ua = (uniq >> 4) & 15
        uw = (uniq >> 8) & 15
        uT = (uniq >> 12) & ((1 << 24) - 1)
        uL = uniq >> 36
        return inv, uL, uT, uw, ua, ukv
    stacked = np.stack([Li, Ti, w, a, kv], axis=1)
    uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    return inv.ravel(), uniq[:, 0], uniq[:, 1], uniq[:, 2], uniq[:, 3], uniq[:, 4]


def _reduce_grid(nodes, weights, kmax):
    """Merge nodes where every strategy is linear in p to first order: p < 1e-4 / kmax
    (k p < 1e-4, so (1-p)^k = 1 - k p to 5e-9) and p > 1 - 1e-5. Each merged group keeps
    its mass and mean, so the result stays exact to first order. Returns (nodes, weights)."""
    lo = nodes < 1e-4 / max(kmax, 1.0)
    hi = nodes > 1.0 - 1e-5
    mid = ~(lo | hi)
    xs, ws = [nodes[mid]], [weights[mid]]
    for m in (lo, hi):
        if np.any(m):
            wm = weights[m].sum()
            xs.append(np.array([np.dot(nodes[m], weights[m]) / wm]))
            ws.append(np.array([wm]))
    return np.concatenate(xs), np.concatenate(ws)


def _row_keys(u_idx, k, params):
    """Distinct (combination, samples, strategy parameters) rows: index and inverse."""
    cols = [u_idx.astype(np.int64), k.astype(np.int64)]
    for prm in params:
        cols.append(np.unique(prm, return_inverse=True)[1].astype(np.int64))
    if k.max(initial=0) < (1 << 30) and u_idx.max(initial=0) < (1 << 20) and all(c.max(initial=0) < 64 for c in cols[2:]):
        key = (cols[0] << 30) | cols[1]
        for c in cols[2:]:
            key = (key << 6) | c
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        return first, inv.ravel()
    _, first, inv = np.unique(np.stack(cols, axis=1), axis=0, return_index=True, return_inverse=True)
    return first, inv.ravel()


def _small_k_tables(kind, p_tab, w_tab, weights, u_idx, k, param):
    """Exact majority / best-of-k expectations for rows with k <= K_EXACT."""
    vals, pinv = np.unique(param, return_inverse=True)
    pair_key = u_idx.astype(np.int64) * len(vals) + pinv.ravel()
    upairs, pair_inv = np.unique(pair_key, return_inverse=True)
    pu, pv = upairs // len(vals), vals[upairs % len(vals)]
    G = p_tab.shape[1]
    need = np.unique(k)
    exp_tab = np.empty((len(need), len(pu)))
    groups = [np.arange(len(pu))] if kind == "majority" else [np.flatnonzero(pv == v) for v in np.unique(pv)]
    for sel in groups:
        pp = p_tab[pu[sel]]
        if kind == "majority":     # eta may differ between pairs
            s, pi = S.race_shares(pp, pv[sel, None] * w_tab[pu[sel]])
            vals_ = S.small_k_values("majority", 0.0, s, pi, need)
        else:
            s, pi = S.race_shares(pp, w_tab[pu[sel]])
            vals_ = S.small_k_values("best-of-k", float(S.rho_from_auc(pv[sel[0]])), s, pi, need)
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


def _merge_tails(nodes, wts, n_base, x_split, kmax):
    """_reduce_grid for split grids (rows: split points x_split; the first n_base columns
    are the profile grid's nodes, shared by every row): per row, the grid nodes below
    1e-4 / kmax and above 1 - 1e-5 are merged into one node each, keeping mass and mean
    (majority is linear in x there to first order: error ~ k^2 x^2 < 1e-8 of the merged
    mass). A side is left alone where some row's split point lies in it (a jump there)."""
    base = nodes[0, :n_base]
    inner = (x_split > 0.0) & (x_split < 1.0)
    lo_thr, hi_thr = 1e-4 / max(kmax, 1.0), 1.0 - 1e-5
    keep = np.ones(nodes.shape[1], bool)
    new_n, new_w = [], []
    for side, blocked in ((base < lo_thr, np.any(inner & (x_split <= lo_thr))),
                          (base > hi_thr, np.any(inner & (x_split >= hi_thr)))):
        cols = np.flatnonzero(side)
        if blocked or len(cols) < 2:
            continue
        mass = wts[:, cols].sum(axis=1)
        mean = (wts[:, cols] * nodes[:, cols]).sum(axis=1) / np.where(mass > 0, mass, 1.0)
        keep[cols] = False
        new_n.append(np.where(mass > 0, mean, base[cols[0]]))
        new_w.append(mass)
    if not new_n:
        return nodes, wts
    return (np.concatenate([nodes[:, keep], np.stack(new_n, axis=1)], axis=1),
            np.concatenate([wts[:, keep], np.stack(new_w, axis=1)], axis=1))


def _majority_rows(eff, grid, u, k, eta, roots=None):
    """Majority vote for distinct rows. In the limit of many samples a problem is won iff
    p > eta w, a jump in the problem's reference success x at a point x*; the quadrature
    cell containing x* is split there (quadrature.split_at), once per (combination, eta),
    so the jump and the steep finite-k transition around it are integrated accurately.
    x* (the first x with p > eta w) comes from _majority_roots (closed form or Newton,
    checked) or else a search (_split_points); the split grids' tails are merged
    (_merge_tails), and k <= K_EXACT is summed exactly (strategies.small_k_values)."""
    vals, pinv = np.unique(eta, return_inverse=True)
    key = u.astype(np.int64) * len(vals) + pinv.ravel()
    upairs, pair_of_row = np.unique(key, return_inverse=True)
    pair_of_row = pair_of_row.ravel()
    pu = upairs // len(vals)
    pe = vals[upairs % len(vals)]

    x_star = _split_points(eff, pu, pe, roots)
    xs_u, xs_inv = np.unique(np.round(x_star, 12), return_inverse=True)
    nodes_u, wts_u = split_at(grid, xs_u)
    nodes_u, wts_u = _merge_tails(nodes_u, wts_u, len(grid.nodes), xs_u, float(k.max()))
    nodes, wts = nodes_u[xs_inv.ravel()], wts_u[xs_inv.ravel()]
    p_tab, w_tab = eff(nodes, pu)
    out = np.empty(len(k))
    small = k <= S.K_EXACT
    if np.any(small):
        G = nodes.shape[1]
        need = np.unique(k[small])
        s, pi = S.race_shares(p_tab, pe[:, None] * w_tab)
        sub = S.small_k_values("majority", 0.0, s, pi, need).reshape(len(need), len(pu), G)
        exp_tab = np.einsum("kpg,pg->kp", sub, wts)
        out[small] = exp_tab[np.searchsorted(need, k[small]), pair_of_row[small]]
    big = np.flatnonzero(~small)
    if len(big):
        t_tab = pe[:, None] * w_tab
        for lo_ in range(0, len(big), _CHUNK):
            rows = big[lo_:lo_ + _CHUNK]
            pr = pair_of_row[rows]
            vals_ = S.majority_large_k(p_tab[pr], t_tab[pr], k[rows, None])
            out[rows] = np.einsum("rg,rg->r", vals_, wts[pr])
    return out


def _evaluate_rows(strat, p_tab, w_tab, weights, u, k, c, s, eta, auc):
    """Accuracy for distinct rows (u, k, params); the heavy per-node work in float32."""
    n = len(k)
    out = np.empty(n)
    if strat == "single":
        return (p_tab @ weights)[u]
    scalar = all(v.min() == v.max() for v in (c, s, eta, auc))
    w32 = weights.astype(np.float32)
    if strat in ("pass@k", "verify") and scalar:
        l_tab, amp, _ = _per_node_tables(strat, p_tab, w_tab, float(c[0]), float(s[0]), None)
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
    small = k <= S.K_EXACT
    if np.any(small):
        out[small] = _small_k_tables(strat, p_tab, w_tab, weights, u[small], k[small], param[small])
    big = np.flatnonzero(~small)
    if len(big):
        vals, pinv = np.unique(param[big], return_inverse=True)
        pinv = pinv.ravel()
        coeffs = []
        for v in vals:
            cf = S.best_of_k_coeffs(p_tab, w_tab, float(S.rho_from_auc(v)))
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
                v = S.best_of_k_from_coeffs(cf, kk[sel])
                res[sel] = v.astype(np.float64) @ weights
            out[rows] = res
    return out


def predict(profile, strategy: str, samples, gen_len=None, *, weight_dtype="bf16", act_dtype=None,
            kv_dtype="bf16", kv_budget=0, verifier_completeness=None, verifier_soundness=None,
            majority_top_wrong_share=None, reward_auc=None) -> np.ndarray:
    """Expected accuracy for every configuration; see the module docstring.

    profile: a Profile, a TaskProfile, "model/task" or a YAML path.
    strategy: "pass@k" | "verify" | "majority" | "best-of-k" | "single".
    samples (k >= 1), gen_len (tokens, default: the profile's reference budget), kv_budget
    (KV tokens kept by block top-k sparse attention, 0 = dense), dtypes (strings or arrays
    of strings) and the strategy parameters broadcast together. Strategy parameters left
    as None take the profile's defaults."""
    from planner.accuracy.profile import load_profile

    prof = load_profile(profile)
    spec = prof.spec
    strat = normalize_strategy(strategy)
    d = spec.defaults
    c = d.verifier_completeness if verifier_completeness is None else verifier_completeness
    s = d.verifier_soundness if verifier_soundness is None else verifier_soundness
    eta = d.majority_top_wrong_share if majority_top_wrong_share is None else majority_top_wrong_share
    auc = d.reward_auc if reward_auc is None else reward_auc
    c = _unit_interval(c, "verifier_completeness")
    s = _unit_interval(s, "verifier_soundness")
    eta = _unit_interval(eta, "majority_top_wrong_share")
    auc = _unit_interval(auc, "reward_auc", open_upper=True)
    if gen_len is None:
        gen_len = spec.reference_gen_len
    wcodes = P.dtype_codes(weight_dtype, "weight_dtype")
    acodes = P.default_act_codes(wcodes) if act_dtype is None else P.dtype_codes(act_dtype, "act_dtype")
    kvcodes = P.dtype_codes(kv_dtype, "kv_dtype")
    varying = [np.ndim(v) > 0 for v in (c, s, eta, auc)]
    shape, (k, L, T, w, a, kv, c, s, eta, auc) = _broadcast_inputs(
        samples, gen_len, kv_budget, wcodes, acodes, kvcodes, (c, s, eta, auc))
    if k.size == 0:
        return np.zeros(shape)
    k = np.asarray(k, dtype=float)
    if np.any(~np.isfinite(k)) or np.any(k < 1):
        raise InputError("samples must be >= 1", field="samples", value=float(k[~(k >= 1)][0]))
    k = np.rint(k)
    L = L.astype(float)
    if np.any(~np.isfinite(L)) or np.any(L <= 0):
        raise InputError("gen_len must be > 0 tokens", field="gen_len", value=float(L[~(L > 0)][0]))
    T = T.astype(float)
    if np.any(~np.isfinite(T)) or np.any(T < 0):
        raise InputError("kv_budget must be >= 0 tokens (0 = dense)", field="kv_budget",
                         value=float(T[~(T >= 0)][0]))

    u_idx, uL, uT, uw, ua, ukv = _combo_index(L, T, w.astype(np.int64), a.astype(np.int64), kv.astype(np.int64))
    grid = prof.grid()
    nodes, weights = _reduce_grid(grid.nodes, grid.weights, float(k.max()))
    cu, clq, cdl = combination_parameters(prof, uL, uT, uw, ua, ukv)
    # combinations act only through (u, log q, delta): merge those that coincide (e.g. KV
    # budgets at or above the generation length, dtype mixes with the same penalty)
    order = np.lexsort((cdl, clq, cu))
    new = np.ones(len(cu), bool)
    new[1:] = (np.diff(cu[order]) != 0) | (np.diff(clq[order]) != 0) | (np.diff(cdl[order]) != 0)
    if not new.all():
        cinv = np.empty(len(cu), np.int64)
        cinv[order] = np.cumsum(new) - 1
        cfirst = order[new]
        cu, clq, cdl = cu[cfirst], clq[cfirst], cdl[cfirst]
        u_idx = cinv[u_idx]
    first, inv = _row_keys(u_idx, k, [v for v, var in zip((c, s, eta, auc), varying) if var])

    def evaluate(cu, clq, cdl, rc, rk, rparams):
        """Exact accuracies of rows (combination index rc into (cu, clq, cdl), k, params)."""
        rc_, rs_, reta, rauc = rparams
        if strat == "majority":
            def eff(x2d, sub):
                return node_probabilities(prof, cu[sub], clq[sub], cdl[sub], nodes=x2d)

            def roots(sub, eta_):
                return _majority_roots(prof, cu[sub], clq[sub], cdl[sub], eta_)

            return _majority_rows(eff, grid, rc, rk, reta, roots)
        p_tab, w_tab = node_probabilities(prof, cu, clq, cdl, nodes=nodes)
        return _evaluate_rows(strat, p_tab, w_tab, weights, rc, rk, rc_, rs_, reta, rauc)

    rparams = (c[first], s[first], eta[first], auc[first])
    if strat in ("majority", "best-of-k") and len(cu) > _INTERP_MIN_COMBOS:
        vals = _interpolated_rows(evaluate, prof, cu, clq, cdl, u_idx[first], k[first], rparams)
    else:
        vals = evaluate(cu, clq, cdl, u_idx[first], k[first], rparams)
    return np.clip(vals[inv], 0.0, 1.0).reshape(shape)


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


def explain(profile, strategy: str, samples: int, gen_len=None, **kwargs) -> dict:
    """One configuration in detail (for `planner accuracy`): the accuracy, the inputs as
    used, and the intermediate quantities that explain it."""
    from planner.accuracy.profile import load_profile

    prof = load_profile(profile)
    spec = prof.spec
    strat = normalize_strategy(strategy)
    L = spec.reference_gen_len if gen_len is None else gen_len
    acc = float(predict(prof, strat, samples, L, **kwargs))
    single = float(predict(prof, "single", 1, L, **{k: v for k, v in kwargs.items()
                                                    if k in ("weight_dtype", "act_dtype", "kv_dtype", "kv_budget")}))
    grid = prof.grid()
    d = spec.defaults
    def _param(name):
        v = kwargs.get(name)
        return getattr(d, name) if v is None else v

    relevant = {"verify": ("verifier_completeness", "verifier_soundness"),
                "majority": ("majority_top_wrong_share",), "best-of-k": ("reward_auc",)}.get(strat, ())
    params = {name: _param(name) for name in relevant}
    wd = kwargs.get("weight_dtype", "bf16")
    wcode = P.dtype_codes(wd, "weight_dtype")
    ad = kwargs.get("act_dtype")
    acode = P.default_act_codes(np.asarray(wcode)) if ad is None else P.dtype_codes(ad, "act_dtype")
    kvcode = P.dtype_codes(kwargs.get("kv_dtype", "bf16"), "kv_dtype")
    penalty = float(P.quant_logit_penalty(wcode, acode, kvcode)) * spec.quant_sensitivity
    shift, extra, log_q = P.sparse_effect(kwargs.get("kv_budget", 0), L, prof.trace.median_tokens)
    finish = float(prof.trace.cdf(float(L), grid.nodes, float(shift), float(extra)) @ grid.weights)
    finish_ref = prof.trace.mean_finish(float(spec.reference_gen_len), grid.nodes, grid.weights)
    return {
        "accuracy": acc,
        "single_sample_accuracy": single,
        "reference_pass_at_1": spec.pass_at_1,
        "reference_gen_len": spec.reference_gen_len,
        "finished_traces": finish,
        "finished_traces_at_reference": finish_ref,
        "quant_logit_penalty": penalty,
        "sparse_length_factor": float(np.exp(shift)),
        "sparse_quality_factor": float(np.exp(log_q)),
        "strategy_params": params,
    }
