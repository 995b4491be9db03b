"""The discrete-event simulator on expert-parallel and attention data-parallel layouts
(``planner estimate --simulate --ep / --dp``): ep and attn_dp only change what a step
costs, so the simulated closed loop must agree with the analytic one on those layouts as
it does on tensor-parallel ones, and move with ep the way the analytic model moves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cli import main
from planner.cost.api import columns, estimate
from planner.cost.context import Ctx
from planner.cost.serving_api import simulate_estimate
from planner.cost.steps import StepTable, step_time
from planner.cost.tables import HardwareTable, ModelTable
from planner.engine_profiles import load_engine

# (tp devices, ep, attention dp) on h200: tensor parallel, ep8, dp4 x ep8 (8 devices each)
LAYOUTS = ((8, 1, 1), (8, 8, 1), (2, 8, 4))
BASELINES = ((2, 1, 4),)  # dp4 without expert parallelism: the ep8 x dp4 layout's reference
P, G = 1024, 256


@pytest.fixture(scope="module")
def runs():
    m, h, eng = load_model("deepseek-v3"), load_hardware("h200"), load_engine("vllm")
    out = {}
    for tp, ep, dp in LAYOUTS + BASELINES:
        for C in (16, 64):
            kw = dict(devices=tp, concurrency=C, prompt_len=P, gen_len=G, weight_dtype="fp8", act_dtype="fp8",
                      kv_dtype="bf16", engine=eng, ep=ep, dp=dp)
            out[tp, ep, dp, C] = (estimate(m, h, arrival="closed", **kw), simulate_estimate(m, h, **kw))
    return out


def test_simulated_layouts_agree_with_the_analytic_closed_loop(runs):
    """The tolerance of tests/test_serving.py's agreement grid: no point off by 25%; the
    decode rate, which the scheduler barely shapes, within 5% (its Poisson check)."""
    for key, (a, s) in runs.items():
        assert s["ep"] == key[1] and s["dp"] == key[2]
        r_tpot, r_ttft = a["tpot_s"] / s["tpot"]["mean_s"], a["ttft_s"] / s["ttft"]["mean_s"]
        assert abs(r_tpot - 1.0) < 0.05, (key, r_tpot)
        assert abs(r_ttft - 1.0) < 0.25, (key, r_ttft)


@pytest.mark.parametrize("dp", [1, 4])
def test_expert_parallelism_moves_simulated_and_analytic_alike(runs, dp):
    """ep 8 against ep 1 (same devices): the simulated mean TPOT and TTFT change in the
    analytic model's direction and by its ratio within 5% (the all-to-all costs more than
    it saves at 16 clients and less at 64 on these layouts, so both directions are seen)."""
    tp = 8 // dp
    signs = set()
    for C in (16, 64):
        a1, s1 = runs[tp, 1, dp, C]
        a8, s8 = runs[tp, 8, dp, C]
        for key in ("tpot", "ttft"):
            ra = a8[f"{key}_s"] / a1[f"{key}_s"]
            rs = s8[key]["mean_s"] / s1[key]["mean_s"]
            assert np.sign(ra - 1.0) == np.sign(rs - 1.0), (C, key, ra, rs)
            assert rs == pytest.approx(ra, rel=0.05), (C, key, ra, rs)
            signs.add(np.sign(ra - 1.0))
    assert len(signs) == 2


@pytest.mark.parametrize("tp, ep, dp", LAYOUTS)
def test_step_table_matches_step_time_on_layouts(tp, ep, dp):
    """The simulator's tabulated step equals the vectorized step time with the layout's columns."""
    mt = ModelTable.build([load_model("deepseek-v3")])
    ht = HardwareTable.build([load_hardware("h200")], [None])
    x = Ctx(columns(1, model=0, hardware=0, devices=tp, batch=1, concurrency=1, prompt_len=P, gen_len=G,
                    samples=1, kv_budget=0, prefix_sharing=False, weight_dtype="fp8", act_dtype="fp8",
                    kv_dtype="bf16", ep=ep, attn_dp=dp), mt, ht)
    tab = StepTable(x, 4200, 1e-3)
    # the simulator's table names its prompt (1,399 tokens: mean causal context 700, as step_time infers)
    named = StepTable(x, 4200, 1e-3, prompt_len=1399.0)
    for d, p in ((1, 0), (64, 0), (32, 2048), (0, 4096)):
        ref = float(step_time(x, float(d), float(p), float(d + 1), 1500.0, 700.0, 1e-3)[0])
        assert tab.time(d, p, d + 1, 1500.0, 700.0) == pytest.approx(ref, rel=1e-12)
        assert named.time(d, p, d + 1, 1500.0, 700.0) == pytest.approx(ref, rel=1e-12)
        # the array form (decode stretches, the pipeline simulator) agrees with the scalar one
        assert float(tab.times(d, p, d + 1, 1500.0, 700.0)) == pytest.approx(ref, rel=1e-12)


def test_simulate_cli_runs_ep_and_dp(capsys):
    assert main(["estimate", "--model", "deepseek-v3", "--hardware", "h200", "--devices", "2", "--dp", "4",
                 "--ep", "8", "--weight-dtype", "fp8", "--act-dtype", "fp8", "--concurrency", "32",
                 "--prompt-len", "1024", "--gen-len", "128", "--engine", "vllm", "--simulate", "--json"]) == 0
    sim = json.loads(capsys.readouterr().out)["simulation"]
    assert sim["ep"] == 8 and sim["dp"] == 4 and sim["requests"] == 320
    assert 0.0 < sim["tpot"]["mean_s"] <= sim["tpot"]["p99_s"] * (1.0 + 1e-12)  # equal TPOTs: a mean may round one ulp above
