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
* ``prefill_wait_share``: in a closed loop at concurrency C with fixed lengths, the
  requests of a wave arrive together and a new request waits behind the prefills of the
  others in its wave: the mean wait is ``share * (C - 1)`` prompt prefills, 1/2 when the
  prompts are prefilled one after another in arrival order (the mean position of C
  requests is (C - 1)/2), 0 when every request arrives alone. Range [0, 1].
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


PARAMS = (
    Param("memory_efficiency", "", 0.0, 1.0, "an efficiency is a fraction of the datasheet bandwidth, > 0",
          "an achieved bandwidth above the datasheet's is not physical (efficiency > 1)"),
    Param("compute_efficiency", "", 0.0, 1.0, "an efficiency is a fraction of the datasheet peak, > 0",
          "an achieved FLOP/s above the datasheet's dense peak is not physical (efficiency > 1)"),
    Param("step_host_s", "s", 0.0, 0.1, "a host time cannot be negative",
          "more than 100 ms of host time per step is not a serving engine (check the data)"),
    Param("prefill_wait_share", "", 0.0, 1.0, "a request cannot wait behind a negative number of prefills",
          "a request cannot wait behind more prefills than there are other requests in flight"),
)
NAMES = tuple(p.name for p in PARAMS)
BY_NAME = {p.name: p for p in PARAMS}
CLOSED_LOOP_WAIT_SHARE = 0.5  # prompts of a wave prefilled in turn (see the module docstring)


def defaults(hw) -> dict[str, float]:
    """The datasheet defaults: the spec's documented efficiencies, no host time, the
    closed-loop wave wait."""
    return {"memory_efficiency": float(hw.memory_efficiency), "compute_efficiency": float(hw.compute_efficiency),
            "step_host_s": 0.0, "prefill_wait_share": CLOSED_LOOP_WAIT_SHARE}


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
