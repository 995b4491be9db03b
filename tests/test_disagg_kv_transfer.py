"""The KV hand-off between a disaggregated prefill worker and a decode worker
(planner.cost.disagg.kv_transfer_rows_s).

Oracles: the bytes counted by hand from the models' config.json facts (DeepSeek-R1's MLA
latent, 512 + 64 values per token and layer over 61 layers; Llama-3.1-70B's 8 KV heads of
128 over 80 layers) at the datasheet link rates; monotonicity in the prompt length and in
the network bandwidth; the estimate path (planner estimate --prefill-workers) and the
vectorized rows path agree."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.disagg import kv_transfer_rows_s
from planner.cost.interconnect import INTER_NODE_GBPS_PER_DEVICE, INTER_NODE_LATENCY_US
from planner.cost.tables import HardwareTable, ModelTable

DSR1_LATENT_BYTES_PER_TOKEN = (512 + 64) * 61 * 2  # kv_lora_rank + qk_rope_head_dim, 61 layers, bf16
LLAMA70_KV_BYTES_PER_TOKEN = 8 * 128 * 2 * 80 * 2  # 8 KV heads x 128, K and V, 80 layers, bf16


def _ctx(model, hw, devices: int, P, attn_dp: int = 1) -> Ctx:
    mt, ht = ModelTable.build([model]), HardwareTable.build([hw])
    P = np.atleast_1d(np.asarray(P, dtype=np.int64))
    cols = columns(len(P), model=0, hardware=0, devices=devices, batch=1, concurrency=1, prompt_len=P, gen_len=128,
                   samples=1, weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", kv_budget=0,
                   prefix_sharing=False, ep=1, attn_dp=attn_dp)
    return Ctx(cols, mt, ht)


def _s(v) -> float:
    return float(np.asarray(v, dtype=float).ravel()[0])


def _network(hw):
    return ((hw.inter_node_gbps or INTER_NODE_GBPS_PER_DEVICE) * 1e9,
            (hw.inter_node_latency_us or INTER_NODE_LATENCY_US) * 1e-6)


def test_mla_latent_is_received_whole_by_every_decode_device():
    """DeepSeek-R1, 8,192 prompt tokens, TP8 prefill -> TP8 decode on two HGX H200 boards
    (over the network): MLA's latent KV is replicated over tensor parallelism, so each
    decode device receives all 8,192 x 70,272 bytes (576 MB) over its own NIC; it is not
    split eight ways as GQA heads are."""
    m, h = load_model("deepseek-r1"), load_hardware("h200")
    P = 8192
    bw, lat = _network(h)
    got = _s(kv_transfer_rows_s(_ctx(m, h, 8, P), _ctx(m, h, 8, P), float(P), 16.0))
    assert got == pytest.approx(lat + P * DSR1_LATENT_BYTES_PER_TOKEN / bw, rel=1e-6)
    # attention data parallel decode (8 ranks of one device): the request lands on one rank
    adp = _s(kv_transfer_rows_s(_ctx(m, h, 8, P), _ctx(m, h, 1, P, attn_dp=8), float(P), 16.0))
    assert adp == pytest.approx(got, rel=1e-9)
    # one prefill device (an attention-DP prefill rank) feeding eight decode devices sends eight copies
    fan = _s(kv_transfer_rows_s(_ctx(m, h, 1, P, attn_dp=8), _ctx(m, h, 8, P), float(P), 16.0))
    assert fan == pytest.approx(lat + 8 * P * DSR1_LATENT_BYTES_PER_TOKEN / bw, rel=1e-6)


def test_gqa_heads_split_over_the_devices_inside_one_domain():
    """Llama-3.1-70B, 4,096 tokens, TP4 prefill -> TP4 decode on one HGX H100 board (8
    devices: NVLink): each device sends and receives its two of the eight KV heads, a
    quarter of the 327,680 bytes per token, at the NVLink rate."""
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    P = 4096
    x = _ctx(m, h, 4, P)
    link = _s(x.hw["link_bytes_per_s"])
    assert link == pytest.approx(h.interconnect_gbps * 1e9 * h.interconnect_efficiency, rel=1e-6)
    got = _s(kv_transfer_rows_s(x, _ctx(m, h, 4, P), float(P), 8.0))
    assert got == pytest.approx(_s(x.hw["allreduce_latency_s"]) + P * LLAMA70_KV_BYTES_PER_TOKEN / 4 / link, rel=1e-6)
    # one prefill device feeding four decode devices: the sender ships all four shards
    one_to_four = _s(kv_transfer_rows_s(_ctx(m, h, 1, P), _ctx(m, h, 4, P), float(P), 8.0))
    one_to_one = _s(kv_transfer_rows_s(_ctx(m, h, 1, P), _ctx(m, h, 1, P), float(P), 8.0))
    assert one_to_four == pytest.approx(one_to_one, rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(p1=st.integers(16, 32768), p2=st.integers(16, 32768), t_pre=st.sampled_from([1, 2, 4, 8]),
       t_dec=st.sampled_from([1, 2, 4, 8]), model=st.sampled_from(["deepseek-r1", "llama-3.1-70b", "qwen3-32b"]))
def test_transfer_grows_with_the_prompt(p1, p2, t_pre, t_dec, model):
    m, h = load_model(model), load_hardware("h200")
    lo, hi = sorted((p1, p2))
    P = np.array([lo, hi])
    t = kv_transfer_rows_s(_ctx(m, h, t_pre, P), _ctx(m, h, t_dec, P), P.astype(float), 32.0)
    assert t[0] <= t[1]
    if hi > lo:
        assert t[0] < t[1]


def test_transfer_falls_with_the_network_bandwidth():
    m, base = load_model("deepseek-r1"), load_hardware("h200")
    P = 8192
    times = []
    for gbps in (12.5, 25.0, 50.0, 100.0, 400.0):
        h = base.model_copy(update={"inter_node_gbps": gbps})
        times.append(_s(kv_transfer_rows_s(_ctx(m, h, 8, P), _ctx(m, h, 8, P), float(P), 16.0)))
    assert np.all(np.diff(times) < 0)
    # the bytes term halves when the bandwidth doubles (the latency is fixed)
    lat = _network(base)[1]
    assert (times[0] - lat) == pytest.approx(2 * (times[1] - lat), rel=1e-6)


def test_estimate_and_rows_give_the_same_transfer():
    """planner estimate --prefill-workers (serving_api.disaggregated_estimate) and the
    vectorized rows path use the one formula: DeepSeek-R1 fp8 over two H200 boards."""
    from planner.cost.disagg import disaggregated_rows
    from planner.cost.serving_api import disaggregated_estimate

    m, h = load_model("deepseek-r1"), load_hardware("h200")
    est = disaggregated_estimate(m, h, prefill_workers=1, decode_workers=1, prefill_devices=8, decode_devices=8,
                                 concurrency=8, prompt_len=4096, gen_len=256, weight_dtype="fp8", act_dtype="fp8",
                                 kv_dtype="bf16")
    bw, lat = _network(h)
    assert est["disaggregated"]["kv_transfer_s"] == pytest.approx(lat + 4096 * DSR1_LATENT_BYTES_PER_TOKEN / bw,
                                                                  rel=1e-6)
    mt, ht = ModelTable.build([m]), HardwareTable.build([h])
    cols = columns(1, model=0, hardware=0, devices=8, batch=1, concurrency=8, prompt_len=4096, gen_len=256, samples=1,
                   weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", kv_budget=0, prefix_sharing=False)
    rows = disaggregated_rows(cols, mt, ht, prefill={"devices": 8}, decode={"devices": 8}, concurrency=8,
                              prefill_workers=1, decode_workers=1)
    assert rows["kv_transfer_s"][0] == pytest.approx(est["disaggregated"]["kv_transfer_s"], rel=1e-9)
