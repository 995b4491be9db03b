"""Friendly entry points over the vectorized engine: one configuration in, a dict out."""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.cost.efficiency import Efficiency
from planner.cost.engine import BOTTLENECKS, INPUT_COLUMNS, evaluate
from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable
from planner.dtypes import check_dtype
from planner.errors import InputError


def validate_config(model, hardware, *, devices: int, batch: int, concurrency: int, prompt_len: int,
                    gen_len: int, samples: int, weight_dtype: str, act_dtype: str, kv_dtype: str,
                    kv_budget: int) -> dict[str, Any]:
    """Check one configuration's values; InputError names the field and the value."""
    from planner.bounds import check_count

    for field, value, lo in (("devices", devices, 1), ("batch", batch, 1), ("concurrency", concurrency, 0),
                             ("prompt_len", prompt_len, 1), ("gen_len", gen_len, 1), ("samples", samples, 1),
                             ("kv_budget", kv_budget, 0)):
        check_count(field, value, lo)
    context = getattr(model, "max_context", None)
    if context and prompt_len + gen_len > context:
        raise InputError(f"prompt + generation ({prompt_len + gen_len:,} tokens) exceed the model's context "
                         f"({context:,})", field="prompt-len", value=prompt_len)
    w = check_dtype(weight_dtype, "weight-dtype")
    a = check_dtype(act_dtype, "act-dtype")
    kv = check_dtype(kv_dtype, "kv-dtype")
    if not hardware.has_dtype(a):
        raise InputError(f"device '{hardware.name}' has no {a} compute (it has: {', '.join(hardware.peak_tflops)})",
                         field="act-dtype", value=a)
    if devices > hardware.max_devices:
        raise InputError(f"device '{hardware.name}' allows at most {hardware.max_devices} in one tensor-parallel group",
                         field="devices", value=devices)
    return {"weight_dtype": w, "act_dtype": a, "kv_dtype": kv}


def columns(n: int, **values) -> dict[str, np.ndarray]:
    """Broadcast scalars / arrays into the engine's input columns (dtype names -> codes)."""
    cols = {}
    for key in INPUT_COLUMNS:
        v = values[key]
        if key.endswith("_dtype"):
            v = np.vectorize(DTYPE_CODE.__getitem__, otypes=[np.int64])(np.asarray(v)) if np.ndim(v) else DTYPE_CODE[v]
        cols[key] = np.broadcast_to(np.asarray(v), (n,))
    return cols


def estimate(model, hardware, *, devices: int = 1, batch: int = 1, concurrency: int = 0, prompt_len: int,
             gen_len: int, samples: int = 1, weight_dtype: str = "bf16", act_dtype: str = "bf16",
             kv_dtype: str = "bf16", kv_budget: int = 0, prefix_sharing: bool = True,
             efficiency: Efficiency | None = None) -> dict[str, Any]:
    """Estimate one configuration. Returns a JSON-ready dict (seconds, bytes, joules, USD).

    ``decode_s`` is the sum of ``gen_len`` decode steps at contexts prompt_len .. prompt_len
    + gen_len - 1 (with gen_len = 1: one step at context prompt_len).
    """
    dt = validate_config(model, hardware, devices=devices, batch=batch, concurrency=concurrency,
                         prompt_len=prompt_len, gen_len=gen_len, samples=samples, weight_dtype=weight_dtype,
                         act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget)
    mt = ModelTable.build([model])
    ht = HardwareTable.build([hardware], [efficiency])
    cols = columns(1, model=0, hardware=0, devices=devices, batch=batch, concurrency=concurrency,
                   prompt_len=prompt_len, gen_len=gen_len, samples=samples, kv_budget=kv_budget,
                   prefix_sharing=prefix_sharing, **dt)
    r = {k: (v[0].item() if isinstance(v, np.ndarray) else v) for k, v in evaluate(cols, mt, ht).items()}
    return to_report(r, model, hardware, ht.efficiency_sources[0], dict(
        devices=devices, batch=batch, concurrency=concurrency, prompt_len=prompt_len, gen_len=gen_len,
        samples=samples, kv_budget=kv_budget, prefix_sharing=prefix_sharing, **dt))


def to_report(r: dict, model, hardware, efficiency_source: str, config: dict) -> dict[str, Any]:
    """Shape one engine row into the documented ``planner estimate --json`` object."""
    flops = {"linear": r["flops_linear"], "attention": r["flops_attention"], "sparse_selection": r["flops_selection"]}
    flops["total"] = sum(flops.values())
    nbytes = {"weights": r["bytes_weights"], "kv_cache": r["bytes_kv"], "activations": r["bytes_activations"],
              "sparse_selection": r["bytes_selection"]}
    nbytes["total"] = sum(nbytes.values())
    kin_c, kin_m = r["kinetics_compute_flops"], r["kinetics_memory_bytes"]
    from planner.cost.engine import KINETICS_INTENSITY

    return {
        "model": model.name,
        "hardware": hardware.name,
        "config": config,
        "mode": "serving" if config.get("concurrency", 0) > 0 else "static batch",
        "efficiency": efficiency_source,
        "ttft_s": r["ttft_s"],
        "tpot_s": r["tpot_s"],
        "latency_s": r["latency_s"],
        "prefill_s": r["prefill_s"],
        "decode_s": r["decode_s"],
        "throughput_tok_s": r["throughput_tok_s"],
        "energy_j": r["energy_j"],
        "cost_usd": r["cost_usd"],
        "device_seconds": r["device_seconds"],
        "bottleneck": BOTTLENECKS[int(r["bottleneck"])],
        "time_by_bound_s": {"compute": r["t_compute"], "memory": r["t_memory"],
                            "interconnect": r["t_interconnect"], "overhead": r["t_overhead"]},
        "memory": {
            "weights_bytes": r["weights_bytes"],
            "kv_cache_bytes": r["kv_cache_bytes"],
            "activations_bytes": r["activations_bytes"],
            "reserve_bytes": r["reserve_bytes"],
            "total_bytes": r["total_bytes"],
            "capacity_bytes": r["capacity_bytes"],
            "fits": bool(r["fits"]),
        },
        "flops": flops,
        "bytes": nbytes,
        "kinetics": {
            "compute_flops": kin_c,
            "memory_bytes": kin_m,
            "intensity": KINETICS_INTENSITY,
            "eflops": r["kinetics_eflops"],
            "b200_seconds": r["kinetics_eflops"] / 4.5e15,
        },
    }
