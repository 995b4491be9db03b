"""The speed paths of round 14 give the values of the straightforward code, bit for bit.

* the cost engine's (model, device count) grid (planner.cost.gather.per_model_device):
  each quantity gathered from the grid equals the rows' own evaluation of the same
  function (oracle: the function run on the rows, as the engine did before the grid);
* the simulators' few-step path (planner.cost.steps.StepTable.decode_cumulative and the
  pipeline simulator's decode rounds in Python floats): whole simulations (closed loop,
  Poisson arrivals, output-length spread, pipeline stages) give the same per-request
  arrays as with that path off (``SCALAR_STEPS = 0``: numpy over every stretch)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cost import steps
from planner.cost.api import columns
from planner.cost.context import Ctx, _kv_shard, _linear_flops_per_token, _state_bytes_per_seq
from planner.cost.gather import per_model_device
from planner.cost.dense import (_body_flops_per_token_device, _expert_flops_per_token, _head_flops_per_token,
                                expert_reduction_factor)
from planner.cost.simulate import simulate
from planner.cost.simulate_pipeline import simulate_pipeline
from planner.cost.steps import StepTable
from planner.cost.tables import HardwareTable, ModelTable

MODELS = ["qwen3-8b", "qwen3-30b-a3b", "deepseek-v3", "gemma-2-9b", "qwen3.5-397b-a17b"]
DEVICES = ["h100-sxm", "mi300x", "b200"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_model_device_grid_gives_each_rows_own_values(dtype):
    models = [load_model(m) for m in MODELS]
    mt, ht = ModelTable.build(models), HardwareTable.build([load_hardware(h) for h in DEVICES])
    rng = np.random.default_rng(3)
    n = 3000
    cols = columns(n, model=rng.integers(0, len(models), n), hardware=rng.integers(0, len(DEVICES), n),
                   devices=rng.choice([1.0, 2.0, 3.0, 4.0, 8.0, 16.0], n), batch=1, concurrency=0.0,
                   prompt_len=1024.0, gen_len=256.0, samples=1, kv_budget=0, prefix_sharing=False,
                   weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16")
    x = Ctx(cols, mt, ht, dtype)
    assert x.model_device  # the grid applies: whole device counts, tensor parallelism
    for fn in (_kv_shard, _state_bytes_per_seq, _linear_flops_per_token, expert_reduction_factor,
               _head_flops_per_token, _expert_flops_per_token, _body_flops_per_token_device):
        gathered = per_model_device(x, fn)
        own = np.broadcast_to(fn(x), (n,))
        assert gathered.dtype == own.dtype, fn.__name__
        np.testing.assert_array_equal(gathered, own, err_msg=fn.__name__)
    assert np.any(x.state_bytes_per_seq > 0) and np.any(expert_reduction_factor(x) != 1.0)  # both kinds of model


def _table(model: str, host_s: float = 2e-4) -> StepTable:
    mt, ht = ModelTable.build([load_model(model)]), HardwareTable.build([load_hardware("h100-sxm")])
    cols = columns(1, model=0, hardware=0, devices=1, batch=1, concurrency=1.0, prompt_len=1024.0,
                   gen_len=256.0, samples=1, kv_budget=0, prefix_sharing=False, weight_dtype="bf16",
                   act_dtype="bf16", kv_dtype="bf16")
    return StepTable(Ctx(cols, mt, ht), 8193, host_s, 1024.0)


RUNS = [dict(arrival="closed", concurrency=48, n_requests=600),
        dict(arrival="poisson", rate=12.0, n_requests=600),
        dict(arrival="closed", concurrency=32, n_requests=500, range_ratio=0.5, gen_len=300),
        dict(arrival="closed", concurrency=16, n_requests=300, jitter_s=0.01)]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("model, prompt_len", [("qwen3-8b", 1024), ("gemma-2-9b", 3900)])
def test_the_few_step_path_simulates_as_numpy_does(run, model, prompt_len, monkeypatch):
    """(gemma-2-9b's contexts cross its 4,096-token window: stretches that are not linear)"""
    table = _table(model)
    kw = dict(prompt_len=prompt_len, gen_len=200, token_budget=2048, max_running=256, chunked=True, mixed=True,
              seed=5)
    kw.update(run)
    fast = simulate(table, **kw)
    monkeypatch.setattr(steps, "SCALAR_STEPS", 0)
    slow = simulate(table, **kw)
    assert fast["steps"] == slow["steps"]
    for key in ("arrival", "first", "finish", "ttft", "tpot", "e2e", "prompt_step"):
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)


@pytest.mark.parametrize("arrival", ["poisson", "closed"])
def test_the_pipeline_simulators_few_round_path_simulates_as_numpy_does(arrival, monkeypatch):
    table = _table("qwen3-8b")
    kw = dict(pp=2, send_lat_s=1e-5, send_s_per_token=2e-8, prompt_len=1024, gen_len=128, token_budget=2048,
              max_running=256, chunked=True, mixed=True, arrival=arrival, concurrency=24, rate=15.0,
              n_requests=400, seed=2)
    fast = simulate_pipeline(table, **kw)
    monkeypatch.setattr(steps, "SCALAR_STEPS", 0)
    slow = simulate_pipeline(table, **kw)
    assert fast["steps"] == slow["steps"]
    for key in ("arrival", "first", "finish", "ttft", "tpot", "e2e"):
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
