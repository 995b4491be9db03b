"""The decode step's fitted physics (planner.serving_params: kernel_time_s,
link_efficiency), each against an oracle counted by hand from the model's published
config.json and the device's datasheet, plus the monotonicity of the step in the batch
under any physical values (the fit's recovery of known values: test_measured_fit)."""

from __future__ import annotations

import numpy as np
import pytest

from planner import serving_params as SP
from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate

H100 = load_hardware("h100-sxm")
H200 = load_hardware("h200")


def _eff(hw, **values):
    return SP.efficiency(hw, values, "test")


def test_link_efficiency_scales_exactly_the_ring_bandwidth_term():
    """Llama-3.1-70B (config.json: 80 layers, hidden 8192) on 8x H100: a decode step of S
    sequences runs two all-reduces per layer of S x 8192 bf16 values; a ring moves
    2 (t-1)/t of the message per device over NVLink (450 GB/s per direction) at the
    achieved fraction e. Halving e adds exactly that bandwidth term once more; the
    small-message latency does not change."""
    m = load_model("llama-3.1-70b")
    assert (m.num_layers, m.hidden_size) == (80, 8192)
    S, t = 32, 8
    kw = dict(devices=t, batch=S, prompt_len=512, gen_len=8, weight_dtype="fp8", act_dtype="bf16")
    e = 0.6
    a = estimate(m, H100, efficiency=_eff(H100, link_efficiency=e), **kw)["tpot_s"]
    b = estimate(m, H100, efficiency=_eff(H100, link_efficiency=e / 2), **kw)["tpot_s"]
    ring_s = 2 * 80 * 2 * (t - 1) / t * S * 8192 * 2 / (H100.interconnect_gbps * 1e9 * e)
    assert b - a == pytest.approx(ring_s, rel=1e-6)


def test_kernel_time_is_paid_by_every_kernel_of_a_step():
    """DeepSeek-R1 (61 layers, the first 3 dense): 8 kernels per layer, 4 more per MoE
    layer, 2 more per pass; every one pays the fixed kernel time."""
    m = load_model("deepseek-r1")
    kw = dict(devices=8, batch=2, prompt_len=128, gen_len=4, weight_dtype="fp8", act_dtype="fp8")
    a = estimate(m, H200, efficiency=_eff(H200, kernel_time_s=2e-6), **kw)["tpot_s"]
    b = estimate(m, H200, efficiency=_eff(H200, kernel_time_s=12e-6), **kw)["tpot_s"]
    assert b - a == pytest.approx((8 * 61 + 4 * 58 + 2) * 10e-6, rel=1e-9)


@pytest.mark.parametrize("model,hw,devices", [("llama-3.1-8b", H100, 1), ("qwen3-235b-a22b", H200, 4),
                                              ("gpt-oss-120b", H200, 1)])
def test_tpot_grows_with_the_batch_under_any_physical_parameters(model, hw, devices):
    rng = np.random.default_rng(7)
    m = load_model(model)
    for _ in range(4):
        vals = {p.name: float(rng.uniform(max(p.lo, 0.05 * p.hi), p.hi)) for p in SP.PARAMS
                if p.name in ("memory_efficiency", "compute_efficiency", "kernel_time_s", "link_efficiency")}
        eff = _eff(hw, **vals)
        prev = 0.0
        for b in (1, 2, 4, 8, 16, 32, 64, 128):
            t = estimate(m, hw, devices=devices, batch=b, prompt_len=1024, gen_len=64, weight_dtype="fp8",
                         act_dtype="bf16", efficiency=eff)["tpot_s"]
            assert t >= prev * (1 - 1e-12), (vals, b)
            prev = t


def test_profiles_without_the_new_parameters_take_their_datasheet_defaults():
    eff = SP.efficiency(H100, {"memory_efficiency": 0.7, "compute_efficiency": 0.5}, "old profile")
    assert eff.interconnect == H100.interconnect_efficiency
    assert eff.kernel_overhead_s == pytest.approx(H100.kernel_overhead_us * 1e-6)
