"""Named physical parameters of a (device, serving engine) pair, fitted on measured runs.

Each parameter has a name, a unit, a physical range and the default a device takes
without measurements (its datasheet and the spec's documented efficiencies). The fit
(planner.serving_fit) and the replay (planner.replay) see only this vector, so new
physics is one more :class:`Param` here plus its use in :func:`planner.replay.predict`
(e.g. a grouped-GEMM efficiency for MoE experts, a collective efficiency).

* ``memory_efficiency``: achieved fraction of the datasheet HBM bandwidth in the
  engine's memory-bound kernels (weights and KV streaming). Cannot exceed 1. Scope: the
  device (its HBM generation and stacks: HBM3 on H100, HBM3e on H200).
* ``compute_efficiency``: achieved fraction of the datasheet dense tensor peak in the
  GEMMs and attention. Cannot exceed 1. Scope: the die (the same kernels on the same SMs).
* ``step_host_s``: host time per engine step that the GPU does not hide (scheduling,
  sampling, detokenization, Python; CUDA graphs make it small): added to every step of
  the scheduler model (planner.cost.serving), so to TPOT and to the steps a request waits
  before its first token. Cannot be negative. Default: the engine profile's documented
  value (engines/*.yaml). One value for every pair (:attr:`Param.shared`; per engine it followed
  a left-out model's engine-mates: Round 18); it fits 0 beside the per-request time.
* ``step_host_s_per_request``: host time per running request per step the GPU does not hide
  (scheduling each request, turning its new token into output: detokenizing, a streamed chunk),
  times the requests a step decodes (planner.cost.steps.step_time); range [0, 100 us], default 0.
  ONE value for every pair (:attr:`Param.shared`): every token of every request passes through the
  engine's Python FastAPI OpenAI server (vLLM ``vllm/entrypoints/openai/api_server.py``, SGLang
  ``python/sglang/srt/entrypoints/http_server.py``, TensorRT-LLM ``tensorrt_llm/serve/openai_server.py``);
  per engine it overfit. Not carried (planner.serving_carry.SCHEDULER); docs/serving-experiments.md, Round 18.
* ``wave_sync``: how far the closed-loop benchmark's LATER waves stay in step. The
  benchmark starts all C requests together (its first wave is in step by construction:
  planner.cost.closed_loop.closed_loop) and replaces a finished one at once; with fixed
  lengths the later waves would stay in the groups the first wave formed (1), but real
  first tokens and replacements come at different times, so they smear out towards
  arrivals spread over the steps (0: the steady state, a lone prompt per step). The
  later waves' TTFT mixes the two linearly (planner.cost.waves.smeared_waves); TPOT
  does not depend on it (a request lives through the other requests' prefills either
  way). Range [0, 1]; a property of the engine's scheduler (one value per engine in the
  pooled fit), but not carried to an unmeasured device (planner.serving_carry.SCHEDULER): only
  fixed-length rows identify it. Default 0.5, the middle of its range.
* ``request_overhead_s``: time a request spends outside the GPU steps before its first
  token (HTTP, tokenization, admission into the running batch, the first detokenization):
  added once to TTFT. Cannot be negative.
* ``request_overhead_s_per_kernel``: the part of that time that grows with the model's depth,
  per kernel of one forward pass (planner.cost.waves.request_overhead_s); range [0, 1 ms]. ONE
  value for every pair (:attr:`Param.shared`; per engine it did not cross-validate); carried.
  Leave-one-model-out chose it over the constant alone (Round 20: TTFT 32.53% -> 31.67%).
* ``kernel_time_s``: GPU time per kernel that does not scale with its work (launch under
  CUDA graphs, the ramp and tail of a short kernel, the barrier between kernels):
  multiplied by the kernels of a step (``planner.cost.context``: 8 per layer, 4 more per
  MoE layer). Datasheet default: the spec's ``kernel_overhead_us``. Range [0, 50 us].
  Scope in the pooled fit: the die; carried to an unmeasured GPU of the same vendor
  (planner.serving_carry.CARRY_RULE: the fixed time per kernel is the vendor's kernel libraries' more
  than the die's).
* ``link_efficiency``: achieved fraction of the NVLink bandwidth in the all-reduces of
  tensor parallelism (and the all-to-alls of expert parallelism): the ring's bandwidth
  term ``2 (t-1)/t x bytes / (link x e)``. An all-reduce's bus bandwidth grows with the
  message (nccl-tests' all_reduce_perf: far below the link at the KB-MB messages of
  decode and mixed steps, its plateau only at hundreds of MB). Default: the spec's
  ``interconnect_efficiency``. Range (0, 1]. Scope: the fabric (NVLink 4 for H100 SXM and
  H200); carried to an unmeasured GPU of the same vendor (planner.serving_carry.CARRY_RULE, chosen by
  leave-one-device-out).
* ``expert_stream_bytes_per_s``: the highest rate (bytes/s) at which the routed experts' weights of
  an MoE layer stream from HBM, ``touched x expert bytes / min(bw x memory_efficiency, this)``
  (planner.cost.dense.dense_kernels): a grouped GEMM at ~1 token per expert issues scattered tile
  loads the die bounds (SGLang's fbgemm README: 2.18-3.70 TB/s of H200's 4.8; DeepGEMM: M = 64 on
  H800 at 1.69-2.46 of 3.35). Range (0, 20 TB/s]; one value per die (:attr:`Param.tied`); default
  the datasheet bandwidth (inactive); not carried; fitted only on request
  (planner.serving_fit.OPT_IN: its pooled fit did not pass leave-one-model-out, Round 14 (S1)).
* ``gemm_rows_half``: the GEMMs' tile granularity: ``m`` rows (per expert in grouped GEMMs) pay ``1 + this / m``
  times their FLOPs in compute time (planner.cost.efficiency.Efficiency.rows_factor): padding to whole tiles
  (Hopper's ``wgmma`` is m64nNkK: 64 rows a warpgroup; fitted 33). Range [0, 512], default 0 (flat); ONE
  value for every pair, carried; docs/serving-experiments.md, Round 25.

Parameters added after profiles had been written are :data:`OPTIONAL`: a profile without them
takes the default.
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
    scope: str = "device"  # what the parameter belongs to: one of SCOPES
    tied: bool = False  # a die / fabric parameter the pooled fit shares across the devices of its die / fabric
    shared: bool = False  # one value for every (device, engine) pair of the pooled fit (:data:`SHARED_OWNER`)

    @property
    def carries(self) -> bool:
        """An engine-scoped parameter (the scheduler's): shared by every device an engine runs on."""
        return self.scope == "engine"


# What a parameter belongs to physically, i.e. which pairs could share one value of it (the
# pooled fit shares the engine's and, per device, the others'; the die's and the fabric's
# across devices only with TIE_SILICON; the SAME_SILICON carry candidates read them):
# * "engine": the scheduler (host time, wave synchrony, request overhead): every device of an engine;
# * "die": the silicon (achieved fraction of the tensor peak, per-kernel time): every device cut
#   from one die (hardware/*.yaml ``die``: H100 SXM and H200 are both GH100), whatever its memory;
# * "fabric": the scale-up link generation (achieved NVLink fraction): every device of one
#   fabric (``fabric``: NVLink 4 for both);
# * "device": the rest (the achieved HBM fraction: HBM3 on H100, HBM3e on H200).
# A device whose YAML names no die (fabric) is its own die (fabric).
SCOPES = ("engine", "die", "fabric", "device")
# the owner of a :attr:`Param.shared` parameter: every pair of the pooled fit shares its one value
SHARED_OWNER = "every pair"


# Whether the pooled fit (planner.serving_fit.fit_all) ties the die- and fabric-scoped
# parameters across the devices of one die / fabric (True) or fits them per device (False).
# Off: tying h100-sxm and h200 (one GH100 die, one NVLink 4 fabric) moved leave-one-model-out
# from 35.96% / 14.41% to 35.06% / 16.83% (TTFT / TPOT, --quick) and pushed h100-sxm's memory
# fraction to its physical limit 1.0 (h200 0.70): the two devices' fitted differences are not
# the die's but their row sets' (docs/serving-experiments.md, Round 13 (S6)).
TIE_SILICON = False


def owner(name: str, hw, engine: str) -> str:
    """The key of the one value of parameter ``name`` that the pair (device ``hw``, ``engine``)
    shares in the pooled fit with the other pairs of that key (its :data:`SCOPES` owner;
    die and fabric as the device itself unless :data:`TIE_SILICON`)."""
    scope = BY_NAME[name].scope
    if BY_NAME[name].shared:
        return SHARED_OWNER
    if scope == "engine":
        return engine
    tie = TIE_SILICON or BY_NAME[name].tied
    shared = getattr(hw, scope, "") if scope in ("die", "fabric") and tie else ""
    return f"{scope} {shared}" if shared else hw.name


PARAMS = (
    Param("memory_efficiency", "", 0.0, 1.0, "an efficiency is a fraction of the datasheet bandwidth, > 0",
          "an achieved bandwidth above the datasheet's is not physical (efficiency > 1)"),
    Param("compute_efficiency", "", 0.0, 1.0, "an efficiency is a fraction of the datasheet peak, > 0",
          "an achieved FLOP/s above the datasheet's dense peak is not physical (efficiency > 1)", scope="die"),
    Param("step_host_s", "s", 0.0, 0.1, "a host time cannot be negative",
          "more than 100 ms of host time per step is not a serving engine (check the data)", scope="engine",
          shared=True),
    Param("step_host_s_per_request", "s", 0.0, 1e-4, "a host time cannot be negative",
          "more than 100 us of host time per request per step is not per-request bookkeeping (check the data)",
          scope="engine", shared=True),
    Param("wave_sync", "", 0.0, 1.0, "a share of requests cannot be negative",
          "a share of requests cannot exceed 1", scope="engine"),
    Param("request_overhead_s", "s", 0.0, 1.0, "a time cannot be negative",
          "more than 1 s per request outside the GPU is not a serving engine (check the data)", scope="engine"),
    Param("request_overhead_s_per_kernel", "s", 0.0, 1e-3, "a time cannot be negative",
          "more than 1 ms per kernel of one forward pass is not a serving engine (check the data)",
          scope="engine", shared=True),
    Param("kernel_time_s", "s", 0.0, 50e-6, "a time cannot be negative",
          "more than 50 us per kernel is not a GPU kernel under CUDA graphs (check the data)", scope="die"),
    Param("link_efficiency", "", 0.0, 1.0, "an efficiency is a fraction of the link bandwidth, > 0",
          "an achieved link bandwidth above the datasheet's is not physical (efficiency > 1)", scope="fabric"),
    Param("expert_stream_bytes_per_s", "B/s", 0.0, 20e12, "a rate is > 0",
          "more than 20 TB/s is beyond any HBM of today (check the data)", scope="die", tied=True),
    Param("gemm_rows_half", "rows", 0.0, 512.0, "a row count cannot be negative", "a tile of more than 1,024 rows "
          "is no GEMM kernel's (check the data)", scope="engine", shared=True),
)
NAMES = tuple(p.name for p in PARAMS)
OPTIONAL = ("gemm_rows_half", "request_overhead_s_per_kernel", "kernel_time_s", "link_efficiency", "expert_stream_bytes_per_s",
            "step_host_s_per_request")  # a profile may lack them: the default
ENGINE_SCOPE = tuple(p.name for p in PARAMS if p.carries)  # the scheduler's: carried to every device of an engine
BY_NAME = {p.name: p for p in PARAMS}


class Values(dict):
    """A (device, engine) pair's parameter values (name -> float), with two facts about them
    held beside the numbers, not among them:

    * ``gemm_mix``: compute dtype -> rows of the measured file the values were fitted from, on
      a GEMM path NVIDIA's kernel tables hold (planner.kernel_paths.gemm_mix; a serving profile's
      ``provenance.gemm_mix``); {} where unknown (datasheet defaults, a profile written before it);
    * ``kernel_mix``: set only on a ``kernel_time_s`` carried from other devices
      (planner.serving_carry.carried_over): the mix that carried time is a mean over, so that on a device with
      published kernel tables it follows each row's GEMM path (:func:`efficiency`); None: the
      values' own (or the datasheet's) kernel time, one scalar for every row.

    A plain dict of values stands for ``Values(d)``: fitted, mix unknown, nothing carried."""

    def __init__(self, values=(), *, gemm_mix: dict | None = None, kernel_mix: dict | None = None):
        super().__init__(values)
        self.gemm_mix = dict(gemm_mix or {})
        self.kernel_mix = None if kernel_mix is None else dict(kernel_mix)


def defaults(hw, engine=None) -> dict[str, float]:
    """The datasheet defaults: the spec's documented efficiencies and kernel overhead, the
    engine profile's documented host time per step and per request (0 without a profile), no request
    overhead, the routed experts' stream ceiling at the datasheet bandwidth (inactive), flat GEMMs."""
    return {"memory_efficiency": float(hw.memory_efficiency), "compute_efficiency": float(hw.compute_efficiency),
            "step_host_s": float(engine.host_step_s) if engine is not None else 0.0,
            "step_host_s_per_request": float(engine.host_request_s) if engine is not None else 0.0, "wave_sync": 0.5,
            "request_overhead_s": 0.0, "request_overhead_s_per_kernel": 0.0,
            "kernel_time_s": float(hw.kernel_overhead_us) * 1e-6,
            "link_efficiency": float(hw.interconnect_efficiency),
            "expert_stream_bytes_per_s": float(hw.mem_bandwidth_gbps) * 1e9, "gemm_rows_half": 0.0}


def check(values: dict[str, float], where: str = "") -> list[str]:
    """Problems with a parameter set, each naming the parameter, its value and why."""
    out = []
    for p in PARAMS:
        if p.name not in values:
            continue
        v = float(values[p.name])
        if not np.isfinite(v):
            out.append(f"{where}{p.name} = {v}: not a finite number")
        elif v < p.lo or (v == p.lo and p.lo == 0.0 and ("efficiency" in p.name or p.name.endswith("_per_s"))):
            out.append(f"{where}{p.name} = {v:.4g}: {p.why_lo}")
        elif v > p.hi:
            out.append(f"{where}{p.name} = {v:.4g}: {p.why_hi}")
    return out


def efficiency(hw, values: dict, source: str):
    """The engine's efficiencies (planner.cost.efficiency.Efficiency) of a device under a
    parameter set: flat curves at the fitted fractions of the datasheet peaks; a
    parameter missing from ``values`` (a profile written before it existed) takes its
    datasheet default; a kernel time carried from other devices (``values`` a :class:`Values`
    with its ``kernel_mix``) scaled per compute dtype by the device's published kernel tables
    at that mix (planner.kernel_paths.kernel_factors; the scalar for a device without them)."""
    from planner.cost.efficiency import Curve, Efficiency
    from planner.kernel_paths import kernel_factors

    v = {**defaults(hw), **values}
    return Efficiency(compute={"*": Curve(float(v["compute_efficiency"]))}, memory=Curve(float(v["memory_efficiency"])),
                      interconnect=float(v["link_efficiency"]), kernel_overhead_s=float(v["kernel_time_s"]),
                      expert_bytes_per_s=float(v["expert_stream_bytes_per_s"]), gemm_rows_half=float(v["gemm_rows_half"]),
                      kernel_factor=kernel_factors(hw, mix) if (mix := getattr(values, "kernel_mix", None)) else {},
                      kernel_factor_experts_only=kernel_factors(hw, mix, experts_only=True) if mix else {},
                      source=source)
