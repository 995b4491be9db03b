"""What NVIDIA's published kernel tables say a GPU reaches: per-kernel floor, achieved HBM and tensor fractions.

NVIDIA's aiconfigurator ships MEASURED per-kernel latency tables per system and engine version
(ai-dynamo/aiconfigurator ``src/aiconfigurator/systems/data/<system>/...``, stored there as Git LFS
objects; the same tables are in the PyPI wheel ``aiconfigurator-core==0.12.0``, file
``aiconfigurator_core-0.12.0-cp311-abi3-manylinux_2_28_x86_64.whl``, sha256
aadc4aad0a00bf8a61c477c62bef43de479849c3aa0b1c3078068e08309eccc4, under
``aiconfigurator_core/systems/data/<system>/{gemm,moe,attention,comm}/trtllm/1.3.0rc20/*.parquet``).
How they were measured (collector/trtllm/collect_gemm.py of that repository): one TensorRT-LLM
``Linear`` (bf16, or fp8 / fp8_block / nvfp4 including its activation quantization) replayed in a CUDA
graph, its weights copied until they exceed the L2 cache so every call reads HBM; latency in ms.

tests/data/aiconfigurator-kernels.csv holds the 1,700 rows used here (TensorRT-LLM 1.3.0rc20,
the one engine version measured on all five systems h100_sxm, h200_sxm, b200_sxm, gb200, b300_sxm).
``--extract DIR`` rebuilds it from the unpacked wheel (needs pyarrow, not a project dependency);
without it the script prints the derived table:

(a) the small-kernel floor: median latency of the smallest shapes (bf16 GEMM with m <= 16 and
    n, k <= 256; decode attention of one sequence with <= 16 cached tokens; custom all-reduce of
    <= 4 KB) -- what ``kernel_time_s`` stands for (GPU time of a kernel that does not scale with its
    work);
(b) a memory-bound decode GEMM (m = 1-16 tokens): the least-squares line t = t0 + bytes / B over the
    rows with >= 1 MB of weights; B / datasheet bandwidth is the achieved HBM fraction
    (``memory_efficiency``), t0 the floor the same kernels show;
(c) large GEMMs (m, n, k >= 4096): achieved FLOP/s = 2 m n k / t over the dense datasheet peak of the
    dtype (``compute_efficiency``);
(d) the MoE grouped GEMM at 1-16 tokens (one GPU, all experts, balanced routing): the same line as (b)
    over the touched experts' weight bytes, touched = min(tokens x top-k, experts).
Peaks and bandwidths are this project's hardware/*.yaml (their sources are there).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "aiconfigurator-kernels.csv")
VERSION = "1.3.0rc20"
SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200", "gb200": "gb200", "b300_sxm": "b300"}
PACKAGE = "aiconfigurator-core==0.12.0"
FIELDS = ("system", "device_name", "engine", "version", "table", "dtype", "kernel_source", "shape",
          "latency_ms", "package", "file")

# bytes per weight element: nvfp4 carries one fp8 scale per 16 elements (0.5 + 1/16); fp8_block's
# one fp32 scale per 128 x 128 block is negligible (4 / 16384)
BYTES_PER_ELEMENT = {"bfloat16": 2.0, "fp8": 1.0, "fp8_block": 1.0, "nvfp4": 0.5625}
PEAK_DTYPE = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8", "nvfp4": "fp4"}

# the subset kept (see the module docstring for what each part is for)
GEMM_SQUARE = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
GEMM_M = (1, 2, 4, 8, 16, 4096, 8192)
MOE_SHAPE = dict(hidden_size=4096, inter_size=1536, topk=8, num_experts=128)  # Qwen3-235B-A22B's experts
MOE_TOKENS = (1, 2, 4, 8, 16)
ATTN_SHAPE = dict(num_heads=32, num_key_value_heads=8, head_dim=128)  # Llama-3-8B's heads
ATTN_BATCH = (1, 8, 64)


def _shape(d: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


def parse_shape(s: str) -> dict:
    out = {}
    for part in s.split():
        k, v = part.split("=", 1)
        out[k] = int(v) if v.lstrip("-").isdigit() else v
    return out


def extract(unpacked: str, out_path: str = DATA) -> int:
    """Write the kept rows of the wheel's parquet tables (``unpacked`` = the folder holding
    ``aiconfigurator_core``) to ``out_path``; returns the row count."""
    import pyarrow.parquet as pq  # only for this one-off step

    base = os.path.join(unpacked, "aiconfigurator_core", "systems", "data")
    rows = []

    def add(system, table, rel, r, dtype, shape):
        rows.append({"system": system, "device_name": r["device"], "engine": "trtllm", "version": VERSION,
                     "table": table, "dtype": dtype, "kernel_source": r["kernel_source"], "shape": _shape(shape),
                     "latency_ms": repr(float(r["latency"])), "package": PACKAGE, "file": f"{system}/{rel}"})

    for system in SYSTEMS:
        rel = f"gemm/trtllm/{VERSION}/gemm_perf.parquet"
        for r in pq.read_table(os.path.join(base, system, rel)).to_pylist():
            if r["n"] == r["k"] and r["n"] in GEMM_SQUARE and r["m"] in GEMM_M:
                add(system, "gemm", rel, r, r["gemm_dtype"], {"m": r["m"], "n": r["n"], "k": r["k"]})
        rel = f"moe/trtllm/{VERSION}/moe_perf.parquet"
        for r in pq.read_table(os.path.join(base, system, rel)).to_pylist():
            if (all(r[k] == v for k, v in MOE_SHAPE.items()) and r["moe_tp_size"] == 1 and r["moe_ep_size"] == 1
                    and r["distribution"] == "balanced" and r["num_tokens"] in MOE_TOKENS
                    and r["kernel_source"] == "moe_torch_flow_cutlass"):
                add(system, "moe", rel, r, r["moe_dtype"],
                    {"tokens": r["num_tokens"], **MOE_SHAPE, "tp": 1, "ep": 1, "distribution": "balanced"})
        rel = f"attention/trtllm/{VERSION}/generation_attention_perf.parquet"
        for r in pq.read_table(os.path.join(base, system, rel)).to_pylist():
            if (all(r[k] == v for k, v in ATTN_SHAPE.items()) and r["kv_cache_dtype"] == "bfloat16"
                    and r["window_size"] == 0 and r["batch_size"] in ATTN_BATCH and r["isl"] == 1):
                add(system, "generation_attention", rel, r, "bfloat16",
                    {"batch": r["batch_size"], "kv_len": r["isl"] + r["step"], **ATTN_SHAPE})
        rel = f"comm/trtllm/{VERSION}/custom_allreduce_perf.parquet"
        for r in pq.read_table(os.path.join(base, system, rel)).to_pylist():
            if r["message_size"] <= 1 << 24:
                add(system, "custom_allreduce", rel, r, r["allreduce_dtype"],
                    {"num_gpus": r["num_gpus"], "message_bytes": r["message_size"]})
    with open(out_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def load(path: str = DATA) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["latency_s"] = float(r["latency_ms"]) * 1e-3
        r["shape"] = parse_shape(r["shape"])
    return rows


def line_fit(x_bytes, t_s) -> tuple[float, float]:
    """Least-squares line t = t0 + bytes / rate over the given rows: returns (t0_s, rate_bytes_per_s)."""
    x, t = np.asarray(x_bytes, float), np.asarray(t_s, float)
    slope, t0 = np.polyfit(x, t, 1)
    return float(t0), float(1.0 / slope)


def gemm_weight_bytes(dtype: str, n: int, k: int) -> float:
    """Weight bytes one GEMM reads: n x k elements at the dtype's bytes per element (with its scales)."""
    return n * k * BYTES_PER_ELEMENT[dtype]


def moe_weight_bytes(dtype: str, s: dict) -> float:
    """Weight bytes the grouped GEMMs read: every touched expert's gate, up and down matrices
    (3 x hidden x inter), touched = min(tokens x top-k, experts) under balanced routing."""
    touched = min(s["tokens"] * s["topk"], s["num_experts"])
    return touched * 3.0 * s["hidden_size"] * s["inter_size"] * BYTES_PER_ELEMENT[dtype]


def kv_bytes(s: dict, bytes_per_element: float = 2.0) -> float:
    """KV-cache bytes a decode-attention call reads: batch x kv_len x 2 (K and V) x kv heads x head dim."""
    return s["batch"] * s["kv_len"] * 2.0 * s["num_key_value_heads"] * s["head_dim"] * bytes_per_element


def derive(rows: list[dict], system: str, bandwidth_bytes_per_s: float, peak_flops: dict) -> dict:
    """The derived figures for one system (see the module docstring); absent parts are left out."""
    mine = [r for r in rows if r["system"] == system]
    out: dict = {}
    gemm = [r for r in mine if r["table"] == "gemm"]
    tiny = [r["latency_s"] for r in gemm if r["dtype"] == "bfloat16" and r["shape"]["m"] <= 16 and r["shape"]["n"] <= 256]
    if tiny:
        out["gemm_floor_s"] = statistics.median(tiny)
    attn = [r for r in mine if r["table"] == "generation_attention"]
    small = [r["latency_s"] for r in attn if r["shape"]["batch"] == 1 and r["shape"]["kv_len"] <= 16]
    if small:
        out["attention_floor_s"] = statistics.median(small)
    big = [r for r in attn if kv_bytes(r["shape"]) >= 64e6]
    if len(big) >= 2:
        t0, rate = line_fit([kv_bytes(r["shape"]) for r in big], [r["latency_s"] for r in big])
        out["attention_kv_fraction"] = rate / bandwidth_bytes_per_s
    ar = [r for r in mine if r["table"] == "custom_allreduce" and r["shape"]["message_bytes"] <= 4096]
    for g in sorted({r["shape"]["num_gpus"] for r in ar}):
        out[f"allreduce_floor_s_{g}gpu"] = statistics.median(r["latency_s"] for r in ar if r["shape"]["num_gpus"] == g)
    for dtype in BYTES_PER_ELEMENT:
        dec = [r for r in gemm if r["dtype"] == dtype and r["shape"]["m"] <= 16
               and gemm_weight_bytes(dtype, r["shape"]["n"], r["shape"]["k"]) >= 1e6]
        if len(dec) >= 2:
            t0, rate = line_fit([gemm_weight_bytes(dtype, r["shape"]["n"], r["shape"]["k"]) for r in dec],
                                [r["latency_s"] for r in dec])
            out[f"decode_gemm_{dtype}"] = {"t0_s": t0, "memory_fraction": rate / bandwidth_bytes_per_s}
        large = [r for r in gemm if r["dtype"] == dtype and min(r["shape"].values()) >= 4096]
        peak = peak_flops.get(PEAK_DTYPE[dtype])
        if large and peak:
            fr = [2.0 * r["shape"]["m"] * r["shape"]["n"] * r["shape"]["k"] / r["latency_s"] / peak for r in large]
            out[f"large_gemm_{dtype}"] = {"median_fraction": statistics.median(fr), "max_fraction": max(fr)}
        moe = [r for r in mine if r["table"] == "moe" and r["dtype"] == dtype]
        if len(moe) >= 2:
            t0, rate = line_fit([moe_weight_bytes(dtype, r["shape"]) for r in moe], [r["latency_s"] for r in moe])
            out[f"moe_{dtype}"] = {"t0_s": t0, "memory_fraction": rate / bandwidth_bytes_per_s}
    return out


def _hardware(system: str):
    sys.path.insert(0, ROOT)
    from planner.catalog import load_hardware
    hw = load_hardware(SYSTEMS[system])
    return float(hw.mem_bandwidth_gbps) * 1e9, {k: float(v) * 1e12 for k, v in hw.peak_tflops.items()}


def _us(s: float) -> str:
    return f"{s * 1e6:5.1f}"


def _line_parts(d: dict, key: str) -> list[str]:
    """``dtype f (t0 us)`` of each dtype's line fit ``key_<dtype>`` (decode GEMM or MoE) in ``d``."""
    return [f"{dt} {d[f'{key}_{dt}']['memory_fraction']:.2f} ({_us(d[f'{key}_{dt}']['t0_s']).strip()})"
            for dt in BYTES_PER_ELEMENT if f"{key}_{dt}" in d]


def table(rows: list[dict]) -> list[str]:
    us = _us
    lines = []
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    res = {s: derive(rows, s, *_hardware(s)) for s in systems}
    lines.append("floors (us): bf16 GEMM m<=16 n,k<=256 | decode attention b=1 kv<=16 | all-reduce <=4KB at 2/4/8 GPUs")
    for s in systems:
        d = res[s]
        ar = " ".join(us(d[k]) if k in d else "   - " for k in (f"allreduce_floor_s_{g}gpu" for g in (2, 4, 8)))
        lines.append(f"  {s:9s} {us(d.get('gemm_floor_s', float('nan')))} | {us(d.get('attention_floor_s', float('nan')))}"
                     f" | {ar}")
    lines.append("decode GEMM m<=16, t = t0 + bytes/(f x BW): f (t0 us) per dtype; attention KV f")
    for s in systems:
        d = res[s]
        kv = f"attn KV {d['attention_kv_fraction']:.2f}" if "attention_kv_fraction" in d else ""
        lines.append(f"  {s:9s} " + ", ".join(_line_parts(d, "decode_gemm")) + f"; {kv}")
    lines.append("large GEMM m,n,k>=4096: median (max) fraction of the dense datasheet peak per dtype")
    for s in systems:
        d = res[s]
        parts = [f"{dt} {d[f'large_gemm_{dt}']['median_fraction']:.2f} ({d[f'large_gemm_{dt}']['max_fraction']:.2f})"
                 for dt in BYTES_PER_ELEMENT if f"large_gemm_{dt}" in d]
        lines.append(f"  {s:9s} " + ", ".join(parts))
    lines.append("MoE grouped GEMM 1-16 tokens (Qwen3-235B experts, 1 GPU, balanced): f (t0 us) per dtype")
    for s in systems:
        lines.append(f"  {s:9s} " + ", ".join(_line_parts(res[s], "moe")))
    lines.append("fixed time of a tensor-parallel decode layer's tabled kernels, 4 GEMM t0 + attention + 2 all-reduce"
                 " (largest group), mean per kernel (us), and its ratio to h100_sxm's")
    ref = {dt: layer_kernel_mean_s(res["h100_sxm"], dt) for dt in BYTES_PER_ELEMENT} if "h100_sxm" in res else {}
    for s in systems:
        parts = []
        for dt in BYTES_PER_ELEMENT:
            v = layer_kernel_mean_s(res[s], dt)
            if v is not None:
                r = f" x{v / ref[dt]:.2f}" if ref.get(dt) else ""
                parts.append(f"{dt} {us(v).strip()}{r}")
        lines.append(f"  {s:9s} " + ", ".join(parts))
    return lines


def layer_kernel_mean_s(d: dict, dtype: str) -> float | None:
    """Mean fixed time per kernel of the kernels a tensor-parallel decode layer runs that the tables
    hold: 4 GEMMs (QKV, O, gate-up, down) at the decode line's t0, one attention at its floor, two
    all-reduces at the floor of the largest group measured; norms and activations are not tabled."""
    ar = [d[k] for k in (f"allreduce_floor_s_{g}gpu" for g in (8, 4, 2)) if k in d]
    if f"decode_gemm_{dtype}" not in d or "attention_floor_s" not in d or not ar:
        return None
    return (4.0 * d[f"decode_gemm_{dtype}"]["t0_s"] + d["attention_floor_s"] + 2.0 * ar[0]) / 7.0


def gemm_path(gemm_quant_mode: str) -> str:
    """The tabled GEMM path a measured row's ``gemm_quant_mode`` runs: fp8 (per-tensor) and fp8_block
    as named; anything else (bf16 rows, which leave it empty, and weight-only int4 / mxfp4 on Hopper,
    whose activations stay bf16) the bf16 path."""
    return gemm_quant_mode if gemm_quant_mode in ("fp8", "fp8_block") else "bfloat16"


def dev_mix(rows: list[dict], dev_path: str) -> list[str]:
    """The layer composite of :func:`layer_kernel_mean_s` averaged over the measured rows of each
    Hopper device in ``dev_path`` (each row at its GEMM path): what a per-kernel time fitted on
    those rows would be if the tables' kernels were all a step ran."""
    with open(dev_path, newline="") as fh:
        dev = list(csv.DictReader(fh))
    lines = [f"the dev file's mix ({os.path.basename(dev_path)}): per-kernel composite over its rows' GEMM paths"]
    for system in ("h100_sxm", "h200_sxm"):
        d = derive(rows, system, *_hardware(system))
        vals = [layer_kernel_mean_s(d, gemm_path(r["gemm_quant_mode"])) for r in dev if r["system"] == system]
        if vals:
            lines.append(f"  {system:9s} {len(vals)} rows: {statistics.fmean(vals) * 1e6:.1f} us")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extract", metavar="DIR", help="rebuild the CSV from the unpacked aiconfigurator-core wheel")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--dev", default=os.path.join(ROOT, "..", "shared", "data", "serving-measured-hopper-dev.csv"),
                    help="measured Hopper rows whose GEMM-path mix weights the composite (skipped if absent)")
    a = ap.parse_args(argv)
    if a.extract:
        print(f"{extract(a.extract, a.data)} rows -> {a.data}")
        return 0
    rows = load(a.data)
    print("\n".join(table(rows)))
    if os.path.exists(a.dev):
        print("\n".join(dev_mix(rows, a.dev)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
