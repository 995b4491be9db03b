"""The engines' defaults by GPU class (engines/*.yaml ``device_tiers``,
planner.engine_profiles.EngineProfile.on_device). The oracle is the engines' own start-up
code as cited in the profiles' sources: vLLM EngineArgs.get_batch_defaults (8192 tokens
and 1024 sequences at >= 70 GiB except A100, else 2048 and 256), SGLang
ServerArgs._handle_gpu_memory_settings (chunked prefill 2048 below 35 GiB, 4096 below 60,
8192 below 160, 16384 above). Every command resolves the same way: estimate, the replay,
the simulator and the capacity grid (per device, whatever other devices it holds)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from planner.capacity import CapacityScenario, resolve
from planner.catalog import find_file, load_hardware, load_model
from planner.cost.api import estimate
from planner.engine_profiles import device_columns, load_engine
from planner.serving_profile import resolve_serving
from planner.sizing import plan

# (device, vLLM budget, vLLM running limit, SGLang chunked prefill size), from the sources above
EXPECTED = [("l4", 2048, 256, 2048), ("a10", 2048, 256, 2048), ("rtx-4090", 2048, 256, 2048),
            ("a100-pcie-40gb", 2048, 256, 4096), ("l40s", 2048, 256, 4096),
            ("a100-sxm-80gb", 2048, 256, 8192),  # vLLM keeps A100 80 GB small by name (its PR 17885)
            ("h100-sxm", 8192, 1024, 8192), ("h200", 8192, 1024, 8192),
            ("b200", 8192, 1024, 16384), ("gb200", 8192, 1024, 16384), ("mi300x", 8192, 1024, 16384)]


@pytest.mark.parametrize("device, v_budget, v_running, s_budget", EXPECTED)
def test_each_engine_configures_itself_by_the_device_memory(device, v_budget, v_running, s_budget):
    h = load_hardware(device)
    v, s = load_engine("vllm").on_device(h), load_engine("sglang").on_device(h)
    assert (v.token_budget, v.max_running) == (v_budget, v_running)
    assert s.token_budget == s_budget and s.max_running == load_engine("sglang").max_running
    for name in ("trtllm", "generic"):  # TensorRT-LLM's max_num_tokens is 8192 on every device
        e = load_engine(name)
        assert e.on_device(h).token_budget == e.token_budget == 8192


def test_resolving_is_idempotent_and_keeps_the_measured_devices_unchanged():
    for name in ("vllm", "sglang", "trtllm", "generic"):
        e = load_engine(name)
        for device in ("h100-sxm", "h200", "l4", "b200"):
            once = e.on_device(load_hardware(device))
            assert once.on_device(load_hardware("b200")) == once  # no tiers left
        for device in ("h100-sxm", "h200"):  # the devices of the measured runs: the profile's own values
            got = e.on_device(load_hardware(device))
            assert (got.token_budget, got.max_running, got.cuda_graph_max_batch) == \
                (e.token_budget, e.max_running, e.cuda_graph_max_batch)


def test_estimate_and_the_command_rule_use_the_device_defaults():
    """estimate on an L40S under vLLM is estimate with vLLM configured as it is there (2048
    tokens a step, 256 sequences), and so is resolve_serving's engine (every command)."""
    m, h = load_model("llama-3.1-8b"), load_hardware("l40s")
    e = load_engine("vllm")
    kw = dict(devices=1, concurrency=64, prompt_len=4096, gen_len=128, arrival="closed", prefix_sharing=False)
    small = e.model_copy(update={"token_budget": 2048, "max_running": 256, "device_tiers": []})
    big = e.model_copy(update={"device_tiers": []})
    got, want, untiered = (estimate(m, h, engine=x, **kw) for x in (e, small, big))
    assert got["ttft_s"] == pytest.approx(want["ttft_s"], rel=1e-12)
    assert got["tpot_s"] == pytest.approx(want["tpot_s"], rel=1e-12)
    assert got["ttft_s"] != pytest.approx(untiered["ttft_s"], rel=1e-3)  # the budget matters here
    assert resolve_serving(h, e).engine.token_budget == 2048


def _scenario(hardware, engine):
    # short requests, 512 clients: vLLM's running limit (256 on an L40S) binds before its KV memory
    return CapacityScenario.model_validate({
        "traffic": {"requests_per_s": 50.0, "prompt_len": 256, "gen_len": 256},
        "slo": {"percentile": 90, "ttft_s": 2.0, "tpot_s": 0.2}, "models": ["llama-3.1-8b"], "hardware": hardware,
        "engine": engine, "headroom": 0, "redundancy": 0,
        "search": {"devices": [1], "quantizations": ["bf16"], "kv_dtypes": ["bf16"], "concurrency": [512]}})


def _replica(hardware, engine, device):
    scn = _scenario(hardware, engine)
    for c in plan(scn, *resolve(scn))["candidates"]:
        if c["hardware"] == device and c["status"] == "ok":
            return c["per_replica"]["max_running"], c["per_replica"]["requests_per_s"]
    raise AssertionError(f"no {device} candidate")


def test_the_capacity_grid_resolves_each_device_on_its_own(tmp_path):
    """An L40S replica runs at most vLLM's 256 sequences there, beside an H100 (1024) in
    either order as alone, and at that cap its rate is lower than a vLLM profile without
    tiers gives it (512 running)."""
    alone = _replica(["l40s"], "vllm", "l40s")
    assert alone[0] == 256
    for grid in (["h100-sxm", "l40s"], ["l40s", "h100-sxm"]):
        running, rate = _replica(grid, "vllm", "l40s")
        assert running == 256 and rate == pytest.approx(alone[1], rel=1e-4)  # float32 grid
        assert _replica(grid, "vllm", "h100-sxm")[0] == 512
    data = yaml.safe_load(find_file("engines", "vllm").read_text())
    data.pop("device_tiers")
    data["sources"].pop("device_tiers")
    path = tmp_path / "vllm-untiered.yaml"
    path.write_text(yaml.safe_dump(data))
    flat = _replica(["l40s"], str(path), "l40s")
    assert flat[0] == 512 and flat[1] > alone[1]


def test_device_columns_index_the_grid():
    cols = device_columns(load_engine("sglang"), [load_hardware(d) for d in ("l4", "h100-sxm", "b200")])
    assert cols["token_budget"].tolist() == [2048, 8192, 16384]


def test_prompts_longer_than_the_budget_are_chunked_not_unbounded():
    """vLLM's 2048-token budget on an L40S-class device meets prompts longer than a step
    holds: chunked prefill runs them over several steps, so the open loop has a capacity
    (it used to call any such rate unbounded). Against the simulator (the oracle: it
    chunks real requests) on a randomized grid of prompts 1.2-3x the budget: at 30% of
    the analytic capacity mean TTFT and TPOT agree within 15%; at 70% TPOT within 20% and
    TTFT is low by at most 35% (the queue of pending chunks is not modeled: the analytic
    prompt waits its own chunks only); at 1.5x the capacity the simulated queue grows."""
    from planner.cost.open_loop import poisson
    from planner.cost.simulate import simulate
    from planner.cost.steps import StepTable
    from tests.test_pipeline_open_loop import _capacity, ctx

    rng = np.random.default_rng(5)
    for _ in range(4):
        model = ("llama-3.1-8b", "qwen3-32b")[rng.integers(2)]
        B = int(2 ** rng.integers(11, 13))
        P, G, host = int(B * rng.uniform(1.2, 3.0)), int(2 ** rng.uniform(6, 9)), 1e-3
        x = ctx(model, tp=1)
        cap = _capacity(x, P, G, B, host, 1, 0.0, 0.0, 4096)
        assert np.isfinite(cap) and cap > 1e-2
        tab = StepTable(x, B + 1, host)
        for share, ttft_lo, tpot_tol in ((0.3, 0.85, 0.15), (0.7, 0.65, 0.20)):
            rate = cap * share
            a = poisson(x, rate, P, G, B, host, 4096)
            n = int(np.clip(rate * 60.0, 1500, 3000))
            s = simulate(tab, prompt_len=P, gen_len=G, token_budget=B, max_running=4096, chunked=True, mixed=True,
                         arrival="poisson", rate=rate, n_requests=n, seed=int(rng.integers(1 << 30)))
            warm = n // 10
            ttft, tpot = a["ttft_s"][0] / np.mean(s["ttft"][warm:]), a["tpot_s"][0] / np.mean(s["tpot"][warm:])
            assert ttft_lo <= ttft <= 1.15 and abs(tpot - 1.0) <= tpot_tol, (model, B, P, G, share, ttft, tpot)
        s = simulate(tab, prompt_len=P, gen_len=G, token_budget=B, max_running=4096, chunked=True, mixed=True,
                     arrival="poisson", rate=1.5 * cap, n_requests=2000, seed=1)
        t = np.asarray(s["ttft"])
        assert t[-500:].mean() > 3.0 * t[:500].mean()
