"""Per-device memory footprint and the energy / dollar cost of a run.

Both take the engine's per-row context (``planner.cost.context.Ctx``): gathered model and
hardware columns, dtype byte sizes and the seconds per FLOP / per byte.
"""

from __future__ import annotations

import numpy as np

PREFILL_CHUNK_TOKENS = 8192     # prefill runs in chunks; weights are re-read per chunk
RESERVE_FRACTION = 0.08         # runtime reserve: context, allocator, fragmentation
ELECTRICITY_USD_PER_KWH = 0.12  # owned hardware only (US average commercial rate, EIA 2024)
MEMORY_POWER_SHARE = 0.6        # dynamic power at full memory streaming / at full compute


def memory_footprint(x, n_seq_req, k, P, G, share, act_tokens):
    """Per-device memory: weights, KV cache, activations, runtime reserve."""
    M, t = x.M, x.t
    weights = M["total_params"] * x.wb / t
    full = P + G
    ng, ns = M["global_layers"], M["sliding_layers"]
    win = np.minimum(full, M["window"])
    per_req_tokens_g = np.where(share, P + k * G, k * full)
    kv = n_seq_req * x.kvb * (ng * per_req_tokens_g + ns * k * win) / x.kv_shard
    chunk = np.minimum(act_tokens, PREFILL_CHUNK_TOKENS)
    acts = (chunk * M["act_elems"] / M["layers"] * x.ab + n_seq_req * k * M["vocab"] * 4.0) / t
    capacity = x.H["capacity"]
    reserve = RESERVE_FRACTION * capacity
    total = weights + kv + acts + reserve
    return weights, kv, acts, reserve, total, capacity


def energy_cost(x, seconds, F_dev, B_dev):
    """Energy (J) and dollars for ``seconds`` of t devices doing F_dev FLOPs and B_dev bytes
    each: idle power + dynamic power proportional to the work, capped at max power."""
    H, t = x.H, x.t
    busy = np.minimum(seconds, F_dev * x.fx + MEMORY_POWER_SHARE * B_dev * x.bx)
    e_dev = H["idle_w"] * seconds + (H["max_w"] - H["idle_w"]) * busy
    energy = t * e_dev
    usd = t * H["hourly_usd"] * seconds / 3600.0 + H["owned"] * energy / 3.6e6 * ELECTRICITY_USD_PER_KWH
    return energy, usd
