"""The one-row GEMM (matrix-vector) model: the fit recovers synthetic parameters, the
engine charges it only at one row per pass, and the roofline-aware row correction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner.calibrate.fit_gemv import fit_gemv_rows, rows_correction
from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate
from planner.cost.efficiency import Curve, Efficiency

SHAPES = [(1024, 4096), (2048, 2048), (4096, 1024), (2048, 8192), (2048, 16384), (8192, 2048), (1024, 32768),
          (2048, 32768)]


def _gemv_times(bw, e, row_bytes, w_half, rng, sigma=0.03):
    K = np.array([k for k, _ in SHAPES], dtype=float)
    N = np.array([n for _, n in SHAPES], dtype=float)
    B = N * K * 4.0
    t = (B + N * row_bytes + w_half) / (bw * e)
    return B, N, K, t * np.exp(rng.normal(0.0, sigma, t.size))


@pytest.mark.parametrize("row_bytes", [0.0, 800.0, 2400.0, 9000.0])
def test_fit_gemv_rows_recovers_synthetic_parameters(row_bytes):
    rng = np.random.default_rng(int(row_bytes))
    B, N, K, t = _gemv_times(30e9, 0.85, row_bytes, 1e5, rng, sigma=0.01)
    e, r, rms = fit_gemv_rows(B, N, K, t, peak_bw=30e9, w_half=1e5)
    assert e == pytest.approx(0.85, rel=0.05)
    assert r == pytest.approx(row_bytes, abs=0.1 * row_bytes + 150.0)
    assert rms < 0.03


def test_fit_gemv_rows_resists_one_disturbed_sample():
    rng = np.random.default_rng(3)
    B, N, K, t = _gemv_times(30e9, 0.85, 2400.0, 1e5, rng, sigma=0.01)
    t[3] *= 2.5  # another process took the CPU during one benchmark
    e, r, _ = fit_gemv_rows(B, N, K, t, peak_bw=30e9, w_half=1e5)
    assert e == pytest.approx(0.85, rel=0.08) and r == pytest.approx(2400.0, rel=0.3)


def test_fit_gemv_rows_needs_several_row_widths():
    K = np.full(6, 2048.0)
    N = np.array([8, 32, 128, 512, 2048, 8192], dtype=float) * 64
    B = N * K * 4
    assert fit_gemv_rows(B, N, K, B / 20e9, peak_bw=30e9, w_half=1e5) is None


def test_rows_correction_leaves_memory_bound_row_counts_to_the_memory_side():
    """Where the memory side explains the measurements (one row), the factor is the
    largest that keeps compute below memory on every shape, not the measured ratio."""
    hyper = np.array([1.0, 2.0, 4.0, 1.0, 2.0, 4.0])
    memory = np.array([3.0, 5.0, 9.0, 0.1, 0.1, 0.1])
    M = [1, 1, 1, 4, 4, 4]
    t = np.array([3.0, 5.0, 9.0, 1.5, 3.0, 6.0])  # rows=1: memory-bound; rows=4: compute x1.5
    corr = rows_correction(M, hyper, memory, t)
    assert corr[4] == pytest.approx(1.5, rel=0.01)
    assert corr[1] == pytest.approx(min(memory[:3] / hyper[:3]), rel=0.02)


def _eff(**kw):
    return Efficiency(compute={"*": Curve(1.0)}, memory=Curve(0.6, 1e5), interconnect=0.7, kernel_overhead_s=3e-5,
                      gemm_rows_half=13.0, peak_flops_override={"fp32": 1.5e11}, peak_bandwidth_override=3e10,
                      source="test", **kw)


def _decode_s(model, eff, batch):
    hw = load_hardware("calibration/cpu-amd-epyc-2c.hardware.yaml")
    return estimate(model, hw, batch=batch, prompt_len=128, gen_len=1, weight_dtype="fp32", act_dtype="fp32",
                    kv_dtype="fp32", efficiency=eff)["decode_s"]


def test_engine_charges_the_row_cost_at_one_row_only():
    """Defaults leave the engine unchanged; a row cost slows batch-1 decode in proportion
    to output rows per byte (a model with short rows more), and not batch 4."""
    base = _eff()
    rowy = replace(base, gemv_row_bytes=2000.0)
    assert replace(base, gemv_row_bytes=0.0, gemv_stream_factor=1.0) == base
    qwen, llama = load_model("qwen3-0.6b"), load_model("llama-3.2-1b")
    slow = {m.name: _decode_s(m, rowy, 1) / _decode_s(m, base, 1) for m in (qwen, llama)}
    assert slow["qwen3-0.6b"] > slow["llama-3.2-1b"] > 1.0  # qwen's rows: 1024 wide, llama's 2048+
    assert _decode_s(llama, rowy, 4) == pytest.approx(_decode_s(llama, base, 4), rel=1e-12)
    # a faster one-row stream speeds batch-1 decode up, nothing at batch 4
    fast = replace(base, gemv_stream_factor=0.7)
    assert _decode_s(llama, fast, 1) < 0.9 * _decode_s(llama, base, 1)
    assert _decode_s(llama, fast, 4) == pytest.approx(_decode_s(llama, base, 4), rel=1e-12)


def test_vector_and_scalar_paths_agree_with_a_row_cost():
    from planner.cost.api import columns
    from planner.cost.engine import evaluate
    from planner.cost.tables import HardwareTable, ModelTable

    hw = load_hardware("calibration/cpu-amd-epyc-2c.hardware.yaml")
    eff = _eff(gemv_row_bytes=1700.0, gemv_stream_factor=0.75)
    m = load_model("llama-3.2-1b")
    mt, ht = ModelTable.build([m]), HardwareTable.build([hw], [eff])
    for batch in (1, 2, 4):
        one = estimate(m, hw, batch=batch, prompt_len=64, gen_len=16, weight_dtype="fp32", act_dtype="fp32",
                       kv_dtype="fp32", efficiency=eff)
        cols = columns(1, model=0, hardware=0, devices=1, batch=batch, concurrency=0, prompt_len=64, gen_len=16,
                       samples=1, weight_dtype="fp32", act_dtype="fp32", kv_dtype="fp32", kv_budget=0,
                       prefix_sharing=True)
        vec = evaluate(cols, mt, ht)
        assert one["decode_s"] == pytest.approx(float(vec["decode_s"][0]), rel=1e-9)
        assert one["prefill_s"] == pytest.approx(float(vec["prefill_s"][0]), rel=1e-9)


@pytest.mark.parametrize("gemv,field", [
    ({"stream_factor": 0.73, "row_bytes": 1.7e5}, "fitted.gemv.row_bytes"),  # 100 us per row: a busy machine
    ({"stream_factor": 9.0, "row_bytes": 1700.0}, "fitted.gemv.stream_factor"),
    ({"stream_factor": -1.0, "row_bytes": 1700.0}, "fitted.gemv.stream_factor"),
    ({"stream_factor": 0.73}, "fitted.gemv.row_bytes"),
    ("fast", "fitted.gemv"),
])
def test_profile_refuses_an_unphysical_or_malformed_gemv_fit(tmp_path, gemv, field):
    import copy

    import yaml

    from planner.calibrate.apply import profile_to_efficiency
    from planner.calibrate.profile import load_profile
    from planner.errors import InputError

    text = yaml.safe_load(open("calibration/cpu-amd-epyc-2c.yaml"))
    good = copy.deepcopy(text)
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    eff = profile_to_efficiency(load_profile(tmp_path / "good.yaml"))
    assert 0.25 < eff.gemv_stream_factor < 1.0 and 0 < eff.gemv_row_bytes < 65536
    text["fitted"]["gemv"] = gemv
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(text))
    with pytest.raises(InputError) as e:
        load_profile(tmp_path / "bad.yaml")
    assert e.value.field == field and e.value.file == str(tmp_path / "bad.yaml")
