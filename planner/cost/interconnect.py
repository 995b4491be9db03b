"""Collectives: the all-reduces of tensor parallelism, and the per-row factors of their
time (computed once per evaluation by the context, planner.cost.context.Ctx); the
all-to-alls of expert parallelism live in :mod:`planner.cost.expert_parallel`."""

from __future__ import annotations

from planner.cost.expert_parallel import a2a_s, dispatches

# between NVLink domains, when the device spec gives no inter-node figure
# (``inter_node_gbps`` / ``inter_node_latency_us``): NVIDIA DGX H100 / H200 datasheets:
# 8x ConnectX-7 400 Gb/s, one per GPU, = 50 GB/s per device; latency: one network step of
# a small collective, NCCL's ring LL figure for the network (hwLat NET 2.7 us) plus the
# RDMA round trip, a few microseconds: assumption, 5 us
INTER_NODE_GBPS_PER_DEVICE = 50.0
INTER_NODE_LATENCY_US = 5.0
# The hidden states the all-reduces sum are 16-bit even where the GEMMs take 8- or 4-bit
# inputs: a quantized linear layer quantizes its input and returns its output in the
# input's dtype (vLLM w8a8_utils.apply_fp8_linear: cutlass_scaled_mm(..., out_dtype=
# input.dtype), bf16), and tensor parallelism all-reduces that output
RESIDUAL_MIN_BYTES_PER_VALUE = 2.0


def _split(x, t):
    """(devices per domain, domains) of a group of ``t`` devices: a group beyond one
    NVLink domain (``max_devices``) spans ``ceil(t / D)`` domains of ``D`` devices each."""
    xp = x.xp
    D = x.hw["domain_devices"]
    inside = xp.minimum(t, D)
    return inside, xp.maximum(xp.ceil(t / xp.maximum(inside, 1.0) - 1e-9), 1.0)


def link_bytes_per_s(x, n):
    """Per-device link bandwidth of a group of ``n`` devices: NVLink (the spec's figure)
    within one NVLink domain (``max_devices``), the inter-node network beyond it
    (``inter_node_gbps``); 0 for a device without a link (its multi-device rows stay
    infinite)."""
    link = x.hw["link_bytes_per_s"]
    return x.xp.where(x.xp.logical_and(n > x.hw["domain_devices"], link > 0), x.hw["inter_node_bytes_per_s"], link)


def allreduce_latency_s(x, n=None):
    """Latency of one small-message all-reduce across ``n`` devices (default: the t
    devices of the tensor-parallel group).

    Within one NVLink domain: the device's measured figure (``interconnect_latency_us``),
    the same at any group size. The serving engines run their tensor-parallel all-reduces
    with their own custom all-reduce: ONE kernel in which every rank reads its peers'
    buffers over NVSwitch in parallel between flag barriers, one-shot for small messages
    and two-shot (a reduce-scatter and an all-gather, two barriers) for larger ones (vLLM
    ``csrc/custom_all_reduce.cuh``: ``cross_device_reduce_1stage`` below 256 KB at 8
    ranks and 512 KB at 4, ``cross_device_reduce_2stage`` above, NCCL beyond its 8 MB
    buffer; TensorRT-LLM's one-shot / two-shot ``customAllReduceKernels``). There is no
    ring of ``2 (t-1)`` hops whose per-hop latency would add up: the engine used to charge
    NCCL's ring model, ``2 (t-2)`` more LL steps of 0.6 us (src/graph/tuning.cc), 7.2 us
    more per all-reduce at t = 8 (docs/serving-experiments.md, round 10). At a large
    message, where NCCL's ring does run, the bandwidth term dominates and the latency is
    immaterial. Beyond the domain, hierarchically (:func:`ring_s_per_byte`): the domain's
    collective plus a ring all-reduce over the ``m`` domains, ``2 (m - 1)`` network steps
    of ``inter_node_latency_us``. Zero on one device."""
    xp = x.xp
    t = x.devices if n is None else n
    inside, domains = _split(x, t)
    intra = xp.where(inside > 1, x.hw["allreduce_latency_s"], 0.0)
    inter = 2.0 * (domains - 1.0) * x.hw["inter_node_latency_s"]
    return xp.where(t > 1, intra + inter, 0.0)


def ring_s_per_byte(x, n=None):
    """Seconds per byte of an all-reduce's payload over ``n`` devices (default: t).

    Within one NVLink domain, a ring: ``2 (t-1) / t / bw`` (each device sends and receives
    that share of the message; Patarasuk & Yuan 2009). Beyond it, hierarchical (NCCL's
    tree/ring across nodes, and the two-level all-reduce of Megatron / Horovod): a
    reduce-scatter inside each domain of ``D`` devices, an all-reduce of each device's
    ``1/D`` shard among its peers of the ``m`` domains over the network (one NIC per
    device, all in parallel), an all-gather inside the domain:
    ``2 (D-1)/D / bw_nvlink + 2 (m-1)/m / D / bw_network``. Infinite without a link."""
    xp = x.xp
    t = x.devices if n is None else n
    link = x.hw["link_bytes_per_s"]
    inside, domains = _split(x, t)
    intra = 2.0 * (inside - 1.0) / inside / xp.where(link > 0, link, 1.0)
    inter = 2.0 * (domains - 1.0) / domains / inside / x.hw["inter_node_bytes_per_s"]
    return xp.where(link > 0, intra + inter, float("inf"))


def allreduce_s(x, tokens_per_pass, passes):
    """Interconnect time of the collectives of ``passes`` passes of ``tokens_per_pass``
    tokens (the worker's, over all attention data-parallel groups).

    Tensor parallelism alone (``ep = attn_dp = 1``): two all-reduces per layer (after
    attention and after the MLP; Megatron-LM, Shoeybi et al. 2019), each the
    small-message latency :func:`allreduce_latency_s` plus the ring's bandwidth term
    ``2 (t-1) / t * bytes / bw`` (Patarasuk & Yuan 2009) for the pass's hidden states,
    16-bit values at least (:data:`RESIDUAL_MIN_BYTES_PER_VALUE`: an fp8 or fp4 model's
    GEMMs return bf16).

    With attention data parallelism or expert parallelism: the attention's all-reduce
    (and a dense MLP's) over the t devices of a group for its ``tokens / a``; an MoE
    layer's all-reduce of every token over ``t a`` (as an all-gather plus reduce-scatter
    moves), whether its experts are tensor parallel (ep = 1) or expert parallel under
    tensor-parallel attention (ep > 1, a = 1: no token moves, the all-reduce combines);
    expert parallelism over attention data-parallel groups (ep > 1, a > 1) dispatches and
    combines instead (planner.cost.expert_parallel.a2a_s)."""
    xp, M = x.xp, x.model
    value_bytes = x.hidden_bytes_per_value  # RESIDUAL_MIN_BYTES_PER_VALUE at least
    message_bytes = tokens_per_pass / x.attn_dp * M["hidden"] * value_bytes
    # no all-reduce on one device (where the ring's time is 0, or inf without a link);
    # where_flags: no np.where pass when every row has the same device count class
    tp = xp.where_flags(x.devices > 1, message_bytes * x.ring_s_per_byte + x.allreduce_latency_s, 0.0)
    if not x.layout_beyond_tp:
        return 2.0 * M["layers"] * passes * tp
    group_bytes = tokens_per_pass * M["hidden"] * value_bytes
    group = xp.where_flags(x.group_devices > 1, group_bytes * x.group_ring_s_per_byte
                           + x.group_allreduce_latency_s, 0.0)
    moe = xp.where_flags(dispatches(x), 0.0, M["moe_layers"] * passes * group)
    dense_mlp = M["layers"] - M["moe_layers"]
    return (M["layers"] + dense_mlp) * passes * tp + moe + a2a_s(x, tokens_per_pass, passes)
