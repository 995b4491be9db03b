"""The capacity report's layout axis (``search.layouts``, planner.layouts): the layout a
fleet row reports re-costs to the same figures through ``planner.estimate(ep=, dp=)`` (the
scalar API is the outside oracle: no grid broadcasting), ``[tp]`` is the plan without
layouts, more layouts never cost more, and a layout that cannot serve is exit 2 naming the
file, the field and the value."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import planner
from planner.capacity import CapacityScenario, check_layouts, resolve
from planner.cli import main
from planner.cost.api import estimate as api_estimate
from planner.engine_profiles import load_engine
from planner.sizing import plan

ROOT = Path(__file__).resolve().parent.parent


def _scn(layouts=None, models=("qwen3-30b-a3b",), **search):
    s = {"max_devices": 4, "quantizations": ["bf16"], "kv_dtypes": ["fp8"], "concurrency": [16, 64]}
    s.update(search)
    if layouts is not None:
        s["layouts"] = layouts
    return CapacityScenario.model_validate({
        "traffic": {"requests_per_s": 10, "prompt_len": {"p50": 800, "p90": 2000}, "gen_len": 400},
        "slo": {"percentile": 90, "ttft_s": 3.0, "tpot_s": 0.08}, "models": list(models), "hardware": ["h200"],
        "search": s})


def _plan(scn):
    models, hardware = resolve(scn)
    if scn.search.layouts is not None:
        check_layouts(scn, models, hardware)
    return plan(scn, models, hardware)


@pytest.fixture(scope="module")
def wide():
    """Expert and attention data parallel layouts only (explicit), so the chosen rows are not tp."""
    return _plan(_scn([{"tp": 2, "ep": 2}, {"tp": 1, "dp": 2, "ep": 2}, {"tp": 2, "dp": 2, "ep": 4}]))


def test_the_reported_layout_recosts_through_estimate(wide):
    ok = [c for c in wide["candidates"] if c["status"] == "ok"]
    assert ok
    for c in ok:
        cf, pr, lay = c["config"], c["per_replica"], c["config"]["layout"]
        assert lay["ep"] > 1 and cf["devices"] == lay["tp"] * lay["pp"] * lay["dp"]
        common = dict(devices=lay["tp"], ep=lay["ep"], dp=lay["dp"], prompt_len=cf["prompt_len"],
                      gen_len=cf["gen_len"], weight_dtype=cf["weight_dtype"], act_dtype=cf["act_dtype"],
                      kv_dtype=cf["kv_dtype"])
        full = planner.estimate(c["model"], c["hardware"], concurrency=cf["concurrency"], **common)
        assert pr["full_load_throughput_tok_s"] == pytest.approx(full["throughput_tok_s"], rel=1e-6)
        assert pr["energy_j_per_request"] == pytest.approx(full["energy_j"], rel=1e-6)
        assert pr["memory_bytes_per_device"] == pytest.approx(full["memory"]["total_bytes"], rel=1e-6)
        assert full["memory"]["fits"]
        # the replica runs at most C (max_num_seqs): the engine's running limit in estimate
        capped = load_engine(None).model_copy(update={"max_running": cf["concurrency"]})
        est = api_estimate(c["model"], c["hardware"], arrival="poisson", rate=pr["requests_per_s"], engine=capped,
                           **common)
        assert not est["unbounded"]
        assert pr["ttft_s"] == pytest.approx(est["ttft_s"], rel=1e-6)
        assert pr["tpot_s"] == pytest.approx(est["tpot_s"], rel=1e-6)
        # the fleet counts every device of the layout
        assert c["fleet"]["devices"] == c["fleet"]["replicas"] * cf["devices"]
        assert c["fleet"]["replicas_needed"] == math.ceil(10 * 1.3 / pr["requests_per_s"] - 1e-9)
        for o in c["options"]:
            assert o["devices"] == o["layout"]["tp"] * o["layout"]["dp"]


def test_tp_layouts_are_the_plan_without_layouts():
    base, tp = _plan(_scn(None, max_devices=2)), _plan(_scn(["tp"], max_devices=2))
    for a, b in zip(base["candidates"], tp["candidates"]):
        assert b["config"].pop("layout") == {"tp": a["config"]["devices"], "pp": 1, "dp": 1, "ep": 1}
        for o in b["options"]:
            o.pop("layout")
        assert a == b


def test_more_layouts_never_cost_more():
    """The search over tp and ep layouts contains the tp-only search: its cheapest fleet is
    never dearer (brute force: the same grid with fewer layouts)."""
    tp = _plan(_scn(["tp"], max_devices=2))["candidates"][0]
    both = _plan(_scn(["tp", "ep"], max_devices=2))["candidates"][0]
    assert both["status"] == "ok"
    assert both["fleet"]["monthly_usd"] <= tp["fleet"]["monthly_usd"] * (1 + 1e-12)


def test_dense_models_skip_expert_layouts():
    c = _plan(_scn(["tp", "ep"], models=("qwen3-8b",), max_devices=2))["candidates"][0]
    assert c["status"] == "ok" and c["config"]["layout"]["ep"] == 1


@pytest.fixture(scope="module")
def piped():
    """Pipeline layouts only (explicit), so the chosen rows have pp stages."""
    return _plan(_scn([{"tp": 1, "pp": 2}, {"tp": 2, "pp": 2}, {"tp": 1, "pp": 4}], models=("qwen3-32b",),
                      max_devices=4))


def test_a_pipeline_layout_recosts_and_simulates_as_sized(piped):
    """A replica of pp stages: its full-load figures are ``planner.estimate(pp=)``'s (the
    scalar API: C requests in pp microbatches), and at the rate it is sized for the
    discrete-event simulator with pp stages (planner.cost.simulate_pipeline) gives the
    mean TPOT the report states, within 10%. (Its mean TTFT is not compared there: the
    rate sits where the p90 TTFT meets its SLO through the wait for one of the C running
    slots, a queue at the edge of saturation whose finite-run mean swings by 2x from seed
    to seed, tensor parallel rows alike; tests/test_pipeline_open_loop.py compares TTFT
    below it.)"""
    import numpy as np

    from planner.catalog import load_hardware, load_model
    from planner.cost.api import columns
    from planner.cost.context import Ctx
    from planner.cost.layout import send_coefficients
    from planner.cost.serving import effective_budget
    from planner.cost.simulate_pipeline import simulate_pipeline
    from planner.cost.steps import StepTable
    from planner.cost.tables import HardwareTable, ModelTable
    from planner.dtypes import BITS

    c = piped["candidates"][0]
    assert c["status"] == "ok"
    cf, pr, lay = c["config"], c["per_replica"], c["config"]["layout"]
    assert lay["pp"] > 1 and cf["devices"] == lay["tp"] * lay["pp"]
    assert pr["max_running"] == cf["concurrency"]  # the KV memory does not cap it here
    common = dict(devices=lay["tp"], pp=lay["pp"], prompt_len=cf["prompt_len"], gen_len=cf["gen_len"],
                  weight_dtype=cf["weight_dtype"], act_dtype=cf["act_dtype"], kv_dtype=cf["kv_dtype"])
    full = planner.estimate(c["model"], c["hardware"], concurrency=cf["concurrency"], **common)
    assert pr["full_load_throughput_tok_s"] == pytest.approx(full["throughput_tok_s"], rel=1e-6)
    assert pr["energy_j_per_request"] == pytest.approx(full["energy_j"], rel=1e-6)
    assert pr["memory_bytes_per_device"] == pytest.approx(full["memory"]["total_bytes"], rel=1e-6)
    assert c["fleet"]["devices"] == c["fleet"]["replicas"] * cf["devices"]
    m, h = load_model(c["model"]), load_hardware(c["hardware"])
    cols = columns(1, model=0, hardware=0, devices=lay["tp"], batch=1, concurrency=1, prompt_len=cf["prompt_len"],
                   gen_len=cf["gen_len"], samples=1, kv_budget=0, prefix_sharing=False, weight_dtype=cf["weight_dtype"],
                   act_dtype=cf["act_dtype"], kv_dtype=cf["kv_dtype"])
    eng = load_engine(None)
    budget = int(effective_budget(eng.token_budget, cf["prompt_len"], 1, eng.chunked_prefill))
    lat, per_tok = send_coefficients(h, m.hidden_size, BITS[cf["act_dtype"]] / 8.0)
    sim = simulate_pipeline(StepTable(Ctx(cols, ModelTable.build([m]), HardwareTable.build([h], [None])), budget + 1,
                                      eng.host_step_s), pp=lay["pp"], send_lat_s=lat, send_s_per_token=per_tok,
                            prompt_len=cf["prompt_len"], gen_len=cf["gen_len"], token_budget=budget,
                            max_running=cf["concurrency"], chunked=eng.chunked_prefill, mixed=eng.mixed_batches,
                            arrival="poisson", rate=pr["requests_per_s"], n_requests=3000, seed=5)
    assert pr["tpot_s"] == pytest.approx(np.mean(sim["tpot"][300:]), rel=0.10)


def test_pipeline_layouts_show_in_the_report(tmp_path):
    data = yaml.safe_load((ROOT / "examples" / "capacity_layouts.yaml").read_text())
    data["search"]["layouts"] = [{"tp": 1, "pp": 2}]
    path = tmp_path / "pp.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["report", str(path), "-o", str(tmp_path / "r.md")]) == 0
    assert "tp1 pp2" in (tmp_path / "r.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("layouts, field, why", [
    (["tp", {"tp": 8, "dp": 2}], "search.layouts[1]", "devices per replica"),
    ([{"tp": 2, "ep": 3}], "search.layouts[0]", "experts"),
    (["tp*xx"], "search.layouts", "unknown layout family"),
    ([{"tp": 2, "zz": 2}], "search.layouts", "unknown layout factor"),
])
def test_a_layout_that_cannot_serve_is_exit_2(tmp_path, capsys, layouts, field, why):
    data = yaml.safe_load((ROOT / "examples" / "capacity_layouts.yaml").read_text())
    data["search"]["layouts"] = layouts
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["report", str(bad), "-o", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.yaml" in err and f"'{field}" in err and why in err
    assert not (tmp_path / "r.md").exists()
