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
k <= 32 are exact binomial sums (strategy_tables.small_k_values: one matrix product per block
of nodes, double precision); beyond, Poisson tables and the Edgeworth / delta-method
expansions; beyond 2000 distinct combinations interpolation between them, see
_interpolated_rows. Timings (2 shared cores, one BLAS thread) for 1e5 configurations =
10 k x 100 gen_len x 100 kv_budget (1e4 distinct combinations): single, pass@k, verify
50-85 ms; best-of-k ~0.2 s and majority ~0.3 s. The search's block (6 k x 6 gen_len x
4 quantizations x 2 KV dtypes x 6 kv_budget): pass@k, verify ~2 ms, best-of-k ~7 ms,
majority ~14 ms (benchmarks/accuracy_speed.py); the first call in a process also builds
the cached strategy tables (~30 ms each). These timings predate the trace-length problem
effect, which splits every node into budget.EFFECT_NODES columns (3-5x the time); partly
won back: pass@k / verify over a grid of k by products along the sorted k
(fastpaths._miss_table), small-k nodes where a vote is rare or every sample answers by
their expansions (strategy_tables.small_k_values), cached Gauss-Hermite nodes and
reference-budget shares (budget.py); figures in benchmarks/accuracy_speed.py.
"""

from __future__ import annotations

import numpy as np

from planner.accuracy import penalties as P
from planner.accuracy import strategies as S
from planner.accuracy import strategy_large_k as SL
from planner.accuracy import strategy_tables as ST
from planner.accuracy.combinations import (
    _broadcast_inputs,
    _combo_index,
    _reduce_grid,
    _row_keys,
    combination_parameters,
    effect_weights,
    node_probabilities,
)
from planner.accuracy.fastpaths import (
    _CHUNK,
    _INTERP_MIN_COMBOS,
    _evaluate_rows,
    _interpolated_rows,
    _majority_roots,
    _split_points,
)
from planner.accuracy.quadrature import split_at
from planner.accuracy.special import unique_sorted
from planner.errors import InputError

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


def _majority_rows(eff, grid, u, k, eta, roots=None, eff_tab=None, expand=None):
    """Majority vote for distinct rows. In the limit of many samples a problem is won iff
    p > eta w, a jump in the problem's reference success x at a point x*; the quadrature
    cell containing x* is split there (quadrature.split_at), once per (combination, eta),
    so the jump and the steep finite-k transition around it are integrated accurately.
    x* (the first x with p > eta w) comes from _majority_roots (closed form or Newton,
    checked) or else a search (_split_points); the split grids' tails are merged
    (_merge_tails), and k <= K_EXACT is summed exactly (strategy_tables.small_k_values).
    ``eff`` locates the split points (marginal trace lengths); ``eff_tab`` (default eff)
    gives the tables, with the trace-length problem effect, whose columns ``expand`` maps
    the weights to (combinations.effect_weights)."""
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
    p_tab, w_tab = (eff if eff_tab is None else eff_tab)(nodes, pu)
    if expand is not None:
        wts = expand(wts)
    out = np.empty(len(k))
    small = k <= ST.K_EXACT
    if np.any(small):
        G = p_tab.shape[1]
        need = unique_sorted(k[small])
        s, pi = ST.race_shares(p_tab, pe[:, None] * w_tab)
        sub = ST.small_k_values("majority", 0.0, s, pi, need).reshape(len(need), len(pu), G)
        exp_tab = np.einsum("kpg,pg->kp", sub, wts)
        out[small] = exp_tab[np.searchsorted(need, k[small]), pair_of_row[small]]
    big = np.flatnonzero(~small)
    if len(big):
        t_tab = pe[:, None] * w_tab
        for lo_ in range(0, len(big), _CHUNK):
            rows = big[lo_:lo_ + _CHUNK]
            pr = pair_of_row[rows]
            vals_ = SL.majority_large_k(p_tab[pr], t_tab[pr], k[rows, None])
            out[rows] = np.einsum("rg,rg->r", vals_, wts[pr])
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
    c = _unit_interval(c, "verifier-completeness")
    s = _unit_interval(s, "verifier-soundness")
    eta = _unit_interval(eta, "top-wrong-share")
    auc = _unit_interval(auc, "reward-auc", open_upper=True)
    if gen_len is None:
        gen_len = spec.reference_gen_len
    wcodes = P.dtype_codes(weight_dtype, "weight-dtype")
    acodes = P.default_act_codes(wcodes) if act_dtype is None else P.dtype_codes(act_dtype, "act-dtype")
    kvcodes = P.dtype_codes(kv_dtype, "kv-dtype")
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
        raise InputError("must be > 0 tokens", field="gen-len", value=float(L[~(L > 0)][0]))
    T = T.astype(float)
    if np.any(~np.isfinite(T)) or np.any(T < 0):
        raise InputError("must be >= 0 tokens (0 = dense)", field="kv-budget",
                         value=float(T[~(T >= 0)][0]))

    u_idx, uL, uT, uw, ua, ukv = _combo_index(L, T, w.astype(np.int64), a.astype(np.int64), kv.astype(np.int64))
    grid = prof.grid()
    nodes, weights = _reduce_grid(grid.nodes, grid.weights, float(k.max()))
    weights_e = effect_weights(prof, weights)
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

            def eff_tab(x2d, sub):
                return node_probabilities(prof, cu[sub], clq[sub], cdl[sub], nodes=x2d, problem_effect=True)

            def roots(sub, eta_):
                return _majority_roots(prof, cu[sub], clq[sub], cdl[sub], eta_)

            return _majority_rows(eff, grid, rc, rk, reta, roots, eff_tab, lambda w: effect_weights(prof, w))
        p_tab, w_tab = node_probabilities(prof, cu, clq, cdl, nodes=nodes, problem_effect=True)
        return _evaluate_rows(strat, p_tab, w_tab, weights_e, rc, rk, rc_, rs_, reta, rauc)

    rparams = (c[first], s[first], eta[first], auc[first])
    if strat in ("majority", "best-of-k") and len(cu) > _INTERP_MIN_COMBOS:
        vals = _interpolated_rows(evaluate, prof, cu, clq, cdl, u_idx[first], k[first], rparams)
    else:
        vals = evaluate(cu, clq, cdl, u_idx[first], k[first], rparams)
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
    wcode = P.dtype_codes(wd, "weight-dtype")
    ad = kwargs.get("act_dtype")
    acode = P.default_act_codes(np.asarray(wcode)) if ad is None else P.dtype_codes(ad, "act-dtype")
    kvcode = P.dtype_codes(kwargs.get("kv_dtype", "bf16"), "kv-dtype")
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
