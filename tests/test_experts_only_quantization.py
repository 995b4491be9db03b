"""4-bit weight-only checkpoints that quantize the routed experts only (``quantized_experts_only``):
gpt-oss's MXFP4 (config.json ``quantization_config.modules_to_not_convert``: self_attn, router,
embeddings, LM head) and Kimi-K2's INT4. Oracles: the checkpoint's size and a decode step's
weight bytes in closed form from the config.json dimensions (not from the planner's counts)."""

from __future__ import annotations

import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate

H200 = load_hardware("h200")
MXFP4_BYTES = (4 + 8 / 32) / 8  # E2M1 values plus one E8M0 scale per 32 (OCP MX spec)

# openai/gpt-oss-120b config.json: hidden 2880, 36 layers, 64 query heads and 8 KV heads of 64,
# attention bias, one sink per head, 128 experts of width 2880 (fused gate_up with bias, down
# with bias), a router with bias, vocabulary 201,088, untied LM head
H, L, E, I, V = 2880, 36, 128, 2880, 201088
Q, KV = 64 * 64, 8 * 64
EXPERT = H * 2 * I + 2 * I + I * H + H                                    # one expert, one layer
ATTENTION = (H * Q + Q) + 2 * (H * KV + KV) + (Q * H + H) + 64           # q, k, v, o with biases, sinks
ROUTER = H * E + E
NORMS = 2 * H                                                            # two RMSNorm scales per layer
EMBED_HEAD = 2 * V * H


def test_gpt_oss_120b_stored_weights_are_the_mxfp4_checkpoint():
    """Experts at 4.25 bits, everything else (attention, router, norms, embeddings, LM head)
    at 2 bytes: 114.70B x 4.25/8 + 2.13B x 2 = 65.19 GB, the checkpoint's size (the routed
    experts alone in MXFP4 would be 63.8 GB if attention were 4-bit too)."""
    expected = L * E * EXPERT * MXFP4_BYTES + (L * (ATTENTION + ROUTER + NORMS) + H + EMBED_HEAD) * 2.0
    r = estimate(load_model("gpt-oss-120b"), H200, prompt_len=128, gen_len=8, weight_dtype="fp4", act_dtype="bf16")
    assert r["memory"]["weights_bytes"] == pytest.approx(expected, rel=2e-3)
    assert expected == pytest.approx(65.19e9, rel=1e-3)


def test_gpt_oss_120b_decode_step_reads_16bit_attention_and_four_experts():
    """One sequence, one decode step: the 4 routed experts of each layer at 4.25 bits, the
    attention, router and LM head at 2 bytes (the step's weight bytes, as the difference of
    two generation lengths so the prefill cancels)."""
    m = load_model("gpt-oss-120b")
    kw = dict(prompt_len=1, weight_dtype="fp4", act_dtype="bf16")
    a = estimate(m, H200, gen_len=1000, **kw)["bytes"]["weights"]
    b = estimate(m, H200, gen_len=2000, **kw)["bytes"]["weights"]
    per_step = (b - a) / 1000
    expected = L * 4 * EXPERT * MXFP4_BYTES + (L * (ATTENTION + ROUTER + NORMS) + V * H) * 2.0
    assert per_step == pytest.approx(expected, rel=3e-3)


@pytest.mark.parametrize("dtype", ["fp8", "bf16"])
def test_not_4bit_every_weight_at_the_checkpoint_width(dtype):
    """The flag is about 4-bit weight-only checkpoints: an fp8 or bf16 deployment of the same
    model stores every weight at its width (embeddings and LM head too)."""
    m = load_model("gpt-oss-120b")
    r = estimate(m, H200, devices=2, prompt_len=128, gen_len=8, weight_dtype=dtype, act_dtype="bf16")
    total = L * (E * EXPERT + ATTENTION + ROUTER + NORMS) + H + EMBED_HEAD
    assert r["memory"]["weights_bytes"] * 2 == pytest.approx(total * {"fp8": 1.0, "bf16": 2.0}[dtype], rel=2e-3)


def test_experts_only_model_decodes_slower_than_all_4bit_and_faster_than_bf16():
    """Bracketing: with only the experts 4-bit, a memory-bound decode step of Kimi-K2.5 on
    8 H200 lies between the same model quantized everywhere (GPTQ-style) and in bf16."""
    m = load_model("kimi-k2.5")
    kw = dict(devices=8, prompt_len=1024, gen_len=256, act_dtype="bf16", concurrency=8)
    experts_only = estimate(m, H200, weight_dtype="int4", **kw)["tpot_s"]
    everywhere = estimate(m.model_copy(update={"quantized_experts_only": False}), H200, weight_dtype="int4", **kw)
    bf16 = estimate(m, H200, weight_dtype="bf16", **kw)["tpot_s"]
    assert everywhere["tpot_s"] < experts_only < bf16
