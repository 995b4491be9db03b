"""What an AMD row gets (issues 10, 11: devices nobody measured): the MI300X, MI325X and
MI355X hardware files against AMD's published figures, the engines' defaults on them, and a
CHECK of the replay against published MI355X, MI325X and MI300X runs (and their H200 twins).

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
* published runs (checks, nothing fitted to them; sources on each row's ``silicon_data_source``):
  tests/data/inferencemax-amd.csv, InferenceX runs of DeepSeek-R1-0528 with SGLang 0.5.9 / 0.5.8
  (ROCm 7.0 images): 37 on 8x MI355X (fp8 TP8, MXFP4 TP4 and TP8, two disaggregated) and 15 on
  8x MI325X (fp8 TP8), mean TTFT and TPOT as published, copied from the public InferenceX app's
  API fixture SemiAnalysisAI/InferenceX-app packages/app/cypress/fixtures/api/benchmarks.json at
  commit 3a600f1; tests/data/amd-published.csv, dstack's DeepSeek-R1 runs on 8x MI300X and on
  8x H200 with SGLang and vLLM (March 2025 engines; dstackai/benchmarks
  Deepseek-R1/raw_data/online_results.csv, the data of the blog "DeepSeek R1 inference
  performance: MI300X vs. H200", dstackai/dstack pull request 2425).

The gates are today's errors plus a margin, so a test fails when the AMD rows get markedly
worse. InferenceX rows (2026-11-30, round 16): MI355X median |error| TTFT 41% / TPOT 27%,
MI325X 39% / 62%, too fast on most rows (docs/serving-experiments.md "Round 16 (S2)"). Each
InferenceX row's provenance names its GitHub Actions run (``workflow_run_id=``), so it is
replayed with the harness's random range ratio 0.8 (planner.harness.harness_range_ratio;
"Round 15 (S1)"); the dstack rows ran fixed lengths (``--random-range-ratio 1``). The dstack
runs' engines are a year older than the ones the Hopper profiles were fitted on: their H200
twins replay 85% / 57% too fast, the MI300X rows 89% / 65%, so their absolute error measures
the engine version; what they check is the AMD part's speed RELATIVE to H200 at the same
harness point, as the InferenceX twins do (:func:`twins`). There the replay makes every AMD part
too fast against H200, in prefill (TTFT) and in decode (TPOT), on SGLang and on vLLM: the
strict xfails below ("Round 15 (S4c)", "Round 16 (S2)").
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


CHECKS = {"inferencemax": CSV, "dstack": CSV.parent / "amd-published.csv"}
NVIDIA_CSV = CSV.parent / "inferencemax-nvidia.csv"


@pytest.fixture(scope="module")
def replayed():
    out = {}
    for name, path in {**CHECKS, "nvidia": NVIDIA_CSV}.items():
        runs = read_measured(path)
        out[name] = (runs, predict(runs, load_serving()))
    return out


@pytest.mark.parametrize("name, range_ratio", [("inferencemax", 0.8), ("dstack", 1.0)])
def test_every_published_amd_file_row_is_predicted(replayed, name, range_ratio):
    runs, pred = replayed[name]
    assert (pred.status == "ok").all(), pred.status[pred.status != "ok"]
    assert np.all(np.isfinite(pred.ttft_s)) and np.all(np.isfinite(pred.tpot_s))
    assert np.all(np.isfinite(runs.measured_ttft_s)) and np.all(np.isfinite(runs.measured_tpot_s))
    assert (runs.range_ratio == range_ratio).all()  # the harness's spread lengths, or dstack's fixed ones
    assert set(pred.device) >= ({"mi300x", "h200"} if name == "dstack" else {"mi325x", "mi355x"})


@pytest.mark.parametrize("device, ttft_max, tpot_max", [("mi355x", 0.51, 0.37), ("mi325x", 0.49, 0.72)])
def test_published_inferencex_amd_runs_are_predicted_within_the_stated_tolerance(replayed, device, ttft_max, tpot_max):
    runs, pred = replayed["inferencemax"]
    m = pred.device == device
    ttft = pred.ttft_s[m] / runs.measured_ttft_s[m] - 1.0
    tpot = pred.tpot_s[m] / runs.measured_tpot_s[m] - 1.0
    assert np.median(np.abs(ttft)) <= ttft_max, np.median(np.abs(ttft))
    assert np.median(np.abs(tpot)) <= tpot_max, np.median(np.abs(tpot))


def twins(replayed, source, device, engine, max_concurrency=64):
    """The harness points measured on ``device`` and on H200 with the same engine, model,
    precision, GPU count, lengths and requests in flight, in one source (InferenceX: the two
    InferenceX files; dstack: its file): (measured AMD / H200 TTFT, replayed ratio, measured
    TPOT ratio, replayed ratio) per point, at most ``max_concurrency`` in flight (the dstack
    H200 vLLM runs at 128 hit the KV-cache limit: a TTFT spike its blog reports)."""
    files = ("inferencemax", "nvidia") if source == "inferencemax" else ("dstack",)

    def points(dev):
        out = {}
        for f in files:
            runs, pred = replayed[f]
            gpus = runs.tp * np.maximum(runs.dp, 1) * runs.pp
            for i in np.flatnonzero((pred.device == dev) & (runs.engine == engine) & (runs.mode == "agg")):
                c = int(runs.concurrency[i] * max(runs.dp[i], 1))
                if c <= max_concurrency:
                    key = (runs.model[i], runs.quant[i], int(gpus[i]), int(runs.isl[i]), int(runs.osl[i]), c)
                    out[key] = (runs.measured_ttft_s[i], pred.ttft_s[i], runs.measured_tpot_s[i], pred.tpot_s[i])
        return out

    amd, nv = points(device), points("h200")
    return np.array([[a / n for a, n in zip(amd[k], nv[k])] for k in sorted(amd) if k in nv])


# (source, AMD part, engine, least twin points, median |replayed / measured - 1| of the AMD / H200
# ratio today + margin, TTFT and TPOT): InferenceX's MI355X 59% / 27%, MI325X 47% / 66%; dstack's
# MI300X vLLM 38% / 35%, SGLang 11% / 21% (its H200 ran attention DP 8, the MI300X TP8).
TWIN_GATES = [("inferencemax", "mi355x", "sglang", 7, 0.69, 0.37), ("inferencemax", "mi325x", "sglang", 7, 0.57, 0.76),
              ("dstack", "mi300x", "vllm", 5, 0.48, 0.45), ("dstack", "mi300x", "sglang", 4, 0.21, 0.31)]


@pytest.mark.parametrize("source, device, engine, n, ttft_max, tpot_max", TWIN_GATES)
def test_amd_speed_relative_to_h200_at_the_same_harness_point_within_the_stated_tolerance(
        replayed, source, device, engine, n, ttft_max, tpot_max):
    """Oracle: one recipe shape measured on both parts in one harness; the engine version's
    offset, common to both parts, cancels in the ratio."""
    r = twins(replayed, source, device, engine)
    assert len(r) >= n, len(r)
    assert np.median(np.abs(r[:, 1] / r[:, 0] - 1.0)) <= ttft_max, r[:, 1] / r[:, 0]
    assert np.median(np.abs(r[:, 3] / r[:, 2] - 1.0)) <= tpot_max, r[:, 3] / r[:, 2]


# The replay makes each AMD part faster than H200 (the datasheets and published fractions: 6-8 TB/s
# against 4.8, 2.6-5.0 PF fp8 against 2.0), the published runs slower at low concurrency on every part
# and both engines. TTFT: the InferenceX means are 1.2-2.6x H200's at 4-8 in flight (replayed 0.6-0.9x),
# but their medians 0.65-0.9x (MI325X 8K prompts 1.3x): the excess is a tail (MI355X p90 1.5-2.3 s
# against H200's 0.6-0.8 s, MI325X p99 1.3-4.8 s against 1.0-2.3; the harness's first wave is a tenth
# of its 10 x C prompts), not the typical prompt's prefill; MI355X, with 2.3x MI325X's fp8 peak, is no faster there. dstack's March
# 2025 vLLM (500 prompts, mean = median) prefills 3,200 tokens 1.26-1.29x slower on MI300X than on
# H200. TPOT: 1.6-2.5x H200's on MI325X and MI300X vLLM, 0.95-1.1x on MI355X (replayed 0.6-0.7x); MI355X
# decodes 2-2.7x faster than MI325X on the same SGLang (replayed: equal): a per-step time of each part's
# ROCm kernel stack, not a datasheet fraction (docs/serving-experiments.md "Round 16 (S2)"). Each case
# flips (strict) once every twin point's replayed ratio is within a factor 1.5 of the measured one; a
# fix must then drop its xfail.
STACK_GAP = [("inferencemax", "mi355x", "sglang"), ("inferencemax", "mi325x", "sglang"), ("dstack", "mi300x", "vllm")]


TTFT_GAP = pytest.mark.xfail(strict=True, reason="published mean TTFT on AMD parts is 1.2-2.6x H200's (a slow upper "
                             "decile on ROCm SGLang), replayed 0.6-0.9x (docs/serving-experiments.md, Round 15 (S4c), "
                             "Round 16 (S2))")


# dstack's MI300X vLLM points flipped with round 25's refit, by a hair: measured 1.26x H200's TTFT at
# 3,200-token prompts, replayed 0.85x, the bound 1.26 / 1.5 = 0.84 (docs/serving-experiments.md, Round 25)
@pytest.mark.parametrize("source, device, engine", [pytest.param(*c, marks=TTFT_GAP) if c[0] == "inferencemax"
                                                    else c for c in STACK_GAP])
def test_amd_ttft_relative_to_h200_on_the_same_harness_point(replayed, source, device, engine):
    r = twins(replayed, source, device, engine)
    assert len(r) >= 4
    assert np.all((r[:, 1] >= r[:, 0] / 1.5) & (r[:, 1] <= r[:, 0] * 1.5)), r[:, :2]


@pytest.mark.xfail(strict=True, reason="the replay decodes an AMD part faster than H200 at few requests in flight, "
                   "the published runs as fast or slower (docs/serving-experiments.md, Round 16 (S2))")
@pytest.mark.parametrize("source, device, engine", STACK_GAP)
def test_amd_tpot_relative_to_h200_on_the_same_harness_point(replayed, source, device, engine):
    r = twins(replayed, source, device, engine)
    assert len(r) >= 4
    assert np.all((r[:, 3] >= r[:, 2] / 1.5) & (r[:, 3] <= r[:, 2] * 1.5)), r[:, 2:]
