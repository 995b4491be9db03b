"""Device layouts beyond tensor parallelism: pipeline (pp), expert (ep) and attention
data parallelism (dp), checked against the model and the devices available.

A layout uses ``tp x pp x dp`` devices (attention data parallelism replicates the
attention over ``dp`` groups of ``tp`` devices; the MoE experts are spread over ``ep``
of those ``tp x dp`` devices, DeepSeek-style). Bad layouts are InputErrors naming the
field and the value (exit 2).
"""

from __future__ import annotations

from planner.bounds import check_count
from planner.errors import InputError

def check_layout(model, *, tp: int, pp: int = 1, ep: int = 1, dp: int = 1, num_devices: int | None = None) -> int:
    """Validate a layout; returns the number of devices it uses."""
    for field, v in (("pp", pp), ("ep", ep), ("dp", dp)):
        check_count(field, v, 1)
    used = tp * pp * dp
    if num_devices is not None and used > num_devices:
        raise InputError(f"tp x pp x dp = {tp} x {pp} x {dp} = {used} devices, more than the {num_devices} available",
                         field="num-devices", value=num_devices)
    layers = model.num_layers
    if pp > layers:
        raise InputError(f"more pipeline stages than the model's {layers} layers", field="pp", value=pp)
    experts = getattr(model.moe, "num_experts", 0) if getattr(model, "moe", None) is not None else 0
    if ep > 1:
        if not experts:
            raise InputError(f"model '{model.name}' has no experts to spread", field="ep", value=ep)
        if experts % ep:
            raise InputError(f"does not divide the model's {experts} experts", field="ep", value=ep)
        if (tp * dp) % ep:
            raise InputError(f"does not divide the tp x dp = {tp * dp} devices the experts are spread over",
                             field="ep", value=ep)
    return used


def send_s(link_bytes_per_s, latency_s, tokens, hidden, act_bytes):
    """One stage-to-stage send of ``tokens`` hidden states: latency + bytes / link
    bandwidth (numbers or arrays; the caller gives an infinite time where there is no link)."""
    return latency_s + tokens * hidden * act_bytes / link_bytes_per_s


def send_coefficients(hardware, hidden, act_bytes) -> tuple[float, float]:
    """One stage-to-stage send as ``(latency_s, s_per_token)``: :func:`p2p_s` of ``n``
    tokens is ``latency_s + n s_per_token`` (infinite where the device has no link)."""
    bw = hardware.interconnect_gbps * 1e9 * hardware.interconnect_efficiency
    if bw <= 0:
        return float("inf"), float("inf")
    return hardware.interconnect_latency_us * 1e-6, float(hidden) * float(act_bytes) / bw


def p2p_s(hardware, tokens: float, hidden: int, act_bytes: float) -> float:
    """One stage-to-stage send of ``tokens`` hidden states: latency + bytes / link bandwidth
    (the device's interconnect at the efficiency the spec gives)."""
    bw = hardware.interconnect_gbps * 1e9 * hardware.interconnect_efficiency
    if bw <= 0:
        return float("inf")
    return send_s(bw, hardware.interconnect_latency_us * 1e-6, tokens, hidden, act_bytes)


def microbatches(xp, pp, in_flight, micro):
    """Microbatches in the pipeline at once: ``min(pp, ceil(in_flight / micro))``."""
    return xp.minimum(pp, xp.ceil(in_flight / micro))


def pipeline_rows(xp, r: dict, pp, n_mb, dec_send, pre_send) -> dict:
    """The pipeline's formulas (see :func:`pipeline`) on one microbatch's engine row ``r``
    (flat: ``ttft_s``, ``tpot_s``, ``decode_s``, ``throughput_tok_s``, ``energy_j``,
    ``cost_usd``, ``device_seconds`` and the memory parts ``*_bytes``), numbers or arrays
    (``xp``: planner.cost.ops); returns the changed quantities."""
    tpot = r["tpot_s"]
    out = {"ttft_s": r["ttft_s"] * (1.0 + 0.5 * (n_mb - 1) / pp) + pre_send, "tpot_s": tpot + dec_send}
    gen = xp.where(tpot != 0, r["decode_s"] / xp.where(tpot != 0, tpot, 1.0), 0.0)
    out["latency_s"] = out["ttft_s"] + xp.maximum(gen - 1.0, 0.0) * out["tpot_s"]
    out["throughput_tok_s"] = r["throughput_tok_s"] * n_mb * tpot / out["tpot_s"]
    waste = pp / n_mb
    for key in ("energy_j", "cost_usd", "device_seconds"):
        out[key] = r[key] * waste
    out["weights_bytes"] = r["weights_bytes"] / pp
    out["kv_cache_bytes"] = r["kv_cache_bytes"] * n_mb / pp
    out["total_bytes"] = out["weights_bytes"] + out["kv_cache_bytes"] + r["activations_bytes"] + r["reserve_bytes"]
    out["fits"] = out["total_bytes"] <= r["capacity_bytes"]
    return out


def pipeline(r: dict, *, pp: int, in_flight: int, micro: int, hardware, hidden: int, act_bytes: float,
             prompt_len: int) -> dict:
    """Turn the estimate of ONE microbatch (``micro`` requests on the tensor-parallel group,
    the whole model) into the estimate of ``pp`` pipeline stages, each holding 1/pp of the
    layers, running ``n_mb = min(pp, ceil(in_flight / micro))`` microbatches at once:

    * a microbatch's step still crosses every layer, so TTFT and TPOT are the microbatch's
      plus ``pp - 1`` stage-to-stage sends per step (vLLM / TensorRT-LLM pipeline: one
      virtual engine per stage, each scheduling its own microbatch); microbatches enter
      the first stage one stage-time apart, adding ``(n_mb - 1)/2`` stage-times to TTFT;
    * the stages work on ``n_mb`` microbatches at once, so throughput is ``n_mb`` times the
      microbatch's; with fewer microbatches than stages the rest is the bubble: devices
      idle ``1 - n_mb/pp`` of the time, and dollars and energy per request grow by
      ``pp / n_mb``;
    * weights and KV per device divide by ``pp`` (each device holds its stage's layers).

    The formulas are :func:`pipeline_rows` (the search applies them to arrays)."""
    from planner.cost.ops import SCALAR

    out = dict(r)
    n_mb = min(pp, -(-in_flight // micro))
    dec_send = (pp - 1) * p2p_s(hardware, micro, hidden, act_bytes)
    pre_send = (pp - 1) * p2p_s(hardware, micro * prompt_len, hidden, act_bytes)
    rows = pipeline_rows(SCALAR, {**r, **r["memory"]}, pp, n_mb, dec_send, pre_send)
    mem = dict(r["memory"])
    for key in ("weights_bytes", "kv_cache_bytes", "total_bytes"):
        mem[key] = rows.pop(key)
    mem["fits"] = bool(rows.pop("fits"))
    out.update(rows)
    out["memory"] = mem
    out["pipeline"] = {"stages": pp, "microbatches": n_mb, "microbatch": micro, "bubble": 1.0 - n_mb / pp,
                       "send_per_step_s": dec_send}
    return out


def pipeline_memory(x, pp, k, P, G, share, tokens_share, kv_fraction=-1.0, kv_of_free=0.0):
    """Per device with ``pp`` stages (each device holds 1/pp of the layers: of the weights
    and of every request's KV cache, as :func:`pipeline_rows` divides them): the requests
    the KV memory holds at once (planner.cost.footprint.kv_running_limit's rule, one
    request's KV at ``P + tokens_share x G`` tokens; at least 1) and whether one request at
    its full length fits (planner.cost.running.serves_one's rule). pp = 1: those rules."""
    from planner.cost.footprint import kv_cache_bytes_per_device, kv_pool_bytes, memory_footprint

    xp = x.xp
    weights, _, acts, reserve, _, capacity = memory_footprint(x, 1.0, k, P, G, share, 1.0)
    weights = weights / pp
    per_request = kv_cache_bytes_per_device(x, 1.0, k, P, tokens_share * G, share) / pp
    free = kv_pool_bytes(capacity, weights, acts, reserve, kv_fraction, kv_of_free)
    limit = xp.maximum(xp.floor(free / xp.maximum(per_request, 1e-30)), 1.0)
    full = kv_cache_bytes_per_device(x, 1.0, k, P, G, share) / pp
    return limit, weights + reserve + acts + full <= capacity


def microbatch_running(x, pp, n_mb, max_running, k, P, G, share, kv_reserve, kv_fraction=-1.0, kv_of_free=0.0):
    """The running set of one microbatch of a pipeline (``n_mb`` microbatches at once; 1: the
    whole running set), in sequences as the engine's ``max_running`` (max_num_seqs) counts them: that
    limit capped by the microbatch's share ``1 / n_mb`` of the requests of ``k`` samples a
    STAGE's KV memory holds (:func:`pipeline_memory`), one request at least, times ``k``
    (planner.cost.running.running_limit's units). The one rule of ``estimate(pp=)`` (closed
    loop and Poisson arrivals), of the pipeline simulator's runs and of the replay's pipeline
    rows; the caller applies it as the cap (no KV column left to cap again)."""
    xp = x.xp
    kv_limit, _ = pipeline_memory(x, pp, k, P, G, share, kv_reserve, kv_fraction, kv_of_free)
    return xp.minimum(max_running, xp.maximum(1.0, xp.floor(kv_limit / n_mb)) * k)
