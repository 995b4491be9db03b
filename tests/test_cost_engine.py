"""The cost engine: published figures, physics bounds, closed forms vs brute force,
monotonicity (hypothesis) and memory feasibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns, estimate
from planner.cost.engine import evaluate
from planner.cost.tables import HardwareTable, ModelTable

H100 = load_hardware("h100-sxm")


def test_kinetics_spot_check_qwen3_8b():
    """Kinetics (Sadhukhan et al. 2025): Qwen3-8B, Lin=150, Lout=16384, N=1."""
    r = estimate(load_model("qwen3-8b"), load_hardware("b200"), prompt_len=150, gen_len=16384)
    k = r["kinetics"]
    assert k["compute_flops"] == pytest.approx(349.0e12, rel=0.005)
    assert k["memory_bytes"] == pytest.approx(20.15e12, rel=0.005)
    assert k["intensity"] == 562.5
    assert k["memory_bytes"] * k["intensity"] == pytest.approx(11336e12, rel=0.005)
    assert k["eflops"] == pytest.approx(11685e12, rel=0.005)


def test_kinetics_sparse_formula():
    """Block top-k with budget B: kvsf = B*Lout - 0.5*max(0, B-Lin)^2 (Kinetics, corrected sign)."""
    m = load_model("qwen3-8b")
    Lin, Lout, N, B, bs = 150, 16384, 4, 1024, 16
    r = estimate(m, H100, prompt_len=Lin, gen_len=Lout, samples=N, kv_budget=B)
    H, Hkv, d, nl, P = 32, 8, 128, 36, r["kinetics"]["compute_flops"]
    kvsf = B * Lout - 0.5 * max(0, B - Lin) ** 2
    params = 8.19e9
    compute = N * (2 * params * Lout + 4 * kvsf * H * d * nl) + N * (2 * Lin + Lout) / bs * Lout * H * d * nl
    memory = 4 * kvsf * Hkv * d * nl * N + (2 * Lin + N * Lout) / bs * Lout * Hkv * d * nl
    assert r["kinetics"]["compute_flops"] == pytest.approx(compute, rel=0.005)
    assert r["kinetics"]["memory_bytes"] == pytest.approx(memory, rel=0.005)
    assert P < estimate(m, H100, prompt_len=Lin, gen_len=Lout, samples=N)["kinetics"]["compute_flops"]


def test_decode_physics_llama_8b_h100():
    """Batch-1 bf16 decode is bandwidth bound: TPOT >= weight bytes / peak bandwidth."""
    r = estimate(load_model("llama-3.1-8b"), H100, prompt_len=1024, gen_len=256)
    floor = r["memory"]["weights_bytes"] / (H100.mem_bandwidth_gbps * 1e9)
    assert floor == pytest.approx(4.8e-3, rel=0.02)
    assert floor <= r["tpot_s"] <= 3 * floor
    assert r["bottleneck"] == "memory"


def test_405b_does_not_fit_one_l4():
    r = estimate(load_model("llama-3.1-405b"), load_hardware("l4"), prompt_len=1024, gen_len=256)
    assert r["memory"]["fits"] is False
    assert r["memory"]["weights_bytes"] > r["memory"]["capacity_bytes"]


def test_kv_bits_halve_kv_bytes():
    m = load_model("qwen3-8b")
    a = estimate(m, H100, prompt_len=2048, gen_len=1024, batch=8, kv_dtype="bf16")
    b = estimate(m, H100, prompt_len=2048, gen_len=1024, batch=8, kv_dtype="fp8")
    assert b["memory"]["kv_cache_bytes"] == pytest.approx(a["memory"]["kv_cache_bytes"] / 2, rel=1e-12)
    assert b["bytes"]["kv_cache"] == pytest.approx(a["bytes"]["kv_cache"] / 2, rel=1e-12)


@pytest.mark.parametrize("name,budget", [("qwen3-8b", 0), ("qwen3-8b", 300), ("gpt-oss-20b", 0),
                                          ("gpt-oss-20b", 200), ("deepseek-v3", 0), ("qwen3-30b-a3b", 64)])
def test_closed_form_decode_equals_per_token_sum(name, budget):
    """The closed-form decode sum equals the brute-force sum of single steps."""
    m = load_model(name)
    P, G = 100, 300
    whole = estimate(m, H100, devices=8, prompt_len=P, gen_len=G, batch=3, kv_budget=budget)["decode_s"]
    mt, ht = ModelTable.build([m]), HardwareTable.build([H100])
    cols = columns(G, model=0, hardware=0, devices=8, batch=3, concurrency=0, prompt_len=P + np.arange(G),
                   gen_len=1, samples=1, weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16",
                   kv_budget=budget, prefix_sharing=True)
    steps = evaluate(cols, mt, ht)["decode_s"]
    assert whole == pytest.approx(steps.sum(), rel=1e-9)


def test_float32_search_precision_matches_float64():
    models = [load_model(n) for n in ("qwen3-8b", "gpt-oss-20b", "deepseek-v3")]
    mt, ht = ModelTable.build(models), HardwareTable.build([H100])
    rng = np.random.default_rng(1)
    n = 5000
    cols = columns(n, model=rng.integers(0, 3, n), hardware=0, devices=rng.choice([1, 8], n),
                   batch=rng.choice([1, 16], n), concurrency=0, prompt_len=rng.integers(1, 8000, n),
                   gen_len=rng.integers(1, 40000, n), samples=rng.choice([1, 8], n),
                   weight_dtype="bf16", act_dtype="bf16", kv_dtype="fp8", kv_budget=rng.choice([0, 512], n),
                   prefix_sharing=True)
    a = evaluate(cols, mt, ht)
    b = evaluate(cols, mt, ht, precision="float32")
    for key in ("latency_s", "energy_j", "cost_usd", "kinetics_eflops", "total_bytes"):
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4)


def test_serving_tpot_above_bare_decode_step():
    """Continuous batching: the prefills of replacing requests ride on each decode step."""
    m = load_model("llama-3.1-8b")
    static = estimate(m, H100, batch=32, prompt_len=2048, gen_len=256)
    serving = estimate(m, H100, concurrency=32, prompt_len=2048, gen_len=256)
    assert serving["tpot_s"] > static["tpot_s"]
    assert serving["ttft_s"] > 0
    # continuous batching keeps the batch full, so it beats a static batch that prefills and
    # then drains; but it stays below the bare decode rate of 32 requests, which carries no
    # prefills at all
    assert static["throughput_tok_s"] < serving["throughput_tok_s"] < 32 / static["tpot_s"]


def test_serving_throughput_rises_with_concurrency():
    """More requests in flight share each weight read: the device's throughput rises with
    concurrency while each request decodes more slowly, and the last doubling gains less
    than the first (decode turns from memory- to compute-bound)."""
    m = load_model("llama-3.1-8b")
    runs = [estimate(m, H100, concurrency=c, prompt_len=2048, gen_len=256) for c in (8, 16, 32, 64, 128)]
    tput = np.array([r["throughput_tok_s"] for r in runs])
    tpot = np.array([r["tpot_s"] for r in runs])
    assert np.all(np.diff(tput) > 0) and np.all(np.diff(tpot) > 0)
    assert tput[-1] / tput[-2] < tput[1] / tput[0]


def test_moe_reads_only_touched_experts():
    m = load_model("qwen3-30b-a3b")
    one = estimate(m, H100, prompt_len=128, gen_len=64)
    many = estimate(m, H100, prompt_len=128, gen_len=64, batch=256)
    per_step_one = one["bytes"]["weights"] / 64
    per_step_many = many["bytes"]["weights"] * 256 / 64
    assert per_step_one < 0.25 * one["memory"]["weights_bytes"]
    assert per_step_many > 0.9 * many["memory"]["weights_bytes"]


def test_tensor_parallel_splits_weights_and_adds_interconnect():
    m = load_model("llama-3.1-70b")
    one = estimate(m, H100, prompt_len=1024, gen_len=128)
    four = estimate(m, H100, devices=4, prompt_len=1024, gen_len=128)
    assert four["memory"]["weights_bytes"] == pytest.approx(one["memory"]["weights_bytes"] / 4)
    assert four["time_by_bound_s"]["interconnect"] > 0 and one["time_by_bound_s"]["interconnect"] == 0
    assert four["tpot_s"] < one["tpot_s"]


def test_sparse_budget_cuts_long_generation_cost():
    m = load_model("qwen3-8b")
    dense = estimate(m, H100, prompt_len=150, gen_len=32000, samples=8)  # within the 32k context
    sparse = estimate(m, H100, prompt_len=150, gen_len=32000, samples=8, kv_budget=1024)
    assert sparse["latency_s"] < 0.6 * dense["latency_s"]
    assert sparse["memory"]["kv_cache_bytes"] == dense["memory"]["kv_cache_bytes"]  # the cache is kept


# ---- properties -------------------------------------------------------------------------

MODELS = [load_model(n) for n in ("qwen3-0.6b", "qwen3-8b", "gpt-oss-20b", "qwen3-30b-a3b", "deepseek-v3", "llama-3.1-70b")]
config = st.fixed_dictionaries({
    "model": st.integers(0, len(MODELS) - 1),
    "devices": st.sampled_from([1, 2, 8]),
    "batch": st.integers(1, 64),
    "concurrency": st.sampled_from([0, 0, 16]),
    "prompt_len": st.integers(1, 8192),
    "gen_len": st.integers(1, 20000),
    "samples": st.integers(1, 32),
    "weight_dtype": st.sampled_from(["bf16", "fp8", "int4"]),
    "kv_dtype": st.sampled_from(["bf16", "fp8"]),
    "kv_budget": st.sampled_from([0, 0, 256, 2048]),
    "prefix_sharing": st.booleans(),
})
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(cfg, hw=H100, **change):
    c = dict(cfg, **change)
    m = MODELS[c.pop("model")]
    return estimate(m, hw, act_dtype="bf16", **c)


def scaled(hw, **factors):
    data = hw.model_dump()
    for k, f in factors.items():
        if k == "peak_tflops":
            data[k] = {d: v * f for d, v in data[k].items()}
        else:
            data[k] = data[k] * f
    return type(hw).model_validate(data)


@SETTINGS
@given(config)
def test_more_bandwidth_or_flops_never_slower(cfg):
    base = run(cfg)
    for hw in (scaled(H100, mem_bandwidth_gbps=2.0), scaled(H100, peak_tflops=2.0),
               scaled(H100, interconnect_gbps=2.0)):
        faster = run(cfg, hw)
        for key in ("latency_s", "ttft_s", "tpot_s"):
            assert faster[key] <= base[key] * (1 + 1e-12)


@SETTINGS
@given(config, st.integers(1, 8))
def test_more_work_never_cheaper(cfg, extra):
    base = run(cfg)
    for key, bigger in (("samples", cfg["samples"] + extra), ("prompt_len", cfg["prompt_len"] + 97 * extra),
                        ("gen_len", cfg["gen_len"] + 131 * extra)):
        more = run(cfg, **{key: bigger})
        for out in ("latency_s", "cost_usd", "energy_j"):
            assert more[out] >= base[out] * (1 - 1e-12), (key, out)


@SETTINGS
@given(config)
def test_never_faster_than_roofline(cfg):
    """Each device must at least do its share of FLOPs at peak and move its bytes at peak."""
    r = run(cfg)
    t = cfg["devices"]
    if cfg["concurrency"]:
        per_request_s = r["device_seconds"] / t
    else:
        per_request_s = r["latency_s"] / cfg["batch"]
    flops_dev = r["flops"]["total"] / t
    bytes_dev = r["bytes"]["total"] / t
    bound = max(flops_dev / H100.peak_flops("bf16"), bytes_dev / (H100.mem_bandwidth_gbps * 1e9))
    assert per_request_s >= bound * (1 - 1e-9)
    assert np.isfinite(r["latency_s"]) and r["latency_s"] > 0


CALIBRATED = None


def calibrated_efficiency():
    from planner.cost.efficiency import Curve, Efficiency

    return Efficiency(compute={"*": Curve(0.8, 2e8)}, memory=Curve(0.85, 4e5), interconnect=0.7,
                      kernel_overhead_s=3e-6, attention_memory=0.7, gemm_rows_half=12.0,
                      attention_compute=Curve(0.6, 1e6), overlap=0.3, source="test")


@pytest.mark.parametrize("name,budget", [("qwen3-8b", 0), ("gpt-oss-20b", 200), ("qwen3-30b-a3b", 64)])
def test_closed_form_with_calibration_curves_and_partial_overlap(name, budget):
    m = load_model(name)
    eff = calibrated_efficiency()
    P, G = 64, 200
    whole = estimate(m, H100, prompt_len=P, gen_len=G, batch=2, kv_budget=budget, efficiency=eff)["decode_s"]
    mt, ht = ModelTable.build([m]), HardwareTable.build([H100], [eff])
    cols = columns(G, model=0, hardware=0, devices=1, batch=2, concurrency=0, prompt_len=P + np.arange(G),
                   gen_len=1, samples=1, weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16",
                   kv_budget=budget, prefix_sharing=True)
    assert whole == pytest.approx(evaluate(cols, mt, ht)["decode_s"].sum(), rel=1e-9)


def test_serialized_compute_and_memory_is_slower_than_overlapped():
    from dataclasses import replace

    m = load_model("llama-3.2-1b")
    eff = calibrated_efficiency()
    over = estimate(m, H100, prompt_len=512, gen_len=64, batch=8, efficiency=replace(eff, overlap=1.0))
    serial = estimate(m, H100, prompt_len=512, gen_len=64, batch=8, efficiency=replace(eff, overlap=0.0))
    assert serial["latency_s"] > over["latency_s"]
    tb = serial["time_by_bound_s"]
    parts = tb["compute"] + tb["memory"] + tb["interconnect"] + tb["overhead"]
    assert parts == pytest.approx(serial["latency_s"], rel=1e-9)


def test_skinny_gemms_run_below_the_curve():
    from dataclasses import replace

    m = load_model("qwen3-0.6b")
    eff = calibrated_efficiency()
    a = estimate(m, H100, prompt_len=16, gen_len=8, efficiency=replace(eff, gemm_rows_half=0.0))
    b = estimate(m, H100, prompt_len=16, gen_len=8, efficiency=eff)
    assert b["prefill_s"] > a["prefill_s"]


def test_prefill_computes_logits_for_the_last_position_only():
    m = load_model("qwen3-8b")
    r = estimate(m, H100, prompt_len=1000, gen_len=1, batch=2)
    lm_head = m.vocab_size * m.hidden_size
    from planner.params import count

    body = count(m).matmul_params_active - lm_head
    # prefill of 2 x 1000 tokens + one decode step of 2 tokens
    expected = 2 * body * 2000 + 2 * lm_head * 2 + 2 * (body + lm_head) * 2
    assert r["flops"]["linear"] * 2 == pytest.approx(expected, rel=1e-9)


def test_prefill_lm_head_read_is_not_hidden_by_the_layers_compute():
    """The LM head is a kernel of its own: in a compute-bound prefill its weight read adds
    to the layers' time (a single roofline over both would hide it under their compute)."""
    from dataclasses import replace

    m = load_model("qwen3-0.6b")
    eff = replace(calibrated_efficiency(), overlap=1.0, gemm_rows_half=0.0, kernel_overhead_s=0.0)
    lm_head = m.vocab_size * m.hidden_size
    big_vocab = m.model_copy(update={"vocab_size": 2 * m.vocab_size})
    P = 2048
    a = estimate(m, H100, prompt_len=P, gen_len=1, efficiency=eff)["prefill_s"]
    b = estimate(big_vocab, H100, prompt_len=P, gen_len=1, efficiency=eff)["prefill_s"]
    extra_read_s = lm_head * 2 / (H100.mem_bandwidth_gbps * 1e9 * eff.memory.e_max)
    # doubling the vocabulary adds one more head's weight read (and one position's FLOPs)
    assert b - a >= extra_read_s * 0.99


def test_rows_correction_interpolates_like_the_efficiency():
    """The engine's vectorized table lookup equals Efficiency.rows_factor (np.interp in
    log2 rows) at and between the measured points, and beyond them (held flat)."""
    from dataclasses import replace

    from planner.cost.context import Ctx

    eff = replace(calibrated_efficiency(), gemm_rows_correction=((1.0, 0.9), (4.0, 1.1), (8.0, 1.5), (64.0, 1.0)))
    m = load_model("qwen3-0.6b")
    rows = np.array([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 20.0, 64.0, 100.0, 5000.0, 1e6])
    cols = columns(rows.size, model=0, hardware=0, devices=1, batch=1, concurrency=0, prompt_len=16, gen_len=1,
                   samples=1, weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16", kv_budget=0,
                   prefix_sharing=True)
    x = Ctx(cols, ModelTable.build([m]), HardwareTable.build([H100], [eff]))
    assert x.rows_factor(rows) == pytest.approx(eff.rows_factor(rows), rel=1e-12)
    assert eff.rows_factor(8.0) == pytest.approx(1.5 * (1 + 12.0 / 8))


def test_a_slower_row_count_makes_decode_slower():
    from dataclasses import replace

    m = load_model("llama-3.2-1b")
    base = replace(calibrated_efficiency(), overlap=0.0)
    slow8 = replace(base, gemm_rows_correction=((4.0, 1.0), (8.0, 2.0), (16.0, 1.0)))
    kw = dict(prompt_len=64, gen_len=16, efficiency=None)
    for batch, slower in ((4, False), (8, True), (16, False)):
        a = estimate(m, H100, batch=batch, **{**kw, "efficiency": base})["decode_s"]
        b = estimate(m, H100, batch=batch, **{**kw, "efficiency": slow8})["decode_s"]
        assert (b > a * 1.01) is slower and b >= a * (1 - 1e-12)
