"""Strategies are costed from their graphs: every stage of a searched row, re-costed on
its own through the estimate API (the outside oracle: one configuration at a time, no
search broadcasting), adds up to the row's latency (longest path), energy and dollars."""

from __future__ import annotations

import numpy as np
import pytest

from planner import strategies as strat
from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate
from planner.recommend import accuracy_for_search
from planner.search import Space, evaluate_space

STRATS = ["single", "majority", "best-of-k", "verify", "revise-2", "revise-vote"]


def _stage_cost(call, row, model, verifier, hw, prompt_len):
    """One stage of one row, costed by itself: (latency, energy, dollars) per request."""
    k, L, B = row["samples"], row["gen_len"], row["batch"]
    runs_on = verifier if (call.role == "verifier" and verifier is not None) else model
    requests = k if call.requests == "k" else 1
    r = estimate(runs_on, hw, devices=row["devices"], batch=B * requests,
                 prompt_len=prompt_len + (L if call.prompt_extra == "answer" else 0),
                 gen_len=L if call.gen == "gen_len" else call.verify_len,
                 samples=k if call.samples == "k" else 1, weight_dtype=row["weight_dtype"],
                 act_dtype=row["act_dtype"], kv_dtype=row["kv_dtype"],
                 kv_budget=row["kv_budget"] if call.role == "policy" else 0)
    return r["latency_s"], r["energy_j"] * requests, r["cost_usd"] * requests


def _recost(row, model, verifier, hw, prompt_len):
    graph = strat.get(row["strategy"])
    lat, energy, usd = {}, {}, {}
    for node, attrs in graph.nodes(data=True):
        call = strat.stage_call(attrs)
        if call is not None:
            lat[node], energy[node], usd[node] = (np.array(x) for x in _stage_cost(call, row, model, verifier, hw,
                                                                                  prompt_len))
    latency, totals = strat.combine(graph, lat, {"e": energy, "c": usd})
    return float(latency), float(totals["e"]), float(totals["c"])


@pytest.mark.parametrize("samples,verifier_name", [([4, 8], None), ([1, 2, 4], "qwen3-0.6b")])
def test_random_rows_recost_stage_by_stage(samples, verifier_name):
    from planner import accuracy

    models = [load_model("qwen3-8b"), load_model("qwen3-1.7b")]
    hardware = [load_hardware("h100-sxm"), load_hardware("l40s")]
    verifier = load_model(verifier_name) if verifier_name else None
    space = Space(strategies=STRATS, devices=[1, 2], samples=samples, gen_lens=[1024, 4096],
                  quantizations=["bf16", "int4"], kv_dtypes=["fp8"], batches=[1, 16], kv_budgets=[0, 512],
                  prompt_len=150)
    profiles = [accuracy.find_profile(m.name, "aime24") for m in models]
    res = evaluate_space(space, models, hardware, [None, None], profiles, accuracy_for_search, verifier,
                         precision="float64")
    rng = np.random.default_rng(7)
    ok = np.flatnonzero(res.feasible)
    seen = set()
    for i in rng.choice(ok, size=60, replace=False):
        row = res.row(int(i))
        seen.add(row["strategy"])
        m = next(x for x in models if x.name == row["model"])
        h = next(x for x in hardware if x.name == row["hardware"])
        lat, e, usd = _recost(row, m, verifier, h, space.prompt_len)
        assert row["latency_s"] == pytest.approx(lat, rel=1e-6)
        assert row["energy_j"] == pytest.approx(e, rel=1e-6)
        assert row["cost_usd"] == pytest.approx(usd, rel=1e-6)
        if not strat.uses_samples(strat.get(row["strategy"])):
            assert row["samples"] == 1
    assert len(seen) >= 4


def test_single_costs_one_sample_in_a_grid_without_k_1():
    """With samples [4, 8], single (and revise-N) rows exist, carry samples = 1 and cost
    exactly one sample's generation; majority never appears at k = 1."""
    from planner import accuracy

    m, h = load_model("qwen3-8b"), load_hardware("h100-sxm")
    space = Space(strategies=["single", "revise-1", "majority"], devices=[1], samples=[4, 8], gen_lens=[2048],
                  quantizations=["bf16"], kv_dtypes=["bf16"], batches=[1], kv_budgets=[0], prompt_len=150)
    res = evaluate_space(space, [m], [h], [None], [accuracy.find_profile(m.name, "aime24")], accuracy_for_search,
                         precision="float64")
    rows = [res.row(i) for i in range(res.evaluated)]
    by = {}
    for r in rows:
        by.setdefault(r["strategy"], []).append(r)
    assert [r["samples"] for r in by["single"]] == [1] and [r["samples"] for r in by["revise-1"]] == [1]
    assert sorted(r["samples"] for r in by["majority"]) == [4, 8]
    one = estimate(m, h, prompt_len=150, gen_len=2048, samples=1)
    assert by["single"][0]["latency_s"] == pytest.approx(one["latency_s"], rel=1e-9)
    # a revision reads the prompt plus the answer and writes one more answer
    rev = estimate(m, h, prompt_len=150 + 2048, gen_len=2048, samples=1)
    assert by["revise-1"][0]["latency_s"] == pytest.approx(one["latency_s"] + rev["latency_s"], rel=1e-9)
    four = estimate(m, h, prompt_len=150, gen_len=2048, samples=4)
    assert four["latency_s"] > one["latency_s"]  # the old bug costed single as the grid's first k


def test_a_new_strategy_is_only_a_graph():
    """revise-vote is defined by its graph alone and is costed and searched like the others:
    it costs more than majority at the same k (the revisions) and less than twice it."""
    from planner import accuracy

    m, h = load_model("qwen3-8b"), load_hardware("h100-sxm")
    space = Space(strategies=["majority", "revise-vote"], devices=[1], samples=[4], gen_lens=[2048],
                  quantizations=["bf16"], kv_dtypes=["bf16"], batches=[1], kv_budgets=[0], prompt_len=150)
    res = evaluate_space(space, [m], [h], [None], [accuracy.find_profile(m.name, "aime24")], accuracy_for_search,
                         precision="float64")
    maj, rv = (res.row(i) for i in range(2))
    assert (maj["strategy"], rv["strategy"]) == ("majority", "revise-vote")
    assert maj["cost_usd"] < rv["cost_usd"] < 3 * maj["cost_usd"]
    assert rv["accuracy"] == pytest.approx(maj["accuracy"])
