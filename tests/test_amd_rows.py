"""What an AMD row gets (issues 10, 11: devices nobody measured): the MI300X, MI325X and
MI355X hardware files against AMD's published figures, the engines' defaults on them, and a
CHECK of the replay against published InferenceMAX (InferenceX) MI355X runs.

Oracles (outside the code):

* datasheet ratios: AMD Instinct MI325X datasheet (the MI300X's CDNA 3 compute, 256 GB HBM3E at
  6 TB/s against 192 GB HBM3 at 5.3 TB/s); AMD Instinct MI355X (AMD "InferenceMAX: benchmarking
  progress in real time", 2025-10-10: 10 PFLOPS MXFP4; The Register 2025-06-12; ISSCC 2026:
  8,192 FP8 FLOP per CU per clock, 256 CUs, 2.4 GHz): FP4 = 2 x FP8 = 4 x FP16; Infinity Fabric:
  seven links per GPU fully connecting eight GPUs, 128 GB/s per link bidirectional on MI300X /
  MI325X (AMD ROCm blog "Understanding RCCL bandwidth and xGMI performance on MI300X",
  2025-03-02: 64 GB/s per direction per point-to-point link), 153.6 GB/s on MI355X;
* the engines' start-up code (tests/test_engine_device_tiers.py): vLLM
  EngineArgs.get_batch_defaults ("for GPUs like H100 and MI300x": >= 70 GiB and not A100 ->
  8192 tokens, 1024 sequences); SGLang ServerArgs._handle_gpu_memory_settings (above 160 GiB ->
  chunked prefill 16384);
* published runs: tests/data/inferencemax-amd.csv, 17 InferenceX runs of DeepSeek-R1-0528 on
  8x MI355X with SGLang 0.5.9 / 0.5.8 (ROCm 7.0 images), mean TTFT and TPOT as published (the
  run, date, image and raw seconds on each row's ``silicon_data_source``; copied from the
  public InferenceX app's API fixture SemiAnalysisAI/InferenceX-app
  packages/app/cypress/fixtures/api/benchmarks.json at commit 3a600f1).

The replay check is a gate, not a fit: nothing was tuned to these rows. The tolerances are
today's errors plus a margin, so the test fails when the AMD rows get markedly worse: median
|error| TTFT 47%, TPOT 18% since round 15: each row's provenance names its GitHub Actions run
(``workflow_run_id=``), so it is replayed with the harness's random range ratio 0.8 as the dev
file's InferenceMAX rows are (planner.measured.harness_range_ratio; "Round 15 (S1)"), and the
MI355X file holds its published achieved fractions (memory 0.58 from FluidX3D's streaming
benchmark, compute 0.62 from hipBLASLt FP8; "Round 15 (S4)"). Round 14 (S3b), fixed lengths and
the generic 0.80 / 0.70: 23% / 31%. TPOT is still too fast on most rows (median -18%), TTFT low
on most (median -45%: the spread lengths' waves, docs/serving-experiments.md "Round 15 (S1)"; the
device's prefill on the ROCm stack, not a missed launch setting: "Round 15 (S4c)" and the strict xfail below).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.catalog import load_hardware
from planner.engine_profiles import load_engine
from planner.measured import read_measured
from planner.replay import predict
from planner.serving_profile import load_serving

CSV = Path(__file__).resolve().parent / "data" / "inferencemax-amd.csv"
LINKS_PER_GPU = 7  # fully connected 8-GPU platform: one link to each peer


def test_mi325x_is_the_mi300x_silicon_with_more_and_faster_memory():
    a, b = load_hardware("mi300x"), load_hardware("mi325x")
    assert a.peak_tflops == b.peak_tflops
    assert (a.die, a.fabric) == (b.die, b.fabric) and a.die and a.fabric
    assert (a.memory_gb, b.memory_gb) == (192, 256)
    assert b.mem_bandwidth_gbps / a.mem_bandwidth_gbps == pytest.approx(6.0 / 5.3)


def test_mi355x_rates_follow_its_cdna4_matrix_cores():
    h = load_hardware("mi355x")
    p = h.peak_tflops
    assert p["fp8"] == pytest.approx(8192 * 256 * 2.4e9 / 1e12, rel=1e-4)  # ISSCC 2026: ~5.0 PF dense
    assert p["fp4"] == pytest.approx(2 * p["fp8"], rel=1e-4) and p["bf16"] == pytest.approx(p["fp8"] / 2, rel=1e-4)
    assert (h.memory_gb, h.mem_bandwidth_gbps) == (288, 8000)
    assert h.die != load_hardware("mi300x").die and h.fabric != load_hardware("mi300x").fabric


@pytest.mark.parametrize("device, link_bidirectional_gbps", [("mi300x", 128.0), ("mi325x", 128.0), ("mi355x", 153.6)])
def test_infinity_fabric_is_seven_links_per_direction(device, link_bidirectional_gbps):
    h = load_hardware(device)
    assert h.interconnect_gbps == pytest.approx(LINKS_PER_GPU * link_bidirectional_gbps / 2)
    assert h.max_devices == LINKS_PER_GPU + 1


@pytest.mark.parametrize("device", ["mi300x", "mi325x", "mi355x"])
def test_the_engines_take_their_large_memory_defaults_on_instinct_parts(device):
    h = load_hardware(device)
    v, s = load_engine("vllm").on_device(h), load_engine("sglang").on_device(h)
    assert (v.token_budget, v.max_running) == (8192, 1024)
    assert s.token_budget == 16384


@pytest.fixture(scope="module")
def replayed():
    runs = read_measured(CSV)
    return runs, predict(runs, load_serving())


def test_published_mi355x_runs_are_all_predicted_within_the_stated_tolerance(replayed):
    runs, pred = replayed
    assert (pred.status == "ok").all(), pred.status[pred.status != "ok"]
    ttft = pred.ttft_s / runs.measured_ttft_s - 1.0
    tpot = pred.tpot_s / runs.measured_tpot_s - 1.0
    assert np.all(np.isfinite(ttft)) and np.all(np.isfinite(tpot))
    assert np.median(np.abs(ttft)) <= 0.57, np.median(np.abs(ttft))
    assert np.median(np.abs(tpot)) <= 0.26, np.median(np.abs(tpot))
    assert (runs.range_ratio == 0.8).all()  # the harness's spread lengths (its provenance says so)


# The same InferenceX harness point on H200 and on MI355X: DeepSeek-R1 fp8, TP8, SGLang 0.5.9,
# the same client (10 x C prompts, range ratio 0.8); (ISL, OSL, C). The H200 runs are the twins
# of tests/data/inferencemax-nvidia.csv (replayed with h200/sglang's fitted profile).
SAME_POINT = ((1024, 1024, 16), (1024, 1024, 64), (8192, 1024, 16), (1024, 8192, 8))
NVIDIA_CSV = CSV.parent / "inferencemax-nvidia.csv"


@pytest.mark.xfail(strict=True, reason="the replay prefills a lone MI355X prompt ~2.7x faster than H200's, "
                   "the published runs ~1.6x slower (docs/serving-experiments.md, Round 15 (S4c))")
def test_mi355x_ttft_relative_to_h200_on_the_same_harness_point(replayed):
    """Oracle: published runs of one recipe shape on both parts. Measured, MI355X's mean TTFT is
    1.15-2.0x H200's at every shared point; the replay has it 0.5-0.8x. Passes (and the strict
    xfail flips) once the replayed ratio is within a factor 1.5 of the measured one."""
    amd, amd_pred = replayed
    nv = read_measured(NVIDIA_CSV)
    nv_pred = predict(nv, load_serving())

    def point(runs, pred, system, isl, osl, c):
        m = ((runs.system == system) & (runs.engine == "sglang") & (runs.precision == "fp8") & (runs.tp == 8)
             & (runs.mode == "agg") & (runs.isl == isl) & (runs.osl == osl) & (runs.concurrency == c))
        assert m.sum() == 1, (system, isl, osl, c, m.sum())
        return pred.ttft_s[m][0], runs.measured_ttft_s[m][0]

    for isl, osl, c in SAME_POINT:
        p_amd, m_amd = point(amd, amd_pred, "mi355x", isl, osl, c)
        p_nv, m_nv = point(nv, nv_pred, "h200_sxm", isl, osl, c)
        measured, replayed_ratio = m_amd / m_nv, p_amd / p_nv
        assert measured > 1.0, (isl, osl, c, measured)  # the published direction
        assert measured / 1.5 <= replayed_ratio <= measured * 1.5, (isl, osl, c, measured, replayed_ratio)
