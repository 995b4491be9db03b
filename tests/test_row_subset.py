"""A row subset of an engine context (planner.cost.row_subset) evaluates its rows bit for
bit as the whole context does (step times, prefill and decode phases), where the
whole-context switches are mixed: a calibrated device (row correction, partial overlap,
time scale, GEMV calibration) beside uncalibrated ones, MoE models with expert-parallel
and attention-data-parallel layouts.

Oracle: the same step times and phases evaluated on the whole context (no subset)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.gather import Gather
from planner.cost.efficiency import Curve, Efficiency
from planner.cost.passes import decode_phase, prefill_phase
from planner.cost.row_subset import WHOLE_CONTEXT_SWITCHES, n_rows, take_rows
from planner.cost.steps import step_time
from planner.cost.tables import HardwareTable, ModelTable

MODELS = ["qwen3-8b", "qwen3-30b-a3b", "deepseek-v3", "gemma-2-9b"]
DEVICES = ["h100-sxm", "mi300x", "b200"]
# every switch of Ctx off its default on the first device only
CALIBRATED = Efficiency(compute={"*": Curve(0.8, 2e8)}, memory=Curve(0.85, 4e5), interconnect=0.7,
                        kernel_overhead_s=3e-6, attention_memory=0.7, gemm_rows_half=12.0,
                        gemm_rows_correction=((1.0, 0.9), (8.0, 1.4), (64.0, 1.0)),
                        attention_compute=Curve(0.6, 1e6), overlap=0.3, time_scale=1.3,
                        gemv_row_bytes=64.0, gemv_stream_factor=1.2, source="test")
_TABLES = (ModelTable.build([load_model(m) for m in MODELS]),
           HardwareTable.build([load_hardware(h) for h in DEVICES], [CALIBRATED] + [None] * (len(DEVICES) - 1)))


def _ctx(rng: np.random.Generator, n: int, layouts: bool) -> Ctx:
    one = np.ones(n)
    hardware = rng.integers(0, len(DEVICES), n)
    hardware[0] = 0  # the calibrated device on one row at least: every switch is off
    ep = rng.choice([1.0, 2.0, 4.0], n)
    ep[0] = 2.0
    cols = columns(n, model=rng.integers(0, len(MODELS), n), hardware=hardware,
                   devices=rng.choice([1.0, 2.0, 4.0, 8.0], n), batch=1, concurrency=1.0,
                   prompt_len=rng.integers(16, 8000, n).astype(float), gen_len=rng.integers(2, 6000, n).astype(float),
                   samples=1, kv_budget=rng.choice([0, 0, 256], n), prefix_sharing=False,
                   weight_dtype=rng.choice(["bf16", "fp8"], n), act_dtype="bf16",
                   kv_dtype=rng.choice(["bf16", "fp8"], n),
                   ep=ep if layouts else one,
                   attn_dp=rng.choice([1.0, 2.0], n) if layouts else one)
    return Ctx(cols, *_TABLES)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), layouts=st.booleans())
def test_a_row_subset_evaluates_like_the_whole_context(seed, n, layouts):
    rng = np.random.default_rng(seed)
    x = _ctx(rng, n, layouts)
    assert not (x.flat_rows or x.full_overlap or x.unit_time_scale or x.plain_gemv)
    assert x.expert_parallel == layouts
    idx = np.flatnonzero(rng.random(n) < 0.4)
    d, p = rng.uniform(0.0, 512.0, n), rng.uniform(0.0, 8192.0, n)
    ctx, pre = rng.uniform(1.0, 9000.0, n), rng.uniform(1.0, 4000.0, n)
    host_s = rng.uniform(0.0, 0.01, n)
    full = step_time(x, d, p, d + 1.0, ctx, pre, host_s)
    sub = take_rows(x, idx)
    assert n_rows(sub) == idx.size
    part = step_time(sub, d[idx], p[idx], d[idx] + 1.0, ctx[idx], pre[idx], host_s[idx])
    np.testing.assert_array_equal(part, full[idx])
    # the phases read every switch (roofline overlap, time scale, row factor, GEMV bytes)
    P, G = rng.integers(16, 4000, n).astype(float), rng.integers(1, 3000, n).astype(float)
    S, share = rng.integers(1, 64, n).astype(float), rng.random(n) < 0.5
    for whole, rows in ((prefill_phase(x, S, P), prefill_phase(sub, S[idx], P[idx])),
                        (decode_phase(x, S, S, share, P, G), decode_phase(sub, S[idx], S[idx], share[idx], P[idx],
                                                                          G[idx]))):
        for key, v in rows.items():
            np.testing.assert_array_equal(v, np.broadcast_to(whole[key], (n,))[idx], err_msg=key)


def test_every_attribute_of_a_context_is_per_row_shared_or_a_listed_switch():
    """What take_rows does not index, it shares: a new whole-context attribute of Ctx must
    be one of the listed switches (or a table), or the subset may take another branch."""
    x = _ctx(np.random.default_rng(1), 7, layouts=True)
    x.report = False  # as planner.cost.engine sets it
    shared = set(WHOLE_CONTEXT_SWITCHES) | {"xp", "dt", "rows_corr", "_sums"}
    for key, v in x.__dict__.items():
        per_row = isinstance(v, np.ndarray) and v.shape == (n_rows(x),)
        assert per_row or isinstance(v, (Gather, dict)) or key in shared, key
    y = take_rows(x, np.array([0, 3, 6]))
    for key in WHOLE_CONTEXT_SWITCHES:
        assert getattr(y, key) is getattr(x, key)
    assert y.rows_corr is x.rows_corr is not None and y._sums == {}
