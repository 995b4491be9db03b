"""What a Blackwell row gets (issues 10, 11: devices nobody measured), checked against
published InferenceMAX (InferenceX) runs over concurrencies, lengths and layouts.

Oracles (outside the code):

* published runs: tests/data/inferencemax-nvidia.csv, 67 InferenceX runs of DeepSeek-R1-0528
  (FP8, and NVIDIA's NVFP4 checkpoint nvidia/DeepSeek-R1-0528-FP4) without speculative
  decoding: 35 on B200 (TensorRT-LLM 1.1 / 1.2 and SGLang 0.5.9 aggregated, TP4 / TP8, EP,
  attention DP, 4 to 256 in flight, 1K/1K, 1K/8K, 8K/1K), 10 on GB200 and 2 on B300
  (Dynamo + TensorRT-LLM disaggregated, 3 to 8,192 in flight), and 20 on H200 with the same
  recipes (17 of them are rows of the dev file, the cross-check of the layout mapping). Mean
  TTFT and TPOT as published; each row's ``silicon_data_source`` names the GitHub Actions run
  (also as ``workflow_run_id=``, so the harness's facts apply as to the dev file's
  InferenceMAX rows: random range ratio 0.8, TensorRT-LLM fp8 KV cache), date, image,
  layout and the raw seconds; copied from the public InferenceX app's API fixture
  SemiAnalysisAI/InferenceX-app packages/app/cypress/fixtures/api/benchmarks.json at commit
  3a600f1. Layouts written as the dev file writes the real deployment: TP t with EP e
  (no attention DP) -> tp t, moe_tp t/e, moe_ep e; attention DP -> tp 1, attention_dp t,
  batch per rank; disaggregated rows give workers and the decode batch per rank
  (concurrency / (decode workers x ranks)); runs whose per-rank batch is not whole were
  left out (docs/serving-experiments.md, "Round 15 (S1)").
* the dev file (../shared/data/serving-measured-hopper-dev.csv): the H200 rows it holds
  must replay exactly as they do there.
* datasheets: NVIDIA DGX B200 (8 GPUs: 72 PF FP8, 144 PF FP4 sparse; 64 TB/s HBM3e; NVLink 5
  1.8 TB/s per GPU bidirectional); GB200 NVL72 (72 GPUs: 720 PF FP8, 1,440 PF FP4 sparse;
  one 72-GPU NVLink domain); GB300 NVL72 (1.1 EF FP4 dense: Blackwell Ultra's 1.5x the FP4
  of Blackwell, FP8 unchanged); H200 (4.8 TB/s HBM3e, NVLink 4 900 GB/s bidirectional).

The replay check is a gate, not a fit: nothing was tuned to these rows. The tolerances are
today's errors plus a margin, so the test fails when these rows get markedly worse. Today
(round 15, the shipped carry rule "scheduler+kernel+link", which these rows helped choose
among fixed candidates: planner.serving_carry.CARRY_RULE): the 47 Blackwell rows median
|error| TTFT 39% before the poll interval below, TPOT 8% (under the earlier "scheduler+link"
40% / 28%, TPOT too fast on all 47); B200 41% / 8%, GB200 37% / 12%; the 20 H200 rows 23% / 11%
(main 73915e2; before the device priors and the refit: docs/serving-experiments.md, "Round 15
(S1)"). The bound on the largest TTFT error holds the harness's fp8 KV
cache of TensorRT-LLM fp4 launches on Blackwell (planner.measured): with the bf16 default
two TP4 B200 rows at 256 in flight did not fit their KV reservations and queued (+946% and
+6,159% TTFT). Round 15 (S4b): the harness's SGLang launches on Blackwell poll for new
requests every 10 / 30 decode iterations (planner.measured recv_interval): Blackwell TTFT
39% -> 26% under the shipped carry rule (27% under scheduler+link), B200 41% -> 23% (18%); the
TTFT gates moved to 0.33 / 0.30 (tests/test_recv_interval.py holds the B200 SGLang rows).
Round 15 (S1d): the carried per-kernel time follows each row's GEMM path (planner.kernel_paths):
the 47 Blackwell rows 25% / 5% (p90 69% / 23%), B200 23% / 6%, GB200 36% / 5%.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from planner.catalog import load_hardware
from planner.measured import read_measured
from planner.replay import predict
from planner.serving_profile import load_serving

from published import assert_every_row_predicted, replay

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "tests" / "data" / "inferencemax-nvidia.csv"
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
UNMEASURED = ("b200", "gb200", "b300")


@pytest.fixture(scope="module")
def replayed():
    return replay(CSV)


def test_every_published_run_is_predicted_finite(replayed):
    runs, pred, e_ttft, e_tpot = replayed
    assert_every_row_predicted(replayed, 67)
    assert set(pred.device.tolist()) == {*UNMEASURED, "h200"}
    assert set(runs.mode.tolist()) == {"agg", "disagg"} and set(runs.engine.tolist()) == {"sglang", "trtllm"}


def test_blackwell_rows_take_the_unmeasured_rule_and_h200_rows_its_fit(replayed):
    _, pred, _, _ = replayed
    blackwell = np.isin(pred.device, UNMEASURED)
    assert all(p.startswith("datasheet + ") for p in pred.profile[blackwell])
    assert all(p.startswith("calibration:h200.") for p in pred.profile[~blackwell])


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_h200_rows_the_dev_file_holds_replay_as_they_do_there(replayed, tmp_path):
    """The layout mapping (agg TP / EP, tp8_ep8 written as the real 8-GPU deployment where
    the dev file also writes it as tp 64 / 8 x 8) gives the dev file's own predictions."""
    runs, pred, _, _ = replayed
    with DEV.open() as f:
        dev_rows = list(csv.DictReader(f))
    mine = {(round(float(t), 2), round(float(p), 3)): i
            for i, (t, p) in enumerate(zip(runs.measured_ttft_s * 1e3, runs.measured_tpot_s * 1e3))
            if pred.device[i] == "h200"}
    twins = [r for r in dev_rows if r["silicon_ttft_ms"] and (
        round(float(r["silicon_ttft_ms"]), 2), round(float(r["silicon_tpot_ms"]), 3)) in mine]
    assert len({(r["silicon_ttft_ms"][:8]) for r in twins}) >= 15
    path = tmp_path / "twins.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dev_rows[0]))
        w.writeheader()
        w.writerows(twins)
    dev_runs = read_measured(path)
    dev_pred = predict(dev_runs, load_serving())
    for j in range(len(dev_runs)):
        i = mine[(round(float(dev_runs.measured_ttft_s[j] * 1e3), 2), round(float(dev_runs.measured_tpot_s[j] * 1e3), 3))]
        assert dev_pred.ttft_s[j] == pytest.approx(pred.ttft_s[i], rel=1e-9), dev_runs.ids[j]
        assert dev_pred.tpot_s[j] == pytest.approx(pred.tpot_s[i], rel=1e-9), dev_runs.ids[j]


def test_published_blackwell_runs_within_the_stated_tolerance(replayed):
    _, pred, e_ttft, e_tpot = replayed
    blackwell = np.isin(pred.device, UNMEASURED)
    assert blackwell.sum() == 47
    assert np.median(np.abs(e_ttft[blackwell])) <= 0.33, np.median(np.abs(e_ttft[blackwell]))
    assert np.abs(e_ttft[blackwell]).max() <= 1.5, np.abs(e_ttft[blackwell]).max()  # no run predicted to queue
    assert np.median(np.abs(e_tpot[blackwell])) <= 0.15, np.median(np.abs(e_tpot[blackwell]))
    for device, ttft, tpot in (("b200", 0.30, 0.15), ("gb200", 0.47, 0.20)):  # the two with more than 2 rows
        m = pred.device == device
        assert np.median(np.abs(e_ttft[m])) <= ttft, (device, np.median(np.abs(e_ttft[m])))
        assert np.median(np.abs(e_tpot[m])) <= tpot, (device, np.median(np.abs(e_tpot[m])))


def test_published_h200_runs_of_the_same_recipes_within_the_stated_tolerance(replayed):
    _, pred, e_ttft, e_tpot = replayed
    h200 = pred.device == "h200"
    assert np.median(np.abs(e_ttft[h200])) <= 0.30, np.median(np.abs(e_ttft[h200]))
    assert np.median(np.abs(e_tpot[h200])) <= 0.16, np.median(np.abs(e_tpot[h200]))


@pytest.mark.parametrize("device", ["b200", "gb200", "b300", "gb300"])
def test_blackwell_tensor_rates_double_per_halved_precision(device):
    """DGX B200 (72 / 144 PF FP8 / FP4 sparse) and GB200 NVL72 (720 / 1,440 PF): FP4 = 2 x
    FP8 = 4 x BF16 on Blackwell; Blackwell Ultra raises only FP4 (GB300 NVL72: 1.1 EF FP4
    dense, FP8 as GB200; HGX B300 14 PF FP4 against B200's 9), so there FP4 is 3-3.2 x FP8."""
    p = load_hardware(device).peak_tflops
    assert p["fp8"] == pytest.approx(2 * p["bf16"])
    lo, hi = (2.0, 2.0) if device in ("b200", "gb200") else (2.9, 3.2)
    assert lo - 1e-9 <= p["fp4"] / p["fp8"] <= hi + 1e-9, p


def test_blackwell_memory_and_link_against_hopper():
    """HBM3e 8 TB/s per GPU (DGX B200: 64 TB/s for 8) against H200's 4.8; NVLink 5 1.8 TB/s
    bidirectional per GPU, twice NVLink 4's 900 GB/s; NVL72 parts: one 72-GPU domain."""
    h200, b200, gb200, gb300 = (load_hardware(n) for n in ("h200", "b200", "gb200", "gb300"))
    assert b200.mem_bandwidth_gbps / h200.mem_bandwidth_gbps == pytest.approx(8.0 / 4.8)
    assert gb200.mem_bandwidth_gbps == gb300.mem_bandwidth_gbps == b200.mem_bandwidth_gbps
    for hw in (b200, gb200, gb300):
        assert hw.interconnect_gbps == pytest.approx(2 * h200.interconnect_gbps)
    assert (b200.max_devices, gb200.max_devices, gb300.max_devices) == (8, 72, 72)
    assert load_hardware("gb300").peak_tflops["fp4"] / gb200.peak_tflops["fp4"] == pytest.approx(1.5)
