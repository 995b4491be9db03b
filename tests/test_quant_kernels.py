"""The activation-quantization kernels of a quantized GEMM path (planner.cost.quant_kernels).

Oracles: a layer's launches counted by hand (QKV, O, gate-up and down each quantize their
input: 2 kernels on the fp8 per-tensor path, 1 on fp8_block / nvfp4, none on bf16 or a
weight-only path), and NVIDIA aiconfigurator's measured TensorRT-LLM GEMM tables
(tests/data/aiconfigurator-kernels.csv, benchmarks/published_kernels.py): a path that launches
more kernels before its GEMM has the larger fixed time t0 on every system measured."""

import importlib.util
import os

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.quant_kernels import KERNELS_BY_ACT_DTYPE, kernels_for_mode
from planner.cost.tables import HardwareTable, ModelTable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _kernels_per_pass(act_dtype, weight_dtype, quant_mode="", n=1):
    mt = ModelTable.build([load_model("llama-3.1-8b")])
    ht = HardwareTable.build([load_hardware("h100-sxm")])
    c = columns(n, model=0, hardware=0, devices=1, batch=1, concurrency=1, prompt_len=128, gen_len=8,
                samples=1, weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype="bf16", kv_budget=0,
                prefix_sharing=False, act_quant_kernels=kernels_for_mode(np.full(n, quant_mode)))
    vec = Ctx(c, mt, ht).kernels_per_pass
    one = Ctx.one({k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in c.items()}, mt, ht).kernels_per_pass
    assert np.allclose(vec, one)  # the scalar (API) path counts the same
    return float(one)


@pytest.mark.parametrize("act, weight, mode, per_layer", [
    ("bf16", "bf16", "", 8),                 # 2 norms, QKV, rope/attention, O, gate-up, activation, down
    ("bf16", "int4", "int4_wo", 8),          # W4A16: dequantized inside the GEMM, no activation kernel
    ("fp8", "fp8", "fp8", 8 + 4 * 2),        # + abs-max reduction and quantize ahead of each of the 4 GEMMs
    ("fp8", "fp8", "fp8_block", 8 + 4 * 1),  # + one per-token-group quantize ahead of each
    ("fp4", "fp4", "nvfp4", 8 + 4 * 1),      # + one fp4 quantize (block scales included) ahead of each
])
def test_llama_8b_layer_counted_by_hand(act, weight, mode, per_layer):
    """Llama-3.1-8B: 32 dense GQA layers, plus embedding and LM head (2 kernels per pass)."""
    assert _kernels_per_pass(act, weight, mode) == per_layer * 32 + 2


def test_quant_modes_of_the_measured_files():
    assert kernels_for_mode(np.array(["fp8_block", "FP8_Block", "fp8", "nvfp4", ""])).tolist() == [1, 1, -1, -1, -1]


def test_published_gemm_fixed_time_orders_paths_as_their_kernel_counts():
    """Each path's decode-GEMM t0 (the intercept of latency against weight bytes at m <= 16, one
    TensorRT-LLM Linear including its activation quantization): on all five systems, a path
    with more quantization kernels per GEMM has the larger t0."""
    spec = importlib.util.spec_from_file_location("published_kernels", os.path.join(ROOT, "benchmarks",
                                                                                      "published_kernels.py"))
    pk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pk)
    rows = pk.load()
    count = {"bfloat16": KERNELS_BY_ACT_DTYPE["bf16"], "fp8": KERNELS_BY_ACT_DTYPE["fp8"],
             "fp8_block": kernels_for_mode(np.array(["fp8_block"]))[0], "nvfp4": KERNELS_BY_ACT_DTYPE["fp4"]}
    assert count == {"bfloat16": 0, "fp8": 2, "fp8_block": 1, "nvfp4": 1}
    checked = 0
    for system in pk.SYSTEMS:
        d = pk.derive(rows, system, *pk._hardware(system))
        t0 = {p: d[f"decode_gemm_{p}"]["t0_s"] for p in count if f"decode_gemm_{p}" in d}
        for a in t0:
            for b in t0:
                if count[a] < count[b]:
                    assert t0[a] < t0[b], (system, a, b, t0)
                    checked += 1
    assert checked >= 5 * 2 + 3 * 3  # bf16 < fp8_block < fp8 everywhere; nvfp4 on the three Blackwell systems
