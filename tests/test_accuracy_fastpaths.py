"""The fast paths of the accuracy model against the straightforward computations they
replace: closed-form / Bernstein pi tables against the binomial recursion, the matrix
product binomial sums against the recursion over k, the closed-form / Newton majority
split points against bisection, merged tail nodes and combinations, the large-k
majority evaluation, and the shape of the search's block (its time: benchmarks/accuracy_speed.py)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from planner.accuracy import find_profile, list_profiles, predict
from planner.accuracy import combinations as C
from planner.accuracy import fastpaths as FP
from planner.accuracy import penalties as P
from planner.accuracy import inner_tables as IT
from planner.accuracy import strategy_large_k as SL
from planner.accuracy import strategy_tables as ST

PR = importlib.import_module("planner.accuracy.predict")
RNG = np.random.default_rng(7)


def _race_nodes(n=6000):
    """(s, pi) at random nodes plus the edge cases of the binomial sums."""
    p = RNG.random(n) ** 3
    w = (1 - p) * RNG.random(n)
    s, pi = ST.race_shares(p, RNG.uniform(0, 1, n) * w)
    s[:10], s[10:20], s[20:30], s[30:40], s[40:50] = 0.0, 1.0, 1e-12, 1 - 1e-12, 0.5
    s[50:60], s[60:70] = 1e-300, 1 - 1e-10
    pi[10:20] = RNG.random(10)
    return s, pi


def test_majority_pi_table_closed_form():
    H = IT._majority_inner(IT._PI_GRID, 96)
    ref = ST._inner_expectations(IT._PI_GRID, 96, IT._h_majority)
    assert np.max(np.abs(H - ref)) < 1e-13


@pytest.mark.parametrize("rho", [3.0, 1.0, 0.2, 1e-9, 1e9])
def test_best_of_k_pi_table_bernstein(rho):
    H = IT._bernstein_table(IT._h_vectors("best-of-k", rho, 96), IT._PI_GRID)
    ref = ST._inner_expectations(IT._PI_GRID, 96, ST._h_luce(np.full(IT._PI_GRID.shape, rho)))
    assert np.max(np.abs(H - ref)) < 1e-13


def test_powers():
    x = np.array([0.3, 1e-10, 2.0, 1e9, 0.0, 1.0])
    for K in (0, 1, 2, 3, 7, 8, 17, 32):
        ref = x[:, None] ** np.arange(K + 1)[None, :]
        ref[1, 2:] = 0.0                          # x < 1e-9: powers >= 2 dropped
        assert np.allclose(IT._powers(x, K), ref, rtol=1e-15, atol=0)


@pytest.mark.parametrize("kind,rho", [("majority", 0.0), ("best-of-k", 3.0), ("best-of-k", 0.5)])
@pytest.mark.parametrize("need", [[2, 4, 8, 16, 32], [1, 2, 3], [0, 1, 5, 17], [31], list(range(33))])
def test_small_k_values_match_binomial_recursion(kind, rho, need):
    """Same pi table, the binomial sum over the number of race votes by the recursion over
    k in double precision (the former path, minus its single precision)."""
    s, pi = _race_nodes()
    got = ST.small_k_values(kind, rho, s, pi, need)
    H = IT._inner_interp(kind, rho, pi, max(need))
    ref = ST._outer_table(s, np.asarray(H, float), max(need), None)[need]
    assert got.shape == (len(need), len(s))
    assert np.max(np.abs(got - ref)) < 1e-13


def test_tables_keep_their_api():
    s, pi = _race_nodes(300)
    p = s * pi
    t = s - p
    tab = ST.majority_table(p, t / 0.5, 0.5, 8, need=[2, 8])
    assert tab.shape == (9, 300) and np.all(tab[[0, 1, 3, 4, 5, 6, 7]] == 0)
    assert np.allclose(tab[[2, 8]], ST.small_k_values("majority", 0.0, *ST.race_shares(p, t), [2, 8]), atol=1e-15)
    full = ST.best_of_k_table(p, t, 0.75, 6)
    assert np.allclose(full[1:], ST.small_k_values("best-of-k", 3.0, *ST.race_shares(p, t), range(1, 7)), atol=1e-15)


def test_majority_large_k_matches_coefficient_form():
    p = RNG.random((200, 40)) ** 2
    t = 0.3 * (1 - p) * RNG.random((200, 40))
    p[0, :5] = 0.0
    t[0, :5] = 0.0
    k = np.array([33.0, 64.0, 100.0, 1000.0, 1e5])[RNG.integers(0, 5, 200)][:, None]
    ref = SL.majority_from_coeffs(SL.majority_coeffs(p, t), k)
    assert np.max(np.abs(SL.majority_large_k(p, t, k) - ref)) < 1e-13


def _search_block_combinations(prof, extra=200):
    """The (u, log q, delta) of the search's block plus random budgets and dtypes."""
    L = np.array([1024, 2048, 4096, 8192, 16384, 32768.0])[:, None, None, None]
    T = np.array([0, 256, 512, 1024, 2048, 4096.0])[None, :, None, None]
    w = P.dtype_codes(np.array(["bf16", "fp8", "int8", "int4"]), "w")[None, None, :, None]
    a = P.dtype_codes(np.array(["bf16", "fp8", "int8", "bf16"]), "a")[None, None, :, None]
    kv = P.dtype_codes(np.array(["bf16", "fp8"]), "kv")[None, None, None, :]
    cols = [np.broadcast_to(v, (6, 6, 4, 2)).ravel() for v in (L, T, w, a, kv)]
    cols[0] = np.concatenate([cols[0], np.exp(RNG.uniform(np.log(200), np.log(80000), extra))])
    cols[1] = np.concatenate([cols[1], np.where(RNG.random(extra) < 0.3, 0, RNG.uniform(64, 8192, extra))])
    cols[2:] = [np.concatenate([c, np.broadcast_to(c[-1:], extra)]) for c in cols[2:]]
    return C.combination_parameters(prof, *cols)


def test_majority_split_points_match_bisection():
    """x* from the closed form (budgets below the reference) / Newton (above), checked,
    against 52 bisection steps on the exact criterion p > eta w."""
    total = differ = 0
    for task, model in list_profiles()[::3]:
        prof = find_profile(model, task)
        cu, clq, cdl = _search_block_combinations(prof)
        n = len(cu)
        for eta in (0.0, 0.05, 0.2, 1.0):
            pu, pe = np.arange(n), np.full(n, eta)

            def eff(x2d, sub):
                return C.node_probabilities(prof, cu[sub], clq[sub], cdl[sub], nodes=x2d)

            def roots(sub, e):
                return FP._majority_roots(prof, cu[sub], clq[sub], cdl[sub], e)

            cand = roots(pu, pe)
            if eta <= 0.2:
                assert np.all(np.isfinite(cand[:288]))     # the search block: nothing left to search
            fast = FP._split_points(eff, pu, pe, roots)
            searched = FP._split_points(eff, pu, pe, None)

            def h(x):
                p, w = eff(x[:, None], pu)
                return (1 + eta) * p[:, 0] - eta * (p[:, 0] + w[:, 0])

            lo, hi = np.zeros(n), np.ones(n)
            ok = h(hi) > 0
            for _ in range(52):
                mid = 0.5 * (lo + hi)
                pos = h(mid) > 0
                hi, lo = np.where(pos, mid, hi), np.where(pos, lo, mid)
            bisect = np.where(ok, hi, 1.0)
            assert np.max(np.abs(fast - bisect)) < 1e-14
            assert np.max(np.abs(searched - bisect)) < 1e-14
            total += n
            differ += int(np.sum(np.round(fast, 12) != np.round(bisect, 12)))
    assert differ <= total * 1e-3          # only where x* sits on a 1e-12 rounding boundary


def test_merged_tail_nodes_change_majority_by_less_than_1e7(monkeypatch):
    k = np.array([1, 2, 5, 16, 32, 64, 1000])[:, None, None]
    L = np.array([2048, 16384, 30768, 40000])[None, :, None]
    T = np.array([0, 256, 2048])[None, None, :]
    for task, model in [("aime24", "qwen3-0.6b"), ("math500", "deepseek-r1"), ("gsm8k", "llama-3.1-70b")]:
        prof = find_profile(model, task)
        for eta in (None, 1e-7, 1.0):
            merged = predict(prof, "majority", k, L, kv_budget=T, weight_dtype="int4", majority_top_wrong_share=eta)
            monkeypatch.setattr(PR, "_merge_tails", lambda n, w, *a: (n, w))
            full = predict(prof, "majority", k, L, kv_budget=T, weight_dtype="int4", majority_top_wrong_share=eta)
            monkeypatch.undo()
            assert np.max(np.abs(merged - full)) < 1e-7


def test_coinciding_combinations_merge_exactly():
    """A KV budget at or above the generation length is dense: same combination."""
    prof = find_profile("qwen3-8b", "aime24")
    for strat in ("majority", "best-of-k", "verify", "pass@k"):
        k = np.array([2, 8, 64])[:, None, None]
        both = predict(prof, strat, k, [[2048], [4096]], kv_budget=[0, 8192])
        assert np.array_equal(both[..., 0], both[..., 1])
        alone = predict(prof, strat, k[..., 0], [2048, 4096])
        assert np.allclose(both[..., 0], alone, rtol=0, atol=1e-15)


def test_search_block_shape():
    """One model's majority and best-of-k on the search's block (6 k x 6 gen_len x 4
    quantizations x 2 KV dtypes x 6 KV budgets): one accuracy per configuration, each a
    probability and nondecreasing in k (its CPU time: benchmarks/accuracy_speed.py)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from accuracy_speed import block_arguments

    many, _one, L, wq, aq, kvq, T = block_arguments()
    prof = find_profile("qwen3-8b", "aime24")
    for strat in ("majority", "best-of-k"):
        out = predict(prof, strat, many, L, weight_dtype=wq, act_dtype=aq, kv_dtype=kvq, kv_budget=T)
        assert out.shape == (6, 6, 4, 2, 6) and np.all((out >= 0) & (out <= 1))
        assert np.all(np.diff(out, axis=0) >= -1e-9)
