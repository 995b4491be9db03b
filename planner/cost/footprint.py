"""Per-device memory footprint and the energy / dollar cost of a run.

Both take the engine's per-row context (``planner.cost.context.Ctx``): gathered model and
hardware columns, bytes per value and the seconds per FLOP / per byte. They run on
either array namespace (``x.xp``).
"""

from __future__ import annotations

from planner.units import JOULES_PER_KWH, SECONDS_PER_HOUR

PREFILL_CHUNK_TOKENS = 8192     # prefill runs in chunks; weights are re-read per chunk (vLLM V1's max_num_batched_tokens default)
RESERVE_FRACTION = 0.08         # runtime reserve: context, allocator, fragmentation (assumption, README "Cost model")
ELECTRICITY_USD_PER_KWH = 0.12  # owned hardware only (US average commercial rate, EIA 2024)
MEMORY_POWER_SHARE = 0.6        # dynamic power at full memory streaming / at full compute (assumption, README "Cost model")


def weight_bytes_per_device(x):
    """Stored weights per device: ``(P - P_eh) * b_w + P_eh * b_head`` over t devices,
    with P_eh the embedding and untied LM head (16-bit beside int4/fp4 weights), plus
    ``(P - P_eh - P_routed) (b_dense - b_w)`` where the weights outside the routed experts
    are stored wider than the experts' (16-bit beside 4-bit experts:
    ``Ctx.dense_bytes_per_param``; 0 otherwise)."""
    M = x.model
    eh = M["embed_head_params"]
    outside = M["total_params"] - eh - M["num_experts"] * M["expert_params_per"]
    per = (M["total_params"] * x.weight_bytes_per_param
           + eh * (x.head_bytes_per_param - x.weight_bytes_per_param)
           + outside * (x.dense_bytes_per_param - x.weight_bytes_per_param)) / x.devices
    if not x.layout_beyond_tp:
        return per
    # attention data parallel: the routed experts are spread over all t x attn_dp
    # devices (whole experts over ep groups, each split over t x attn_dp / ep), the
    # rest is replicated per attention group and split over its t devices
    routed = M["num_experts"] * M["expert_params_per"] * x.weight_bytes_per_param
    return per - routed / x.devices + routed / x.group_devices


def kv_cache_bytes_per_device(x, n_seq_req, k, P, G, share):
    """KV cache per device: per layer and token ``kv_bytes_per_token_layer``; global
    layers hold the prompt once per request when it is shared (else once per sample)
    plus every sample's generation, sliding layers at most the window per sample,
    linear-attention layers one state per sample whatever its length;
    sharded over min(t, kv_heads) devices (MLA's latent is replicated)."""
    xp, M = x.xp, x.model
    full = P + G
    win = xp.minimum(full, M["window"])
    # sharing is one setting in most searches: then no np.where pass (where_flags)
    per_req_tokens_global = xp.where_flags(share, P + k * G, k * full)
    per_req = M["global_layers"] * per_req_tokens_global + M["sliding_layers"] * k * win
    # attention data parallel: a group caches its own 1/attn_dp of the requests; the
    # linear-attention layers hold one fixed-size state per sequence (planner.cost.recurrent)
    return (n_seq_req / x.attn_dp * x.kv_bytes_per_token_layer * per_req / x.kv_shard
            + n_seq_req * k * x.state_bytes_per_seq / x.attn_dp)


def memory_footprint(x, n_seq_req, k, P, G, share, act_tokens):
    """Per-device memory: weights, KV cache, activations, runtime reserve, their total
    and the capacity. Activations: one prefill chunk's per-layer values plus fp32 logits
    per sequence."""
    M = x.model
    weights = weight_bytes_per_device(x)
    kv = kv_cache_bytes_per_device(x, n_seq_req, k, P, G, share)
    chunk = x.xp.minimum(act_tokens, PREFILL_CHUNK_TOKENS)
    acts = ((chunk * M["act_elems"] / M["layers"] * x.act_bytes_per_value + n_seq_req * k * M["vocab"] * 4.0)
            / x.group_devices)
    capacity = x.hw["capacity"]
    reserve = RESERVE_FRACTION * capacity
    total = weights + kv + acts + reserve
    return weights, kv, acts, reserve, total, capacity


def kv_pool_bytes(capacity, weights, acts, reserve, fraction=-1.0, of_free=0.0):
    """Per-device memory an engine gives its KV cache: ``fraction x capacity - weights -
    activations`` where the fraction is of the whole device (``of_free`` 0: vLLM
    gpu_memory_utilization, SGLang mem_fraction_static), ``fraction x (capacity - weights
    - activations)`` where it is of the memory free after the model is loaded (``of_free``
    1: TensorRT-LLM free_gpu_memory_fraction); a negative fraction (no engine fact) leaves
    the planner's runtime reserve out instead, ``capacity - weights - reserve -
    activations``. At least 0. Numbers or arrays, broadcast (the engine profile's
    ``kv_columns``, planner.engine_profiles)."""
    import numpy as np

    legacy = capacity - weights - reserve - acts
    if np.ndim(fraction) == 0 and float(fraction) < 0.0:
        return np.maximum(legacy, 0.0)
    of_whole = fraction * capacity - weights - acts
    of_rest = fraction * (capacity - weights - acts)
    pool = np.where(np.asarray(fraction) < 0.0, legacy, np.where(np.asarray(of_free) > 0.0, of_rest, of_whole))
    return np.maximum(pool, 0.0)


def kv_running_limit(x, k, P, G, share, tokens_share=1.0, fraction=-1.0, of_free=0.0):
    """Requests the KV cache holds at once: the engine's KV pool (:func:`kv_pool_bytes`:
    its memory fraction, or the device's capacity less the weights, the runtime reserve
    and one request's activations) over one request's KV cache at ``P + tokens_share x G``
    tokens (1: the full length, as an engine that reserves a request's whole KV on
    admission; 1/2: the mean occupancy of on-demand paged allocation). At least 1 (a row
    whose weights do not fit is refused elsewhere)."""
    weights, _, acts, reserve, _, capacity = memory_footprint(x, 1.0, k, P, G, share, 1.0)
    per_request = kv_cache_bytes_per_device(x, 1.0, k, P, tokens_share * G, share)
    free = kv_pool_bytes(capacity, weights, acts, reserve, fraction, of_free)
    return x.xp.maximum(x.xp.floor(free / x.xp.maximum(per_request, 1e-30)), 1.0)


def energy_j(x, seconds, flops_per_device, bytes_per_device):
    """Energy of t devices for ``seconds``: ``t (P_idle s + (P_max - P_idle) s_busy)``
    with the busy time ``min(s, F s_per_flop + share_mem B s_per_byte)`` (dynamic power
    proportional to the work, capped at max power)."""
    H = x.hw
    busy = x.xp.minimum(seconds, flops_per_device * x.s_per_gemm_flop
                        + MEMORY_POWER_SHARE * bytes_per_device * x.s_per_byte)
    return x.group_devices * (H["idle_w"] * seconds + (H["max_w"] - H["idle_w"]) * busy)


def cost_usd(x, seconds, joules, devices=None):
    """Dollars: device-hours at the hourly price, plus electricity for owned hardware
    (``devices``: the group's unless given)."""
    H = x.hw
    n = x.group_devices if devices is None else devices
    return (n * H["hourly_usd"] * seconds / SECONDS_PER_HOUR
            + H["owned"] * joules / JOULES_PER_KWH * ELECTRICITY_USD_PER_KWH)


def rehold(x, devices, hold_s, joules, held_s):
    """A request's energy (J) and dollars when it holds ``devices`` for ``hold_s`` of wall
    time instead of the ``held_s`` of a row that gave it ``joules`` (:func:`energy_j`): the
    work's dynamic energy ``E - n P_idle held_s`` is kept, capped at max power over the new
    hold, idle power is paid over the whole hold, dollars as :func:`cost_usd`. The closed
    loop and the open loop hold a request for 1 / the requests they serve per second (a
    Poisson rate's idle time included), not the steady state's wall time."""
    H, xp = x.hw, x.xp
    dynamic = xp.maximum(joules - devices * H["idle_w"] * held_s, 0.0)
    energy = devices * H["idle_w"] * hold_s + xp.minimum(dynamic, devices * (H["max_w"] - H["idle_w"]) * hold_s)
    return energy, cost_usd(x, hold_s, energy, devices)
