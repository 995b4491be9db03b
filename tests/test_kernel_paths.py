"""The carried per-kernel time by GEMM path (planner.kernel_paths): the table against NVIDIA's
published kernel rows, the factors by hand, the scalar kept without tables, a row's path in the engine."""

import os
import sys

import pytest

from planner import kernel_paths as KP
from planner import serving_params as SP
from planner.catalog import load_hardware
from planner.cost.api import estimate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_composites_are_the_published_tables():
    """COMPOSITE_US against benchmarks/published_kernels.py recomputed on the shipped CSV (NVIDIA
    aiconfigurator-core 0.12.0 rows): every system and path, to the 2 decimals kept."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import published_kernels as P

    rows = P.load()
    for system, table in KP.COMPOSITE_US.items():
        d = P.derive(rows, system, *P._hardware(system))
        for path, us in table.items():
            assert P.layer_kernel_mean_s(d, path) * 1e6 == pytest.approx(us, abs=0.006), (system, path)


def test_blackwell_bf16_factor_by_hand():
    """B200 (Blackwell family: B200 / GB200 / B300 tables): bf16 composite mean (5.78 + 4.95 + 5.70) / 3
    over the fitted tabled mix (246 bf16 rows, 868 fp8 rows) of the fp8 mean (11.84 + 11.30 + 11.41) / 3."""
    bf16, fp8 = (5.78 + 4.95 + 5.70) / 3, (11.84 + 11.30 + 11.41) / 3
    expected = bf16 / ((246 * bf16 + 868 * fp8) / 1114)
    assert KP.kernel_factors(load_hardware("b200"))["bf16"] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.538, abs=0.001)
    # the factors average to 1 over the fitted mix: the carried level is the fit's
    f = KP.kernel_factors(load_hardware("gb300"))
    assert (246 * f["bf16"] + 868 * f["fp8"]) / 1114 == pytest.approx(1.0)


def _carried(device, engine="vllm"):
    params = {"h100-sxm/vllm": ("fit", {"kernel_time_s": 7e-6, "step_host_s": 1e-4, "link_efficiency": 0.5}),
              "h200/vllm": ("fit", {"kernel_time_s": 9e-6, "step_host_s": 2e-4, "link_efficiency": 0.6})}
    hw = load_hardware(device)
    name, vals = SP.unmeasured(hw, engine, None, params)
    return hw, vals, SP.efficiency(hw, vals, name)


def test_a_device_without_tables_keeps_the_scalar():
    """A100 (no published table of its die): every compute dtype pays the carried median, 8 us."""
    hw, vals, eff = _carried("a100-sxm-80gb")
    assert vals["kernel_time_s"] == pytest.approx(8e-6)
    for d in ("bf16", "fp8", "fp4", "int8"):
        assert eff.kernel_overhead_at(d) == pytest.approx(8e-6)


def test_a_fitted_kernel_time_is_not_scaled():
    """A device's own fitted time is already its rows' mix: no factors without the carried marker."""
    hw = load_hardware("h100-sxm")
    eff = SP.efficiency(hw, {"kernel_time_s": 7e-6}, "fit")
    assert eff.kernel_factor == {} and eff.kernel_overhead_at("fp8") == pytest.approx(7e-6)


def _overhead_s(hw, eff, weight, act, concurrency):
    kw = dict(efficiency=eff, concurrency=concurrency, gen_len=64, prompt_len=256)
    return estimate("llama-3.1-8b", hw, weight_dtype=weight, act_dtype=act, **kw)["time_by_bound_s"]["overhead"]


@pytest.mark.parametrize("concurrency", [0, 4])  # the scalar fast path and the vectorized closed loop
def test_a_rows_kernel_time_follows_its_gemm_path(concurrency):
    """Same model and kernel count on B200 with the carried time: the launch-bound time of an fp8 row
    over a bf16 one is the tables' fp8 / bf16 composite ratio; a weight-only row (int4 weights, bf16
    compute: no tabled path) pays the carried scalar, 1 / the bf16 factor of the bf16 row's."""
    hw, vals, eff = _carried("b200")
    assert eff.kernel_factor
    ovh = {(w, a): _overhead_s(hw, eff, w, a, concurrency) for w, a in (("bf16", "bf16"), ("fp8", "fp8"),
                                                                      ("int4", "bf16"))}
    table = KP.table_of(hw)
    assert ovh["fp8", "fp8"] / ovh["bf16", "bf16"] == pytest.approx(table["fp8"] / table["bfloat16"], rel=1e-6)
    assert ovh["int4", "bf16"] / ovh["bf16", "bf16"] == pytest.approx(1 / eff.kernel_factor["bf16"], rel=1e-6)
