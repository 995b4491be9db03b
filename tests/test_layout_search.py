"""The recommend search's layout axis (planner.layouts): rows with pipeline, expert and
attention data parallel layouts re-costed one at a time through ``planner.estimate(...,
pp=, ep=, dp=)`` (the outside oracle: the scalar API, no search broadcasting); the
search over more layouts never does worse than tensor parallelism alone, and its plain
tensor-parallel rows are exactly those of a search without layouts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from planner import estimate
from planner import strategies as strat
from planner.catalog import load_hardware, load_model
from planner.layouts import Layout, expand, family_layouts
from planner.recommend import accuracy_for_search
from planner.search import Space, evaluate_space

LAYOUTS = ["tp", "tp*pp", "ep", "tp*dp*ep", {"tp": 2, "pp": 2, "dp": 2, "ep": 4}]


def test_families_expand_to_the_layouts_that_divide_the_devices():
    assert set(family_layouts("tp*pp", 8)) == {Layout(8), Layout(4, 2), Layout(2, 4), Layout(1, 8)}
    assert set(family_layouts("tp*dp*ep", 8)) == {Layout(8, 1, 1, 8), Layout(4, 1, 2, 8), Layout(2, 1, 4, 8),
                                                  Layout(1, 1, 8, 8)}
    assert family_layouts("ep", 4) == [Layout(4, 1, 1, 4)]
    axis = expand(["tp", "tp*pp", {"tp": 2, "pp": 2}], [1, 2, 4])
    assert len(axis) == len(set(axis)) and all(x.devices in (1, 2, 4) for x in axis)
    assert axis[0] == Layout(1) and Layout(2, 2).label() == "tp2 pp2"
    assert Layout(2, 1, 4, 8).label() == "tp2 ep8 dp4"


def _space(layouts):
    return Space(strategies=["single", "majority"], devices=[2, 4, 8], samples=[4], gen_lens=[2048],
                 quantizations=["bf16", "fp8"], kv_dtypes=["fp8"], batches=[1, 16, 64], kv_budgets=[0, 512],
                 prompt_len=150, layouts=None if layouts is None else expand(layouts, [2, 4, 8]))


@pytest.fixture(scope="module")
def searched():
    from planner import accuracy

    models = [load_model("qwen3-30b-a3b"), load_model("qwen3-8b")]
    hw = [load_hardware("h100-sxm")]
    profiles = [accuracy.find_profile(m.name, "aime24") for m in models]
    run = {name: evaluate_space(_space(lays), models, hw, [None], profiles, accuracy_for_search, precision="float64")
           for name, lays in (("layouts", LAYOUTS), ("tp", None))}
    return models, hw, run


def test_layout_rows_recost_through_estimate(searched):
    """Rows with pp, ep and dp > 1 equal planner.estimate's answer for that layout (1e-6)."""
    models, hw, run = searched
    res = run["layouts"]
    rng = np.random.default_rng(3)
    ok = np.flatnonzero(res.feasible)
    rows = [res.row(int(i)) for i in ok]
    kinds = {"pp": [], "ep": [], "dp": []}
    for r in rows:
        for f in kinds:
            if r["layout"][f] > 1:
                kinds[f].append(r)
    checked = 0
    for f, cand in kinds.items():
        assert cand, f"no feasible row with {f} > 1"
        for j in rng.choice(len(cand), size=min(8, len(cand)), replace=False):
            r = cand[int(j)]
            lay = r["layout"]
            assert r["devices"] == lay["tp"] * lay["pp"] * lay["dp"]
            m = next(x for x in models if x.name == r["model"])
            k = r["samples"]
            requests = k if r["strategy"] == "majority" else 1  # generate: B requests of k samples
            e = estimate(m, hw[0], devices=lay["tp"], pp=lay["pp"], ep=lay["ep"], dp=lay["dp"], batch=r["batch"],
                         prompt_len=150, gen_len=r["gen_len"], samples=k if requests > 1 else 1,
                         weight_dtype=r["weight_dtype"], act_dtype=r["act_dtype"], kv_dtype=r["kv_dtype"],
                         kv_budget=r["kv_budget"])
            assert strat.get(r["strategy"]) is not None
            assert r["latency_s"] == pytest.approx(e["latency_s"], rel=1e-6)
            assert r["energy_j"] == pytest.approx(e["energy_j"], rel=1e-6)
            assert r["cost_usd"] == pytest.approx(e["cost_usd"], rel=1e-6)
            assert e["memory"]["fits"]
            checked += 1
    assert checked >= 12


def test_layouts_never_do_worse_than_tensor_parallel(searched):
    """Property: per (model, device count, configuration), the best layout's latency and
    dollars are at most plain TP's; the plain-TP rows are the TP-only search's exactly;
    the best row over layouts is at least as accurate within the same budget."""
    models, hw, run = searched
    a, b = run["layouts"], run["tp"]
    idx_a = {}
    for i in np.flatnonzero(a.feasible):
        r = a.row(int(i))
        key = tuple((k, v) for k, v in r.items() if k not in ("layout", "accuracy", "latency_s", "energy_j",
                                                             "cost_usd", "bottleneck"))
        idx_a.setdefault(key, []).append(r)
    seen_better = 0
    for i in np.flatnonzero(b.feasible):
        r = b.row(int(i))
        key = tuple((k, v) for k, v in r.items() if k not in ("layout", "accuracy", "latency_s", "energy_j",
                                                             "cost_usd", "bottleneck"))
        group = idx_a[key]
        tp = [x for x in group if x["layout"] == {"tp": r["devices"], "pp": 1, "dp": 1, "ep": 1}]
        assert len(tp) == 1 and tp[0]["latency_s"] == r["latency_s"] and tp[0]["cost_usd"] == r["cost_usd"]
        assert min(x["latency_s"] for x in group) <= r["latency_s"]
        assert min(x["cost_usd"] for x in group) <= r["cost_usd"]
        seen_better += min(x["cost_usd"] for x in group) < r["cost_usd"]
    assert seen_better > 0  # some layout beats TP on dollars somewhere
    for budget in (1e-4, 1e-3, 1e-2):
        best = [float(np.max(np.where(res.feasible & (res.cols["cost_usd"] <= budget), res.cols["accuracy"], -1)))
                for res in (a, b)]
        assert best[0] >= best[1]


def test_a_dense_model_gets_no_expert_layout(searched):
    models, hw, run = searched
    res = run["layouts"]
    for i in np.flatnonzero(res.feasible):
        r = res.row(int(i))
        if r["model"] == "qwen3-8b":
            assert r["layout"]["ep"] == 1


def test_bad_layouts_exit_2_naming_the_field(tmp_path):
    for bad in ('["tp*xx"]', '[{"tp": 2, "zz": 1}]', '[{"tp": 0}]', "[]"):
        p = tmp_path / "s.yaml"
        p.write_text(f"task: aime24\nlayouts: {bad}\n")
        out = subprocess.run([sys.executable, "-m", "planner", "recommend", "--scenario", str(p)], capture_output=True,
                             text=True)
        assert out.returncode == 2, (bad, out.stderr)
        assert "layouts" in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_recommend_json_rows_carry_the_layout(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("task: aime24\nmodels: [qwen3-30b-a3b]\ndevices: [8]\nlayouts: [tp, ep]\nsamples: [4]\n"
                 "gen_lens: [4096]\nbatches: [16]\nkv_budgets: [0]\n")
    out = subprocess.run([sys.executable, "-m", "planner", "recommend", "--scenario", str(p), "--json", "--top", "50"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)["recommendations"]
    labels = {(r["layout"]["tp"], r["layout"]["ep"]) for r in rows}
    assert labels == {(8, 1), (8, 8)}
    text = subprocess.run([sys.executable, "-m", "planner", "recommend", "--scenario", str(p), "--wide"],
                          capture_output=True, text=True, check=True).stdout
    assert "tp8 ep8" in text and "layout" in text
