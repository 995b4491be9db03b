"""Kernel classes and phases of one forward pass, shared by the static-batch engine
(:mod:`planner.cost.engine`) and the serving models (:mod:`planner.cost.serving`,
:mod:`planner.cost.steps`).

Per pass (a prefill, or one decode step) the work splits into kernel classes, each timed
by its own roofline (README "Cost model"):

* **linear** (the layers' GEMMs): ``max(F / (peak * e_c), B / (bw * e_m))`` with ``B`` =
  weights read (MoE: the experts the tokens actually touch, a roofline of their own whose
  weight stream runs at ``min(bw * e_m, R_x)``, ``R_x`` the die's ceiling
  ``expert_stream_bytes_per_s`` of planner.serving_params; none without a fit);
* **LM head**: the same roofline on its own (it runs only where logits are needed, so in
  a prefill it is a memory-bound GEMV that the layers' compute does not hide);
* **elementwise** (norms, residual adds, activation, and the routed experts' combine, whose
  hidden-sized rows every tensor-parallel rank writes and reads: :func:`moe_combine_bytes`):
  their activation bytes / bandwidth, 16-bit values at least (an fp8 or fp4 model's GEMMs
  return bf16 hidden states);
* **attention**: the same with KV-cache bytes, and for a sparse KV budget the selection
  cost (block top-k reads one key summary per block);
* **interconnect**: two all-reduces per layer under tensor parallelism;
* **overhead**: a fixed cost per kernel launch.

An efficiency curve ``e(w) = e_max * w / (w + w_half)`` on the work ``w`` per kernel makes
``F / e(F / n) = (F + n * w_half) / e_max``: calibration adds a work offset per kernel.
Decode steps are summed in closed form (planner.cost.sums).

Names carry units: ``_s`` seconds, ``_flops``, ``_bytes``, ``_params`` (numbers of
weights), ``_tokens``. ``x`` is the per-row context (planner.cost.context.Ctx), ``P`` the
prompt length, ``G`` the generation length, ``k`` samples per prompt, ``S`` sequences
decoded together. Every function takes its elementwise operations from ``x.xp``
(:mod:`planner.cost.ops`), so it runs on numpy rows and on Python floats alike.
"""

from __future__ import annotations

from planner.cost.context import GEMMS_PER_LAYER, KERNELS_PER_LAYER, SPARSE_BLOCK_TOKENS
from planner.cost.gather import derived, per_model_device
from planner.cost.efficiency import reduction_efficiency
from planner.cost.expert_parallel import max_device_slots, rank_local_params
from planner.cost.footprint import PREFILL_CHUNK_TOKENS, cost_usd, energy_j
from planner.cost.interconnect import allreduce_s
from planner.cost.recurrent import recurrent_bytes, recurrent_flops
from planner.cost.sums import piecewise_max_sum, sum_max_linear, sum_min
from planner.cost.weights import expert_params_read, fixed_params_read, tokens_per_expert, touched_experts

BOTTLENECKS = ("compute", "memory", "interconnect", "overhead")
TIME_KEYS = ("time", "t_compute", "t_memory", "t_comm", "t_ovh")


def launch_overhead_s(x, passes):
    """Kernel launches: ``kernels per pass x overhead per kernel`` for each pass (the overhead of
    the row's device at its compute dtype: planner.cost.efficiency.Efficiency.kernel_factor)."""
    return passes * x.kernels_per_pass * x.kernel_s


def gemv_weight(xp, rows):
    """Share of the one-row GEMM (GEMV) costs a GEMM at ``rows`` rows per pass pays:
    ``clip(2 - rows, 0, 1)``, all at one row, none from two, linear in between (also the
    weight the calibration fit gives the GEMV terms: planner.calibrate.fit)."""
    return xp.clip(2.0 - rows, 0.0, 1.0)


def gemm_memory_bytes(x, weight_bytes, out_rows, rows):
    """Bytes-equivalent the memory side charges for GEMMs reading ``weight_bytes`` with
    ``out_rows`` output rows at ``rows`` rows per pass. A one-row GEMM (matrix-vector
    product: batch-1 decode, a prompt's LM head) streams at its own rate
    (``gemv_stream_factor`` times the memory curve's time) and pays a fixed cost per
    output row (``gemv_row_bytes``); from two rows on a GEMM is charged its bytes (linear
    in between). Both are 1 and 0 without calibration."""
    H = x.hw
    w = gemv_weight(x.xp, rows)
    return weight_bytes * (1.0 + w * (H["gemv_stream_factor"] - 1.0)) + out_rows * w * H["gemv_row_bytes"]


def roofline_s(x, compute_s, memory_s):
    """Time of a kernel class from its compute and memory times: the roofline's max when
    they overlap (overlap = 1), their sum when they serialize (overlap = 0). Returns the
    time and its compute and memory parts (they add up to the time)."""
    xp = x.xp
    compute_wins = compute_s >= memory_s
    if x.full_overlap:  # every row overlaps fully (GPUs by default): the plain roofline
        # (x * mask: np.where is ~8x a multiplication; the same values for finite times)
        return xp.maximum(compute_s, memory_s), compute_s * compute_wins, memory_s * xp.logical_not(compute_wins)
    ov = x.hw["overlap"]
    c_part = ov * xp.where(compute_wins, compute_s, 0.0) + (1.0 - ov) * compute_s
    m_part = ov * xp.where(compute_wins, 0.0, memory_s) + (1.0 - ov) * memory_s
    return ov * xp.maximum(compute_s, memory_s) + (1.0 - ov) * (compute_s + memory_s), c_part, m_part


def scaled(x, phase: dict) -> dict:
    """A phase's times times the calibrated end-to-end scale (1 without calibration).

    A phase is a dict: ``time`` and its parts ``t_compute``, ``t_memory``, ``t_comm``,
    ``t_ovh`` (seconds); ``F_lin``, ``F_att``, ``F_sel`` (FLOPs) and ``B_w``, ``B_a``,
    ``B_kv``, ``B_sel`` (bytes: weights, activations, KV cache, sparse selection), per
    device."""
    if x.unit_time_scale:  # every device's scale is 1: the products are the times themselves
        return phase
    s = x.hw["time_scale"]
    for key in TIME_KEYS:
        phase[key] = phase[key] * s
    return phase


# --- kernel classes ------------------------------------------------------------------
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


def prefill_phase(x, n_prompts, P):
    """Static prefill of ``n_prompts`` prompts of ``P`` tokens in ``ceil(n_prompts P / PREFILL_CHUNK_TOKENS)``
    passes, each kernel class on its own roofline (README "How the cost model works"): causal attention
    attends ``P (P + 1) / 2`` keys per prompt on a full layer, ``sum_{c=1}^{P} min(c, window)`` on a sliding
    one, at ``attn_pre`` FLOPs a (query, key) pair; the KV is written, then read (2 x its bytes).
    Returns ``time`` (s), FLOPs ``F_*``, bytes ``B_*`` and times by bottleneck ``t_*`` (s)."""
    xp, M, H = x.xp, x.model, x.hw
    n_tok = n_prompts * P
    passes = xp.maximum(xp.ceil(n_tok / PREFILL_CHUNK_TOKENS), 1.0)
    t_lin, lin_c, lin_m, lin_flops, weight_bytes, act_bytes = dense_kernels(x, n_tok, passes, n_prompts,
                                                                       xp.minimum(passes, n_prompts))
    # causal attention: sum over positions of min(position, window) per layer
    ctx_tokens = (M["global_layers"] * P * (P + 1.0) * 0.5
                  + M["sliding_layers"] * sum_min(1.0, P + 1.0, M["window"], xp))
    # attention data parallel: each group attends its own 1/attn_dp of the prompts
    attn_flops = n_prompts / x.attn_dp * M["attn_pre"] * ctx_tokens / x.devices
    attn_flops = attn_flops + recurrent_flops(x, n_tok)  # linear-attention layers: linear in the prompt
    kv_bytes = 2.0 * n_tok / x.attn_dp * x.kv_bytes_per_token_layer * M["kv_layers"] / x.kv_shard  # KV written, then read
    attn_compute_s = (attn_flops + passes * M["layers"] * x.attn_offset_flops) * x.s_per_attn_flop
    attn_memory_s = (kv_bytes + passes * M["layers"] * H["mem_offset_bytes"]) * x.s_per_byte
    t_att, att_c, att_m = roofline_s(x, attn_compute_s, attn_memory_s)
    t_comm = allreduce_s(x, n_tok / passes, passes)
    t_ovh = launch_overhead_s(x, passes)
    total = t_lin + t_att + t_comm + t_ovh
    return scaled(x, {
        "time": total, "F_lin": lin_flops, "F_att": attn_flops, "B_w": weight_bytes, "B_a": act_bytes,
        "B_kv": kv_bytes, "t_compute": lin_c + att_c, "t_memory": lin_m + att_m, "t_comm": t_comm, "t_ovh": t_ovh,
    })


def attention_coeffs(x, S, n_req, share):
    """Per-step decode attention as f0 + f_g*min(c,cap_g) + f_s*min(c,cap_s) + f_u*c
    for FLOPs (f) and bytes (g), per device; prompt KV shared across samples if ``share``.
    ``f_*`` at ``attn_dec`` FLOPs a (query, key) pair (README "How the cost model works"), ``g_*`` the
    KV bytes a key; ``f_u`` / ``g_u`` the block top-k selection (Kinetics' counting, planner.cost.kinetics)."""
    xp, M = x.xp, x.model
    S, n_req = S / x.attn_dp, n_req / x.attn_dp  # attention data parallel: a group's own requests
    ng, ns = M["global_layers"], M["sliding_layers"]
    per_seq_flop = M["attn_dec"] / x.devices
    f_g = S * ng * per_seq_flop
    f_s = S * ns * per_seq_flop
    kv_bytes = x.kv_bytes_per_token_layer / x.kv_shard
    dense_share = xp.logical_and(share, xp.logical_not(x.sparse))
    # shared prompt (dense, global layers): the prompt's P tokens are read once per request
    g_g = S * ng * kv_bytes
    g_s = S * ns * kv_bytes
    # times P, added by caller (x * mask: np.where is ~8x a multiplication; the value is finite)
    g0_share = (n_req - S) * ng * kv_bytes * dense_share
    # block top-k selection (sparse only): key summaries, one per block, half of K+V
    sel = x.sparse_flag / SPARSE_BLOCK_TOKENS
    f_u = sel * S * ng * 0.5 * per_seq_flop
    g_u = sel * S * ng * 0.5 * kv_bytes
    g0_sel = xp.where_flags(share, (n_req - S), 0.0) * sel * ng * 0.5 * kv_bytes  # times P
    return f_g, f_s, f_u, g_g, g_s, g_u, g0_share, g0_sel


def decode_phase(x, S, n_req, share, P, G):
    """Sum of G decode steps at contexts P..P+G-1 for S sequences (closed form): G x the GEMMs'
    rooflines at S rows, all-reduces and launches, plus attention ``max(f(c), g(c))`` over the lines
    of :func:`attention_coeffs`, summed exactly by planner.cost.sums.piecewise_max_sum (README "How
    the cost model works", *Decode*; ``overlap`` < 1 moves a share of the max to ``f + g``).
    Returns ``time`` (s), FLOPs ``F_*``, bytes ``B_*`` and times by bottleneck ``t_*`` (s)."""
    xp, M, H = x.xp, x.model, x.hw
    t_lin, lin_c, lin_m, lin_flops, weight_bytes, act_bytes = dense_kernels(x, S, 1.0, S)
    f_g, f_s, f_u, g_g, g_s, g_u, g0_share, g0_sel = attention_coeffs(x, S, n_req, share)
    L = M["layers"]
    s_flop, s_byte = x.s_per_attn_flop, x.s_per_kv_byte
    # linear-attention layers: per-step state traffic and FLOPs, constant in the context
    rec_f, rec_b = recurrent_flops(x, S), recurrent_bytes(x, S)
    f0 = L * x.attn_offset_flops * s_flop + rec_f * s_flop
    g0 = (P * g0_share + L * H["mem_offset_bytes"] + rec_b) * s_byte
    lo, hi = P, P + G
    sf1, sg1 = piecewise_max_sum(f0, f_g * s_flop, f_s * s_flop, g0, g_g * s_byte, g_s * s_byte, lo, hi,
                                 x.kv_cap_global, x.kv_cap_sliding, xp)
    # block top-k selection is a kernel of its own (scoring one key summary per block):
    # its own roofline, max of two lines in c, summed in closed form
    if xp.any(x.sparse):
        sel_c, sel_m = sum_max_linear(0.0, f_u * s_flop, P * g0_sel * s_byte, g_u * s_byte, lo, hi, xp)
    else:  # dense attention everywhere: no selection kernel
        sel_c = sel_m = 0.0
    sum_c, sum_g, sum_s = x.decode_sums(P, G)
    attn_flops = f_g * sum_g + f_s * sum_s
    sel_flops = f_u * sum_c
    kv_bytes = g_g * sum_g + g_s * sum_s + G * P * g0_share
    sel_bytes = g_u * sum_c + G * P * g0_sel
    if x.full_overlap:
        att_c, att_m = sf1 + sel_c, sg1 + sel_m
    else:  # overlap < 1: part of the max becomes the sum of compute and memory times
        ov = H["overlap"]
        sum_f = G * f0 + attn_flops * s_flop + sel_flops * s_flop
        sum_m = G * g0 + (kv_bytes - G * P * g0_share) * s_byte + sel_bytes * s_byte
        att_c = ov * (sf1 + sel_c) + (1.0 - ov) * sum_f
        att_m = ov * (sg1 + sel_m) + (1.0 - ov) * sum_m
    attn_flops, kv_bytes = attn_flops + G * rec_f, kv_bytes + G * rec_b
    t_comm = G * allreduce_s(x, S, 1.0)
    t_ovh = G * launch_overhead_s(x, 1.0)
    total = G * t_lin + att_c + att_m + t_comm + t_ovh
    return scaled(x, {
        "time": total, "F_lin": G * lin_flops, "F_att": attn_flops, "F_sel": sel_flops,
        "B_w": G * weight_bytes, "B_a": G * act_bytes, "B_kv": kv_bytes, "B_sel": sel_bytes,
        "t_compute": G * lin_c + att_c, "t_memory": G * lin_m + att_m,
        "t_comm": t_comm, "t_ovh": t_ovh,
    })


# outputs :func:`assemble` leaves out without ``report`` (a search that gathers none of
# them: planner.cost.engine.evaluate's ``outputs=``)
REPORT_KEYS = frozenset(("tpot_s", "throughput_tok_s", "device_seconds", "flops_linear", "flops_attention",
                         "flops_selection", "bytes_weights", "bytes_kv", "bytes_activations", "bytes_selection"))


def assemble(x, per, seconds, pre, dec, latency, ttft, tpot, throughput, mem, report=True):
    """Collect outputs. ``seconds`` is the wall time the device group spends, ``pre``/``dec``
    hold per-device work over that time, and ``per`` requests share it. Without
    ``report`` the :data:`REPORT_KEYS` are not computed (``tpot``, ``throughput`` may
    then be None)."""
    weights, kv, acts, reserve, total, capacity = mem
    n_dev, xp = x.group_devices, x.xp
    Fl = pre["F_lin"] + dec["F_lin"]
    Fa = pre["F_att"] + dec["F_att"]
    Fs = dec["F_sel"]
    Bw = pre["B_w"] + dec["B_w"]
    Bk = pre["B_kv"] + dec["B_kv"]
    Ba = pre["B_a"] + dec["B_a"]
    Bs = dec["B_sel"]
    energy = energy_j(x, seconds, Fl + Fa + Fs, Bw + Bk + Ba + Bs)
    usd = cost_usd(x, seconds, energy)
    times = [pre["t_compute"] + dec["t_compute"], pre["t_memory"] + dec["t_memory"],
             pre["t_comm"] + dec["t_comm"], pre["t_ovh"] + dec["t_ovh"]]
    out = {
        "prefill_s": pre["time"], "decode_s": dec["time"], "ttft_s": ttft, "latency_s": latency,
        "energy_j": energy / per, "cost_usd": usd / per,
        "t_compute": times[0], "t_memory": times[1], "t_interconnect": times[2], "t_overhead": times[3],
        "bottleneck": xp.argmax_of(times),
        "weights_bytes": weights, "kv_cache_bytes": kv, "activations_bytes": acts,
        "reserve_bytes": reserve, "total_bytes": total, "capacity_bytes": capacity,
        "fits": xp.logical_and(total <= capacity, xp.isfinite(x.peak_flops_per_s)),
    }
    if report:  # the per-request work columns
        tp = n_dev / per  # per-device work -> per-request work across the device group
        out.update({
            "tpot_s": tpot, "throughput_tok_s": throughput, "device_seconds": n_dev * seconds / per,
            "flops_linear": Fl * tp, "flops_attention": Fa * tp, "flops_selection": Fs * tp,
            "bytes_weights": Bw * tp, "bytes_kv": Bk * tp, "bytes_activations": Ba * tp, "bytes_selection": Bs * tp,
        })
    return out
