"""The dense kernels of one forward pass (a prefill, or one decode step), each class on its
own roofline (planner.cost.roofline; README "Cost model"):

* **linear** (the layers' GEMMs): ``max(F / (peak * e_c), B / (bw * e_m))`` with ``B`` =
  weights read (MoE: the experts the tokens actually touch, a roofline of their own whose
  weight stream runs at ``min(bw * e_m, R_x)``, ``R_x`` the die's ceiling
  ``expert_stream_bytes_per_s`` of planner.serving_params; none without a fit);
* **LM head**: the same roofline on its own (it runs only where logits are needed, so in
  a prefill it is a memory-bound GEMV that the layers' compute does not hide);
* **elementwise** (norms, residual adds, activation, and the routed experts' combine, whose
  hidden-sized rows every tensor-parallel rank writes and reads: :func:`moe_combine_bytes`):
  their activation bytes / bandwidth, 16-bit values at least (an fp8 or fp4 model's GEMMs
  return bf16 hidden states).

Attention, the all-reduces and the phases that add them up are planner.cost.passes'.
An efficiency curve ``e(w) = e_max * w / (w + w_half)`` on the work ``w`` per kernel makes
``F / e(F / n) = (F + n * w_half) / e_max``: calibration adds a work offset per kernel.

Names carry units: ``_s`` seconds, ``_flops``, ``_bytes``, ``_params`` (numbers of
weights), ``_tokens``. ``x`` is the per-row context (planner.cost.context.Ctx). Every
function takes its elementwise operations from ``x.xp`` (:mod:`planner.cost.ops`), so it
runs on numpy rows and on Python floats alike.
"""

from __future__ import annotations

from planner.cost.context import GEMMS_PER_LAYER, KERNELS_PER_LAYER
from planner.cost.efficiency import reduction_efficiency
from planner.cost.expert_parallel import max_device_slots, rank_local_params
from planner.cost.gather import derived, per_model_device
from planner.cost.roofline import gemm_memory_bytes, roofline_s
from planner.cost.weights import expert_params_read, fixed_params_read, tokens_per_expert, touched_experts


# a model-only factor of the formulas below, computed on the model table and gathered
# (planner.cost.gather.derived: the same values; worth it where its columns are read
# nowhere else, as a gather costs ~5 elementwise passes)

def _body_flops_per_token(M):  # the layers' GEMMs, routed experts included, without the LM head
    return 2.0 * (M["matmul_active"] - M["lm_head"])


def _head_flops_per_token(x):  # per device
    return 2.0 * x.model["lm_head"] / x.devices


def _expert_flops_per_token(x):  # per device, tensor parallelism
    M = x.model
    return 2.0 * M["experts_per_token"] * M["expert_params_per"] / x.devices


def _body_flops_per_token_device(x):  # per device, tensor parallelism
    return derived(x.model, _body_flops_per_token) / x.devices


def moe_combine_bytes(x, slots):
    """HBM bytes per device of the routed experts' combine for ``slots`` routed token
    slots on the device (``n k`` under tensor parallelism, where every rank computes a
    partial down projection of every slot; the busiest device's slots under expert
    parallelism): the down projection writes one hidden-sized 16-bit row per slot and the
    combine reads it back to sum a token's ``k`` rows, ``2 x slots x hidden x 2 bytes`` per
    MoE layer. The buffer is the fused MoE's ``intermediate_cache3`` of shape (tokens,
    top_k, hidden) in the activations' 16-bit dtype, summed by ``moe_sum`` (vLLM and SGLang
    ``fused_moe``); TensorRT-LLM's CUTLASS MoE writes the same expanded rows and sums them
    in ``finalizeMoeRoutingKernel``. Unlike the gate/up intermediates (width ``I / t``) its
    width is the full hidden size whatever the tensor-parallel split, so it does not
    shrink with the devices. Zero for dense models."""
    M = x.model
    return 2.0 * M["moe_layers"] * M["hidden"] * x.hidden_bytes_per_value * slots


def expert_reduction_factor(x):
    """Compute-time multiplier of the routed experts' GEMMs for the short reduction of their
    down projection. A gated expert has three h x I matrices: gate and up (2/3 of its
    FLOPs) reduce over the hidden size h, like the dense layers the compute efficiency is
    fitted on; the down projection (1/3) reduces over the expert width I split over the
    devices sharing the expert, ``I / moe_shard`` (tensor parallelism splits it t ways:
    256 per device for DeepSeek-V3's 2,048 at t = 8), and runs at
    ``reduction_efficiency(I / shard) / reduction_efficiency(h)`` of their rate
    (planner.cost.efficiency.reduction_efficiency, DeepGEMM's published table).
    1 for dense models."""
    M, xp = x.model, x.xp
    h = M["hidden"]
    width = M["expert_params_per"] / xp.maximum(M["moe_layers"], 1.0) / (3.0 * h)  # I, per layer
    k_down = xp.maximum(width / x.moe_shard, 1.0)
    slow = reduction_efficiency(h) / reduction_efficiency(k_down)
    return xp.where(M["experts_per_token"] > 0, (2.0 + slow) / 3.0, 1.0)


def dense_kernels(x, n_tok, passes, logit_tokens, head_passes=1.0):
    """Time of the dense kernels for ``n_tok`` tokens in ``passes`` forward passes.

    Four rooflines, since these kernels run one after another and do not hide each
    other: the layers' dense GEMMs; the routed experts' grouped GEMMs (MoE), whose rows
    are the tokens per expert; the LM head, only for the ``logit_tokens`` positions that
    need logits, in ``head_passes`` calls (in a prefill a memory-bound GEMV); and the
    elementwise kernels (norms, residuals, activation), whose activation traffic is pure
    memory time. Returns (time, compute part, memory part, FLOPs, weight bytes,
    activation bytes), per device."""
    M, n_dev = x.model, x.devices
    f = pass_factors(x)
    rows = n_tok if _one_pass(passes) else n_tok / passes  # tokens per GEMM: skinny GEMMs run below the curve
    if x.layout_beyond_tp:  # attention data / expert parallel (planner.cost.expert_parallel)
        a = x.attn_dp
        slots = max_device_slots(x, rows)  # the busiest expert group's token slots per pass
        n_eff = rows * slots / x.xp.maximum(rows * M["experts_per_token"] / x.ep, 1e-30)
        touched = touched_experts(x, n_eff) / x.ep  # its local experts touched
        expert_flops = 2.0 * M["expert_params_per"] * slots * passes / x.moe_shard
        dense_flops = 2.0 * rank_local_params(M) * n_tok / (n_dev * a)
        expert_bytes = expert_params_read(x, touched) * x.weight_bytes_per_param * passes / x.moe_shard
        dense_rows, logit_tokens = rows / a, logit_tokens / a
    else:
        expert_flops = f["expert_flops_per_token"] * n_tok
        dense_flops = f["body_flops_per_token"] * n_tok - expert_flops
        touched = touched_experts(x, rows)
        expert_bytes = _times(passes, expert_params_read(x, touched) * f["weight_bytes_per_param_device"])
        slots, dense_rows = rows * M["experts_per_token"], rows
    dense_bytes = _times(passes, f["dense_bytes"])
    # (flat_rows, plain_gemv: no skinny-GEMM curve, no GEMV terms anywhere; the factors
    # are exactly 1 and the terms 0, and their full-size passes are skipped)
    scaled_flops = dense_flops if x.flat_rows else dense_flops * x.rows_factor(dense_rows)
    compute_s = (scaled_flops + _times(passes, f["body_offset_flops"])) * x.s_per_dense_flop
    read_bytes = dense_bytes if x.plain_gemv else gemm_memory_bytes(x, dense_bytes, passes * M["gemm_out_rows"] / n_dev,
                                                                     dense_rows)
    memory_s = read_bytes * x.s_per_byte + _times(passes, f["body_offset_s"])
    t_dense, c_dense, m_dense = roofline_s(x, compute_s, memory_s)
    # routed experts: grouped GEMMs of their own, with tokens_per_expert rows each, their
    # down projection at its short per-device reduction (expert_reduction_factor)
    compute_s = expert_flops * f["expert_s_per_flop"]
    if not x.flat_rows:
        compute_s = compute_s * x.rows_factor(tokens_per_expert(x, rows, touched, slots))
    # their weights stream at the experts' own achieved rate (Ctx.s_per_expert_byte)
    t_exp, c_exp, m_exp = roofline_s(x, compute_s, expert_bytes * x.s_per_expert_byte)
    t_body, c_body, m_body = t_dense + t_exp, c_dense + c_exp, m_dense + m_exp
    body_flops, body_bytes = dense_flops + expert_flops, dense_bytes + expert_bytes
    head_flops = f["head_flops_per_token"] * logit_tokens
    head_bytes = _times(head_passes, f["head_bytes"])
    scaled_flops = head_flops if x.flat_rows else head_flops * x.rows_factor(logit_tokens / head_passes)
    compute_s = (scaled_flops + _times(head_passes, x.gemm_offset_flops)) * x.s_per_gemm_flop
    read_bytes = head_bytes if x.plain_gemv else gemm_memory_bytes(x, head_bytes, head_passes * M["vocab"] / n_dev,
                                                                   logit_tokens / head_passes)
    memory_s = read_bytes * x.s_per_byte + _times(head_passes, f["head_offset_s"])
    t_head, c_head, m_head = roofline_s(x, compute_s, memory_s)
    # the residual stream, norms, rotary and activation run on 16-bit hidden states whatever
    # the GEMMs' input dtype (an fp8 linear returns bf16: Ctx.hidden_bytes_per_value), plus
    # the routed experts' per-slot outputs, hidden-sized on every device serving the slot
    # (moe_combine_bytes; 0: dense)
    act_bytes = f["act_bytes_per_token"] * n_tok + _times(passes, slots) * f["combine_bytes_per_slot"]
    t_act = act_bytes * x.s_per_byte + _times(passes, f["elementwise_offset_s"])
    return (t_body + t_head + t_act, c_body + c_head, m_body + m_head + t_act, body_flops + head_flops,
            body_bytes + head_bytes, act_bytes)


def _one_pass(passes) -> bool:
    """Whether ``passes`` is the number 1 (a decode step), where a product by it is skipped."""
    return type(passes) is float and passes == 1.0


def _times(passes, v):
    """``passes * v``: ``v`` itself for one pass (no multiplication pass over the rows)."""
    return v if _one_pass(passes) else passes * v


def pass_factors(x) -> dict:
    """The factors of :func:`dense_kernels` that depend on the model, the device, the
    dtypes and the layout but not on the tokens, per device: computed once per context
    (its prefill, its decode and a serving row's steps share them) and kept with it
    (``x._pass_factors``; planner.cost.row_subset subsets it with the other columns).
    ``*_per_token`` multiply the pass's tokens, ``body_offset_*`` / ``head_offset_s`` /
    ``elementwise_offset_s`` the passes (the efficiency curve's work offset per kernel:
    ``n_kernels x offset``), ``dense_bytes`` the passes too (weights read once per pass)."""
    f = x.__dict__.get("_pass_factors")
    if f is not None:
        return f
    M, H, n_dev = x.model, x.hw, x.devices
    n_body = GEMMS_PER_LAYER * M["layers"]
    n_elementwise = (KERNELS_PER_LAYER - GEMMS_PER_LAYER) * M["layers"]
    s_per_offset = H["mem_offset_bytes"] * x.s_per_byte  # a kernel's memory-side work offset, in seconds
    f = {
        "weight_bytes_per_param_device": x.weight_bytes_per_param / n_dev,
        "body_offset_flops": n_body * x.gemm_offset_flops,
        "body_offset_s": n_body * s_per_offset,
        "expert_s_per_flop": x.s_per_gemm_flop * per_model_device(x, expert_reduction_factor),
        "head_flops_per_token": per_model_device(x, _head_flops_per_token),
        "head_bytes": M["lm_head"] * x.head_bytes_per_param / n_dev,
        "head_offset_s": s_per_offset,
        "act_bytes_per_token": M["act_elems"] * x.hidden_bytes_per_value / x.group_devices,
        "combine_bytes_per_slot": moe_combine_bytes(x, 1.0),
        "elementwise_offset_s": n_elementwise * s_per_offset,
    }
    f["dense_bytes"] = fixed_params_read(x) * x.dense_bytes_per_param / n_dev  # 16-bit outside 4-bit-only experts
    if not x.layout_beyond_tp:
        f["expert_flops_per_token"] = per_model_device(x, _expert_flops_per_token)
        f["body_flops_per_token"] = per_model_device(x, _body_flops_per_token_device)
    x._pass_factors = f
    return f
