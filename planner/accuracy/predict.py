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
Step 2 depends only on (gen_len, kv_budget, dtypes), so it runs once per distinct
combination; step 3 runs once per distinct (combination, k, strategy parameters), in
chunks and in single precision (1e5 distinct configurations of pass@k: 15-40 ms on one
core; majority and best-of-k also build exact tables for k <= 32).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from planner.accuracy import penalties as P
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


def effective_probabilities(profile, gen_len, kv_budget, wcodes, acodes, kvcodes, nodes=None):
    """Per-node (p, w) after penalties and the thinking budget.

    Inputs are 1-D arrays over U distinct combinations; returns two (U, G) arrays: the
    probability that a sample is correct and that it gives a wrong answer."""
    spec = profile.spec
    x = profile.grid().nodes if nodes is None else np.asarray(nodes, float)
    if x.ndim == 1:
        x = x[None, :]
    trace = profile.trace
    L = np.asarray(gen_len, float)[:, None]
    shift, extra, log_q = P.sparse_effect(np.asarray(kv_budget, float), np.asarray(gen_len, float),
                                          trace.median_tokens)
    delta = P.quant_logit_penalty(wcodes, acodes, kvcodes) * spec.quant_sensitivity
    with np.errstate(divide="ignore", over="ignore"):
        xq = np.where(delta[:, None] > 0, special.expit(special.logit(x) - delta[:, None]), x)
    r = trace.relative_finish(L, float(spec.reference_gen_len), x, shift[:, None], extra[:, None])
    p = np.minimum(1.0, xq * np.exp(log_q)[:, None] * r)
    answered = np.minimum(1.0, np.maximum(p, r))
    return p, answered - p


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
    pair_key = u_idx.astype(np.int64) * len(vals) + pinv
    upairs, pair_inv = np.unique(pair_key, return_inverse=True)
    pu, pv = upairs // len(vals), vals[upairs % len(vals)]
    K = int(k.max())
    G = p_tab.shape[1]
    pp = p_tab[pu].ravel()
    ww = w_tab[pu].ravel()
    prm = np.repeat(pv, G)
    need = np.unique(k)
    tab = (S.majority_table(pp, ww, prm, K, need) if kind == "majority"
           else S.best_of_k_table(pp, ww, prm, K, need))
    exp_tab = tab.reshape(K + 1, len(pu), G) @ weights          # (K+1, pairs)
    return exp_tab[k.astype(int), pair_inv.ravel()]


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


def _majority_rows(eff, grid, u, k, eta):
    """Majority vote for distinct rows. In the limit of many samples a problem is won iff
    p > eta w, a jump in the problem's reference success x at a point x*; the quadrature
    cell containing x* is split there (quadrature.split_at), once per (combination, eta),
    so the jump and the steep finite-k transition around it are integrated accurately."""
    vals, pinv = np.unique(eta, return_inverse=True)
    key = u.astype(np.int64) * len(vals) + pinv.ravel()
    upairs, pair_of_row = np.unique(key, return_inverse=True)
    pair_of_row = pair_of_row.ravel()
    pu = upairs // len(vals)
    pe = vals[upairs % len(vals)]

    def h(x):
        p, w = eff(x[:, None], pu)
        return ((1.0 + pe) * p[:, 0] - pe * (p[:, 0] + w[:, 0]))

    lo = np.zeros(len(pu))
    hi = np.ones(len(pu))
    ok = h(hi) > 0
    for _ in range(52):
        mid = 0.5 * (lo + hi)
        pos = h(mid) > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    x_star = np.where(ok, hi, 1.0)
    xs_u, xs_inv = np.unique(np.round(x_star, 12), return_inverse=True)
    nodes_u, wts_u = split_at(grid, xs_u)
    nodes, wts = nodes_u[xs_inv.ravel()], wts_u[xs_inv.ravel()]
    p_tab, w_tab = eff(nodes, pu)
    out = np.empty(len(k))
    small = k <= S.K_EXACT
    if np.any(small):
        K = int(k[small].max())
        G = nodes.shape[1]
        tab = S.majority_table(p_tab.ravel(), w_tab.ravel(), np.repeat(pe, G), K, need=np.unique(k[small]))
        exp_tab = np.einsum("kpg,pg->kp", tab.reshape(K + 1, len(pu), G), wts)
        out[small] = exp_tab[k[small].astype(int), pair_of_row[small]]
    big = np.flatnonzero(~small)
    if len(big):
        coeffs = [np.asarray(x) for x in S.majority_coeffs(p_tab, pe[:, None] * w_tab)]
        coeffs = [x.astype(np.float32) if x.dtype != bool else x for x in coeffs]
        w32 = wts.astype(np.float32)
        for lo_ in range(0, len(big), _CHUNK):
            rows = big[lo_:lo_ + _CHUNK]
            pr = pair_of_row[rows]
            vals_ = S.majority_from_coeffs([x[pr] for x in coeffs], k[rows, None].astype(np.float32))
            out[rows] = (vals_ * w32[pr]).sum(axis=1, dtype=np.float64)
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
    if strat != "majority":
        p_tab, w_tab = effective_probabilities(prof, uL, uT, uw, ua, ukv, nodes=nodes)
    first, inv = _row_keys(u_idx, k, [v for v, var in zip((c, s, eta, auc), varying) if var])
    if strat == "majority":
        def eff(x2d, sub):
            return effective_probabilities(prof, uL[sub], uT[sub], uw[sub], ua[sub], ukv[sub], nodes=x2d)

        vals = _majority_rows(eff, grid, u_idx[first], k[first], eta[first])
    else:
        vals = _evaluate_rows(strat, p_tab, w_tab, weights, u_idx[first], k[first], c[first], s[first],
                              eta[first], auc[first])
    return np.clip(vals[inv], 0.0, 1.0).reshape(shape)


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
