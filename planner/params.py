"""Parameter, FLOP and KV-cache counts derived from a model descriptor.

Nothing here is a lookup table: every figure is counted from the architecture, and a
test checks the totals against each model's published parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.specs import Model


@dataclass(frozen=True)
class ModelCounts:
    """Counts for one model. Parameters are numbers of weights, not bytes."""

    total_params: float          # stored weights (a tied embedding counted once)
    active_params: float         # weights used per token (top-k experts only)
    embedding_params: float      # the input embedding table
    matmul_params_active: float  # weights in matmuls per token, LM head included even if tied
    read_params_fixed: float     # weights read every decode step whatever the routing
    expert_params: float         # one routed expert in one layer
    num_moe_layers: int
    num_experts: int
    experts_per_token: int
    num_layers: int
    num_global_layers: int       # layers attending the full context
    num_sliding_layers: int
    num_linear_layers: int       # linear-attention layers: a fixed-size state, no KV cache
    state_elems_per_seq_layer: float   # recurrent + convolution state of one sequence in one such layer
    linear_flops_per_token_layer: float  # the state update and read-out of one token in one such layer
    state_heads: int             # value heads of the state (what tensor parallelism splits)
    sliding_window: float        # tokens (inf when there is none)
    kv_elems_per_token_layer: float   # KV values one token adds in one layer
    attn_flops_per_ctx_decode: float  # per query token, per context token, per layer
    attn_flops_per_ctx_prefill: float
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int


def _attention_params(m: Model) -> float:
    h, H, Hkv, d = m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim
    if m.mla is not None:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            q = h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * H * qk
        else:
            q = h * H * qk
        kv = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank
        kv += a.kv_lora_rank * H * (a.qk_nope_head_dim + a.v_head_dim)
        o = H * a.v_head_dim * h
        return float(q + kv + o)
    p = h * H * d + 2 * h * Hkv * d + H * d * h
    if m.attention_output_gate:  # the query projection's second half: one gate per head dim
        p += h * H * d
    if m.qkv_bias:
        p += (H + 2 * Hkv) * d
    if m.o_bias:
        p += h
    if m.qk_norm:
        p += 2 * d
    if m.attention_sinks:
        p += H
    return float(p)


# Gated delta rule per token and value head (Yang et al. 2025, recurrent form): decay the
# state (dk dv), read k^T S (2 dk dv), the rank-1 delta update (2 dk dv), the output
# q^T S (2 dk dv): 7 dk dv FLOPs. The chunked prefill kernel (flash-linear-attention
# chunk_gated_delta_rule) does the same work per token up to intra-chunk terms.
GDN_FLOPS_PER_STATE_VALUE = 7.0


def _linear_attention_params(m: Model) -> float:
    """One Gated DeltaNet layer (Qwen3-Next / Qwen3.5 modeling code): the fused input
    projection to q, k (key heads x key dim each), v and the output gate z (value heads x
    value dim each), the per-head beta and decay-rate projections, the depthwise causal
    convolution over q, k, v, the per-head decay A_log and dt_bias, the gated RMSNorm over
    a value head, and the output projection."""
    a, h = m.linear_attention, m.hidden_size
    key_dim, value_dim = a.num_key_heads * a.key_head_dim, a.num_value_heads * a.value_head_dim
    qkvz = h * (2 * key_dim + 2 * value_dim)
    ba = h * 2 * a.num_value_heads
    conv = (2 * key_dim + value_dim) * a.conv_kernel
    per_head = 2 * a.num_value_heads
    return float(qkvz + ba + conv + per_head + a.value_head_dim + value_dim * h)


def attention_params(m: Model) -> float:
    """Attention weights of all layers (softmax attention layers' projections, MLA's
    included, plus the linear-attention layers' own): what an attention data-parallel
    deployment holds whole on every attention group."""
    L_lin = m.linear_attention.num_layers if m.linear_attention is not None else 0
    lin = _linear_attention_params(m) if L_lin else 0.0
    return (m.num_layers - L_lin) * _attention_params(m) + L_lin * lin


def _mlp_params(h: int, inter: int, gated: bool, bias: bool = False) -> float:
    mats = 3 if gated else 2
    p = mats * h * inter
    if bias:
        p += (2 * inter if gated else inter) + h
    return float(p)


def count(m: Model) -> ModelCounts:
    """Count weights, per-token matmul weights, KV size and attention FLOPs of ``m``."""
    h, L = m.hidden_size, m.num_layers
    attn = _attention_params(m)
    norms_per_layer = 2 * h
    embed = float(m.vocab_size * h)
    lm_head = float(m.vocab_size * h)

    if m.moe is None:
        dense_layers, moe_layers = L, 0
        expert = router = shared = 0.0
        E = k = 0
    else:
        e = m.moe
        dense_layers = e.first_dense_layers
        moe_layers = L - dense_layers
        expert = _mlp_params(h, e.expert_intermediate_size, m.mlp_gated, e.expert_bias)
        router = float(h * e.num_experts + (e.num_experts if e.router_bias else 0))
        shared = e.num_shared_experts * _mlp_params(h, e.shared_expert_intermediate_size, m.mlp_gated)
        E, k = e.num_experts, e.experts_per_token
    dense_mlp = _mlp_params(h, m.intermediate_size, m.mlp_gated) if dense_layers else 0.0

    lin = m.linear_attention
    L_lin = lin.num_layers if lin is not None else 0
    lin_attn = _linear_attention_params(m) if lin is not None else 0.0
    fixed_layers = ((L - L_lin) * attn + L_lin * lin_attn + L * norms_per_layer + dense_layers * dense_mlp
                    + moe_layers * (router + shared))
    experts_all = moe_layers * E * expert
    experts_active = moe_layers * k * expert
    final_norm = float(h)
    head_stored = 0.0 if m.tie_embeddings else lm_head

    total = embed + head_stored + fixed_layers + experts_all + final_norm
    active = embed + head_stored + fixed_layers + experts_active + final_norm
    matmul_fixed = fixed_layers - L * norms_per_layer  # norms are not matmuls

    if m.mla is not None:
        a = m.mla
        kv_elems = float(a.kv_lora_rank + a.qk_rope_head_dim)
        # Absorbed decode (FlashMLA): scores over the latent + rope, values in the latent.
        flops_dec = 2.0 * m.num_heads * (a.kv_lora_rank + a.qk_rope_head_dim) + 2.0 * m.num_heads * a.kv_lora_rank
        flops_pre = 2.0 * m.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim) + 2.0 * m.num_heads * a.v_head_dim
    else:
        kv_elems = float(2 * m.num_kv_heads * m.head_dim)
        flops_dec = flops_pre = 4.0 * m.num_heads * m.head_dim

    return ModelCounts(
        total_params=total,
        active_params=active,
        embedding_params=embed,
        matmul_params_active=matmul_fixed + experts_active + lm_head,
        read_params_fixed=fixed_layers + lm_head + final_norm,
        expert_params=expert,
        num_moe_layers=moe_layers,
        num_experts=E,
        experts_per_token=k,
        num_layers=L,
        num_global_layers=L - m.num_sliding_layers - L_lin,
        num_sliding_layers=m.num_sliding_layers,
        num_linear_layers=L_lin,
        state_elems_per_seq_layer=0.0 if lin is None else float(
            lin.num_value_heads * lin.key_head_dim * lin.value_head_dim
            + (2 * lin.num_key_heads * lin.key_head_dim + lin.num_value_heads * lin.value_head_dim)
            * (lin.conv_kernel - 1)),
        linear_flops_per_token_layer=0.0 if lin is None else
        GDN_FLOPS_PER_STATE_VALUE * lin.num_value_heads * lin.key_head_dim * lin.value_head_dim,
        state_heads=0 if lin is None else lin.num_value_heads,
        sliding_window=float(m.sliding_window) if m.sliding_window else float("inf"),
        kv_elems_per_token_layer=kv_elems,
        attn_flops_per_ctx_decode=flops_dec,
        attn_flops_per_ctx_prefill=flops_pre,
        hidden_size=h,
        num_heads=m.num_heads,
        num_kv_heads=m.num_kv_heads,
        head_dim=m.head_dim,
    )
