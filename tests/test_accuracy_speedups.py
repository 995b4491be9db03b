"""The speed-ups that win back the trace-length problem effect's cost, against the
computations they replace (issue 12), on random shipped profiles, strategies, sample
grids, budgets and dtypes:

* pass@k / verify over a grid of k (fastpaths._miss_table: powers by multiplication along
  the sorted k) against the per-row float64 formula sum_j w_j (1 - (1 - p_j)^k) (the path
  predict takes when a strategy parameter varies), within 1e-10 absolute;
* small-k majority / best-of-k at nodes where a vote is rare (k s < 1e-7, closed form
  k s (1-s)^(k-1) pi) against the exact binomial sum with the binomial-recursion pi
  tables (strategy_tables._inner_expectations), kept here as the reference;
* one configuration at a time against the whole block (the grid paths change a row's
  value only within the float32 rounding of the per-row path and the merged tail nodes,
  which depend on the largest k of a call: 1e-6).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.accuracy import list_profiles, load_profile, predict
from planner.accuracy import inner_tables as IT
from planner.accuracy import strategy_tables as ST

PROFILES = [load_profile(f"{m}/{t}") for t, m in list_profiles()]
DTYPES = ["bf16", "fp8", "int8", "int4"]


def _k_grid(kind, n, start):
    if kind == "arith":
        return start + np.arange(n)
    if kind == "doubling":
        return start * 2 ** np.arange(n)
    return np.unique(np.random.default_rng(start).integers(1, 3000, n))


@settings(max_examples=40, deadline=None)
@given(prof=st.sampled_from(PROFILES), strat=st.sampled_from(["pass@k", "verify"]),
       kind=st.sampled_from(["arith", "doubling", "random"]), n=st.integers(2, 12), start=st.integers(1, 40),
       L=st.lists(st.integers(200, 80_000), min_size=1, max_size=5),
       T=st.sampled_from([0, 128, 1024, 4096]), wd=st.sampled_from(DTYPES), c=st.floats(0.3, 1.0))
def test_k_grid_powers_match_per_row_float64(prof, strat, kind, n, start, L, T, wd, c):
    ks = _k_grid(kind, n, start).reshape(-1, 1)
    Ls = np.array(L).reshape(1, -1)
    fast = predict(prof, strat, ks, Ls, kv_budget=T, weight_dtype=wd, verifier_completeness=c)
    # a second completeness value makes the parameter vary: predict then evaluates every
    # row by the float64 formula (strategies.pass_at_k / verify), the reference here
    cc = np.stack([np.full(ks.shape, c), np.full(ks.shape, c * 0.5)], axis=-1)
    ref = predict(prof, strat, ks[..., None], Ls[..., None], kv_budget=T, weight_dtype=wd,
                  verifier_completeness=cc)[..., 0]
    assert np.max(np.abs(fast - ref)) < 1e-10


def _binomial_sum_reference(kind, rho, s, pi, need):
    """T[k] = sum_n Bin(n; k, s) H[n](pi), H by the binomial recursion (exact)."""
    K = max(need)
    h = IT._h_majority if kind == "majority" else ST._h_luce(np.full(pi.size, rho))
    H = ST._inner_expectations(pi, K, h)
    out = np.zeros((len(need), s.size))
    for m, k in enumerate(need):
        for n_ in range(k + 1):
            out[m] += math.comb(k, n_) * s ** n_ * (1 - s) ** (k - n_) * H[n_]
    return out


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["majority", "best-of-k"]), auc=st.floats(0.55, 0.95),
       need=st.lists(st.integers(1, 32), min_size=1, max_size=5, unique=True),
       seed=st.integers(0, 10_000))
def test_rare_vote_nodes_match_binomial_sum(kind, auc, need, seed):
    rng = np.random.default_rng(seed)
    need = tuple(sorted(need))
    n = 400
    s = np.where(rng.random(n) < 0.5, 10 ** rng.uniform(-16, -8.6, n), rng.random(n))
    s[:5] = 0.0
    pi = rng.random(n)
    rho = float(ST.rho_from_auc(auc)) if kind == "best-of-k" else 0.0
    got = ST.small_k_values(kind, rho, s, pi, need)
    ref = _binomial_sum_reference(kind, rho, s, pi, need)
    rare = s * max(need) < 1e-7
    assert np.max(np.abs(got[:, rare] - ref[:, rare])) < 1e-14
    # elsewhere the pi tables are interpolated (~1e-6, as before this change)
    assert np.max(np.abs(got - ref)) < 1e-5


@settings(max_examples=15, deadline=None)
@given(prof=st.sampled_from(PROFILES), strat=st.sampled_from(["pass@k", "verify", "majority", "best-of-k"]),
       i=st.integers(0, 5), j=st.integers(0, 3), wd=st.sampled_from(DTYPES))
def test_block_rows_equal_single_configurations(prof, strat, i, j, wd):
    ks = np.array([2, 4, 8, 16, 32, 64]).reshape(-1, 1, 1)
    Ls = np.array([1024, 4096, 16384, 32768]).reshape(1, -1, 1)
    Ts = np.array([0, 512, 2048]).reshape(1, 1, -1)
    block = predict(prof, strat, ks, Ls, kv_budget=Ts, weight_dtype=wd)
    for t in range(3):
        one = float(predict(prof, strat, int(ks[i, 0, 0]), int(Ls[0, j, 0]), kv_budget=int(Ts[0, 0, t]),
                            weight_dtype=wd))
        # a block interpolates the pi tables (~1e-6, bound 1e-5 as in the test above); one
        # configuration may not: qwen3-0.6b/gsm8k pass@2 at L = 32768 differs by 2.9e-6
        # (the same on the base commit of 2026-11-30, found by hypothesis)
        assert abs(block[i, j, t] - one) < 1e-5
