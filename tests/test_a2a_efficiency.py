"""Expert parallelism's dispatch / combine all-to-alls at their own achieved fraction of
the link (``a2a_efficiency``, planner.serving_params), apart from the all-reduces'
``link_efficiency``.

Oracles: the datasheet link (450 GB/s per direction on H100 / H200 NVLink 4) and a hand
count of the bytes (DeepSeek-R1 config.json: hidden 7168, 8 routed experts per token, 58
MoE layers); profiles written before the parameter existed predict exactly as they did
(their all-to-alls ran at the link efficiency); a fit recovers a known a2a efficiency from
synthetic expert-parallel runs; tensor-parallel rows do not depend on it."""

from __future__ import annotations

import numpy as np
import pytest

from planner import serving_params as SP
from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.expert_parallel import a2a_s
from planner.cost.tables import HardwareTable, ModelTable
from planner.measured import read_measured
from planner.replay import Prepared
from planner.serving_fit import fit_all

H200 = load_hardware("h200")
HEADER = ("id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,attention_dp_size,moe_tp_size,"
          "moe_ep_size,silicon_ttft_ms,silicon_tpot_ms")


def _ctx(values: dict, ep: int, devices: int = 8):
    m = load_model("deepseek-r1")
    eff = SP.efficiency(H200, values, "test")
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=0, prompt_len=16, gen_len=1,
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8",
                   ep=ep, attn_dp=1)
    return Ctx(cols, ModelTable.build([m]), HardwareTable.build([H200], [eff]))


def test_all_to_all_time_is_the_hand_counted_bytes_at_the_a2a_fraction_of_the_datasheet_link():
    tokens = 1024.0
    # per device: 1024 / 8 tokens x 8 experts x 7168 B (fp8) x 7/8 crossing the link, 2 per MoE layer
    nbytes = tokens / 8 * 8 * 7168 * 1.0 * 7 / 8
    for e in (0.1, 0.5):
        x = _ctx({"link_efficiency": 0.9, "a2a_efficiency": e}, ep=8)
        want = 2 * 58 * (nbytes / (450e9 * e) + H200.interconnect_latency_us * 1e-6)
        assert float(a2a_s(x, tokens, 1.0)[0]) == pytest.approx(want, rel=1e-9)
    # the all-reduces keep the link efficiency: the ring's 2 (t-1)/t over 450 GB/s x 0.9
    assert float(x.ring_s_per_byte[0]) == pytest.approx(2 * 7 / 8 / (450e9 * 0.9), rel=1e-12)


def test_a_profile_without_it_runs_its_all_to_alls_at_the_link_efficiency():
    old = _ctx({"link_efficiency": 0.3}, ep=8)
    same = _ctx({"link_efficiency": 0.3, "a2a_efficiency": 0.3}, ep=8)
    assert float(old.a2a_s_per_byte[0]) == float(same.a2a_s_per_byte[0])
    assert float(old.a2a_s_per_byte[0]) == pytest.approx(1 / (450e9 * 0.3), rel=1e-12)


def _rows(tmp_path, truth: dict | None):
    rows = []
    i = 0
    for isl, osl in ((1024, 1024), (4096, 256), (8192, 512)):
        for c in (4, 32, 128):
            for tp, ep in ((8, 8), (8, 1), (4, 4)):
                rows.append(f"r{i},sglang,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,agg,{isl},{osl},{c},{tp},1,"
                            f"{tp // ep},{ep}")
                i += 1
    p = tmp_path / "grid.csv"
    p.write_text("\n".join([HEADER, *[r + ",," for r in rows]]) + "\n")
    runs = read_measured(str(p))
    if truth is None:
        return runs
    pred = Prepared(runs).run({"h200/sglang": ("truth", {**SP.defaults(H200), **truth})})
    assert (pred.status == "ok").all()
    out = tmp_path / "synthetic.csv"
    out.write_text("\n".join([HEADER] + [f"{r},{t * 1e3:.9g},{q * 1e3:.9g}"
                                         for r, t, q in zip(rows, pred.ttft_s, pred.tpot_s)]) + "\n")
    return read_measured(str(out))


def test_tensor_parallel_rows_do_not_depend_on_it(tmp_path):
    runs = _rows(tmp_path, None)
    prep = Prepared(runs)
    base = {**SP.defaults(H200), "link_efficiency": 0.4}
    a = prep.run({"h200/sglang": ("a", {**base, "a2a_efficiency": 0.05})})
    b = prep.run({"h200/sglang": ("b", {**base, "a2a_efficiency": 0.9})})
    tp_only = runs.ep <= 1
    assert tp_only.any() and (~tp_only).any()
    np.testing.assert_array_equal(a.tpot_s[tp_only], b.tpot_s[tp_only])
    np.testing.assert_array_equal(a.ttft_s[tp_only], b.ttft_s[tp_only])
    assert (a.ttft_s[~tp_only] > b.ttft_s[~tp_only]).all()  # a slower all-to-all, a later first token


def test_fit_recovers_a_known_a2a_efficiency(tmp_path):
    truth = {"memory_efficiency": 0.8, "compute_efficiency": 0.6, "step_host_s": 0.0005, "wave_sync": 0.3,
             "request_overhead_s": 0.05, "kernel_time_s": 8e-6, "link_efficiency": 0.6, "a2a_efficiency": 0.15}
    fits = fit_all(_rows(tmp_path, truth))
    got = fits["h200/sglang"].values
    assert got["a2a_efficiency"] == pytest.approx(0.15, rel=0.05)
    assert got["link_efficiency"] == pytest.approx(0.6, rel=0.05)
