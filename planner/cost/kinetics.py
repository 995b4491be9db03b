"""The Kinetics eFLOPs figure (Sadhukhan et al. 2025) with the paper's counting conventions,
so results can be compared with that paper: P = total parameters, no weight reads, no
prefill, the prompt's KV shared by the k samples (dense), block top-k sparse attention with
a KV budget T reading min(c, T) tokens per sample plus one key summary per block.
"""

from __future__ import annotations

import numpy as np

from planner.cost.engine import KINETICS_INTENSITY, SPARSE_BLOCK_TOKENS


def kinetics(x, P, G, k, share):
    """Kinetics compute FLOPs, memory bytes and eFLOPs per request (arrays over rows of the
    engine's context ``x``)."""
    M = x.M
    ng, ns = M["global_layers"], M["sliding_layers"]
    sum_c, sum_g, sum_s = x.decode_sums(P, G)
    kvb = x.kvb
    compute = k * (2.0 * M["total_params"] * G + M["attn_dec"] * (ng * sum_g + ns * sum_s))
    dense_mem = kvb * (ng * (G * P + k * (sum_c - G * P)) + ns * k * sum_s)
    sparse_mem = kvb * k * (ng * sum_g + ns * sum_s)
    shared_ctx = G * P + k * (sum_c - G * P)
    sel_flops = np.where(x.sparse, k * 0.5 * M["attn_dec"] * ng * sum_c / SPARSE_BLOCK_TOKENS, 0.0)
    sel_mem = np.where(x.sparse, 0.5 * kvb * ng * shared_ctx / SPARSE_BLOCK_TOKENS, 0.0)
    memory = np.where(x.sparse, sparse_mem, np.where(share, dense_mem, kvb * k * (ng * sum_c + ns * sum_s))) + sel_mem
    compute = compute + sel_flops
    return {
        "kinetics_compute_flops": compute,
        "kinetics_memory_bytes": memory,
        "kinetics_eflops": compute + KINETICS_INTENSITY * memory,
    }
