"""Per-configuration inputs of the accuracy model (predict.py): the distinct
(gen_len, kv_budget, dtypes) combinations of a call, what each does to every problem
(combination_parameters: u, log q, delta), the per-node probabilities of a correct and of
a wrong answer that follow (node_probabilities), and the bookkeeping that reduces a call
to distinct combinations, distinct rows and a reduced quadrature grid.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from planner.accuracy import penalties as P
from planner.accuracy import special


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


_MEMO: "OrderedDict[tuple, tuple]" = OrderedDict()
_MEMO_SIZE = 16
_MEMO_LOCK = threading.Lock()


def node_probabilities(profile, u, log_q, delta, nodes=None, problem_effect=False):
    """:func:`_node_probabilities`, kept in memory for the last few calls on one grid of
    nodes shared by every combination (best-of-k and verify ask for the same tables of a
    profile in one search). The arrays come back read-only."""
    x = None if nodes is None else np.asarray(nodes, float)
    if x is not None and x.ndim != 1:
        return _node_probabilities(profile, u, log_q, delta, x, problem_effect)
    arrays = [np.ascontiguousarray(v, dtype=float) for v in (u, log_q, delta)]
    key = (id(profile), bool(problem_effect), None if x is None else x.tobytes(),
           *(a.tobytes() for a in arrays), *(a.shape for a in arrays))
    with _MEMO_LOCK:
        got = _MEMO.get(key)
        if got is not None and got[0] is profile:
            _MEMO.move_to_end(key)
            return got[1], got[2]
    p, w = _node_probabilities(profile, u, log_q, delta, x, problem_effect)
    p.flags.writeable = False
    w.flags.writeable = False
    with _MEMO_LOCK:
        _MEMO[key] = (profile, p, w)     # the profile held: its id is not reused meanwhile
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return p, w


def _node_probabilities(profile, u, log_q, delta, nodes=None, problem_effect=False):
    """Per-node (p, w) for combinations given by combination_parameters: (U,) arrays ->
    two (U, G) arrays, the probability that a sample is correct and that it gives a wrong
    answer (the rest are truncated: no answer).

    With ``problem_effect`` (and a trace length with a problem share) every node x_j is
    split into the trace-length effect nodes v_m (budget.TraceLength.effect_nodes): the
    arrays are (U, G * M), column j * M + m, to be weighed by effect_weights."""
    spec = profile.spec
    trace = profile.trace
    x = profile.grid().nodes if nodes is None else np.asarray(nodes, float)
    if x.ndim == 1:
        x = x[None, :]
    delta = np.asarray(delta, float)[:, None]
    # quantization: expit(logit(x) - delta) = x / (x + (1 - x) e^delta)
    xq = np.where(delta > 0, x / (x + (1.0 - x) * np.exp(delta)), x)
    # the finishing ratio r depends on (u, node) only, not on log_q or delta: computed once
    # per distinct (u, node row) and gathered (the dtype mixes of a call share their u)
    u = np.asarray(u, float)
    uu, xu, inv = _distinct_u_rows(u, x)
    if problem_effect and trace.sigma_problem > 0.0 and x.shape[0] > 1:
        # split grids: rows share most nodes, so once per distinct (u, node) pair
        pu, px, pinv = _distinct_pairs(u, x)
        r3 = trace.conditional_ratio(pu, px[:, None], spec.reference_gen_len)   # (N, 1, M)
        M = r3.shape[-1]
        r = r3.reshape(len(pu), M)[pinv].reshape(x.shape[0], -1)
        xq = np.repeat(xq, M, axis=-1)
    elif problem_effect and trace.sigma_problem > 0.0:
        r3 = trace.conditional_ratio(uu, xu[0], spec.reference_gen_len)
        M = r3.shape[-1]
        r = r3.reshape(r3.shape[0], -1)
        xq = np.repeat(xq, M, axis=-1)
    else:
        z = (uu[:, None] - trace.log_median(xu)) / trace.sigma
        r = special.ndtr(z) / np.maximum(trace.cdf(float(spec.reference_gen_len), xu), 1e-300)
    if inv is not None:
        r = r[inv]
    p = np.minimum(1.0, xq * np.exp(np.asarray(log_q, float))[:, None] * r)
    answered = np.minimum(1.0, np.maximum(p, r))
    return p, answered - p


def _distinct_u_rows(u: np.ndarray, x: np.ndarray):
    """(u', x, inv): the distinct u of combinations u (U,) on shared nodes x (1, G), with
    u == u'[inv] (inv None where every u is distinct, or where x has a row per
    combination). Exact: the same inputs per element."""
    if x.shape[0] != 1:
        return u, x, None   # split grids (majority): rows differ in their split nodes
    uu, inv = np.unique(u, return_inverse=True)
    if len(uu) == len(u):
        return u, x, None
    return uu, x, inv.ravel()


def _distinct_pairs(u: np.ndarray, x: np.ndarray):
    """(u', x', inv): the distinct (u_i, x_ij) pairs of combinations u (U,) with node rows
    x (U, G), flat in row order: u[i] == u'[inv[i G + j]] and x[i, j] == x'[inv[i G + j]]."""
    uf = np.repeat(u, x.shape[1])
    xf = x.ravel()
    order = np.lexsort((xf, uf))
    us, xs = uf[order], xf[order]
    new = np.ones(len(order), bool)
    new[1:] = (us[1:] != us[:-1]) | (xs[1:] != xs[:-1])
    inv = np.empty(len(order), np.int64)
    inv[order] = np.cumsum(new) - 1
    return us[new], xs[new], inv


def effect_weights(profile, weights) -> np.ndarray:
    """Quadrature weights (..., G) of the nodes -> (..., G * M) of the node x effect
    columns of node_probabilities(problem_effect=True): w_j h_m."""
    weights = np.asarray(weights, float)
    if profile.trace.sigma_problem <= 0.0:
        return weights
    _, h = profile.trace.effect_nodes()
    return (weights[..., None] * h).reshape(*weights.shape[:-1], -1)


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
