"""Collectives: the all-reduces of tensor parallelism, and the per-row factors of their
time (computed once per evaluation by the context, planner.cost.context.Ctx); the
all-to-alls of expert parallelism live in :mod:`planner.cost.expert_parallel`."""

from __future__ import annotations

from planner.cost.expert_parallel import a2a_s

ALLREDUCE_STEP_S = 0.6e-6  # one ring step of a small all-reduce on NVLink (NCCL src/graph/tuning.cc, hwLat, LL protocol)
# between NVLink domains, when the device spec gives no inter-node figure: NVIDIA DGX
# H100 / H200 datasheets: 8x ConnectX-7 400 Gb/s, one per GPU, = 50 GB/s per device;
# latency: assumption, a few microseconds for RDMA (5 us)
INTER_NODE_GBPS_PER_DEVICE = 50.0
INTER_NODE_LATENCY_US = 5.0


def link_bytes_per_s(x, n):
    """Per-device link bandwidth of a group of ``n`` devices: NVLink (the spec's figure)
    within one NVLink domain (``max_devices``), the inter-node network beyond it; 0 for a
    device without a link (its multi-device rows stay infinite)."""
    link = x.hw["link_bytes_per_s"]
    return x.xp.where(x.xp.logical_and(n > x.hw["domain_devices"], link > 0), INTER_NODE_GBPS_PER_DEVICE * 1e9, link)


def allreduce_latency_s(x, n=None):
    """Latency of one small-message all-reduce across ``n`` devices (default: the t
    devices of the tensor-parallel group): the device's measured figure for two devices
    (``interconnect_latency_us``) plus one link step per further hop of the ring,
    ``L(t) = L_2 + 2 (t - 2) * step`` (NCCL's own latency model, src/graph/tuning.cc: a
    base latency plus ``2 (n-1)`` steps of ``hwLat`` = 0.6 us on NVLink for the LL
    protocol). Zero on one device."""
    t = x.devices if n is None else n
    return x.xp.where(t > 1, x.hw["allreduce_latency_s"] + 2.0 * (t - 2.0) * ALLREDUCE_STEP_S, 0.0)


def ring_s_per_byte(x, n=None):
    """Seconds per byte of a ring all-reduce's payload over ``n`` devices (default: t):
    ``2 (n-1) / n / bw`` (each device sends and receives that share of the message);
    infinite without a link."""
    xp = x.xp
    t = x.devices if n is None else n
    bw = link_bytes_per_s(x, t)
    return xp.where(bw > 0, 2.0 * (t - 1.0) / t / xp.where(bw > 0, bw, 1.0), float("inf"))


def allreduce_s(x, tokens_per_pass, passes):
    """Interconnect time of the collectives of ``passes`` passes of ``tokens_per_pass``
    tokens (the worker's, over all attention data-parallel groups).

    Tensor parallelism alone (``ep = attn_dp = 1``): two all-reduces per layer (after
    attention and after the MLP; Megatron-LM, Shoeybi et al. 2019), each the
    small-message latency :func:`allreduce_latency_s` plus the ring's bandwidth term
    ``2 (t-1) / t * bytes / bw`` (Patarasuk & Yuan 2009) for the pass's hidden states.

    With attention data parallelism or expert parallelism: the attention's all-reduce
    (and a dense MLP's) over the t devices of a group for its ``tokens / a``; an MoE
    layer's experts either tensor-parallel over all ``t a`` devices (ep = 1: an
    all-reduce of every token over ``t a``, as an all-gather plus reduce-scatter moves)
    or expert parallel (ep > 1: dispatch and combine, planner.cost.expert_parallel.a2a_s)."""
    M = x.model
    message_bytes = tokens_per_pass / x.attn_dp * M["hidden"] * x.act_bytes_per_value
    tp = x.xp.where(x.devices > 1, message_bytes * x.ring_s_per_byte + x.allreduce_latency_s, 0.0)
    if not x.layout_beyond_tp:
        return 2.0 * M["layers"] * passes * tp
    group = x.xp.where(x.group_devices > 1, tokens_per_pass * M["hidden"] * x.act_bytes_per_value
                       * x.group_ring_s_per_byte
                       + x.group_allreduce_latency_s, 0.0)
    moe = x.xp.where(x.ep > 1.0, 0.0, M["moe_layers"] * passes * group)
    dense_mlp = M["layers"] - M["moe_layers"]
    return (M["layers"] + dense_mlp) * passes * tp + moe + a2a_s(x, tokens_per_pass, passes)
