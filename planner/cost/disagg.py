"""Disaggregated prefill / decode over many rows at once: the vectorized form of
:func:`planner.cost.serving_api.disaggregated_estimate`, for the replay of measured
deployments and for searches (no Python loop over rows).

Each row is one deployment: ``prefill_workers`` (X) workers of the prefill-side layout
(``devices`` x ``attn_dp`` devices, ``ep`` expert groups) run prefill-only steps,
``decode_workers`` (Y) workers of the decode-side layout run decode-only steps, the KV
cache of each prompt crosses between them (NVLink inside one NVLink domain, the
inter-node network beyond it). The two sides are two contexts
(:class:`planner.cost.context.Ctx`) over the same rows; the scheduler algebra is
:func:`planner.cost.closed_loop.disaggregated`, and :func:`handed_off` adds what a request
meets on the decode side (the decode step boundary; a decode slot where the decode
workers' memory holds fewer than the requests in flight; a decode batch of only the
requests that are past their prefill, Little's law).

A deployment whose worker counts are not known (NaN) takes them from
:func:`derive_workers`: the fewest decode workers that hold the requests in flight, and
the fewest prefill workers that keep up with them. TTFT and TPOT of a request depend on
each side's own layout and batch; the worker counts only set the batch per worker (the
concurrency over the decode workers) and, on the prefill side, how long prompts queue.
"""

from __future__ import annotations

import numpy as np

from planner.cost.context import Ctx
from planner.cost.engine import INPUT_COLUMNS, INPUT_DEFAULTS
from planner.cost.footprint import kv_cache_bytes_per_device, memory_footprint
from planner.cost.closed_loop import disaggregated
from planner.cost.serving import effective_budget
from planner.cost.steps import step_time
from planner.cost.tables import HardwareTable, ModelTable


def kv_transfer_rows_s(x_pre: Ctx, x_dec: Ctx, P, devices_total):
    """Moving a prompt's KV cache (``kv_bytes_per_token_layer`` per token and attending
    layer) and its linear-attention state from the prefill worker to the decode worker (s):
    the link's latency plus the slower of the two ends' bytes over the link bandwidth.

    * **Receiving end**: the request lands on ONE attention group of the decode worker
      (``devices`` devices; attention data parallelism keeps a request on one rank: SGLang
      "DP attention", TensorRT-LLM ``enable_attention_dp``), and each of its devices
      receives its own shard: the KV heads tensor parallelism splits (``kv_shard``) and its
      share of the state. MLA's latent KV is not split by tensor parallelism (every device
      of the group holds it whole: DeepSeek-V2 paper, section 2.1; ``kv_shard`` 1), so
      each receiving device takes the whole prompt's latent KV.
    * **Sending end**: those shards leave the prefill worker's attention group that ran the
      prompt (``devices`` devices, each sending in parallel): one shard per receiving device.

    Both TensorRT-LLM's cache transceiver and SGLang's Mooncake / NIXL backends move the
    blocks device to device (GPUDirect RDMA, or NVLink inside one node) and reshape the
    layout between unequal tensor-parallel sizes (TensorRT-LLM "Disaggregated Serving",
    "Cache Layout Transformation"). The link: NVLink (the spec's figure at its efficiency)
    when every device of the deployment is inside one NVLink domain, else the inter-node
    network (the spec's ``inter_node_gbps``, one NIC per device, planner.cost.interconnect).
    With equal tensor-parallel sides and GQA heads split evenly this is the old
    ``bytes / (bandwidth x devices)``."""
    H = x_pre.hw
    inside = (devices_total <= H["domain_devices"]) & (H["link_bytes_per_s"] > 0)
    bw = np.where(inside, H["link_bytes_per_s"], H["inter_node_bytes_per_s"])
    lat = np.where(inside, H["allreduce_latency_s"], H["inter_node_latency_s"])
    kv_prompt_bytes = P * x_pre.kv_bytes_per_token_layer * x_pre.model["kv_layers"]
    per_receiver_bytes = kv_prompt_bytes / x_dec.kv_shard + x_dec.state_bytes_per_seq
    receivers, senders = np.maximum(x_dec.devices, 1.0), np.maximum(x_pre.devices, 1.0)
    return lat + per_receiver_bytes * np.maximum(1.0, receivers / senders) / bw


def decode_worker_capacity(x_dec: Ctx, P, G, max_running):
    """Requests one decode worker can hold: its devices' free memory (capacity less the
    weights, the runtime reserve and the activations, planner.cost.footprint) over one
    request's KV cache at full length ``P + G`` (per device, as the footprint shards it),
    and at most the engine's running limit per attention group (``max_running x attn_dp``).
    0 where the weights alone do not fit."""
    weights, _, acts, reserve, _, capacity = memory_footprint(x_dec, 1.0, 1.0, P, G, False, 1.0)
    per_request = kv_cache_bytes_per_device(x_dec, 1.0, 1.0, P, G, False)
    free = np.maximum(capacity - weights - reserve - acts, 0.0)
    return np.minimum(np.floor(free / per_request), max_running * x_dec.attn_dp)


def derive_workers(x_pre: Ctx, x_dec: Ctx, C, P, G, budget, host_s, transfer_s, max_running, min_decode=1.0):
    """Worker counts for a deployment that does not give them (README "Measured serving
    runs", the assumption stated there): the smallest deployment of the given layouts that
    serves ``C`` requests in flight.

    * decode workers ``Y = ceil(C / b_max)`` with ``b_max`` what one worker holds
      (:func:`decode_worker_capacity`): the requests fill as few decode workers as their
      KV cache allows;
    * prefill workers ``X = ceil(W / cycle)``, at least 1: ``W`` is the prefill work of all
      ``C`` prompts on one worker (``ceil(C P / B)`` full steps of the token budget ``B``)
      and ``cycle`` a request's round trip without queueing (its prompt's prefill alone,
      the KV transfer, ``G - 1`` decode steps of ``C / Y`` sequences): the fewest prefill
      workers whose work per cycle fits in a cycle, so prompts do not queue without bound.

    ``min_decode`` (default 1) is a lower bound on ``Y`` that the caller knows from elsewhere
    (planner.measured_layouts.sweep_decode_workers: the benchmark's concurrency as a per-worker batch
    times the workers).

    Returns (X, Y, decode batch per worker ``C / Y``); NaN where a decode worker cannot
    hold even one request."""
    b_max = decode_worker_capacity(x_dec, P, G, max_running)
    Y = np.where(b_max >= 1.0, np.ceil(C / np.maximum(b_max, 1.0) - 1e-9), np.nan)
    Y = np.maximum(Y, np.maximum(min_decode, 1.0))
    Cd = C / Y
    prompt_s = step_time(x_pre, 0.0, np.minimum(P, budget), 1.0, 0.0, 0.5 * (P + 1.0), host_s) \
        * np.ceil(P / budget - 1e-9)
    tpot = step_time(x_dec, Cd, 0.0, Cd, P + 1.0 + 0.5 * (G - 1.0), 0.0, host_s)
    cycle = prompt_s + transfer_s + (G - 1.0) * tpot
    work = np.ceil(C * P / budget - 1e-9) * step_time(x_pre, 0.0, np.minimum(budget, C * P),
                                                      np.maximum(np.minimum(budget, C * P) / P, 1.0), 0.0,
                                                      0.5 * (P + 1.0), host_s)
    X = np.maximum(np.ceil(work / cycle - 1e-9), 1.0)
    return X, Y, Cd


# Steps of the decode worker between a prompt's KV arriving and its first token leaving:
# the mean wait for the running step to end (half a step: the KV lands at a uniformly
# random point of a deterministic step) and the step that admits the request and emits
# its first token. SGLang's decode scheduler moves a request whose KV transfer is done
# from its transfer queue into the running batch only between two forward steps (the
# queues are polled once per event-loop iteration: SGLang docs "PD Disaggregation" and
# its design note); TensorRT-LLM's generation-only requests wait in
# DISAGG_GENERATION_INIT / TRANS_IN_PROGRESS until the executor's per-iteration transfer
# check finds their cache complete (TensorRT-LLM "Disaggregated Serving" docs).
ADMISSION_STEPS = 1.5

# Fixed-point rounds of the decode workers' occupancy in handed_off (Little's law: the
# decode batch is the requests in flight times the share of a cycle spent decoding; 0
# rounds: every request in flight decodes at once, the decode batch C / Y).
OCCUPANCY_ROUNDS = 3


def handed_off(x_pre: Ctx, x_dec: Ctx, C, P, G, budget, host_s, X, Y, transfer_s, max_running,
               n_requests=None, running=np.nan) -> dict:
    """The scheduler algebra of :func:`planner.cost.closed_loop.disaggregated` (prefill
    worker's closed-loop queue, KV transfer, decode steps) plus what a request meets on
    the DECODE side after its prefill:

    * **the running set**: ``Y`` decode workers hold at most ``Y x b_max`` requests
      (:func:`decode_worker_capacity`: their free KV memory at full length, within the
      engine's running limit per attention group). The deployment runs at
      ``R = min(C, Y b_max)`` and the ``C - R`` requests beyond it wait for a decode slot:
      by Little's law over the closed loop, ``(C - R) x e2e / R`` (the aggregated closed
      loop's wait for a running slot, planner.cost.serving), a slot being held from
      before the prefill to the last token (SGLang's decode side preallocates a request's
      KV, its PreallocQueue, before the prefill worker sends it), so the prefill queue
      sees ``R`` clients.
      ``running`` (default NaN: from memory) is the running set where it is known, e.g.
      a measured run's decode batch times its decode workers (it ran, so it fit);
    * **admission**: :data:`ADMISSION_STEPS` decode steps between the KV's arrival and the
      first token (the step boundary and the admitting step);
    * **the decode batch**: only the requests past their prefill and hand-off decode. In
      the closed loop each of the ``R`` clients spends ``(G - 1) x TPOT`` of its cycle
      (``TTFT + admission + (G - 1) x TPOT``) decoding, so a decode worker steps
      ``R / Y x share`` sequences on average (Little's law, J. D. C. Little 1961, "A proof
      for the queuing formula L = lambda W", Operations Research 9(3)), at least one. While
      prompts queue at the prefill workers the share is well below 1: TPOT is the smaller
      batch's step, and the shorter decode shortens the cycle, so the prompts queue longer
      (a brute-force event simulation of the loop agrees within 5% on TTFT and 8% on TPOT
      where the prefill worker is saturated, tests/test_disagg_occupancy.py). TPOT and the
      share depend on each other: :data:`OCCUPANCY_ROUNDS` fixed-point rounds, each one
      call of the vectorized algebra (converged to 0.1% by the third on the dev rows).

    Returns the keys of :func:`planner.cost.closed_loop.disaggregated` plus ``decode_wait_s``,
    ``admission_s`` and ``running`` (``R``)."""
    C = np.maximum(np.asarray(C, dtype=float), 1.0)
    cap = decode_worker_capacity(x_dec, P, G, max_running)
    # where the weights alone do not fit no request runs: costed as if it fit (the
    # estimate says it does not), not as an endless queue
    slots = np.where(cap >= 1.0, np.asarray(Y, dtype=float) * cap, np.inf)
    slots = np.where(np.isfinite(running), running, slots)
    R = np.minimum(C, np.maximum(np.where(np.isfinite(slots), slots, C), 1.0))
    Y = np.asarray(Y, dtype=float)
    out = disaggregated(x_pre, x_dec, R, P, G, budget, host_s, X, Y, transfer_s, n_requests)
    for _ in range(OCCUPANCY_ROUNDS):
        # the decode batch is the requests past their prefill and hand-off: Little's law
        # over the closed loop, R x (decode time) / (cycle), at least one per worker
        decoding = (np.maximum(G, 1.0) - 1.0) * out["tpot_s"]
        share = decoding / np.maximum(out["latency_s"] + ADMISSION_STEPS * out["tpot_s"], 1e-30)
        share = np.clip(share, np.minimum(Y / R, 1.0), 1.0)
        out = disaggregated(x_pre, x_dec, R, P, G, budget, host_s, X, Y / share, transfer_s, n_requests)
    admission = ADMISSION_STEPS * out["tpot_s"]
    e2e = out["latency_s"] + admission
    wait = (C - R) * e2e / R
    out["ttft_s"] = out["ttft_s"] + admission + wait
    out["latency_s"] = e2e + wait
    out["throughput_req_s"] = R / e2e
    out["decode_wait_s"], out["admission_s"], out["running"] = wait, admission, R
    return out


def disaggregated_rows(cols: dict, mt: ModelTable, ht: HardwareTable, *, prefill: dict, decode: dict,
                       concurrency, prefill_workers, decode_workers, n_requests=None,
                       min_decode_workers=1.0, decode_running=np.nan) -> dict:
    """TTFT, TPOT, latency (s), throughput (requests/s) and KV transfer time (s) of many
    disaggregated deployments in a closed loop, one pass over the rows.

    Inputs (arrays of one length n, or scalars broadcast to it):

    * ``cols``: the engine's INPUT_COLUMNS shared by both sides (planner.cost.engine;
      ``model`` / ``hardware`` table indices, ``prompt_len``, ``gen_len``, dtype codes,
      and the engine profile's ``token_budget``, ``chunked``, ``host_step_s``); the
      layout columns in it are ignored;
    * ``prefill`` / ``decode``: each side's layout: ``devices`` (tensor parallel size
      of the attention), optional ``ep`` and ``attn_dp`` (default 1);
    * ``concurrency``: requests in flight over the whole deployment (closed loop);
      ``prefill_workers`` (X), ``decode_workers`` (Y): workers of each side; NaN where
      not known: both then come from :func:`derive_workers` (for that row), with at
      least ``min_decode_workers`` decode workers (default 1);
    * ``decode_running``: requests the decode workers hold at once where known (NaN: what
      their free memory holds, :func:`handed_off`).

    Returns ``ttft_s``, ``tpot_s``, ``latency_s``, ``throughput_req_s``,
    ``kv_transfer_s``, ``devices`` (all workers' devices), the worker counts used
    (``prefill_workers``, ``decode_workers``) and ``derived`` (True where derived). Equal to
    :func:`planner.cost.serving_api.disaggregated_estimate` row by row (a test)."""
    n = len(np.asarray(cols["prompt_len"]).reshape(-1))

    def side(layout):
        c = {k: np.broadcast_to(np.asarray(cols.get(k, INPUT_DEFAULTS.get(k))), (n,)) for k in INPUT_COLUMNS
             if k in cols or k in INPUT_DEFAULTS}
        for k in ("devices", "ep", "attn_dp"):
            c[k] = np.broadcast_to(np.asarray(layout.get(k, 1)), (n,))
        return Ctx(c, mt, ht)

    x_pre, x_dec = side(prefill), side(decode)
    f = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (n,))  # noqa: E731
    P, G = f(cols["prompt_len"]), f(cols["gen_len"])
    X, Y, C = f(prefill_workers), f(decode_workers), f(concurrency)
    get = lambda k: f(cols[k] if k in cols else INPUT_DEFAULTS[k])  # noqa: E731
    # the prefill worker's budget: per attention-DP rank where the engine's ranks each schedule
    budget = effective_budget(get("token_budget"), P, 0.0, get("chunked") > 0, attn_dp=np.asarray(x_pre.attn_dp),
                              dp_rank_budget=get("dp_rank_budget"))
    derived = ~(np.isfinite(X) & np.isfinite(Y))
    with np.errstate(all="ignore"):
        if derived.any():
            # the KV crosses between two workers of the smallest deployment: inside one
            # NVLink domain only when both fit in it
            pair = x_pre.group_devices + x_dec.group_devices
            dX, dY, _ = derive_workers(x_pre, x_dec, C, P, G, budget, get("host_step_s"),
                                       kv_transfer_rows_s(x_pre, x_dec, P, pair), get("max_running"),
                                       f(min_decode_workers))
            X, Y = np.where(derived, dX, X), np.where(derived, dY, Y)
        total = X * x_pre.group_devices + Y * x_dec.group_devices
        transfer = kv_transfer_rows_s(x_pre, x_dec, P, total)
        out = handed_off(x_pre, x_dec, C, P, G, budget, get("host_step_s"), X, Y, transfer, get("max_running"),
                         n_requests, f(decode_running))
    out = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in out.items()}
    out["kv_transfer_s"] = np.asarray(transfer, dtype=float)
    out["devices"] = total
    out["prefill_workers"], out["decode_workers"], out["derived"] = X, Y, derived
    return out
