"""The issue-10 speed paths of the accuracy model against independent evaluations.

- small_k_values through preallocated column buffers, with the pi of groups of effect
  columns shared (strategy_tables._binomial_sums): equal to the binomial sum over the
  number of race votes by the recursion over k (strategy_tables._outer_table) on the same
  pi table, column by column, on random nodes that mix rare votes, nodes where every
  sample answers, shared and distinct pi, more columns than one chunk;
- the pi-major Poisson table (strategy_large_k): its bilinear lookup equal to a bilinear
  interpolation written out here on the (lambda, pi) grid, and the table equal to the
  Poisson sums computed directly at grid points;
- the finishing ratios once per distinct (u, node) (combinations): node_probabilities
  equal to the per-combination evaluation (one combination at a time), and its in-memory
  tables read-only and equal to a fresh computation.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.accuracy import find_profile
from planner.accuracy import inner_tables as IT
from planner.accuracy import strategy_large_k as LK
from planner.accuracy import strategy_tables as ST
from planner.accuracy.combinations import _distinct_pairs, node_probabilities


def _grouped_nodes(rng, groups: int, m: int = ST._PI_GROUP):
    """(s, pi) over ``groups`` groups of ``m`` columns: most groups share one pi (as the
    effect columns below the reference budget), some not; s spans rare votes (s K <
    1e-7), ordinary values and 1 - s < 1e-9."""
    pi = np.repeat(rng.random(groups), m)
    own = rng.random(groups) < 0.2
    pi[np.repeat(own, m)] = rng.random(int(own.sum()) * m)
    kind = rng.integers(0, 4, groups * m)
    s = np.where(kind == 0, 10 ** rng.uniform(-14, -9, groups * m), rng.random(groups * m))
    s = np.where(kind == 3, 1.0 - 10 ** rng.uniform(-13, -9.5, groups * m), s)
    return s, pi


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["majority", "best-of-k"]), auc=st.floats(0.55, 0.95),
       need=st.lists(st.integers(1, 32), min_size=1, max_size=6, unique=True),
       groups=st.integers(60, 500), seed=st.integers(0, 10_000))
def test_small_k_values_equal_binomial_recursion_column_by_column(kind, auc, need, groups, seed):
    rng = np.random.default_rng(seed)
    need = sorted(need)
    s, pi = _grouped_nodes(rng, groups)
    rho = float(ST.rho_from_auc(auc)) if kind == "best-of-k" else 0.0
    got = ST.small_k_values(kind, rho, s, pi, need)
    H = IT._inner_interp(kind, rho, pi, max(need))                  # the same pi table
    ref = ST._outer_table(s, np.asarray(H, float), max(need), None)[need]
    ordinary = (s * max(need) >= 1e-7) & (1.0 - s >= 1e-9)
    assert got.shape == (len(need), s.size)
    assert np.max(np.abs(got[:, ordinary] - ref[:, ordinary])) < 1e-13
    # rare votes and all-answer nodes keep their expansions (errors < 1e-14 / k^2 1e-18)
    assert np.max(np.abs(got - ref)) < 1e-12


def test_small_k_values_chunks_do_not_interact():
    """Column j's value does not depend on the other columns of the call (chunking)."""
    rng = np.random.default_rng(3)
    s, pi = _grouped_nodes(rng, 400)
    need = [2, 4, 8, 16, 32]
    whole = ST.small_k_values("majority", 0.0, s, pi, need)
    for lo, hi in ((0, 7), (1000, 1601), (2394, 2400)):
        part = ST.small_k_values("majority", 0.0, s[lo:hi], pi[lo:hi], need)
        assert np.max(np.abs(part - whole[:, lo:hi])) < 1e-15


def _bilinear(table_lp, lam, pi):
    """Bilinear interpolation on the (lambda, pi) grid, written out: cell by floor, the
    last cell for points on the upper edge."""
    nl, npi = table_lp.shape
    fl = np.clip(lam / LK._LAM_STEP, 0.0, nl - 1.001)
    fp = np.clip(pi * (npi - 1), 0.0, npi - 1.001)
    out = np.empty(lam.size)
    for j, (a, b) in enumerate(zip(fl, fp)):
        i0, k0 = int(math.floor(a)), int(math.floor(b))
        u, v = a - i0, b - k0
        out[j] = ((1 - u) * ((1 - v) * table_lp[i0, k0] + v * table_lp[i0, k0 + 1])
                  + u * ((1 - v) * table_lp[i0 + 1, k0] + v * table_lp[i0 + 1, k0 + 1]))
    return out


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(["majority", "best-of-k"]), seed=st.integers(0, 10_000))
def test_poisson_lookup_is_bilinear_interpolation(kind, seed):
    rng = np.random.default_rng(seed)
    rho = 3.0 if kind == "best-of-k" else 0.0
    tab = LK._poisson_table(kind, rho)                              # (pi, lambda)
    lam = rng.uniform(0.0, LK.LAMBDA_POISSON, 300)
    pi = rng.random(300)
    lam[:3], pi[:3] = 0.0, [0.0, 1.0, 0.5]
    got = LK._poisson_lookup(tab, lam, pi)
    assert np.max(np.abs(got - _bilinear(tab.T, lam, pi))) < 1e-14


def test_poisson_table_is_the_poisson_sum():
    """At grid points the table is sum_n Pois(n; lambda) H[n](pi), H exact (recursion)."""
    tab = LK._poisson_table("majority", 0.0)
    rng = np.random.default_rng(0)
    ip = rng.integers(0, len(IT._PI_GRID), 5)
    il = rng.integers(0, len(LK._LAM_GRID), 5)
    pi = IT._PI_GRID[ip]
    H = ST._inner_expectations(pi, IT._N_POISSON, IT._h_majority)     # (N + 1, 5)
    for j in range(5):
        lam = LK._LAM_GRID[il[j]]
        pmf = np.array([math.exp(-lam) * lam ** n / math.factorial(n) for n in range(IT._N_POISSON + 1)])
        assert abs(tab[ip[j], il[j]] - pmf @ H[:, j]) < 1e-12


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 40), cols=st.integers(1, 30))
def test_distinct_pairs_round_trip(seed, rows, cols):
    rng = np.random.default_rng(seed)
    u = rng.choice([0.5, 1.0, 2.0], rows)
    x = rng.choice([0.1, 0.2, 0.3, 0.4], (rows, cols))
    pu, px, inv = _distinct_pairs(u, x)
    assert np.array_equal(pu[inv].reshape(rows, cols), np.broadcast_to(u[:, None], (rows, cols)))
    assert np.array_equal(px[inv].reshape(rows, cols), x)
    assert len(set(zip(pu, px))) == len(pu) == len(set(zip(np.repeat(u, cols), x.ravel())))


@settings(max_examples=10, deadline=None)
@given(model=st.sampled_from(["qwen3-8b", "qwen3-0.6b", "deepseek-r1"]), seed=st.integers(0, 1000),
       effect=st.booleans(), split=st.booleans())
def test_node_probabilities_equal_one_combination_at_a_time(model, seed, effect, split):
    prof = find_profile(model, "aime24")
    rng = np.random.default_rng(seed)
    n = 12
    u = rng.choice(np.log([1024.0, 4096.0, 16384.0, 40000.0]), n)  # repeated u, as dtype mixes
    log_q = rng.choice([0.0, -0.05], n)
    delta = rng.choice([0.0, 0.1, 0.3], n)
    x = prof.grid().nodes
    if split:                                                        # per-combination grids
        x = np.sort(np.concatenate([np.tile(x, (n, 1)), rng.random((n, 3))], axis=1), axis=1)
        x[:, :5] = x[0, :5]
    p, w = node_probabilities(prof, u, log_q, delta, nodes=x, problem_effect=effect)
    for i in range(n):
        xi = x[i] if split else x
        pi_, wi = node_probabilities(prof, u[i:i + 1], log_q[i:i + 1], delta[i:i + 1],
                                     nodes=xi[None, :] if split else xi, problem_effect=effect)
        assert np.array_equal(p[i], pi_[0]) and np.array_equal(w[i], wi[0])


def test_node_probability_memo_is_read_only_and_fresh():
    prof = find_profile("qwen3-8b", "aime24")
    u, lq, d = np.log([2048.0, 2048.0, 8192.0]), np.zeros(3), np.array([0.0, 0.2, 0.0])
    nodes = prof.grid().nodes
    p1, w1 = node_probabilities(prof, u, lq, d, nodes=nodes, problem_effect=True)
    p2, w2 = node_probabilities(prof, u, lq, d, nodes=nodes, problem_effect=True)
    assert not p1.flags.writeable and not w1.flags.writeable
    from planner.accuracy.combinations import _node_probabilities

    p3, w3 = _node_probabilities(prof, u, lq, d, nodes, True)
    assert np.array_equal(p2, p3) and np.array_equal(w2, w3)
    # another profile with the same arrays is another entry
    other = find_profile("qwen3-0.6b", "aime24")
    p4, _ = node_probabilities(other, u, lq, d, nodes=nodes, problem_effect=True)
    p5, _ = _node_probabilities(other, u, lq, d, nodes, True)
    assert np.array_equal(p4, p5)
