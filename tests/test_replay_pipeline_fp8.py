"""The replay's pipeline-parallel rows and fp8 rows on devices without fp8 compute.

Oracles: the single-configuration API (planner.cost.api.estimate with ``pp`` under the
closed loop; with fp8 weights and 16-bit compute) and the dev file's own rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate
from planner.engine_profiles import load_engine
from planner.measured import read_measured
from planner.replay import Prepared
from planner.replay_rows import FP8_WEIGHT_ONLY_NOTE

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
HEADER = "id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,pp_size,silicon_ttft_ms,silicon_tpot_ms"


def _runs(tmp_path, rows, header=HEADER):
    p = tmp_path / "runs.csv"
    p.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return read_measured(str(p))


def _datasheet(h):
    return {"memory_efficiency": h.memory_efficiency, "compute_efficiency": h.compute_efficiency,
            "step_host_s": 0.0, "wave_sync": 1.0, "request_overhead_s": 0.0}


# (engine, CSV model, catalog model, CSV system, catalog device, in flight, tp, pp, isl, osl)
PP_CASES = [("vllm", "Qwen/Qwen3-32B", "qwen3-32b", "h200_sxm", "h200", 16, 2, 2, 2048, 256),
            ("trtllm", "meta-llama/Llama-3.1-70B", "llama-3.1-70b", "h100_sxm", "h100-sxm", 64, 2, 4, 1024, 512),
            ("sglang", "Qwen/Qwen3-32B", "qwen3-32b", "h200_sxm", "h200", 5, 1, 2, 4096, 128),
            # 512 in flight on one device per stage: the stage's KV memory caps the running set
            ("vllm", "meta-llama/Llama-3.1-70B", "llama-3.1-70b", "h100_sxm", "h100-sxm", 512, 1, 2, 1024, 1024)]


@pytest.mark.parametrize("case", PP_CASES, ids=lambda c: f"{c[0]}-{c[2]}-tp{c[6]}-pp{c[7]}-c{c[5]}")
def test_pipeline_row_equals_the_single_configuration_api(tmp_path, case):
    """An aggregated pp row is planner.cost.api.estimate(pp=, arrival="closed") for the
    same configuration (a microbatch of ceil(C / pp) clients, the stage's KV cap, the
    stage sends), at the datasheet efficiencies and no host time."""
    eng, csv_model, model, system, device, C, tp, pp, P, G = case
    runs = _runs(tmp_path, [f"p,{eng},{csv_model},{system},fp8,agg,{P},{G},{C},{tp},{pp},,"])
    h = load_hardware(device)
    pred = Prepared(runs).run({f"{h.name}/{eng}": ("t", _datasheet(h))})
    assert pred.status[0] == "ok"
    e = load_engine(eng).model_copy(update={"host_step_us": 0.0})
    r = estimate(load_model(model), h, devices=tp, pp=pp, concurrency=C, prompt_len=P, gen_len=G,
                 weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", prefix_sharing=False, engine=e,
                 arrival="closed")
    assert pred.ttft_s[0] == pytest.approx(r["ttft_s"], rel=1e-6)
    assert pred.tpot_s[0] == pytest.approx(r["tpot_s"], rel=1e-6)


def test_dev_rows_copied_with_pp_2_and_tp_halved_predict(tmp_path):
    """Every aggregated dense dev-file row with tp >= 2, copied with pp 2 and tp halved
    (the same devices), is predicted: finite positive times."""
    text = DEV.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    fields = list(rows[0])
    pick = [r for r in rows if r["mode"] == "agg" and int(float(r["tp_size"] or 1)) >= 2
            and int(float(r["moe_ep_size"] or 1)) <= 1 and int(float(r["attention_dp_size"] or 1)) <= 1][:40]
    assert len(pick) >= 10
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields)
    w.writeheader()
    for r in pick:
        w.writerow({**r, "id": r["id"] + "-pp2", "tp_size": str(int(float(r["tp_size"])) // 2), "pp_size": "2",
                    "moe_tp_size": ""})
    p = tmp_path / "pp2.csv"
    p.write_text(out.getvalue(), encoding="utf-8")
    pred = Prepared(read_measured(str(p))).run()
    ok = pred.status == "ok"
    assert ok.mean() >= 0.95, sorted(set(pred.status[~ok].tolist()))
    assert np.all(np.isfinite(pred.ttft_s[ok]) & (pred.ttft_s[ok] > 0))
    assert np.all(np.isfinite(pred.tpot_s[ok]) & (pred.tpot_s[ok] > 0))


def test_disaggregated_side_with_pp_is_refused_with_its_reason(tmp_path):
    header = ("id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,prefill_num_workers,prefill_tp_size,"
              "prefill_pp_size,decode_num_workers,decode_tp_size,decode_batch_size,silicon_ttft_ms,silicon_tpot_ms")
    runs = _runs(tmp_path, ["d,sglang,Qwen/Qwen3-32B,h200_sxm,fp8,disagg,1024,256,,,1,2,2,1,4,16,,"], header)
    assert Prepared(runs).run().status[0] == ("unsupported: pipeline parallel (pp > 1) on a disaggregated side "
                                              "(aggregated pp rows are predicted)")


def test_fp8_rows_on_ampere_run_weight_only_where_the_engine_does(tmp_path):
    """vLLM and SGLang run an fp8 checkpoint on an A100 as W8A16 (engines/*.yaml): the row
    is estimate(weight_dtype="fp8", act_dtype="bf16"), with its note; TensorRT-LLM has no
    such path and refuses it; the same row in bf16 is slower to decode (twice the weight
    bytes per step)."""
    rows = [f"{e},{e},Qwen/Qwen3-32B,a100_sxm,{q},agg,2048,256,16,2,1,,"
            for e, q in (("vllm", "fp8"), ("sglang", "fp8"), ("trtllm", "fp8"))] + \
        ["b,vllm,Qwen/Qwen3-32B,a100_sxm,bf16,agg,2048,256,16,2,1,,"]
    runs = _runs(tmp_path, rows)
    h = load_hardware("a100-sxm-80gb")
    assert not h.has_dtype("fp8")
    params = {f"{h.name}/{e}": ("t", _datasheet(h)) for e in ("vllm", "sglang", "trtllm")}
    pred = Prepared(runs).run(params)
    assert list(pred.status[:2]) == ["ok", "ok"]
    assert pred.status[2] == "unsupported: no fp8 compute on a100-sxm-80gb"
    assert pred.note[0] == pred.note[1] == FP8_WEIGHT_ONLY_NOTE.format("a100-sxm-80gb")
    assert pred.note[0] == "fp8 weights run weight-only (W8A16, FP8 Marlin) on a100-sxm-80gb"
    e = load_engine("vllm").model_copy(update={"host_step_us": 0.0})
    r = estimate(load_model("qwen3-32b"), h, devices=2, concurrency=16, prompt_len=2048, gen_len=256,
                 weight_dtype="fp8", act_dtype="bf16", kv_dtype="bf16", prefix_sharing=False, engine=e,
                 arrival="closed")
    assert pred.ttft_s[0] == pytest.approx(r["ttft_s"], rel=1e-6)
    assert pred.tpot_s[0] == pytest.approx(r["tpot_s"], rel=1e-6)
    assert pred.tpot_s[3] > pred.tpot_s[0]


def test_engine_profiles_state_the_fallback_with_a_source():
    for name, expect in (("vllm", True), ("sglang", True), ("trtllm", False), ("generic", False)):
        e = load_engine(name)
        assert e.fp8_weight_only_fallback is expect
        if name != "generic":
            assert "fp8" in e.sources["fp8_weight_only_fallback"].lower()
