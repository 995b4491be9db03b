"""Tensor parallelism beyond one NVLink domain: the hierarchical all-reduce.

Oracles: a brute-force step-by-step simulation of the two-level algorithm (ring
reduce-scatter inside each domain, ring all-reduce of each device's shard across the
domains over its own NIC, ring all-gather inside the domain: every step's bytes over the
link it crosses), the unchanged single-domain ring, and the monotone physics (a group that
crosses nodes is slower per all-reduce than one that does not)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns, estimate
from planner.cost.context import Ctx
from planner.cost.interconnect import (INTER_NODE_GBPS_PER_DEVICE, INTER_NODE_LATENCY_US,
                                       allreduce_latency_s, ring_s_per_byte)
from planner.cost.tables import HardwareTable, ModelTable

H100 = load_hardware("h100-sxm")
H200 = load_hardware("h200")
MT = ModelTable.build([load_model("llama-3.1-70b")])


def _ctx(hw, devices: int) -> Ctx:
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=0, prompt_len=16, gen_len=1,
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype="bf16", act_dtype="bf16",
                   kv_dtype="bf16")
    return Ctx(cols, MT, HardwareTable.build([hw]))


def allreduce_s(hw, devices: int, nbytes: float) -> float:
    x = _ctx(hw, devices)
    return float(nbytes * ring_s_per_byte(x)[0] + allreduce_latency_s(x)[0])


def brute_force_bandwidth_s(nbytes: float, domain: int, domains: int, nvlink_bps: float, net_bps: float) -> float:
    """Sum over the algorithm's steps of the bytes one device sends in the step over the
    link it uses (all devices in parallel, so one device's time is the step's time)."""
    t = 0.0
    shard = nbytes / domain
    for _ in range(domain - 1):          # reduce-scatter inside the domain: ring of D
        t += shard / nvlink_bps
    piece = shard / domains
    for _ in range(2 * (domains - 1)):   # ring all-reduce of the shard across the domains
        t += piece / net_bps
    for _ in range(domain - 1):          # all-gather inside the domain
        t += shard / nvlink_bps
    return t


@pytest.mark.parametrize("hw", [H100, H200], ids=lambda h: h.name)
@pytest.mark.parametrize("domains", [2, 4, 8])
def test_bandwidth_term_equals_the_two_level_algorithm_step_by_step(hw, domains):
    D = hw.max_devices
    nvlink = hw.interconnect_gbps * 1e9 * hw.interconnect_efficiency
    net = (hw.inter_node_gbps or INTER_NODE_GBPS_PER_DEVICE) * 1e9
    x = _ctx(hw, D * domains)
    for nbytes in (1e3, 1e6, 1e9):
        assert nbytes * ring_s_per_byte(x)[0] == pytest.approx(
            brute_force_bandwidth_s(nbytes, D, domains, nvlink, net), rel=1e-12)
    # latency: the domain's collective plus 2 (m - 1) network steps
    lat = (hw.interconnect_latency_us * 1e-6
           + 2 * (domains - 1) * (hw.inter_node_latency_us if hw.inter_node_latency_us is not None
                                  else INTER_NODE_LATENCY_US) * 1e-6)
    assert allreduce_latency_s(x)[0] == pytest.approx(lat, rel=1e-12)


@pytest.mark.parametrize("t", [2, 4, 8])
def test_inside_one_domain_the_ring_is_unchanged(t):
    x = _ctx(H100, t)
    bw = H100.interconnect_gbps * 1e9 * H100.interconnect_efficiency
    assert ring_s_per_byte(x)[0] == pytest.approx(2 * (t - 1) / t / bw, rel=1e-12)
    assert allreduce_latency_s(x)[0] == pytest.approx(H100.interconnect_latency_us * 1e-6, rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(nbytes=st.floats(1.0, 4e9), hw=st.sampled_from([H100, H200]))
def test_tp16_is_slower_per_allreduce_than_tp8_when_it_crosses_nodes(nbytes, hw):
    """The same message all-reduced over 16 devices (two 8-GPU nodes) takes longer than
    over 8 (one node): the network leg adds latency and its bandwidth is ~6x below
    NVLink's. And 32 devices are slower still."""
    t8, t16, t32 = (allreduce_s(hw, n, nbytes) for n in (8, 16, 32))
    assert t16 > t8
    assert t32 > t16


def test_tp16_decode_pays_the_network_per_step():
    """A decode step of llama-3.1-70b on 16 H100s spends more time in all-reduces than on
    8 (every layer's two all-reduces cross the nodes), though each device streams half
    the weights."""
    kw = dict(batch=8, prompt_len=1024, gen_len=64, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8")
    e8 = estimate("llama-3.1-70b", H100, devices=8, **kw)
    e16 = estimate("llama-3.1-70b", H100, devices=16, **kw)
    assert e16["time_by_bound_s"]["interconnect"] > e8["time_by_bound_s"]["interconnect"]
    assert e16["bytes"]["weights"] == pytest.approx(e8["bytes"]["weights"], rel=1e-9)  # same total work
    assert np.isfinite(e16["tpot_s"]) and e16["tpot_s"] > 0
