"""Disaggregated prefill / decode over many rows at once: the vectorized form of
:func:`planner.cost.serving_api.disaggregated_estimate`, for the replay of measured
deployments and for searches (no Python loop over rows).

Each row is one deployment: ``prefill_workers`` (X) workers of the prefill-side layout
(``devices`` x ``attn_dp`` devices, ``ep`` expert groups) run prefill-only steps,
``decode_workers`` (Y) workers of the decode-side layout run decode-only steps, the KV
cache of each prompt crosses between them (NVLink inside one NVLink domain, the
inter-node network beyond it). The two sides are two contexts
(:class:`planner.cost.context.Ctx`) over the same rows; the scheduler algebra is
:func:`planner.cost.serving.disaggregated`.
"""

from __future__ import annotations

import numpy as np

from planner.cost.context import Ctx
from planner.cost.engine import INPUT_COLUMNS, INPUT_DEFAULTS
from planner.cost.interconnect import INTER_NODE_GBPS_PER_DEVICE, INTER_NODE_LATENCY_US
from planner.cost.serving import disaggregated, effective_budget
from planner.cost.tables import HardwareTable, ModelTable


def kv_transfer_rows_s(x_pre: Ctx, x_dec: Ctx, P, devices_total):
    """Moving a prompt's KV cache (all layers, ``kv_bytes_per_token_layer x layers`` a
    token) from a prefill worker to a decode worker: the link's latency plus bytes over
    the bandwidth of ``min(prefill, decode)`` group devices sending their shards in
    parallel; NVLink (the spec's figure at its efficiency) when every device of the
    deployment is inside one NVLink domain, else the inter-node network
    (planner.cost.interconnect). Same formula as planner.cost.layout.kv_transfer_s."""
    H = x_pre.hw
    inside = (devices_total <= H["domain_devices"]) & (H["link_bytes_per_s"] > 0)
    bw = np.where(inside, H["link_bytes_per_s"], INTER_NODE_GBPS_PER_DEVICE * 1e9)
    lat = np.where(inside, H["allreduce_latency_s"], INTER_NODE_LATENCY_US * 1e-6)
    senders = np.maximum(np.minimum(x_pre.group_devices, x_dec.group_devices), 1.0)
    kv_per_token = x_pre.kv_bytes_per_token_layer * x_pre.model["layers"]
    return lat + P * kv_per_token / (bw * senders)


def disaggregated_rows(cols: dict, mt: ModelTable, ht: HardwareTable, *, prefill: dict, decode: dict,
                       concurrency, prefill_workers, decode_workers, n_requests=None) -> dict:
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
      ``prefill_workers`` (X), ``decode_workers`` (Y): workers of each side.

    Returns ``ttft_s``, ``tpot_s``, ``latency_s``, ``throughput_req_s``,
    ``kv_transfer_s``, ``devices`` (all workers' devices). Equal to
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
    budget = effective_budget(get("token_budget"), P, 0.0, get("chunked") > 0)
    total = X * x_pre.group_devices + Y * x_dec.group_devices
    with np.errstate(all="ignore"):
        transfer = kv_transfer_rows_s(x_pre, x_dec, P, total)
        out = disaggregated(x_pre, x_dec, C, P, G, budget, get("host_step_s"), X, Y, transfer, n_requests)
    out = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in out.items()}
    out["kv_transfer_s"] = np.asarray(transfer, dtype=float)
    out["devices"] = total
    return out
