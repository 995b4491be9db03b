"""The routed experts' combine traffic (planner.cost.dense.moe_combine_bytes): every
device that serves a token slot writes and reads back one hidden-sized 16-bit row for it
(the fused MoE's ``intermediate_cache3`` of shape (tokens, top_k, hidden), summed by
``moe_sum``). Oracles: hand counts from the models' published config.json values, and
the invariance of a dense model's activation traffic under tensor parallelism."""

from __future__ import annotations

import pytest

from planner.cost.api import estimate

COMMON = dict(batch=1, prompt_len=2048, gen_len=1, weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16")


def _activation_bytes(model, devices):
    """Activation bytes per request summed over the tensor-parallel devices."""
    return estimate(model, "h200", devices=devices, **COMMON)["bytes"]["activations"]


def test_dense_activation_traffic_does_not_depend_on_tensor_parallelism():
    one, eight = _activation_bytes("llama-3.1-70b", 1), _activation_bytes("llama-3.1-70b", 8)
    assert eight == pytest.approx(one, rel=1e-9)


@pytest.mark.parametrize("model, moe_layers, hidden, top_k", [
    # DeepSeek-V3/R1 config.json: 61 layers, first_k_dense_replace 3, hidden_size 7168, num_experts_per_tok 8
    ("deepseek-r1", 58, 7168, 8),
    # Qwen3-235B-A22B config.json: 94 layers all MoE, hidden_size 4096, num_experts_per_tok 8
    ("qwen3-235b-a22b", 94, 4096, 8),
    # gpt-oss-120b config.json: 36 layers, hidden_size 2880, experts_per_token 4
    ("gpt-oss-120b", 36, 2880, 4),
])
def test_moe_combine_rows_are_replicated_on_every_tensor_parallel_device(model, moe_layers, hidden, top_k):
    """Under tensor parallelism every rank computes a partial down projection of every
    slot, so going from 1 to 8 devices adds 7 more copies of the combine traffic: tokens
    x top_k x hidden x 2 bytes, written and read, per MoE layer (hand count); the rest of
    the activation traffic splits over the devices and keeps its total."""
    tokens = COMMON["prompt_len"] + COMMON["gen_len"]  # the prompt's pass and the one decode step
    combine = 2 * moe_layers * hidden * 2 * top_k * tokens
    extra = _activation_bytes(model, 8) - _activation_bytes(model, 1)
    assert extra == pytest.approx(7 * combine, rel=1e-6)

