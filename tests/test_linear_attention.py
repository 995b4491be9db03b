"""Linear-attention layers (Gated DeltaNet) in the descriptor and the cost engine.

Oracles: the published parameter counts of Qwen3.5-397B-A17B (the catalog test checks
them; here the layer kinds they rest on), and the defining property of a fixed-size
recurrent state: decode traffic and time that do not grow with the context (hypothesis),
against a full-attention twin whose traffic does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate
from planner.params import count
from planner.specs import Model

H200 = load_hardware("h200")
QWEN35 = load_model("qwen3.5-397b-a17b")


def _all_linear(m: Model) -> Model:
    """The descriptor with every layer linear attention (no KV cache at all)."""
    lin = m.linear_attention.model_copy(update={"num_layers": m.num_layers})
    return m.model_copy(update={"linear_attention": lin})


def _all_full(m: Model) -> Model:
    """The descriptor with every layer full attention (its KV grows with the context)."""
    return m.model_copy(update={"linear_attention": None})


def test_qwen35_layer_kinds_and_published_counts():
    """60 layers: 15 attend (KV cache: 2 KV heads x 256 x (K, V)), 45 keep a Gated DeltaNet
    state of 64 value heads x 128 x 128; counted 396.3B / 17.35B against the card's 397B /
    17B; the descriptor is fully sourced."""
    c = count(QWEN35)
    assert (c.num_global_layers, c.num_linear_layers, c.num_sliding_layers) == (15, 45, 0)
    assert c.kv_elems_per_token_layer == 2 * 2 * 256
    assert c.state_elems_per_seq_layer >= 64 * 128 * 128
    assert abs(c.total_params / 397e9 - 1) < 0.015
    assert abs(c.active_params / 17e9 - 1) < 0.03
    assert QWEN35.unsourced_fields() == []
    # the same widths with full attention in every layer would count fewer parameters:
    # a Gated DeltaNet layer's projections (q, k, v, z, out over 16/64 heads) outweigh a
    # gated GQA layer's (32 query heads, 2 KV heads)
    assert count(_all_full(QWEN35)).total_params < c.total_params


def test_linear_layers_bounded_by_the_model():
    bad = QWEN35.linear_attention.model_copy(update={"num_layers": 61}).model_dump()
    with pytest.raises(ValueError, match="exceeds num_layers"):
        Model(**{**QWEN35.model_dump(), "linear_attention": bad})
    with pytest.raises(ValueError, match="multiple of num_key_heads"):
        Model(**{**QWEN35.model_dump(), "linear_attention": {**QWEN35.linear_attention.model_dump(),
                                                              "num_value_heads": 60}})


KW = dict(devices=8, weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", ep=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p1=st.integers(1, 60_000), p2=st.integers(1, 60_000), gen=st.integers(1, 2048), batch=st.integers(1, 64))
def test_decode_bytes_of_a_linear_attention_model_do_not_grow_with_the_context(p1, p2, gen, batch):
    """A model whose every layer is linear attention reads and writes the same state per
    decode step at any context: decode bytes and decode time are equal for two prompt
    lengths; the hybrid model's grow with the context by its attending layers only."""
    lin = _all_linear(QWEN35)
    a = estimate(lin, H200, batch=batch, prompt_len=p1, gen_len=gen, **KW)
    b = estimate(lin, H200, batch=batch, prompt_len=p2, gen_len=gen, **KW)
    assert a["bytes"]["kv_cache"] == pytest.approx(b["bytes"]["kv_cache"], rel=1e-9)
    assert a["decode_s"] == pytest.approx(b["decode_s"], rel=1e-9)
    assert a["memory"]["kv_cache_bytes"] == pytest.approx(b["memory"]["kv_cache_bytes"], rel=1e-9)
    assert a["bytes"]["kv_cache"] > 0  # the state is read and written every step
    lo, hi = sorted((p1, p2))
    if hi > lo:
        h_lo = estimate(QWEN35, H200, batch=batch, prompt_len=lo, gen_len=gen, **KW)
        h_hi = estimate(QWEN35, H200, batch=batch, prompt_len=hi, gen_len=gen, **KW)
        f_lo = estimate(_all_full(QWEN35), H200, batch=batch, prompt_len=lo, gen_len=gen, **KW)
        f_hi = estimate(_all_full(QWEN35), H200, batch=batch, prompt_len=hi, gen_len=gen, **KW)
        hybrid_growth = h_hi["bytes"]["kv_cache"] - h_lo["bytes"]["kv_cache"]
        full_growth = f_hi["bytes"]["kv_cache"] - f_lo["bytes"]["kv_cache"]
        assert hybrid_growth > 0
        # the hybrid's KV grows as its 15 attending layers of 60 do
        assert hybrid_growth == pytest.approx(full_growth * 15 / 60, rel=1e-6)


def test_prefill_of_linear_layers_is_linear_in_the_prompt():
    """Doubling a long prompt doubles an all-linear model's prefill attention FLOPs (no
    quadratic term), while full attention's more than double."""
    def att(m, p):
        return estimate(m, H200, batch=1, prompt_len=p, gen_len=1, **KW)["flops"]["attention"]

    lin, full = _all_linear(QWEN35), _all_full(QWEN35)
    r_lin = (att(lin, 32768) - att(lin, 1)) / (att(lin, 16384) - att(lin, 1))
    assert r_lin == pytest.approx(2.0, rel=1e-3)
    assert att(full, 32768) / att(full, 16384) > 3.0


def test_state_memory_is_per_sequence_and_counts_against_capacity():
    """The footprint holds one state per sequence: 45 layers x (64 x 128 x 128 + conv) fp32
    values over 8 devices, the same at 1k and 100k tokens of context for an all-linear model."""
    lin = _all_linear(QWEN35)
    c = count(lin)
    per_seq = c.num_linear_layers * c.state_elems_per_seq_layer * 4.0 / 8
    one = estimate(lin, H200, batch=1, prompt_len=1024, gen_len=16, **KW)["memory"]["kv_cache_bytes"]
    many = estimate(lin, H200, batch=16, prompt_len=100_000, gen_len=16, **KW)["memory"]["kv_cache_bytes"]
    assert one == pytest.approx(per_seq, rel=1e-9)
    assert many == pytest.approx(16 * per_seq, rel=1e-9)
