"""Held-out rows of a kind the dev file lacks: Blackwell parts (B200, GB200, B300, GB300)
that appear nowhere in the measurements. Such a row takes its device's datasheet
(hardware/<device>.yaml) plus what the fitted Hopper pairs carry (planner.serving_params.
unmeasured); these tests hold that route to outside figures.

Oracles, each with its source:

* **Published B200 measurements** (BenHamm, "SGLang cookbook models on 8x B200",
  gist.github.com/BenHamm/78563d0d0a08d7cb61b4737392633384, 2026-02-15/16: SGLang
  v0.5.8.post1, 8x B200 183 GB, NV18 NVSwitch, random 1K tokens in / 1K out, TPOT at one
  request in flight): gpt-oss-120b TP8 MXFP4 2.41 ms, Qwen3-235B-A22B TP8 BF16 6.70 ms,
  DeepSeek-R1-0528-FP4 TP8 5.74 ms. Each prediction within +-40% (no device of this kind
  is fitted: the dev file's leave-one-device-out TPOT p90 is 49%, README "How right is it: error today");
  predicted after round 12: +5%, -4%, -27%; since round 15 (the carry rule
  scheduler+kernel+link: Hopper's fitted per-kernel time carried) +67%, +64%, +21%, so the two
  GQA models are a strict expected failure (their GEMM paths pay no activation
  quantization, which the carried Hopper mean includes). Not asserted: GLM-5-FP8 TP8, 20.22 ms without speculative decoding, predicted 5.5 ms
  (-73%; 9.2 ms, -54%, after round 14 with the DSA indexer's kernels): in the same engine
  H200 measured 17.91 ms at 4 in flight (dev file), i.e. SGLang 0.5.8's GLM-5 path (DSA
  sparse attention) ran no faster on B200 than on H200, a software state no datasheet can
  give.
* **The H200 / B200 TPOT ratio** on one deployment, DeepSeek-R1 on SGLang TP8, 1K / 1K:
  H200 FP8 at 4 in flight 10.29 ms (dev file, row
  2026_03_25_deepseek_r1_h200_sxm_sglang_fp8_agg_1024x1024_c4_tp8_0_ep1_0_289) over B200
  FP4 at 1 in flight 5.74 ms (the gist) = 1.79. The same two configurations predicted
  (H200 with its shipped profile, B200 as an unmeasured device) must give a ratio within
  1.5x of it (two benchmark runs, two concurrencies: the spread of one measured TPOT
  against the model is already +-49% at p90). After round 12 2.68 (+50%, at the edge); after
  round 13 2.70 (+50.4%) and round 14 2.82: failed, held as a strict expected failure while
  B200 was costed with the datasheet's 4 us per kernel where the Hopper fits find 8-10 us
  (round 14: counting absorbed MLA's own kernels gave 2.61, +46%, but failed the Hopper keep
  rule, docs/serving-experiments.md). Since round 15 the fitted per-kernel time carries to
  B200 (README "What an unmeasured device gets"): 1.53, within 1.5x; the marker is gone.
* **Dominance**: a GB200 GPU is a B200 with no lower peak in any dtype the rows use, the
  same HBM bandwidth, more memory and a 72-GPU NVLink domain (NVIDIA GB200 NVL72 and DGX
  B200 datasheets, hardware/*.yaml); a GB300 likewise dominates a GB200 outside int8. So on
  every aggregated row the closed loop's throughput (C / (TTFT + OSL x TPOT)) is no lower.
  MLPerf Inference v5.1 measured GB300 NVL72 over GB200 NVL72 on DeepSeek-R1 at +45%
  offline and +25% server per GPU (NVIDIA, "Blackwell Ultra sets new inference records in
  MLPerf debut", entries 5.1-0072 / 5.1-0071: 5,842.5 against 4,023.8 and 2,907.3 against
  2,327.5 tokens/s/GPU); the model gives 0-2% at the serving layouts tried, so only the
  direction is asserted (the gap: Blackwell Ultra's doubled attention exponent rate and
  its larger batches are not modelled).
* **Precision paths**: NVFP4 computes in fp4 where the device has fp4 units (Blackwell)
  and weight-only in 16-bit math where it has not (Hopper: the same time as W4A16 MXFP4);
  MXFP4 x MXFP8 computes in fp8 on both. Observed as the order of a compute-bound prefill
  (8,192 tokens, one request), on every engine.
* **Coverage**: every dev row with its system renamed to a Blackwell part, and layouts
  only a 72-GPU NVLink domain allows (DeepSeek-R1 tp 1 / attention DP 32 / EP 32, EP 64,
  disaggregated workers inside one NVL72), is predicted, finite, under the unmeasured
  device's profile.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from planner.measured import read_measured
from planner.replay import predict
from planner.serving_profile import load_serving

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
BLACKWELL = ("b200_sxm", "gb200_sxm", "b300_sxm", "gb300_sxm")
COLUMNS = ("id,backend,backend_version,model_path,system,precision,mode,isl,osl,gemm_quant_mode,batch_size,tp_size,"
           "pp_size,attention_dp_size,moe_tp_size,moe_ep_size,prefill_batch_size,prefill_num_workers,prefill_tp_size,"
           "prefill_attention_dp_size,prefill_moe_tp_size,prefill_moe_ep_size,decode_batch_size,decode_num_workers,"
           "decode_tp_size,decode_attention_dp_size,decode_moe_tp_size,decode_moe_ep_size,silicon_ttft_ms,"
           "silicon_tpot_ms").split(",")
# (id, model, quant, measured TPOT ms): the gist's B200 SGLang TP8 rows at 1K / 1K, 1 in flight
GIST_B200 = (("gpt-oss-120b", "openai/gpt-oss-120b", "w4a16_mxfp4", 2.41),
             ("qwen3-235b-bf16", "Qwen/Qwen3-235B-A22B", "bfloat16", 6.70),
             ("deepseek-r1-fp4", "deepseek-ai/DeepSeek-R1", "nvfp4", 5.74))
# the gist's MLA rows not asserted one by one (benchmarks/blackwell_published.py prints them):
# GLM-5-FP8 TP8 without speculative decoding, and Kimi-K2-Instruct TP8 (labelled BF16 there, but 1.03 T
# parameters at 2 bytes do not fit 8 x 183 GB: the checkpoint's block FP8, its model card)
MLA_EXTRA_B200 = (("glm-5-fp8", "zai-org/GLM-5-FP8", "fp8_block", 20.22),
                  ("kimi-k2-fp8", "moonshotai/Kimi-K2-Instruct", "fp8_block", 7.54))
LAYERS = {"gpt-oss-120b": 36, "qwen3-235b-bf16": 94, "deepseek-r1-fp4": 61, "glm-5-fp8": 78, "kimi-k2-fp8": 61}
H200_R1_FP8_C4_TPOT_MS = 10.29  # the dev file row named in the docstring
B200_R1_FP4_C1_TPOT_MS = 5.74  # the gist
SINGLE_ROW_TOLERANCE = 0.40
RATIO_TOLERANCE = 1.5


def _write(path: Path, rows: list[dict], columns=COLUMNS) -> str:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})
    return str(path)


def _predict(path: str):
    runs = read_measured(path)
    return runs, predict(runs, load_serving(None))


def _agg(id_, system, model, quant, isl, osl, c, tp=1, dp="", ep="", engine="sglang", tpot=""):
    return {"id": id_, "backend": engine, "model_path": model, "system": system, "precision": "x", "mode": "agg",
            "isl": isl, "osl": osl, "gemm_quant_mode": quant, "batch_size": c, "tp_size": tp,
            "attention_dp_size": dp, "moe_ep_size": ep, "silicon_tpot_ms": tpot}


def _gist_errors(tmp_path, names):
    rows = [_agg(n, "b200_sxm", m, q, 1024, 1024, 1, tp=8, tpot=t) for n, m, q, t in GIST_B200 if n in names]
    runs, pred = _predict(_write(tmp_path / "gist.csv", rows))
    assert (pred.status == "ok").all(), pred.status
    assert all(p.startswith("datasheet + sglang") for p in pred.profile)  # an unmeasured device's rule
    measured = {n: t for n, *_, t in GIST_B200}
    return dict(zip(runs.ids, pred.tpot_s * 1e3 / np.array([measured[i] for i in runs.ids]) - 1))


def test_published_b200_mla_tpot_within_tolerance(tmp_path):
    """DeepSeek-R1 in NVFP4 (an activation-quantized GEMM path) at one request in flight."""
    err = _gist_errors(tmp_path, {"deepseek-r1-fp4"})
    assert all(abs(e) <= SINGLE_ROW_TOLERANCE for e in err.values()), err


def test_published_b200_bf16_gqa_tpot_within_tolerance(tmp_path):
    """Qwen3-235B (bf16) at one request in flight. Its GEMMs pay no activation quantization, so the
    carried Hopper kernel time (a mean over the dev file's GEMM paths) overcharged it ~+64% until the
    time followed each row's path (planner.kernel_paths, docs/serving-experiments.md Round 15 (S1d))."""
    err = _gist_errors(tmp_path, {"qwen3-235b-bf16"})
    assert all(abs(e) <= SINGLE_ROW_TOLERANCE for e in err.values()), err


@pytest.mark.xfail(strict=True, reason="round 15 (S1d): a weight-only row (W4A16 MXFP4) runs a dequantizing GEMM "
                   "that NVIDIA's kernel tables do not hold, so it keeps the carried Hopper mean per kernel; scaling "
                   "it as the bf16 path fixes this row (+2%) but worsens the dev file's Hopper int4 / MXFP4 rows "
                   "under leave-one-device-out (docs/serving-experiments.md, Round 15 (S1d)); round 16 (S3): the "
                   "experts-only checkpoint's bf16 attention GEMMs take the bf16 path only on an activation-"
                   "quantized row (the InferenceX B200 runs, fp4: tests/test_gpt_oss_published.py), not on this "
                   "W4A16 one")
def test_published_b200_weight_only_gqa_tpot_within_tolerance(tmp_path):
    """gpt-oss-120b (weight-only MXFP4) at one request in flight: ~+67%."""
    err = _gist_errors(tmp_path, {"gpt-oss-120b"})
    assert all(abs(e) <= SINGLE_ROW_TOLERANCE for e in err.values()), err


@pytest.mark.xfail(strict=True, reason="round 14: only GLM-5's DSA indexer kernels are counted; absorbed MLA's "
                   "own kernels (norms of the latents, q_b, two absorbed bmm, rope) fail the Hopper keep rule, so "
                   "DeepSeek-R1 and Kimi-K2 layers come out no slower than GQA ones (docs/serving-experiments.md)")
def test_an_mla_layer_costs_more_than_a_gqa_layer_at_one_request(tmp_path):
    """At one request in flight a decode step is launch-bound (weights of a few GB per GPU
    stream in well under a millisecond at 8 TB/s), and the gist measures every MLA model's
    layer slower than either GQA model's: 94-259 us per layer (DeepSeek-R1, Kimi-K2, GLM-5)
    against 67-71 us (gpt-oss-120b, Qwen3-235B), TPOT over the layer count. The prediction
    should order them the same way: absorbed MLA launches more kernels per layer (norms of
    the two latents, q_b, the two absorbed batched GEMMs, rope) and DSA adds its indexer
    chain. After round 14 GLM-5's layer comes out 118 us, DeepSeek-R1's and Kimi-K2's 68 and
    72 us, no slower than the GQA ones (68-69 us): a strict expected failure. (Round 15 (S1d): with the
    carried kernel time by GEMM path, DeepSeek-R1's fp4 layer comes out 103 us, gpt-oss-120b's
    weight-only one 111 us.)"""
    rows = [(n, m, q, t) for n, m, q, t in GIST_B200] + list(MLA_EXTRA_B200)
    csv_rows = [_agg(n, "b200_sxm", m, q, 1024, 1024, 1, tp=8, tpot=t) for n, m, q, t in rows]
    runs, pred = _predict(_write(tmp_path / "layers.csv", csv_rows))
    assert (pred.status == "ok").all(), pred.status
    mla = {"deepseek-r1-fp4", "glm-5-fp8", "kimi-k2-fp8"}
    measured = {n: t / LAYERS[n] for n, _, _, t in rows}
    predicted = {n: p * 1e3 / LAYERS[n] for n, p in zip(runs.ids, pred.tpot_s)}
    for per_layer in (measured, predicted):  # the oracle's property, then the model's
        assert min(per_layer[n] for n in mla) > max(v for n, v in per_layer.items() if n not in mla), per_layer


def test_h200_over_b200_ratio_matches_the_published_one(tmp_path):
    rows = [_agg("h200-fp8-c4", "h200_sxm", "deepseek-ai/DeepSeek-R1", "fp8", 1024, 1024, 4, tp=8),
            _agg("b200-fp4-c1", "b200_sxm", "deepseek-ai/DeepSeek-R1", "nvfp4", 1024, 1024, 1, tp=8)]
    _, pred = _predict(_write(tmp_path / "ratio.csv", rows))
    assert (pred.status == "ok").all(), pred.status
    assert pred.profile[0].startswith("calibration:h200")  # the fitted H200 against the unmeasured B200
    predicted = pred.tpot_s[0] / pred.tpot_s[1]
    published = H200_R1_FP8_C4_TPOT_MS / B200_R1_FP4_C1_TPOT_MS
    assert 1 / RATIO_TOLERANCE <= predicted / published <= RATIO_TOLERANCE, (predicted, published)


def _renamed_dev(tmp_path, systems) -> str:
    with DEV.open() as f:
        reader = csv.DictReader(f)
        dev = list(reader)
    rows = [{**r, "id": f"{s}:{r['id']}", "system": s} for s in systems for r in dev]
    return _write(tmp_path / "renamed.csv", rows, reader.fieldnames)


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_every_dev_row_renamed_to_blackwell_is_predicted(tmp_path):
    runs, pred = _predict(_renamed_dev(tmp_path, BLACKWELL))
    assert (pred.status == "ok").all(), sorted(set(pred.status) - {"ok"})
    assert np.isfinite(pred.ttft_s).all() and np.isfinite(pred.tpot_s).all()
    assert (pred.ttft_s > 0).all() and (pred.tpot_s > 0).all()
    engines = {p.split()[2] for p in pred.profile}
    assert engines == {"vllm", "sglang", "trtllm"}
    assert all(p.startswith("datasheet + ") for p in pred.profile)


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_a_dominating_part_never_serves_fewer_tokens(tmp_path):
    runs, pred = _predict(_renamed_dev(tmp_path, ("b200_sxm", "gb200_sxm", "gb300_sxm")))
    n = len(runs) // 3
    keep = runs.mode[:n] == "agg"
    rate = 1.0 / (pred.ttft_s + runs.osl.astype(float) * pred.tpot_s)  # per request in flight
    b200, gb200, gb300 = rate[:n], rate[n:2 * n], rate[2 * n:]
    assert np.all(gb200[keep] >= b200[keep] * (1 - 1e-9))
    assert np.all(gb300[keep] >= gb200[keep] * (1 - 1e-9))


def _nvl72_rows():
    rows = []
    for engine in ("vllm", "sglang", "trtllm"):
        for system in ("gb200_sxm", "gb300_sxm"):
            for quant in ("nvfp4", "fp8_block"):
                for dp, c in ((32, 32), (64, 16)):
                    rows.append(_agg(f"{engine}-{system}-{quant}-dep{dp}", system, "deepseek-ai/DeepSeek-R1", quant,
                                     1024, 1024, c, tp=1, dp=dp, ep=dp, engine=engine))
            # four 8-GPU prefill workers (attention DP 8, EP 8) and one 32-GPU decode worker: 64 GPUs, one NVL72
            rows.append({"id": f"{engine}-{system}-disagg", "backend": engine, "model_path": "deepseek-ai/DeepSeek-R1",
                         "system": system, "precision": "fp4", "mode": "disagg", "isl": 8192, "osl": 1024,
                         "gemm_quant_mode": "nvfp4", "prefill_batch_size": 1, "prefill_num_workers": 4,
                         "prefill_tp_size": 1, "prefill_attention_dp_size": 8, "prefill_moe_tp_size": 1,
                         "prefill_moe_ep_size": 8, "decode_batch_size": 64, "decode_num_workers": 1,
                         "decode_tp_size": 1, "decode_attention_dp_size": 32, "decode_moe_tp_size": 1,
                         "decode_moe_ep_size": 32})
    return rows


def test_layouts_only_an_nvl72_allows_are_predicted(tmp_path):
    rows = _nvl72_rows()
    runs, pred = _predict(_write(tmp_path / "nvl72.csv", rows))
    assert (pred.status == "ok").all(), dict(zip(runs.ids, pred.status))
    assert np.isfinite(pred.ttft_s).all() and np.isfinite(pred.tpot_s).all()
    # the same wide expert-parallel rows on HGX B200 cross the 8-GPU boards: never faster
    b200 = [{**r, "id": "b200:" + r["id"], "system": "b200_sxm"} for r in rows if r["system"] == "gb200_sxm"]
    _, on_b200 = _predict(_write(tmp_path / "b200.csv", b200))
    gb200 = np.array([r["system"] == "gb200_sxm" for r in rows])
    assert np.all(on_b200.tpot_s >= pred.tpot_s[gb200] * (1 - 1e-9))


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_fp4_computes_in_fp4_only_where_the_device_has_it(tmp_path, engine):
    quants = ("nvfp4", "w4a8_mxfp4_mxfp8", "w4a16_mxfp4")
    rows = [_agg(f"{s}-{q}", s, "openai/gpt-oss-120b", q, 8192, 128, 1, tp=2, engine=engine)
            for s in ("b200_sxm", "h200_sxm") for q in quants]
    _, pred = _predict(_write(tmp_path / "prec.csv", rows))
    assert (pred.status == "ok").all(), pred.status
    b_fp4, b_w4a8, b_w4a16, h_fp4, h_w4a8, h_w4a16 = pred.ttft_s
    assert b_fp4 < b_w4a8 < b_w4a16  # Blackwell: fp4, fp8, 16-bit tensor-core math
    assert h_fp4 == pytest.approx(h_w4a16, rel=1e-9)  # Hopper: NVFP4 weight-only, 16-bit math
    assert h_w4a8 < h_w4a16  # Hopper has fp8 units
