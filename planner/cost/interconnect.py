"""Tensor-parallel collectives: the all-reduces of a pass, and the per-row factors of
their time (computed once per evaluation by the context, planner.cost.context.Ctx)."""

from __future__ import annotations

ALLREDUCE_STEP_S = 0.6e-6  # one ring step of a small all-reduce on NVLink (NCCL src/graph/tuning.cc, hwLat, LL protocol)


def allreduce_latency_s(x):
    """Latency of one small-message all-reduce across the t devices: the device's
    measured figure for two devices (``interconnect_latency_us``) plus one link step per
    further hop of the ring, ``L(t) = L_2 + 2 (t - 2) * step`` (NCCL's own latency model,
    src/graph/tuning.cc: a base latency plus ``2 (n-1)`` steps of ``hwLat`` = 0.6 us on
    NVLink for the LL protocol). Zero on one device."""
    t = x.devices
    return x.xp.where(t > 1, x.hw["allreduce_latency_s"] + 2.0 * (t - 2.0) * ALLREDUCE_STEP_S, 0.0)


def ring_s_per_byte(x):
    """Seconds per byte of a ring all-reduce's payload: ``2 (t-1) / t / bw`` (each
    device sends and receives that share of the message); infinite without a link."""
    xp, t = x.xp, x.devices
    bw = x.hw["link_bytes_per_s"]
    return xp.where(bw > 0, 2.0 * (t - 1.0) / t / xp.where(bw > 0, bw, 1.0), float("inf"))


def allreduce_s(x, tokens_per_pass, passes):
    """Interconnect time of the all-reduces of ``passes`` passes: two per layer (after
    attention and after the MLP; Megatron-LM tensor parallelism, Shoeybi et al. 2019),
    each the small-message latency :func:`allreduce_latency_s` plus the ring's bandwidth
    term ``2 (t-1) / t * bytes / bw`` (Patarasuk & Yuan 2009) for the pass's hidden
    states. The per-row factors are the context's (``x.ring_s_per_byte``,
    ``x.allreduce_latency_s``); zero on one device."""
    message_bytes = tokens_per_pass * x.model["hidden"] * x.act_bytes_per_value
    per = x.xp.where(x.devices > 1, message_bytes * x.ring_s_per_byte + x.allreduce_latency_s, 0.0)
    return 2.0 * x.model["layers"] * passes * per
