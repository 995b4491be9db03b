"""The routed experts' grouped-GEMM curve (planner.cost.grouped_gemm) and its use in the cost
engine (planner.cost.passes.expert_compute_factor). Oracles: DeepGEMM's published grouped
FP8 table (H800), monotonicity, a dense model's predictions bit-identical whatever the curve,
and the tokens per expert of a prefill counted by hand from config.json values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.cost import grouped_gemm
from planner.cost.api import estimate
from planner.cost.grouped_gemm import (DEEPGEMM_GROUPED, GROUPED_ROWS_HALF, expert_gemm_factor, grouped_rate_tflops,
                                       grouped_rows_efficiency)


def test_curve_reproduces_the_published_grouped_table():
    """Every row of DeepGEMM's contiguous and masked grouped tables within 8% of the curve
    (two numbers fitted to ten rows: the per-group rows and the reduction explain the
    table's 815-1,297 TFLOPS spread, 1.6x, to within 8%)."""
    for layout, groups, rows, n, k, tflops in DEEPGEMM_GROUPED:
        assert grouped_rate_tflops(rows, k) == pytest.approx(tflops, rel=0.08), (layout, groups, rows, n, k)


def test_rows_ratios_lie_between_the_masked_series():
    """Same N and K, fewer rows per group: the table's two (N, K) series of the masked layout
    bracket the curve's ratio to the 1,024-row rate (512 rows: 1,040 / 1,233 = 0.84 at
    K = 7,168 and 916 / 925 = 0.99 at K = 2,048, the curve 0.92; 256 rows: 0.76 and 0.88, the
    curve 0.79)."""
    by_nk: dict[tuple[int, int], dict[int, float]] = {}
    for layout, _, rows, n, k, tflops in DEEPGEMM_GROUPED:
        if layout == "masked":
            by_nk.setdefault((n, k), {})[rows] = tflops
    for rows in (256, 512):
        published = sorted(table[rows] / table[1024] for table in by_nk.values())
        model = grouped_rows_efficiency(rows) / grouped_rows_efficiency(1024)
        assert published[0] < model < published[-1]


@given(st.floats(1.0, 1e5), st.floats(1.0, 1e5), st.floats(16.0, 8192.0), st.floats(1.0, 4.0))
def test_factor_falls_with_rows_and_with_width(rows, k_down, hidden, more):
    """More tokens per expert, or a wider per-device expert (a longer down-projection
    reduction), never makes the experts' GEMMs slower per FLOP."""
    f = expert_gemm_factor(np, rows, k_down, hidden)
    assert expert_gemm_factor(np, rows * more, k_down, hidden) <= f
    assert expert_gemm_factor(np, rows, k_down * more, hidden) <= f
    assert f > 0 and np.isfinite(f)


def test_factor_tends_to_one_at_the_dense_shape():
    assert expert_gemm_factor(np, 1e9, 7168.0, 7168.0) == pytest.approx(1.0, rel=1e-6)
    assert grouped_rows_efficiency(GROUPED_ROWS_HALF) == pytest.approx(0.5)


@pytest.mark.parametrize("devices", [1, 2, 8])
def test_dense_models_unchanged_by_the_curve(monkeypatch, devices):
    """A dense model has no routed experts: its prediction is bit-identical whatever the
    grouped curve says."""
    kw = dict(devices=devices, batch=16, prompt_len=2048, gen_len=128, weight_dtype="fp8", act_dtype="fp8")
    before = estimate("llama-3.1-70b", "h200", **kw)
    monkeypatch.setattr(grouped_gemm, "GROUPED_ROWS_HALF", 5000.0)
    after = estimate("llama-3.1-70b", "h200", **kw)
    assert after["prefill_s"] == before["prefill_s"] and after["tpot_s"] == before["tpot_s"]
    moe = estimate("qwen3-235b-a22b", "h200", **kw)
    monkeypatch.setattr(grouped_gemm, "GROUPED_ROWS_HALF", 0.0)
    assert estimate("qwen3-235b-a22b", "h200", **kw)["prefill_s"] < moe["prefill_s"]


def _prefill_s(model, prompt_len, devices=8):
    return estimate(model, "h200", devices=devices, batch=1, prompt_len=prompt_len, gen_len=1, weight_dtype="fp8",
                    act_dtype="fp8", kv_dtype="bf16")["prefill_s"]


def test_curve_slows_only_compute_bound_expert_gemms(monkeypatch):
    """Qwen3-235B-A22B fp8 on 8 H200 (config.json: 128 experts, top-8, 94 layers): a 1,024-token
    prompt touches every expert (64 rows each) and reads all 235 GB of routed weights once, 29 GB
    per device, ~7.6 ms at 80% of 4.8 TB/s, more than the experts' ~3.6 ms of FP8 compute even at
    the curve's 256-row rate: memory-bound, so the curve leaves it unchanged. An 8,192-token
    prompt's experts (512 rows each) are compute-bound and slower by the curve."""
    short, long = _prefill_s("qwen3-235b-a22b", 1024), _prefill_s("qwen3-235b-a22b", 8192)
    monkeypatch.setattr(grouped_gemm, "GROUPED_ROWS_HALF", 0.0)
    short0, long0 = _prefill_s("qwen3-235b-a22b", 1024), _prefill_s("qwen3-235b-a22b", 8192)
    assert short == short0
    assert long > long0
