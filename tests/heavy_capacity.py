"""The heaviest capacity scenarios we can construct from examples/capacity.yaml (the fuzz's
slowest class of valid input: more models, devices, layouts and search axes), for the
test that `planner report` finishes on them (tests/test_report_speed.py) and the benchmark
that times it (benchmarks/report_speed.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# name -> overrides of the shipped example
HEAVY = {
    # 6 models x 8 devices: 48 candidates, 2,880 serving configurations per length set
    "6-models-8-devices": {
        "models": ["qwen3-8b", "qwen3-14b", "qwen3-32b", "llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"],
        "hardware": ["h100-sxm", "h200", "l40s", "mi300x", "a100-sxm-80gb", "b200", "l4", "rtx-4090"],
    },
    # mixture-of-experts models on large layouts (up to 8 devices a replica) under an engine
    "moe-layouts-engine": {
        "models": ["deepseek-v3", "qwen3-235b-a22b", "gpt-oss-120b", "mixtral-8x22b", "gpt-oss-20b"],
        "hardware": ["h100-sxm", "h200", "mi300x", "b200", "mi325x"],
        "engine": "vllm", "task": None, "min_accuracy": None,
    },
    # every search axis widened: 4 weight presets, 2 KV dtypes, 14 concurrencies, 3 SLO percentiles
    "wide-search": {
        "models": ["qwen3-8b", "qwen3-14b", "qwen3-32b", "llama-3.1-8b"],
        "hardware": ["h100-sxm", "h200", "l40s", "mi300x", "b200", "a100-sxm-80gb"],
        "search": {"max_devices": 8, "quantizations": ["bf16", "fp8", "int8", "int4"], "kv_dtypes": ["bf16", "fp8"],
                   "concurrency": [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512]},
        "slo": {"percentile": 99, "ttft_s": 2.0, "tpot_s": {"max": 0.05, "percentile": 90},
                "latency_s": {"max": 300, "percentile": 50}},
    },
}


def write_heavy(folder: Path) -> dict[str, Path]:
    """The heavy scenarios as YAML files in ``folder``: name -> path."""
    base = yaml.safe_load((ROOT / "examples" / "capacity.yaml").read_text(encoding="utf-8"))
    out = {}
    for name, over in HEAVY.items():
        p = folder / f"{name}.yaml"
        p.write_text(yaml.safe_dump({**base, **over, "name": name}, sort_keys=False), encoding="utf-8")
        out[name] = p
    return out
