"""Named physical parameters of a (device, serving engine) pair, fitted on measured runs.

Each parameter has a name, a unit, a physical range and the default a device takes
without measurements (its datasheet and the spec's documented efficiencies). The fit
(planner.serving_fit) and the replay (planner.replay) see only this vector, so new
physics is one more :class:`Param` here plus its use in :func:`planner.replay.predict`
(e.g. a grouped-GEMM efficiency for MoE experts, a collective efficiency).

* ``memory_efficiency``: achieved fraction of the datasheet HBM bandwidth in the
  engine's memory-bound kernels (weights and KV streaming). Cannot exceed 1.
* ``compute_efficiency``: achieved fraction of the datasheet dense tensor peak in the
  GEMMs and attention. Cannot exceed 1.
* ``step_host_s``: host time per engine step that the GPU does not hide (scheduling,
  sampling, detokenization, Python; CUDA graphs make it small): added once per decode
  step to TPOT and once to TTFT. Cannot be negative.
* ``wave_sync``: how far the closed-loop benchmark's requests move in waves. At a fixed
  concurrency C with fixed lengths, all requests start together and a finished one is
  replaced at once, so the waves stay in step (1): each wave's C prompts are prefilled
  together first, in passes of the engine's prefill chunk, a request getting its first
  token at the end of the pass that completes its prompt, and the decode steps that
  follow carry no prompt. At 0 the arrivals are spread out and every step carries its
  share of prompt tokens (the engine's steady state). Between the two the predictions
  mix linearly. Range [0, 1].
* ``request_overhead_s``: time a request spends outside the GPU steps before its first
  token (HTTP, tokenization, admission into the running batch, the first detokenization):
  added once to TTFT. Cannot be negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Param:
    name: str
    unit: str
    lo: float
    hi: float
    why_lo: str
    why_hi: str
    carries: bool = False  # a property of the engine, not the device: carried to unmeasured devices


PARAMS = (
    Param("memory_efficiency", "", 0.0, 1.0, "an efficiency is a fraction of the datasheet bandwidth, > 0",
          "an achieved bandwidth above the datasheet's is not physical (efficiency > 1)"),
    Param("compute_efficiency", "", 0.0, 1.0, "an efficiency is a fraction of the datasheet peak, > 0",
          "an achieved FLOP/s above the datasheet's dense peak is not physical (efficiency > 1)"),
    Param("step_host_s", "s", 0.0, 0.1, "a host time cannot be negative",
          "more than 100 ms of host time per step is not a serving engine (check the data)", carries=True),
    Param("wave_sync", "", 0.0, 1.0, "a share of requests cannot be negative",
          "a share of requests cannot exceed 1", carries=True),
    Param("request_overhead_s", "s", 0.0, 1.0, "a time cannot be negative",
          "more than 1 s per request outside the GPU is not a serving engine (check the data)", carries=True),
)
NAMES = tuple(p.name for p in PARAMS)
CARRIED = tuple(p.name for p in PARAMS if p.carries)
BY_NAME = {p.name: p for p in PARAMS}
CLOSED_LOOP_WAVES = 1.0  # fixed lengths, closed loop: the waves stay in step (module docstring)


def defaults(hw) -> dict[str, float]:
    """The datasheet defaults: the spec's documented efficiencies, no host time, the
    closed-loop waves in step."""
    return {"memory_efficiency": float(hw.memory_efficiency), "compute_efficiency": float(hw.compute_efficiency),
            "step_host_s": 0.0, "wave_sync": CLOSED_LOOP_WAVES, "request_overhead_s": 0.0}


def carried_over(engine: str, params: dict) -> tuple[str, dict] | None:
    """For a device without a fit: the engine's parameters that carry between devices
    (host time, scheduler behaviour), the median over the devices fitted for that engine,
    with a name saying where they came from; None when no device of the engine is fitted."""
    fitted = [(g, name, v) for g, (name, v) in sorted(params.items()) if g.split("/", 1)[-1] == engine]
    if not fitted:
        return None
    vals = {k: float(np.median([v[k] for _, _, v in fitted])) for k in CARRIED}
    return f"datasheet + {engine} {', '.join(CARRIED)} of {', '.join(g for g, _, _ in fitted)}", vals


def check(values: dict[str, float], where: str = "") -> list[str]:
    """Problems with a parameter set, each naming the parameter, its value and why."""
    out = []
    for p in PARAMS:
        if p.name not in values:
            continue
        v = float(values[p.name])
        if not np.isfinite(v):
            out.append(f"{where}{p.name} = {v}: not a finite number")
        elif v < p.lo or (v == p.lo and p.lo == 0.0 and "efficiency" in p.name):
            out.append(f"{where}{p.name} = {v:.4g}: {p.why_lo}")
        elif v > p.hi:
            out.append(f"{where}{p.name} = {v:.4g}: {p.why_hi}")
    return out
