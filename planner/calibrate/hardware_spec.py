"""A hardware spec for a device the catalog does not know: the measured peaks and
bandwidth of a calibration, the memory the OS reports, power and price as stated
assumptions, every number with its source (written beside the profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.calibrate.profile import _plain

# Power and price of a measured device: stated assumptions (each written into the spec's
# sources with its reasoning), for the user to edit to their datasheet and rental price
CPU_WATTS_PER_CORE = 10.0          # server CPU TDP / cores
CPU_IDLE_WATTS_PER_CORE = 2.0      # server CPU idle share
CPU_USD_PER_CORE_HOUR = 0.024      # on-demand general-purpose cloud instances, 2025
GPU_IDLE_W = 50.0                  # a datacenter GPU idle
GPU_MAX_W = 400.0                  # board power
GPU_USD_PER_HOUR = 2.0             # rental


def hardware_spec(name: str, device: dict, fitted: dict, date: str) -> dict:
    """A valid :class:`planner.specs.Hardware` mapping for a measured device: peaks and
    bandwidth measured (asymptotes of the fits), memory from the system, power and price
    stated assumptions. Every number has a ``sources`` entry."""
    day = date[:10]
    measured = f"measured by planner calibrate on {day}"
    peaks = {dt: round(float(v) / 1e12, 6) for dt, v in fitted["peak_flops"].items()}
    kind = "cpu" if device.get("type") == "cpu" else "gpu"
    model = device.get("cpu_model") if kind == "cpu" else device.get("gpu_name")
    vendor = (model or "unknown").split()[0]
    cores = int(device.get("cores") or 1)
    spec: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "vendor": vendor,
        "description": f"{model or device.get('name')} ({cores} cores as seen by this process), measured with torch "
                       f"{device.get('torch_version', '')}".strip(),
        "peak_tflops": peaks,
        "memory_gb": round(float(device.get("memory_gb") or 1.0), 3),
        "mem_bandwidth_gbps": round(float(fitted["peak_bandwidth"]) / 1e9, 3),
        "sources": {
            "peak_tflops": f"{measured}: asymptote of the GEMM efficiency fit ({device.get('threads', '?')} threads)",
            "memory_gb": f"{measured}: system memory reported by the OS",
            "mem_bandwidth_gbps": f"{measured}: asymptote of a streaming read (tensor reduction) fit",
        },
    }
    if kind == "cpu":
        spec["idle_power_w"] = CPU_IDLE_WATTS_PER_CORE * cores
        spec["max_power_w"] = CPU_WATTS_PER_CORE * cores
        spec["price_per_hour_usd"] = round(CPU_USD_PER_CORE_HOUR * cores, 4)
        spec["sources"].update({
            "idle_power_w": f"assumption: {CPU_IDLE_WATTS_PER_CORE:g} W per core idle (server CPU share, not measured)",
            "max_power_w": f"assumption: {CPU_WATTS_PER_CORE:g} W per core under load (server CPU TDP / cores)",
            "price_per_hour_usd": f"assumption: {CPU_USD_PER_CORE_HOUR} USD per vCPU-hour "
                                  "(on-demand general-purpose cloud instances, 2025)",
        })
    else:
        spec["idle_power_w"] = GPU_IDLE_W
        spec["max_power_w"] = GPU_MAX_W
        spec["price_per_hour_usd"] = GPU_USD_PER_HOUR
        spec["sources"].update({
            "idle_power_w": f"assumption: {GPU_IDLE_W:g} W idle for a datacenter GPU (not measured)",
            "max_power_w": f"assumption: {GPU_MAX_W:g} W board power (not measured; edit to the datasheet TDP)",
            "price_per_hour_usd": f"assumption: {GPU_USD_PER_HOUR:g} USD per GPU-hour (edit to your rental price)",
        })
    return spec


def hardware_spec_text(spec: dict, path: str | Path = "<hardware spec>") -> str:
    """The spec as YAML, validated against planner.specs.Hardware first."""
    import yaml

    from planner.catalog import parse_spec
    from planner.specs import Hardware

    parse_spec(Hardware, spec, str(path))
    return yaml.safe_dump(_plain(spec), sort_keys=False, width=120)


def write_hardware_spec(path: str | Path, spec: dict) -> Path:
    """Validate against planner.specs.Hardware, then write atomically."""
    from planner.files import atomic_write_text

    atomic_write_text(path, hardware_spec_text(spec, path))
    return Path(path)
