"""Strategy graphs and search primitives: longest path, Pareto frontier vs brute force,
top-N selection, budgets."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import strategies as strat
from planner.errors import InputError
from planner.frontier import Budgets, nearest_to_budget, pareto_frontier, top_indices, within_budgets


def test_every_strategy_is_a_dag_with_a_generate_stage():
    for name in list(strat.STRATEGIES) + ["revise-2"]:
        g = strat.get(name)
        assert nx.is_directed_acyclic_graph(g.to_networkx())
        assert strat.topological_order(g) == list(nx.topological_sort(g.to_networkx()))
        assert any(a["op"] == "generate" for _, a in g.nodes(data=True))
        assert g.graph["accuracy"] in strat.STRATEGIES


def test_unknown_strategy_is_input_error():
    with pytest.raises(InputError, match="unknown strategy"):
        strat.get("beam-search")


def test_combine_longest_path_and_sums():
    """A diamond: generate -> (verify A, verify B) -> select; latency is the longer branch."""
    g = nx.DiGraph(accuracy="single")
    g.add_edges_from([("gen", "va"), ("gen", "vb"), ("va", "sel"), ("vb", "sel")])
    lat = {"gen": np.array([1.0, 2.0]), "va": np.array([5.0, 0.5]), "vb": np.array([3.0, 4.0])}
    cost = {"gen": np.array([1.0, 1.0]), "va": np.array([2.0, 2.0]), "vb": np.array([3.0, 3.0])}
    latency, totals = strat.combine(g, lat, {"cost": cost})
    np.testing.assert_allclose(latency, [6.0, 6.0])
    np.testing.assert_allclose(totals["cost"], [6.0, 6.0])


def test_revision_chain_adds_latency():
    g = strat.get("revise-3")
    lat = {n: np.array([2.0]) for n in g.nodes}
    latency, _ = strat.combine(g, lat, {})
    assert latency[0] == pytest.approx(8.0)


def brute_frontier(cost, acc, mask):
    keep = []
    for i in np.flatnonzero(mask):
        dominated = any(mask[j] and cost[j] <= cost[i] and acc[j] >= acc[i] and (cost[j] < cost[i] or acc[j] > acc[i])
                        for j in range(len(cost)))
        if not dominated:
            keep.append(i)
    return keep


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 20), st.booleans()), min_size=1, max_size=40))
def test_pareto_frontier_matches_brute_force(rows):
    cost = np.array([r[0] for r in rows], dtype=float)
    acc = np.array([r[1] for r in rows], dtype=float)
    mask = np.array([r[2] for r in rows])
    got = pareto_frontier(cost, acc, mask)
    expect = brute_frontier(cost, acc, mask)
    # same set of (cost, accuracy) points (duplicates of one point may differ in index)
    assert sorted({(cost[i], acc[i]) for i in got}) == sorted({(cost[i], acc[i]) for i in expect})
    assert np.all(np.diff(cost[got]) > 0) and np.all(np.diff(acc[got]) > 0)


def test_top_indices_orders_by_score_then_tiebreak():
    score = np.array([0.5, 0.9, 0.9, 0.1, 0.7])
    mask = np.array([True, True, True, True, False])
    tie = np.array([1.0, 3.0, 2.0, 0.0, 0.0])
    assert list(top_indices(score, mask, 3, tie)) == [2, 1, 0]


def test_budgets_and_nearest_respect_the_accuracy_floor():
    cols = {"latency_s": np.array([1.0, 5.0, 10.0, 4.5]), "cost_usd": np.array([0.1, 0.01, 0.5, 0.2]),
            "energy_j": np.array([1.0, 1.0, 1.0, 1.0]), "accuracy": np.array([0.5, 0.6, 0.9, 0.85])}
    b = Budgets(max_latency_s=4.0, min_accuracy=0.8)
    assert not within_budgets(cols, b).any()
    near = nearest_to_budget(cols, np.ones(4, dtype=bool), b, 3)
    # only rows 2 and 3 reach the floor; row 3 misses the latency budget by 12.5%, row 2 by 150%
    assert list(near) == [3, 2]
    assert nearest_to_budget(cols, np.ones(4, dtype=bool), Budgets(min_accuracy=0.95), 3).size == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.booleans()),
                min_size=1, max_size=60), st.integers(1, 8))
def test_top_indices_matches_a_full_sort_with_cost_then_latency_tiebreak(rows, n):
    """Brute force: sort every masked row by (-score, cost, latency); many exact ties."""
    score = np.array([r[0] for r in rows], dtype=float)
    cost = np.array([r[1] for r in rows], dtype=float)
    lat = np.array([r[2] for r in rows], dtype=float)
    mask = np.array([r[3] for r in rows])
    got = top_indices(score, mask, n, (cost, lat))
    expect = sorted(np.flatnonzero(mask), key=lambda i: (-score[i], cost[i], lat[i]))[:n]
    assert [(score[i], cost[i], lat[i]) for i in got] == [(score[i], cost[i], lat[i]) for i in expect]
