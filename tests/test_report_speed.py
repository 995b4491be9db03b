"""The fast paths of the capacity report agree with the slow exact evaluation, and the
report finishes on the heaviest capacity files we can construct (the fuzz's slowest class
of valid input). Timings live in benchmarks/report_speed.py, not here.

Oracles: the Poisson fixed point of planner.cost.open_loop.poisson found by plain iteration
of its map on every row (brute force, hundreds of evaluations; the accelerated solver must
land on the same point), and step times evaluated on the whole engine context (a row
subset must give the same numbers, bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.row_subset import take_rows
from planner.cost.open_loop import (FIXED_POINT_RTOL, pipeline_steps, poisson, prompts_on_slowest_group,
                                     prompts_per_carrying_step)
from planner.cost.steps import step_time
from planner.cost.tables import HardwareTable, ModelTable

MODELS = ["qwen3-8b", "llama-3.1-70b", "mixtral-8x7b", "gemma-2-9b", "deepseek-v3"]
DEVICES = ["h100-sxm", "l40s", "mi300x", "b200"]
_TABLES = (ModelTable.build([load_model(m) for m in MODELS]), HardwareTable.build([load_hardware(h) for h in DEVICES],
                                                                                   [None] * len(DEVICES)))


def _ctx(rng: np.random.Generator, n: int):
    """``n`` random serving rows (model, device, tensor parallel, dtypes) and their lengths."""
    w = rng.choice(["bf16", "fp8", "int4"], n)
    cols = columns(n, model=rng.integers(0, len(MODELS), n), hardware=rng.integers(0, len(DEVICES), n),
                   devices=rng.choice([1.0, 2.0, 4.0, 8.0], n), batch=1, concurrency=1.0,
                   prompt_len=rng.integers(16, 8000, n).astype(float), gen_len=rng.integers(2, 6000, n).astype(float),
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype=w,
                   act_dtype=np.where(w == "int4", "bf16", w), kv_dtype=rng.choice(["bf16", "fp8"], n))
    return Ctx(cols, *_TABLES), cols


BRUTE_FORCE_ITERATIONS = 300


def _open_loop_map(x, lam, P, G, host_s, pp=1.0):
    """The open loop's map on every row: the step ``tau`` -> (the next step, the carrying step)."""
    ctx = P + 1.0 + 0.5 * (G - 1.0)
    carry, dec = pipeline_steps(x, P, ctx, host_s, pp)

    def step(tau):
        d = lam * (G - 1.0) * tau
        m = prompts_per_carrying_step(lam * tau)
        t_c, t_d = carry(d, prompts_on_slowest_group(lam * tau, pp)), dec(d)
        busy = lam * t_c / m
        new = np.where(busy < 1.0, 1.0 / (lam / m + np.maximum(1.0 - busy, 0.0) / t_d), t_c)
        return np.where(np.isfinite(new), new, np.inf), t_c

    return step, dec(0.0) * np.ones_like(lam)


def _brute_force(x, lam, P, G, host_s, pp=1.0):
    """Plain iteration of the open loop's map on every row (slow, linear convergence):
    returns the step, the carrying step and the last relative change of the step."""
    step, tau = _open_loop_map(x, lam, P, G, host_s, pp)
    t_c = np.full_like(lam, np.nan)
    change = np.full_like(lam, np.inf)
    with np.errstate(all="ignore"):
        for _ in range(BRUTE_FORCE_ITERATIONS):
            new, t_c = step(tau)
            change, tau = np.abs(new - tau) / new, new
    return tau, t_c, change


def _contraction(x, lam, P, G, host_s, pp, tau):
    """The map's local contraction |F'(tau)| tau / F(tau) (relative), by a central difference."""
    step, _ = _open_loop_map(x, lam, P, G, host_s, pp)
    h = 1e-5
    with np.errstate(all="ignore"):  # unbounded rows: inf - inf
        up, down = step(tau * (1.0 + h))[0], step(tau * (1.0 - h))[0]
        return np.abs(up - down) / (2.0 * h * tau)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), log_rate=st.floats(-2.0, 2.5),
       pp=st.sampled_from([1.0, 2.0, 4.0]))
def test_accelerated_fixed_point_lands_where_plain_iteration_does(seed, n, log_rate, pp):
    """Steffensen's rounds (a few evaluations a row) reach the point that hundreds of plain
    iterations reach, wherever those settled and the queue is bounded (relative: the
    solver's tolerance FIXED_POINT_RTOL over one less the map's local contraction); rows
    above capacity are unbounded (+inf), the others finite."""
    rng = np.random.default_rng(seed)
    x, cols = _ctx(rng, n)
    P, G = np.asarray(cols["prompt_len"]), np.maximum(np.asarray(cols["gen_len"]), 1.0)
    lam = 10.0 ** (log_rate + rng.uniform(-1.0, 1.0, n))  # from well below to far above capacity
    host_s = rng.uniform(0.0, 0.01, n)
    out = poisson(x, lam, P, G, np.full(n, 8192.0), host_s, np.full(n, 256.0), pp)
    tau, _, change = _brute_force(x, lam, P, G, host_s, pp)
    settled = (change < 1e-13) & ~out["unbounded"]
    # a point the solver leaves within FIXED_POINT_RTOL of its map's image lies within
    # FIXED_POINT_RTOL / (1 - L) of the fixed point, L the map's contraction there (near
    # capacity L -> 1); a factor 10 for the solver's stop on two evaluations' change
    L = np.minimum(_contraction(x, lam, P, G, host_s, pp, tau), 1.0 - 1e-6)
    rtol = 10.0 * FIXED_POINT_RTOL / (1.0 - L) + 1e-12
    with np.errstate(all="ignore"):
        err = np.abs(out["step_s"] - tau) / tau
    assert np.all(err[settled] <= rtol[settled]), (err[settled], rtol[settled], L[settled])
    assert np.all(np.isinf(out["ttft_s"][out["unbounded"]]))
    assert np.all(np.isfinite(out["ttft_s"][~out["unbounded"]]))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80))
def test_row_subset_evaluates_like_the_whole_context(seed, n):
    rng = np.random.default_rng(seed)
    x, cols = _ctx(rng, n)
    idx = np.flatnonzero(rng.random(n) < 0.5)
    d, p = rng.uniform(0.0, 512.0, n), rng.uniform(0.0, 8192.0, n)
    ctx, pre = rng.uniform(1.0, 9000.0, n), rng.uniform(1.0, 4000.0, n)
    full = step_time(x, d, p, d + 1.0, ctx, pre, 0.002)
    sub = step_time(take_rows(x, idx), d[idx], p[idx], d[idx] + 1.0, ctx[idx], pre[idx], 0.002)
    np.testing.assert_array_equal(sub, full[idx])


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    from heavy_capacity import write_heavy

    return write_heavy(tmp_path_factory.mktemp("heavy"))


@pytest.mark.parametrize("name", ["6-models-8-devices", "moe-layouts-engine", "wide-search"])
def test_report_finishes_on_the_heaviest_capacity_files(heavy, name, tmp_path, capsys):
    """Correctness only: exit 0, the Markdown report and both plots written, every
    candidate either sized (a positive rate, enough replicas for the traffic) or excluded
    with a reason."""
    import json

    from planner.cli import main

    out = tmp_path / "r.md"
    assert main(["report", str(heavy[name]), "-o", str(out), "--json"]) == 0
    assert out.is_file() and (tmp_path / "r-pareto.svg").is_file() and (tmp_path / "r-roofline.svg").is_file()
    assert "Fleet and cost" in out.read_text(encoding="utf-8")
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["candidates"]
    for c in plan["candidates"]:
        if c["status"] == "ok":
            rate, f = c["per_replica"]["requests_per_s"], c["fleet"]
            assert rate > 0 and f["replicas_needed"] * rate >= plan["requests_per_s"]
        else:
            assert c["status"]
