"""The host time per running request per step (planner.serving_params
``step_host_s_per_request``; planner.cost.steps.step_time): recovered by the fit from
synthetic runs, what it adds to a closed loop's decode steps, the simulator's steps
agreeing with the analytic ones, one value shared by the pooled fit's pairs, and not
carried to a device nobody measured."""

from __future__ import annotations

import pytest
from test_measured_fit import TRUE, synthetic

from planner import serving_params as SP
from planner import serving_carry as SC
from planner.catalog import load_hardware
from planner.cost.api import estimate
from planner.engine_profiles import load_engine
from planner.measured import read_measured
from planner.serving_fit import fit_all
from planner.serving_profile import load_serving, resolve_serving

PER_REQUEST_S = 2e-5


def test_fit_recovers_a_per_request_host_time(tmp_path):
    """Synthetic runs at 1 to 128 in flight under a known per-request host time beside a
    known fixed host time per step: the fit gives both back (the two are told apart by how
    the step time grows with the requests in flight)."""
    truth = {**TRUE, "step_host_s_per_request": PER_REQUEST_S}
    f = fit_all(read_measured(synthetic(tmp_path, truth)))["h100-sxm/vllm"]
    assert f.values["step_host_s_per_request"] == pytest.approx(PER_REQUEST_S, rel=0.05)
    assert f.values["step_host_s"] == pytest.approx(TRUE["step_host_s"], rel=0.05)
    assert f.rms_log_tpot < 1e-3


@pytest.mark.parametrize("concurrency", [8, 64])
def test_a_decode_step_pays_it_once_per_request_in_flight(concurrency):
    """A closed loop whose prompts are negligible next to its generation: TPOT rises by the
    per-request time times the requests decoding in each step (all of them), the fixed host
    time per step unchanged."""
    h200, vllm = load_hardware("h200"), load_engine("vllm")
    base = {**SP.defaults(h200, vllm), "step_host_s": 1e-4, "wave_sync": 0.0, "request_overhead_s": 0.0}
    kw = dict(devices=1, concurrency=concurrency, prompt_len=16, gen_len=2048, engine=vllm, arrival="closed")
    plain = estimate("llama-3.1-8b", h200, serving=base, **kw)
    paid = estimate("llama-3.1-8b", h200, serving={**base, "step_host_s_per_request": PER_REQUEST_S}, **kw)
    gain_s = paid["tpot_s"] - plain["tpot_s"]
    assert gain_s == pytest.approx(PER_REQUEST_S * concurrency, rel=0.02)


def test_the_simulator_pays_it_as_the_analytic_loop_does():
    """The discrete-event simulator's steps carry the same per-request time: its mean TPOT
    and the analytic closed loop's agree within the 5% the two agree within without it."""
    from planner.catalog import load_model
    from planner.cost.serving_api import simulate_estimate

    h200, vllm, llama = load_hardware("h200"), load_engine("vllm"), load_model("llama-3.1-8b")
    eng = vllm.model_copy(update={"host_request_us": 50.0})
    kw = dict(devices=1, concurrency=32, prompt_len=512, gen_len=256, engine=eng)
    analytic = estimate(llama, h200, arrival="closed", **kw)
    sim = simulate_estimate(llama, h200, arrival="closed", n_requests=320, **kw)
    without = estimate(llama, h200, arrival="closed", **{**kw, "engine": vllm})
    assert analytic["tpot_s"] > without["tpot_s"] + 32 * 50e-6 * 0.8  # the time is there
    assert sim["tpot"]["mean_s"] == pytest.approx(analytic["tpot_s"], rel=0.05)


def test_one_shipped_value_for_every_pair_and_none_carried():
    """The pooled fit shares the value across devices and engines (Param.shared); the
    shipped profiles hold it, a fitted pair's engine takes it, and a device nobody measured
    takes 0 (serving_carry.SCHEDULER leaves it out of what carries)."""
    shipped = {k: v["step_host_s_per_request"] for k, (_, v) in load_serving().items()}
    assert len(shipped) >= 6 and len(set(shipped.values())) == 1
    value = next(iter(shipped.values()))
    assert 0 < value <= SP.BY_NAME["step_host_s_per_request"].hi
    vllm = load_engine("vllm")
    assert resolve_serving(load_hardware("h200"), vllm).engine.host_request_us == pytest.approx(value * 1e6)
    b200 = resolve_serving(load_hardware("b200"), vllm)
    assert b200.path == "carried" and b200.engine.host_request_us == 0.0
    assert "step_host_s_per_request" not in SC.SCHEDULER and "step_host_s" in SC.SCHEDULER
