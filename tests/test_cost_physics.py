"""Physics corrections of issue 10 item 6, each against an outside oracle: measured
collective latencies, datasheet bandwidth bounds, parameter counts and brute force."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns, estimate
from planner.cost.context import Ctx
from planner.cost.efficiency import Curve, Efficiency, reduction_efficiency
from planner.cost.tables import HardwareTable, ModelTable
from planner.params import _attention_params, count

H100 = load_hardware("h100-sxm")
H200 = load_hardware("h200")


@pytest.mark.parametrize("concurrency", [0, 1, 4])
def test_tp8_beats_tp4_per_output_token_llama70b_fp8(concurrency):
    """Measured (vLLM on H100 SXM, llama-3.1-70b fp8, 4 in flight): TP4 11.8 ms, TP8 9.1 ms
    per output token. Halving the weights each device streams must win over the extra
    all-reduce hops: each small all-reduce is one collective, not 2(t-1) of them."""
    m = load_model("llama-3.1-70b")
    kw = dict(prompt_len=1024, gen_len=1024, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8",
              concurrency=concurrency)
    tp4 = estimate(m, H100, devices=4, **kw)["tpot_s"]
    tp8 = estimate(m, H100, devices=8, **kw)["tpot_s"]
    assert tp8 < 0.9 * tp4


def test_allreduce_latency_per_collective_grows_with_the_ring():
    """Interconnect seconds per decode step: 2 all-reduces per layer, each at least the
    device's two-device small-message latency (nccl-tests ~6 us, custom all-reduce 3 us)
    and at most the old charge of 2(t-1) link latencies per all-reduce plus bandwidth."""
    m = load_model("llama-3.1-70b")
    lat = H100.interconnect_latency_us * 1e-6
    prev = 0.0
    for t in (2, 4, 8):
        r = estimate(m, H100, devices=t, prompt_len=128, gen_len=64, weight_dtype="fp8", act_dtype="fp8")
        per_ar = r["time_by_bound_s"]["interconnect"] / (64 * 2 * m.num_layers)
        bw_term = 2 * (t - 1) / t * m.hidden_size * 1 / (H100.interconnect_gbps * 1e9 * H100.interconnect_efficiency)
        assert lat <= per_ar <= 2 * (t - 1) * lat + bw_term * 1.0001
        assert per_ar > prev  # more devices, a larger share 2(t-1)/t of the message on the link
        prev = per_ar


def test_deepseek_r1_batch1_no_faster_than_its_weight_reads_and_collectives():
    """DeepSeek-R1 fp8 at batch 1 on 8x H200: each token reads the attention weights of
    every layer and its 8 routed experts in every MoE layer; at the datasheet bandwidth
    (4.8 TB/s per device, efficiency 1) plus two small all-reduces per layer at the
    device's two-device latency, that is a floor no estimate may go under."""
    m = load_model("deepseek-r1")
    c = count(m)
    weight_bytes = (m.num_layers * _attention_params(m) + c.num_moe_layers * c.experts_per_token * c.expert_params) * 1.0
    floor_s = weight_bytes / 8 / (H200.mem_bandwidth_gbps * 1e9) + 2 * m.num_layers * H200.interconnect_latency_us * 1e-6
    r = estimate(m, H200, devices=8, batch=1, prompt_len=1024, gen_len=256, weight_dtype="fp8", act_dtype="fp8",
                 kv_dtype="fp8")
    assert r["tpot_s"] >= floor_s
    # every touched expert is read whole: weight bytes per token >= the 8 experts' bytes
    per_token = r["bytes"]["weights"] / 256
    assert per_token >= c.num_moe_layers * 8 * c.expert_params


def test_grouped_gemm_rows_are_tokens_per_expert():
    """With a skinny-GEMM curve (time x (1 + R / rows)), the routed experts' GEMMs see
    rows = n k / touched experts (occupancy of E bins by n k draws), far fewer than the
    n rows of the dense GEMMs. Serialized compute and memory (overlap 0) make the compute
    time additive, so the extra time from R is recovered exactly."""
    m = load_model("qwen3-30b-a3b")
    c = count(m)
    R = 64.0
    base = Efficiency(compute={"*": Curve(0.7)}, memory=Curve(0.8), interconnect=0.7, kernel_overhead_s=0.0,
                      overlap=0.0)
    slow = replace(base, gemm_rows_half=R)
    n = 32
    a = estimate(m, H100, batch=n, prompt_len=64, gen_len=1, efficiency=base)
    b = estimate(m, H100, batch=n, prompt_len=64, gen_len=1, efficiency=slow)
    E, k = c.num_experts, c.experts_per_token
    touched = E * (1 - (1 - k / E) ** n)
    expert_flops = 2 * k * c.expert_params * c.num_moe_layers * n
    dense_flops = 2 * (c.matmul_params_active - m.vocab_size * m.hidden_size) * n - expert_flops
    head_flops = 2 * m.vocab_size * m.hidden_size * n
    s_flop = 1 / (H100.peak_flops("bf16") * 0.7)
    # the experts' down projection at its short reduction (planner.cost.efficiency.reduction_efficiency):
    # config.json hidden_size 2048, moe_intermediate_size 768, one device
    slow_down = (2.0 + reduction_efficiency(2048.0) / reduction_efficiency(768.0)) / 3.0
    extra = (dense_flops * R / n + expert_flops * slow_down * R / (n * k / touched) + head_flops * R / n) * s_flop
    got = b["decode_s"] - a["decode_s"]
    assert got == pytest.approx(extra, rel=1e-6)
    assert n * k / touched < n / 4  # the experts' GEMMs are much skinnier


@pytest.mark.parametrize("dtype", ["int4", "fp4"])
def test_weight_only_4bit_keeps_embeddings_and_head_16bit(dtype):
    """GPTQ/AWQ/MXFP4 checkpoints leave the embedding table and LM head in bf16: the
    stored weights are (P - P_eh) * bits/8 + P_eh * 2 bytes."""
    m = load_model("llama-3.1-8b")
    c = count(m)
    eh = c.embedding_params + (0 if m.tie_embeddings else m.vocab_size * m.hidden_size)
    bits = {"int4": 4 + 16 / 128, "fp4": 4 + 8 / 32}[dtype]
    hw = load_hardware("b200")
    r = estimate(m, hw, prompt_len=128, gen_len=8, weight_dtype=dtype)
    assert r["memory"]["weights_bytes"] == pytest.approx((c.total_params - eh) * bits / 8 + eh * 2, rel=1e-9)
    quantized = m.model_copy(update={"quantized_embeddings": True})
    q = estimate(quantized, hw, prompt_len=128, gen_len=8, weight_dtype=dtype)
    assert q["memory"]["weights_bytes"] == pytest.approx(c.total_params * bits / 8, rel=1e-9)
    # fp8 is not weight-only 4-bit: everything at 1 byte
    f = estimate(m, hw, prompt_len=128, gen_len=8, weight_dtype="fp8")
    assert f["memory"]["weights_bytes"] == pytest.approx(c.total_params * 1.0, rel=1e-9)


def test_context_longer_than_the_model_is_an_input_error(capsys):
    from planner.cli import main
    from planner.errors import InputError

    m = load_model("llama-3.1-8b")
    with pytest.raises(InputError, match="gen-len"):
        estimate(m, H100, prompt_len=m.max_context - 10, gen_len=11)
    estimate(m, H100, prompt_len=m.max_context - 10, gen_len=10)  # exactly the context: fine
    rc = main(["estimate", "--model", "llama-3.1-8b", "--prompt-len", str(m.max_context), "--gen-len", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "gen-len" in err and str(m.max_context) in err


def test_decode_sums_follow_their_arguments():
    """The context's decode sums equal brute force for every (P, G) asked, in any order."""
    m = load_model("gemma-2-2b")  # sliding layers: all three sums differ
    cols = columns(1, model=0, hardware=0, devices=1, batch=1, concurrency=0, prompt_len=16, gen_len=1, samples=1,
                   weight_dtype="bf16", act_dtype="bf16", kv_dtype="bf16", kv_budget=300, prefix_sharing=True)
    x = Ctx(cols, ModelTable.build([m]), HardwareTable.build([H100]))
    w = m.sliding_window
    for P, G in ((10.0, 5000.0), (3000.0, 7.0), (10.0, 5000.0)):
        c = np.arange(P, P + G)
        got = [float(np.asarray(s).ravel()[0]) for s in x.decode_sums(np.array([P]), np.array([G]))]
        want = [c.sum(), np.minimum(c, 300).sum(), np.minimum(c, min(w, 300)).sum()]
        assert got == pytest.approx(want, rel=1e-12)


def test_moe_layers_launch_the_router_sort_and_combine_kernels():
    """An MoE MLP runs the router GEMM, top-k softmax, the token sort by expert, two
    grouped GEMMs, the activation and the weighted sum of the k outputs (vLLM's
    fused_experts): 4 kernels more than a dense MLP. DeepSeek-R1 has 61 layers, the
    first 3 dense (config.json first_k_dense_replace = 3): launch overhead per decode
    step = (8 * 61 + 4 * 58 + 2) launches."""
    m = load_model("deepseek-r1")
    assert (m.num_layers, m.moe.first_dense_layers) == (61, 3)
    eff = Efficiency(compute={"*": Curve(0.7)}, memory=Curve(0.8), interconnect=0.7, kernel_overhead_s=4e-6)
    G = 16
    r = estimate(m, H200, devices=8, prompt_len=64, gen_len=G, weight_dtype="fp8", act_dtype="fp8", efficiency=eff)
    dense = estimate(load_model("llama-3.1-70b"), H200, devices=8, prompt_len=64, gen_len=G, weight_dtype="fp8",
                     act_dtype="fp8", efficiency=eff)
    prefill_launches = 8 * 61 + 4 * 58 + 2  # one prefill pass
    assert r["time_by_bound_s"]["overhead"] == pytest.approx((G + 1) * prefill_launches * 4e-6, rel=1e-9)
    assert dense["time_by_bound_s"]["overhead"] == pytest.approx((G + 1) * (8 * 80 + 2) * 4e-6, rel=1e-9)
