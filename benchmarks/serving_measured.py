"""Scheduler model vs the measured serving benchmarks (a development check, not the
replay of issue 8: `planner validate --measured` is that).

Reads ../shared/data/serving-measured-hopper-dev.csv with the csv module, predicts every
aggregated row with tensor parallelism only (pp = 1, no attention DP, no expert
parallelism) whose model is in the catalog, at concurrency = batch_size and TP =
tp_size, and prints the median |error| and the median signed error of TTFT and TPOT by
engine, concurrency band, precision and model. Nothing is fitted to the rows.

    python benchmarks/serving_measured.py            # closed loop, each row's engine profile
    python benchmarks/serving_measured.py steady     # the steady-state model, for comparison
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog import load_hardware, load_model  # noqa: E402
from planner.cost.api import estimate  # noqa: E402
from planner.engine_profiles import load_engine  # noqa: E402
from planner.errors import InputError  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
MODELS = {"Qwen/Qwen3-32B": "qwen3-32b", "deepseek-ai/DeepSeek-R1": "deepseek-r1",
          "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b", "nvidia/Llama-3.1-8B-Instruct-FP8": "llama-3.1-8b",
          "openai/gpt-oss-120b": "gpt-oss-120b", "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
          "meta-llama/Llama-3.1-70B": "llama-3.1-70b", "deepseek-ai/DeepSeek-V3": "deepseek-v3"}
SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200"}
# weight and compute dtypes; Hopper has no fp4 compute, so fp4/int4 weights compute in bf16
PRECISION = {"": ("bf16", "bf16"), "bf16": ("bf16", "bf16"), "fp8": ("fp8", "fp8"),
             "fp4": ("fp4", "bf16"), "int4": ("int4", "bf16")}


def num(v: str, default: float = 1.0) -> float:
    return float(v) if v not in ("", None) else default


def band(c: int) -> str:
    return "1-8" if c <= 8 else "9-32" if c <= 32 else "33-64" if c <= 64 else "65-128" if c <= 128 else ">128"


def main(mode: str = "closed") -> None:
    rows = [r for r in csv.DictReader(DATA.open()) if r["mode"] == "agg" and r["model_path"] in MODELS
            and num(r["pp_size"]) == 1 and num(r["attention_dp_size"]) <= 1 and num(r["moe_ep_size"]) <= 1]
    out, failed = [], 0
    for r in rows:
        w, a = PRECISION[r["precision"]]
        C, tp = int(num(r["batch_size"])), int(num(r["tp_size"]))
        try:
            res = estimate(load_model(MODELS[r["model_path"]]), load_hardware(SYSTEMS[r["system"]]), devices=tp,
                           concurrency=C, prompt_len=int(r["isl"]), gen_len=int(r["osl"]), weight_dtype=w,
                           act_dtype=a, kv_dtype="bf16", engine=load_engine(r["backend"]),
                           arrival="closed" if mode == "closed" else "steady")
        except InputError:
            failed += 1
            continue
        e_ttft = res["ttft_s"] / (float(r["silicon_ttft_ms"]) / 1e3) - 1.0
        e_tpot = res["tpot_s"] / (float(r["silicon_tpot_ms"]) / 1e3) - 1.0
        out.append({"engine": r["backend"], "band": band(C), "precision": r["precision"] or "bf16",
                    "model": MODELS[r["model_path"]], "all": "all", "ttft": e_ttft, "tpot": e_tpot})
    print(f"{mode}: {len(out)} rows predicted of {len(rows)} (tensor-parallel aggregated rows; {failed} refused)")
    for key in ("all", "engine", "band", "precision", "model"):
        groups = defaultdict(list)
        for o in out:
            groups[o[key]].append(o)
        for name in sorted(groups):
            g = groups[name]
            t, p = np.array([o["ttft"] for o in g]), np.array([o["tpot"] for o in g])
            print(f"  {name:18s} n={len(g):4d}  TTFT median |err| {np.median(np.abs(t)):6.1%} (signed "
                  f"{np.median(t):+6.1%})  TPOT median |err| {np.median(np.abs(p)):6.1%} (signed {np.median(p):+6.1%})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "closed")
