"""The Kinetics eFLOPs figure (Sadhukhan et al. 2025, "Kinetics: Rethinking Test-Time
Scaling Laws") with the paper's counting conventions, so results can be compared with
that paper: P = total parameters, no weight reads, no prefill, the prompt's KV shared by
the k samples (dense), block top-k sparse attention with a KV budget T reading
min(c, T) tokens per sample plus one key summary per block.

eFLOPs = compute FLOPs + I x memory bytes, with I the arithmetic intensity of the
paper's reference device, a B200, as the paper takes it: 4.5 PFLOP/s over 8 TB/s
(562.5 FLOP per byte).
"""

from __future__ import annotations

from planner.cost.context import SPARSE_BLOCK_TOKENS

KINETICS_B200_FLOPS_PER_S = 4.5e15    # the paper's B200 compute figure (Kinetics)
KINETICS_B200_BYTES_PER_S = 8.0e12    # the paper's B200 HBM bandwidth (Kinetics)
KINETICS_INTENSITY = KINETICS_B200_FLOPS_PER_S / KINETICS_B200_BYTES_PER_S  # 562.5 FLOP per byte


def kinetics(x, P, G, k, share):
    """Kinetics compute FLOPs, memory bytes and eFLOPs per request (over rows of the
    engine's context ``x``), with the paper's conventions (module docstring; Sadhukhan et al.
    2025): compute ``k (2 N G + a sum_c ctx(c))``, N the total parameters, ``a`` the attention
    FLOPs per (query, key) pair, ``ctx(c)`` the tokens step c attends (``min(c, T)`` under a KV
    budget T, the window on sliding layers; planner.cost.context's ``decode_sums``); memory the
    KV bytes those steps read, the prompt's once for all k samples where shared (dense), plus the
    block top-k selection's key summaries (half of K+V per ``SPARSE_BLOCK_TOKENS`` tokens);
    ``kinetics_eflops = compute + I x memory``, I = 562.5 FLOP per byte (:data:`KINETICS_INTENSITY`)."""
    xp = x.xp
    M = x.model
    ng, ns = M["global_layers"], M["sliding_layers"]
    sum_c, sum_g, sum_s = x.decode_sums(P, G)
    kv_bytes = x.kv_bytes_per_token_layer
    compute = k * (2.0 * M["total_params"] * G + M["attn_dec"] * (ng * sum_g + ns * sum_s))
    dense_mem = kv_bytes * (ng * (G * P + k * (sum_c - G * P)) + ns * k * sum_s)
    sparse_mem = kv_bytes * k * (ng * sum_g + ns * sum_s)
    shared_ctx = G * P + k * (sum_c - G * P)
    sel_flops = xp.where(x.sparse, k * 0.5 * M["attn_dec"] * ng * sum_c / SPARSE_BLOCK_TOKENS, 0.0)
    sel_mem = xp.where(x.sparse, 0.5 * kv_bytes * ng * shared_ctx / SPARSE_BLOCK_TOKENS, 0.0)
    memory = xp.where(x.sparse, sparse_mem,
                      xp.where(share, dense_mem, kv_bytes * k * (ng * sum_c + ns * sum_s))) + sel_mem
    compute = compute + sel_flops
    return {
        "kinetics_compute_flops": compute,
        "kinetics_memory_bytes": memory,
        "kinetics_eflops": compute + KINETICS_INTENSITY * memory,
    }


def b200_seconds(eflops):
    """The paper's time figure: eFLOPs over the B200 peak."""
    return eflops / KINETICS_B200_FLOPS_PER_S
