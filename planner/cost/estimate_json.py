"""The documented ``planner estimate --json`` object: one engine row (planner.cost.engine
outputs) shaped with its model, device, configuration and the profile it used."""

from __future__ import annotations

from typing import Any

from planner.cost.kinetics import KINETICS_INTENSITY, b200_seconds
from planner.cost.roofline import BOTTLENECKS


def to_report(r: dict, model, hardware, efficiency_source: str, config: dict) -> dict[str, Any]:
    """Shape one engine row into the documented ``planner estimate --json`` object."""
    flops = {"linear": r["flops_linear"], "attention": r["flops_attention"], "sparse_selection": r["flops_selection"]}
    flops["total"] = sum(flops.values())
    nbytes = {"weights": r["bytes_weights"], "kv_cache": r["bytes_kv"], "activations": r["bytes_activations"],
              "sparse_selection": r["bytes_selection"]}
    nbytes["total"] = sum(nbytes.values())
    return {
        "model": model.name,
        "hardware": hardware.name,
        "config": config,
        "mode": ("static batch" if config.get("concurrency", 0) <= 0 else
                 {"closed": "serving, closed loop", "poisson": "serving, Poisson arrivals"}.get(
                     config.get("arrival", "steady"), "serving")),
        "unbounded": bool(r.get("unbounded", False)),
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
            "compute_flops": r["kinetics_compute_flops"],
            "memory_bytes": r["kinetics_memory_bytes"],
            "intensity": KINETICS_INTENSITY,
            "eflops": r["kinetics_eflops"],
            "b200_seconds": b200_seconds(r["kinetics_eflops"]),
        },
    }
