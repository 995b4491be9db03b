"""`planner recommend` end to end: JSON contract, budgets, objectives, default scenario,
verifier models, infeasibility accounting."""

from __future__ import annotations

import json

import pytest

from planner.cli import main
from planner.recommend import run
from planner.specs import RecommendScenario

KEYS = {"model", "hardware", "devices", "strategy", "samples", "gen_len", "weight_dtype", "kv_dtype", "batch",
        "kv_budget", "accuracy", "latency_s", "energy_j", "cost_usd", "bottleneck"}


def recommend_json(capsys, *args) -> dict:
    assert main(["recommend", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_acceptance_command_evaluates_a_million_configurations(capsys):
    d = recommend_json(capsys, "--task", "aime24", "--hardware", "h100-sxm")
    assert d["evaluated"] >= 1_000_000
    assert 0 < d["feasible"] <= d["evaluated"]
    assert d["feasible"] + sum(d["infeasible"].values()) == d["evaluated"]
    assert d["recommendations"] and KEYS <= set(d["recommendations"][0])
    assert d["frontier"] and KEYS <= set(d["frontier"][0])


def test_budgets_hold_and_frontier_is_monotone(capsys):
    d = recommend_json(capsys, "--task", "aime24", "--hardware", "h100-sxm", "--models", "qwen3-8b,qwen3-14b",
                       "--max-latency-s", "60", "--max-usd", "0.005", "--top", "5")
    assert d["status"] == "ok" and len(d["recommendations"]) == 5
    for r in d["recommendations"]:
        assert r["latency_s"] <= 60 and r["cost_usd"] <= 0.005
    accs = [r["accuracy"] for r in d["recommendations"]]
    assert accs == sorted(accs, reverse=True)
    front = d["frontier"]
    assert all(a["cost_usd"] < b["cost_usd"] and a["accuracy"] < b["accuracy"] for a, b in zip(front, front[1:]))
    # the best recommendation is on (or dominated by nothing in) the frontier
    assert max(r["accuracy"] for r in front) == pytest.approx(accs[0], abs=1e-6)


def test_min_cost_objective_meets_accuracy_floor():
    a = run(RecommendScenario(task="aime24", models=["qwen3-8b", "qwen3-14b"], objective="min-cost",
                              min_accuracy=0.7, top=3))
    costs = [r["cost_usd"] for r in a["recommendations"]]
    assert costs == sorted(costs) and all(r["accuracy"] >= 0.7 for r in a["recommendations"])


def test_no_sparse_keeps_dense_attention():
    a = run(RecommendScenario(task="aime24", models=["qwen3-8b"], sparse=False, top=5))
    assert all(r["kv_budget"] == 0 for r in a["recommendations"] + a["frontier"])


def test_nothing_meets_the_budget_exits_0_with_nearest(capsys):
    d = recommend_json(capsys, "--task", "aime24", "--models", "qwen3-8b", "--max-usd", "1e-9", "--top", "3")
    assert d["status"] == "no configuration meets the budgets"
    assert d["recommendations"] == [] and len(d["nearest"]) == 3


def test_a_cheaper_verifier_saves_what_its_stage_costs():
    """Brute force through the one-configuration API: swapping the 8B reward model for the
    0.6B one saves, per request, k reward-model requests (prompt + answer in, the reward
    tokens out, the k answers batched) priced by each model, and the stage's latency."""
    from planner import strategies as strat
    from planner.catalog import load_hardware, load_model
    from planner.cost.api import estimate

    k, gen = 8, 8192
    kw = dict(task="aime24", models=["qwen3-8b"], strategies=["best-of-k"], samples=[k], gen_lens=[gen],
              batches=[1], kv_budgets=[0], quantizations=["bf16"], kv_dtypes=["bf16"], devices=[1], top=1)
    self_v = run(RecommendScenario(**kw))
    small_v = run(RecommendScenario(verifier="qwen3-0.6b", **kw))
    (verify_len,) = [a["verify_len"] for _, a in strat.get("best-of-k").nodes(data=True) if a["op"] == "verify"]
    h100 = load_hardware("h100-sxm")

    def stage(model):
        return estimate(load_model(model), h100, batch=k, prompt_len=self_v["prompt_len"] + gen, gen_len=verify_len)

    big, small = stage("qwen3-8b"), stage("qwen3-0.6b")
    a, b = self_v["recommendations"][0], small_v["recommendations"][0]
    assert a["cost_usd"] - b["cost_usd"] == pytest.approx(k * (big["cost_usd"] - small["cost_usd"]), rel=1e-4)
    assert a["energy_j"] - b["energy_j"] == pytest.approx(k * (big["energy_j"] - small["energy_j"]), rel=1e-4)
    assert a["latency_s"] - b["latency_s"] == pytest.approx(big["latency_s"] - small["latency_s"], rel=1e-4)


def test_default_scenario_runs_without_flags(capsys):
    assert main(["recommend"]) == 0
    out = capsys.readouterr().out
    assert "recommended configurations" in out and "Pareto frontier" in out
    assert "max_latency_s=120" in out


def test_scenario_file_and_bad_values(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text("task: aime24\nmodels: [qwen3-4b]\nhardware: [b200]\nbatches: [1, 16]\nsamples: [1, 4]\n")
    d = recommend_json(capsys, "--scenario", str(f))
    assert {r["hardware"] for r in d["recommendations"]} == {"b200"}
    assert {r["batch"] for r in d["frontier"]} <= {1, 16}
    f.write_text("task: aime24\nbatches: [0]\n")
    assert main(["recommend", "--scenario", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "batches" in err and len(err.strip().splitlines()) == 1


def test_frontier_has_no_zero_accuracy_rows_unless_asked():
    kw = dict(task="aime24", models=["qwen3-0.6b", "qwen3-8b"], top=3)
    a = run(RecommendScenario(**kw))
    assert a["frontier"] and all(r["accuracy"] >= 0.001 for r in a["frontier"])
    b = run(RecommendScenario(show_zero_accuracy=True, **kw))
    assert any(r["accuracy"] < 0.001 for r in b["frontier"])  # qwen3-0.6b at short budgets solves nothing


def test_nearest_rows_keep_the_accuracy_floor_or_say_none_reaches_it():
    a = run(RecommendScenario(task="aime24", models=["qwen3-8b"], min_accuracy=0.6, max_usd=1e-7, top=4))
    assert a["status"] == "no configuration meets the budgets"
    assert a["nearest"] and all(r["accuracy"] >= 0.6 for r in a["nearest"])
    b = run(RecommendScenario(task="aime24", models=["qwen3-0.6b"], min_accuracy=0.99, top=4))
    assert b["status"].startswith("no configuration reaches the accuracy floor 0.99") and b["nearest"] == []


def test_ties_in_accuracy_go_to_the_cheaper_configuration():
    """max-accuracy ties (same model, strategy and budget under several batches) rank
    the cheapest first, then the fastest."""
    a = run(RecommendScenario(task="aime24", models=["qwen3-8b"], strategies=["single"], gen_lens=[8192],
                              quantizations=["bf16"], kv_dtypes=["bf16"], kv_budgets=[0], top=6))
    recs = a["recommendations"]
    assert len({r["accuracy"] for r in recs}) == 1
    keys = [(r["cost_usd"], r["latency_s"]) for r in recs]
    assert keys == sorted(keys)


def test_default_scenario_budgets_stay_under_other_flags(capsys):
    d = recommend_json(capsys, "--task", "math500", "--max-usd", "0.02", "--top", "2")
    assert d["budgets"] == {"max_latency_s": 120, "max_usd": 0.02}
    assert d["budget_sources"] == {"max_latency_s": "default scenario", "max_usd": "--max-usd"}
    d = recommend_json(capsys, "--task", "math500", "--no-budgets", "--top", "2")
    assert d["budgets"] == {} and d["budget_sources"] == {}
    assert main(["recommend", "--task", "math500", "--top", "1"]) == 0
    assert "max_latency_s=120 (default scenario), max_usd=0.01 (default scenario)" in capsys.readouterr().out
