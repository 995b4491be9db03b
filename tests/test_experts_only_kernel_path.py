"""An experts-only 4-bit checkpoint (``Model.quantized_experts_only``: gpt-oss's MXFP4 keeps
attention and the router in bf16, config.json ``quantization_config.modules_to_not_convert``) on a
device whose per-kernel time is carried by GEMM path (planner.kernel_paths): its attention GEMMs pay
the bf16 path's fixed time and compute at the bf16 rate.

Oracles: NVIDIA's published kernel tables (the decode GEMM floors recomputed by
benchmarks/published_kernels.py from tests/data/aiconfigurator-kernels.csv), the factor by hand
from those figures, and brackets between the same model quantized everywhere and in bf16."""

from __future__ import annotations

import os
import sys

import pytest

from planner import kernel_paths as KP
from planner import serving_params as SP
from planner import serving_carry as SC
from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEV_MIX = {"bf16": 246, "fp8": 868}  # the dev file's rows by tabled GEMM path (the shipped profiles' provenance.gemm_mix)


def test_the_gemm_floors_are_the_published_tables():
    """GEMM_T0_US against the decode-GEMM line fit of benchmarks/published_kernels.py on the shipped
    CSV: every system and path, to the 1 decimal kept."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import published_kernels as P

    rows = P.load()
    for system, table in KP.GEMM_T0_US.items():
        d = P.derive(rows, system, *P._hardware(system))
        assert set(table) == set(KP.COMPOSITE_US[system]), system
        for path, us in table.items():
            assert d[f"decode_gemm_{path}"]["t0_s"] * 1e6 == pytest.approx(us, abs=0.051), (system, path)


def test_blackwell_experts_only_fp4_factor_by_hand():
    """Blackwell family (B200, GB200, B300): the nvfp4 layer composite less 2 of its 4 GEMMs moved from
    the nvfp4 floor to the bf16 one, over the fitted mix's reference (the same as the plain factors')."""
    comp = {"b200_sxm": (9.49, 11.1, 4.6), "gb200": (9.02, 10.6, 3.5), "b300_sxm": (8.78, 10.0, 4.6)}
    eo = sum(t - 2 * (t0 - t0_bf16) / 7 for t, t0, t0_bf16 in comp.values()) / 3
    bf16, fp8 = (5.78 + 4.95 + 5.70) / 3, (11.84 + 11.30 + 11.41) / 3
    ref = (246 * bf16 + 868 * fp8) / 1114
    f = KP.kernel_factors(load_hardware("b200"), DEV_MIX, experts_only=True)
    assert f["fp4"] == pytest.approx(eo / ref, rel=1e-12)
    assert f["fp4"] == pytest.approx(0.716, abs=0.001)
    assert f["bf16"] == pytest.approx(KP.kernel_factors(load_hardware("b200"), DEV_MIX)["bf16"])  # bf16: nothing moves
    assert KP.kernel_factors(load_hardware("a100-sxm-80gb"), DEV_MIX, experts_only=True) == {}  # no table: the scalar


def _carried_b200():
    params = {"h100-sxm/vllm": ("fit", SP.Values({"kernel_time_s": 7e-6, "step_host_s": 1e-4, "link_efficiency": 0.5},
                                                gemm_mix=DEV_MIX)),
              "h200/vllm": ("fit", SP.Values({"kernel_time_s": 9e-6, "step_host_s": 2e-4, "link_efficiency": 0.6},
                                            gemm_mix=DEV_MIX))}
    hw = load_hardware("b200")
    name, vals = SC.unmeasured(hw, "vllm", None, params)
    return hw, SP.efficiency(hw, vals, name)


def _overhead_s(model, hw, eff, weight, act, concurrency):
    kw = dict(efficiency=eff, concurrency=concurrency, gen_len=64, prompt_len=256)
    return estimate(model, hw, weight_dtype=weight, act_dtype=act, **kw)["time_by_bound_s"]["overhead"]


@pytest.mark.parametrize("concurrency", [0, 4])  # the scalar fast path and the vectorized closed loop
def test_experts_only_launch_time_on_b200(concurrency):
    """gpt-oss-120b on B200 with the carried time, same kernel count: the fp4 checkpoint of the
    experts alone over the same model quantized everywhere pays the tables' experts-only / plain
    nvfp4 composite ratio; an fp8 checkpoint (every linear layer 8-bit) and a weight-only row (fp4
    weights, bf16 math: the scalar) pay the same either way."""
    hw, eff = _carried_b200()
    m = load_model("gpt-oss-120b")
    everywhere = m.model_copy(update={"quantized_experts_only": False})
    ratio = {(w, a): _overhead_s(m, hw, eff, w, a, concurrency) / _overhead_s(everywhere, hw, eff, w, a, concurrency)
             for w, a in (("fp4", "fp4"), ("fp8", "fp8"), ("fp4", "bf16"))}
    eo, plain = KP.table_of(hw, experts_only=True)["nvfp4"], KP.table_of(hw)["nvfp4"]
    assert ratio["fp4", "fp4"] == pytest.approx(eo / plain, rel=1e-6)
    assert ratio["fp8", "fp8"] == pytest.approx(1.0, rel=1e-9)
    assert ratio["fp4", "bf16"] == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("concurrency", [0, 4])
def test_experts_only_prefill_between_all_4bit_and_bf16_gemms_on_b200(concurrency):
    """An 8,192-token prompt of gpt-oss-120b on one B200 in fp4: the experts-only checkpoint's attention
    GEMMs at the bf16 rate make the prefill slower than the same model quantized everywhere (all fp4
    math) and faster than every GEMM at bf16; on H200 (no fp4 units, bf16 math) the two checkpoints'
    GEMMs compute alike."""
    hw, eff = _carried_b200()
    m = load_model("gpt-oss-120b")
    everywhere = m.model_copy(update={"quantized_experts_only": False})
    kw = dict(efficiency=eff, concurrency=concurrency, prompt_len=8192, gen_len=2, weight_dtype="fp4")
    eo = estimate(m, hw, act_dtype="fp4", **kw)["prefill_s"]
    all_fp4 = estimate(everywhere, hw, act_dtype="fp4", **kw)["prefill_s"]
    assert all_fp4 < eo < estimate(m, hw, act_dtype="bf16", **kw)["prefill_s"]
