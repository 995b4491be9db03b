"""The names the held-out measurements may use (issues 10 and 11: at least 95% of the rows
predicted; an unknown model, system or engine is that row's ``unsupported: <reason>``).

The held-out rows are "of the same kinds" as ../shared/data: NVIDIA aiconfigurator's
silicon sample, including its copies of InferenceX (InferenceMAX) runs. The names below are
those public sources' own spellings, each with its source:

* systems: aiconfigurator's systems/*.yaml and support_matrix/*.csv (a100_sxm, h100_sxm,
  h200_sxm, b200_sxm, b300_sxm, gb200, gb300, l40s, h800_sxm, h20_3e, h20e_sxm, gb10, b60, ...) and its InferenceX adapter
  (src/aiconfigurator/sdk/config_adapter/inferencex.py HARDWARE_TO_SYSTEM: h100 -> h100_sxm,
  b200 -> b200_sxm, gb200 -> gb200, ...); InferenceX's runners (.github/configs/amd-master.yaml:
  mi300x, mi325x, mi355x);
* backends: the adapter's FRAMEWORK_TO_BACKEND (trt, trtllm, dynamo-trt, dynamo-trtllm,
  dynamo-vllm, dynamo-sglang) and InferenceX's frameworks (sglang-disagg, and AMD's atom:
  engines/atom.yaml); the planted unknown engine is lmdeploy, which no engines/*.yaml describes;
* model ids: InferenceX's master configs (nvidia/DeepSeek-R1-0528-FP4-V2,
  amd/DeepSeek-R1-0528-MXFP4-Preview, amd/gpt-oss-120b-w-mxfp4-a-fp8, amd/Kimi-K2.5-MXFP4,
  amd/MiniMax-M2.5-MXFP4, Qwen/Qwen3.5-397B-A17B-FP8, zai-org/GLM-5-FP8, ...) and the adapter's
  MODEL_PATHS (meta-llama/Meta-Llama-3.1-70B, nvidia/GLM-5-NVFP4, deepseek-ai/DeepSeek-V4-Pro);
  aiconfigurator's supported-model list (sdk/common.py DefaultHFModels: nvidia/DeepSeek-V3.1-NVFP4,
  deepseek-ai/DeepSeek-V3.2, Qwen/Qwen3-Coder-480B-A35B-Instruct, meta-llama/Llama-4-Scout-17B-16E-Instruct,
  meta-llama/Llama-4-Maverick-17B-128E-Instruct, Qwen/Qwen3-32B-FP8-Static-PerTensor, Qwen/Qwen3.5-35B-A3B) and its
  model_configs/*.json (Qwen3-Next-80B-A3B-Thinking, Qwen3-VL-235B-A22B-Thinking, zai-org/GLM-4.7-FP8,
  zai-org/GLM-4.7-Flash).

tests/data/heldout-names.csv is a small file of our own in the measured schema: rows renamed to
those spellings, on devices nobody measured, and one row each of an unknown model, system,
engine and mode (the system: AMD's announced MI450X, which no hardware/*.yaml describes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.catalog import all_models, checkpoint_base, load_hardware, load_model
from planner.engine_profiles import load_engine
from planner.errors import InputError
from planner.measured import read_measured
from planner.replay import predict
from planner.serving_profile import load_serving

CSV = Path(__file__).resolve().parent / "data" / "heldout-names.csv"

# row id -> the reason its status must give, naming the value (everything else: "ok")
UNKNOWN = {"u-model": "unknown model 'deepseek-ai/DeepSeek-V4-Pro'", "u-system": "unknown system 'mi450x'",
           "u-backend": "unknown engine 'lmdeploy'", "u-mode": "unknown mode 'afd'"}


@pytest.fixture(scope="module")
def replayed():
    runs = read_measured(CSV)  # no file-level error: every unknown stays on its row
    return runs, predict(runs, load_serving())


def test_every_known_row_is_predicted_and_every_unknown_is_named_on_its_row(replayed):
    runs, pred = replayed
    for i, rid in enumerate(runs.ids):
        if rid in UNKNOWN:
            assert pred.status[i].startswith(f"unsupported: {UNKNOWN[rid]}"), (rid, pred.status[i])
            assert np.isnan(pred.ttft_s[i]) and np.isnan(pred.tpot_s[i])
        else:
            assert pred.status[i] == "ok", (rid, pred.status[i])
            assert np.isfinite(pred.ttft_s[i]) and np.isfinite(pred.tpot_s[i]), rid
            assert 0 < pred.tpot_s[i] < pred.ttft_s[i] + 1.0, rid
    assert (pred.status == "ok").mean() >= 0.8  # 31 of 35: the four unknowns only


def test_the_command_predicts_the_file_and_names_the_unknowns(capsys):
    import json

    from planner.cli import main

    assert main(["validate", "--measured", str(CSV), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert {k: rows[k]["status"].split(" (")[0] for k in UNKNOWN} == {k: f"unsupported: {v}" for k, v in UNKNOWN.items()}
    assert sum(r["status"] == "ok" for r in rows.values()) == len(rows) - len(UNKNOWN)


def test_a_row_without_a_fitted_profile_says_what_it_carried(replayed):
    """Issue 11: every prediction says which profile it used; a (device, engine) pair nobody
    measured takes its datasheet plus what the engine's fitted pairs carry, and says so."""
    runs, pred = replayed
    fitted = set(load_serving())  # "device/engine" pairs with a shipped serving profile
    for i in np.flatnonzero(pred.status == "ok"):
        engine = runs.engine[i]
        if pred.group[i] in fitted:
            assert pred.profile[i] == f"calibration:{pred.device[i]}.{engine}.yaml", pred.profile[i]
        elif not any(g.endswith("/" + engine) for g in fitted):  # an engine nobody measured (atom)
            assert pred.profile[i] == "datasheet", pred.profile[i]
        else:
            assert pred.profile[i].startswith(f"datasheet + {engine} "), pred.profile[i]
            carried_from = {g for g in fitted if g.endswith("/" + engine)}
            assert all(g in pred.profile[i] for g in carried_from), pred.profile[i]
    assert "b200/trtllm" not in fitted and "mi355x/vllm" not in fitted  # the file holds unmeasured pairs


@pytest.mark.parametrize("alias, engine", [
    ("trt", "trtllm"), ("TRTLLM", "trtllm"), ("dynamo-trt", "trtllm"), ("dynamo_trtllm", "trtllm"),
    ("tensorrt_llm", "trtllm"), ("dynamo-vllm", "vllm"), ("dynamo-sglang", "sglang"), ("sglang-disagg", "sglang"),
])
def test_engine_spellings_resolve(alias, engine):
    assert load_engine(alias).name == engine


def test_the_measured_file_keeps_one_name_per_engine(replayed):
    runs, _ = replayed
    assert set(runs.engine.tolist()) == {"trtllm", "vllm", "sglang", "atom", "lmdeploy"}  # dynamo-* and trt read as their engine


def test_an_unknown_engine_is_still_one_line(capsys):
    from planner.cli import main

    assert main(["estimate", "-m", "qwen3-8b", "--engine", "lmdeploy", "--json"]) == 2
    err = capsys.readouterr().err
    assert "unknown engine" in err and "lmdeploy" in err and len(err.strip().splitlines()) == 1


# model ids of the public sources (module docstring) -> the catalog model they hold
@pytest.mark.parametrize("model_id, name", [
    ("nvidia/DeepSeek-R1-0528-FP4-V2", "deepseek-r1"), ("nvidia/DeepSeek-R1-0528-FP4", "deepseek-r1"),
    ("amd/DeepSeek-R1-0528-MXFP4-Preview", "deepseek-r1"), ("amd/DeepSeek-R1-0528-MXFP4-v2", "deepseek-r1"),
    ("meta-llama/Meta-Llama-3.1-70B", "llama-3.1-70b"), ("nvidia/Llama-3.3-70B-Instruct-FP8", "llama-3.3-70b"),
    ("nvidia/Llama-3.3-70B-Instruct-FP4", "llama-3.3-70b"), ("amd/Llama-3.3-70B-Instruct-FP8-KV", "llama-3.3-70b"),
    ("amd/gpt-oss-120b-w-mxfp4-a-fp8", "gpt-oss-120b"), ("nvidia/Kimi-K2.5-NVFP4", "kimi-k2.5"),
    ("amd/Kimi-K2.5-MXFP4", "kimi-k2.5"), ("amd/MiniMax-M2.5-MXFP4", "minimax-m2.5"),
    ("nvidia/GLM-5-NVFP4", "glm-5"), ("amd/Qwen3.5-397B-A17B-MXFP4", "qwen3.5-397b-a17b"),
    ("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", "qwen3-235b-a22b"), ("Qwen/Qwen3-30B-A3B-FP8", "qwen3-30b-a3b"),
    ("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic", "llama-3.1-8b"), ("openai/gpt-oss-20b", "gpt-oss-20b"),
    # aiconfigurator sdk/common.py DefaultHFModels and the models its silicon sample may add (round 15)
    ("Qwen/Qwen3-32B-FP8-Static-PerTensor", "qwen3-32b"), ("nvidia/DeepSeek-V3.1-NVFP4", "deepseek-v3"),
    ("deepseek-ai/DeepSeek-V3.1-Terminus", "deepseek-v3"), ("deepseek-ai/DeepSeek-V3.2-Exp", "deepseek-v3.2"),
    ("MiniMaxAI/MiniMax-M2.1", "minimax-m2.5"), ("zai-org/GLM-4.7-FP8", "glm-4.6"), ("zai-org/GLM-4.5-Air-FP8", "glm-4.5-air"),
    ("zai-org/GLM-4.7-Flash", "glm-4.7-flash"), ("Qwen/Qwen3-Next-80B-A3B-Thinking", "qwen3-next-80b-a3b"),
    ("Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", "qwen3-coder-480b-a35b"),
    ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "llama-4-scout"),
    ("nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8", "llama-4-maverick"),
    ("Qwen/Qwen3-VL-235B-A22B-Instruct-FP8", "qwen3-vl-235b-a22b"), ("meta-llama/Meta-Llama-3.1-405B", "llama-3.1-405b"),
    ("Qwen/Qwen3.5-35B-A3B", "qwen3.5-35b-a3b"),
    # aiconfigurator's Blackwell support matrices (round 30): GLM-5.1 is GLM-5's architecture (NVIDIA Megatron
    # Bridge / NeMo AutoModel docs), MiniMax-M2.7 the M2 line's design; Qwen3.5-27B has its own descriptor
    ("zai-org/GLM-5.1", "glm-5"), ("amd/GLM-5.1-MXFP4", "glm-5"), ("nvidia/GLM-5.1-NVFP4", "glm-5"),
    ("MiniMaxAI/MiniMax-M2.7", "minimax-m2.5"), ("nvidia/MiniMax-M2.7-NVFP4", "minimax-m2.5"),
    ("Qwen/Qwen3.5-27B", "qwen3.5-27b"),
])
def test_checkpoint_ids_of_the_sources_resolve(model_id, name):
    assert load_model(model_id).name == name


@pytest.mark.parametrize("model_id", [
    "deepseek-ai/DeepSeek-V4-Pro", "sgl-project/DeepSeek-V4-Pro-FP8",  # another architecture (compressed attention)
    "zai-org/GLM-5.2", "MiniMaxAI/MiniMax-M3",  # models the catalog has no descriptor for (no source: same design)
    "XiaomiMiMo/MiMo-V2-Flash", "deepseek-ai/DeepSeek-V3.2-Speciale",  # no config.json found to compare
    "Qwen/Qwen3-30B-FP8", "nobody/FP8",  # a tag cut never invents a model
])
def test_other_models_stay_unknown(model_id):
    with pytest.raises(InputError, match="unknown model"):
        load_model(model_id)


def test_quantized_copies_of_every_catalog_model_resolve_to_it():
    """Round trip over the whole catalog: each Hugging Face alias, re-published under another
    organisation with any of the sources' quantization suffixes, is the same model."""
    suffixes = ("-FP8", "-NVFP4", "-FP4-v2", "-MXFP4-Preview", "-FP8-KV", "-w-mxfp4-a-fp8", "-GPTQ-Int4", "_fp8")
    checked = 0
    for m in all_models():
        for alias in (a for a in m.aliases if "/" in a):
            repo = alias.split("/", 1)[1]
            for org in ("nvidia", "amd"):
                for suffix in suffixes:
                    assert load_model(f"{org}/{repo}{suffix}").name == m.name, (alias, suffix)
                    checked += 1
    assert checked > 500


def test_a_tag_cut_stops_at_the_model_name():
    assert checkpoint_base("Qwen/Qwen3-30B-A3B-FP8") == "Qwen3-30B-A3B"  # A3B is part of the name
    assert checkpoint_base("amd/gpt-oss-120b-w-mxfp4-a-fp8") == "gpt-oss-120b"
    assert checkpoint_base("nvidia/DeepSeek-R1-0528-FP4-V2") == "DeepSeek-R1-0528"
    assert checkpoint_base("mistralai/Mistral-7B-Instruct-v0.3") == "Mistral-7B-Instruct-v0.3"  # no quant tag
    assert checkpoint_base("qwen3-8b") is None  # a bare catalog name: nothing to cut


@pytest.mark.parametrize("alias, name", [
    ("h100", "h100-sxm"), ("h800_sxm", "h800"), ("h20_sxm", "h20"),
    ("rtx_pro_6000_server", "rtx-pro-6000-server"), ("mi355x", "mi355x"), ("MI300X", "mi300x"), ("mi325x", "mi325x"),
])
def test_hardware_spellings_resolve(alias, name):
    assert load_hardware(alias).name == name


def test_mi355x_against_the_published_generational_figures():
    """AMD's ISSCC 2026 paper: FP8 per CU per clock doubled (4,096 -> 8,192) with 256 CUs
    against MI300X's 304, "a 1.9x improvement in FP8 compute", five petaflops; memory 288 GB
    at 8 TB/s (1.5x the MI300X's 192 GB at 5.3 TB/s); fp4 units, which CDNA 3 lacks."""
    mi355x, mi300x = load_hardware("mi355x"), load_hardware("mi300x")
    assert 1.85 <= mi355x.peak_flops("fp8") / mi300x.peak_flops("fp8") <= 2.0
    assert mi355x.peak_flops("fp8") == pytest.approx(5.0e15, rel=0.02)
    assert mi355x.memory_gb / mi300x.memory_gb == pytest.approx(1.5)
    assert mi355x.has_dtype("fp4") and not mi300x.has_dtype("fp4")


def test_h800_is_an_h100_with_a_narrower_nvlink():
    """aiconfigurator systems/h800_sxm.yaml: compute, HBM capacity and bandwidth identical to
    H100 SXM; NVLink about halved (400 GB/s bidirectional against 900)."""
    h800, h100 = load_hardware("h800"), load_hardware("h100-sxm")
    assert h800.peak_tflops == h100.peak_tflops and h800.memory_gb == h100.memory_gb
    assert h800.mem_bandwidth_gbps == h100.mem_bandwidth_gbps
    assert h800.interconnect_gbps / h100.interconnect_gbps == pytest.approx(400 / 900, rel=0.01)


def test_h20_is_a_cut_down_hopper_with_more_memory_bandwidth():
    """willitrunai.com / zangshuxian.com: the H20's FP16 compute is about 15% of an H100's,
    its 4.0 TB/s HBM3 above the H100 SXM's 3.35; the same NVLink 4 (900 GB/s)."""
    h20, h100 = load_hardware("h20"), load_hardware("h100-sxm")
    assert h20.peak_flops("bf16") / h100.peak_flops("bf16") == pytest.approx(0.15, abs=0.01)
    assert h20.mem_bandwidth_gbps > h100.mem_bandwidth_gbps and h20.interconnect_gbps == h100.interconnect_gbps


def test_a_checkpoint_read_as_its_model_says_so(replayed):
    runs, pred = replayed
    notes = dict(zip(runs.ids, pred.note))
    assert "model 'nvidia/DeepSeek-R1-0528-FP4-v2' read as deepseek-r1" in notes["k-r1fp4-b200-trt"]
    assert "read as llama-3.3-70b" in notes["k-l33kv-mi355x"]
    assert "read as" not in notes["k-qwen32-b200"]  # Qwen/Qwen3-32B is an alias: nothing assumed
