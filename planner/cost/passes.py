"""Kernel classes and phases of one forward pass, shared by the static-batch engine
(:mod:`planner.cost.engine`) and the serving models (:mod:`planner.cost.serving`,
:mod:`planner.cost.steps`).

Per pass (a prefill, or one decode step) the work splits into kernel classes, each timed
by its own roofline (README "Cost model"; the roofline itself: planner.cost.roofline):

* **linear**, **LM head** and **elementwise** kernels: planner.cost.dense;
* **attention**: the same with KV-cache bytes, and for a sparse KV budget the selection
  cost (block top-k reads one key summary per block);
* **interconnect**: two all-reduces per layer under tensor parallelism;
* **overhead**: a fixed cost per kernel launch.

Decode steps are summed in closed form (planner.cost.sums); :func:`assemble` collects a
configuration's outputs from its phases.

Names carry units: ``_s`` seconds, ``_flops``, ``_bytes``, ``_params`` (numbers of
weights), ``_tokens``. ``x`` is the per-row context (planner.cost.context.Ctx), ``P`` the
prompt length, ``G`` the generation length, ``k`` samples per prompt, ``S`` sequences
decoded together. Every function takes its elementwise operations from ``x.xp``
(:mod:`planner.cost.ops`), so it runs on numpy rows and on Python floats alike.
"""

from __future__ import annotations

import numpy as np

from planner.cost.context import SPARSE_BLOCK_TOKENS
from planner.cost.dense import dense_kernels, expert_reduction_factor, moe_combine_bytes, pass_factors
from planner.cost.footprint import PREFILL_CHUNK_TOKENS, cost_usd, energy_j
from planner.cost.interconnect import allreduce_s
from planner.cost.recurrent import recurrent_bytes, recurrent_flops
from planner.cost.roofline import (BOTTLENECKS, TIME_KEYS, gemm_memory_bytes, gemv_weight, launch_overhead_s,
                                   roofline_s, scaled)
from planner.cost.sums import piecewise_max_sum, sum_max_linear, sum_min

# the roofline's blocks (planner.cost.roofline) and the dense kernels (planner.cost.dense)
# live there; callers written before the split import them from here
__all__ = ["BOTTLENECKS", "REPORT_KEYS", "TIME_KEYS", "assemble", "attention_coeffs", "decode_phase", "dense_kernels",
           "expert_reduction_factor", "gemm_memory_bytes", "gemv_weight", "launch_overhead_s", "moe_combine_bytes",
           "pass_factors", "prefill_phase", "roofline_s", "scaled"]


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


def prompt_read_once(x, share, n_req, S, P):
    """Whether the decode attention reads a prompt shared by a request's samples once a
    step (per row), for ``n_req`` requests of ``S`` sequences in all at prompt length ``P``:
    only where they share it (``share``) and the engine's kernel takes it
    (planner.engine_profiles.EngineProfile.attention_columns): ``x.cascade`` 2, every
    request's samples (FlashInfer's multi-level cascade, the generic engine); 1, a prefix
    common to EVERY sequence of the step, so one request per (attention data-parallel)
    group, at least ``x.cascade_min_seqs`` sequences and ``x.cascade_min_prompt`` prompt
    tokens, and no sliding-window layers (vLLM V1's use_cascade_attention: 8 and 256); 0, no
    shared-prefix kernel (SGLang's and TensorRT-LLM's decode kernels walk each sequence's
    page table). The KV memory is shared either way (planner.cost.footprint)."""
    a = x.attn_dp
    whole_step = ((n_req / a <= 1.0) & (S / a >= x.cascade_min_seqs) & (P >= x.cascade_min_prompt)
                  & (x.model["sliding_layers"] == 0))
    return share & ((x.cascade == 2.0) | ((x.cascade == 1.0) & whole_step))


def shared_prompt_shave(x, P, w, n_req):
    """What the timing models (planner.cost.closed_loop, open_loop, simulate) take off a
    decode's per-sequence context: ``P (1 - 1/w)`` where the engine reads the ``P``-token
    prompt of a request's ``w`` sequences once a step (:func:`prompt_read_once` with
    ``n_req`` requests in the step: the step reads ``P + w g`` tokens for the request,
    ``w (P / w + g)``), else 0. The attention FLOPs follow the same context (each query
    still scores the whole prompt, but a decode's attention is bound by its KV reads at
    GQA's few FLOPs a byte, so the time is the read's)."""
    w = np.maximum(np.asarray(w, dtype=float), 1.0)
    once = prompt_read_once(x, w > 1.0, n_req, n_req * w, P)
    return np.where(once, P * (1.0 - 1.0 / w), 0.0)


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
    share = prompt_read_once(x, share, n_req, S, P)
    f_g, f_s, f_u, g_g, g_s, g_u, g0_share, g0_sel = attention_coeffs(x, S, xp.where_flags(share, n_req, S), share)
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
