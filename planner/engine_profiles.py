"""Serving-engine profiles: the scheduler facts of vLLM, SGLang, TensorRT-LLM and an
idealized engine, loaded from ``engines/*.yaml`` (shipped as ``planner_data.engines``).

Each number in a profile cites its source (the engine's documented default, or an
assumption marked as such) in ``sources:``. The scheduler model (planner.cost.serving)
and the simulator (planner.cost.simulate) read these facts:

* ``token_budget``: tokens one step may carry, decodes and prefill chunks together
  (vLLM max_num_batched_tokens, SGLang chunked_prefill_size, TensorRT-LLM max_num_tokens);
* ``max_running``: requests in flight at most (max_num_seqs / max_batch_size); more wait;
* ``chunked_prefill``: a prompt may be split across steps; if not, a whole prompt must
  fit in one step's budget (longer prompts are then chunked anyway: the engine would
  refuse them otherwise);
* ``mixed_batches``: prefill chunks ride on decode steps (vLLM, TensorRT-LLM); if not,
  a prefill step runs on its own and the decodes wait (SGLang's default);
* ``host_step_us``: CPU time per step not hidden behind the device;
* ``host_request_us``: CPU time per running request per step not hidden behind the device
  (the engines document none: 0, unless a serving profile fits it, ``step_host_s_per_request``);
* ``kv_reserve_output``: the share of a request's output tokens whose KV the scheduler
  holds for a running request: 1 when the whole length is reserved at admission
  (TensorRT-LLM's GUARANTEED_NO_EVICT), 0.5 when blocks are allocated as tokens come
  (vLLM, SGLang: the mean occupancy over a request's life). With the free KV memory it
  caps the requests running at once (planner.cost.footprint.kv_running_limit);
* ``kv_admission``: the documented admission policy of the KV cache: ``reserve`` (a
  request is admitted only when blocks for its whole length can be reserved, and is never
  evicted: TensorRT-LLM's default GUARANTEED_NO_EVICT capacity scheduler) or
  ``on_demand`` (admitted when blocks for its current tokens are free; blocks come as
  tokens do, and the newest running request is preempted when the cache runs out: vLLM
  V1, SGLang); it goes with ``kv_reserve_output`` (1 for reserve, below 1 on demand);
* ``kv_memory_fraction`` and ``kv_memory_of``: the memory the engine gives its KV cache:
  ``total``: the fraction of the device's memory that holds weights, activations and the
  cache (vLLM gpu_memory_utilization, SGLang mem_fraction_static), so the cache is
  ``f x capacity - weights - activations``; ``free``: the fraction of what is free once
  the weights are loaded and a forward pass profiled (TensorRT-LLM
  free_gpu_memory_fraction), ``f x (capacity - weights - activations)``. Unset (the
  generic engine): the planner's runtime reserve (planner.cost.footprint). Both feed
  :meth:`EngineProfile.kv_columns`, the cost engine's KV columns;
* ``kv_dtype_auto``: what the default KV-cache dtype "auto" means: the model's activation
  dtype (``activations``), or the checkpoint's KV quantization where it gives one
  (``checkpoint``: a ModelOpt FP8 checkpoint's ``kv_cache_quant_algo: FP8`` gives an fp8
  cache). Recorded, not yet used: the replay keeps a bf16 cache unless the row's
  deployment says otherwise (planner.measured.kv_cache_dtype: the harness's own setting;
  README "Measured serving runs", KV admission round: reading the checkpoint's moved TTFT
  but not TPOT the right way);
* ``dp_rank_budget``: whether ``token_budget`` is per attention-data-parallel rank (each
  rank's scheduler fills its own step under it, so a worker of ``a`` ranks takes ``a``
  budgets a step: TensorRT-LLM, vLLM) or the worker's (SGLang divides its chunked
  prefill size over the DP ranks); planner.cost.expert_parallel.step_budget;
* ``adp_balance_timeout_iters``: with attention data parallelism, the iterations a rank's
  context requests wait for every rank to hold one before they run anyway (TensorRT-LLM
  ``attention_dp_config`` ``enable_balance`` with ``timeout_iters``; 0: no balancer);
  planner.cost.adp_balance.adp_balance_wait_steps;
* ``fp8_weight_only_fallback``: on a device without fp8 compute (Ampere: A100, A10, L4-class
  chips of compute capability 8.0 / 8.6) an fp8 checkpoint still runs, weight-only (W8A16:
  fp8 weights dequantized to 16 bits in the GEMM, FP8 Marlin; activations and the KV cache
  16-bit). The replay (planner.replay) then costs such a row with fp8 weights and bf16
  compute; an engine without it refuses the row;
* ``spec_acceptance``: with speculative decoding by multi-token prediction (a deployment's
  ``spec_decode_tokens`` drafts per step, planner.cost.spec_decode), the probability that a
  draft position is accepted given the earlier ones were, the same for every position;
* ``kv_block_tokens``, ``prefix_caching``, ``cuda_graph_max_batch``: paged-KV granularity and
  kernel facts (recorded; the memory and prefix models use them);
* ``cascade_attention``, ``cascade_prefix``, ``cascade_min_prefix_tokens``,
  ``cascade_min_sequences``: whether the engine's decode attention reads a prompt shared by
  several sequences once a step (a cascade / shared-prefix kernel), and when: ``request``, the
  samples of each request share its prompt's read (FlashInfer's multi-level cascade), or
  ``batch``, only a prefix common to EVERY sequence of the step is read once (vLLM V1:
  ``use_cascade_attention`` takes the prefix blocks all running requests share, and only from
  256 tokens and 8 sequences); below those, each sequence reads its own context
  (:meth:`EngineProfile.attention_columns`, planner.cost.passes.prompt_read_once);
* ``device_tiers``: the engine's defaults by GPU class. vLLM and SGLang pick their token
  budget, running limit and captured-graph batch from the device's memory at start-up
  (vLLM EngineArgs.get_batch_defaults: 8192 / 1024 at >= 70 GiB except A100, else 2048 /
  256; SGLang ServerArgs: chunked_prefill_size 2048 below 35 GiB, 4096 below 60, 8192
  below 160, 16384 above). A tier applies to a device whose ``memory_gb`` lies in
  ``[min_gb, max_gb)`` or whose name contains one of its ``names``; the first tier that
  applies replaces the profile's own values, which are those of the measured devices
  (H100, H200). :meth:`EngineProfile.on_device` resolves a profile for one device: the
  one rule (planner.serving_profile.resolve_serving for every command, the replay per
  row, the capacity grid per device through :func:`device_columns`). The datasheet's
  memory figure stands for the memory the engine reads (80 GB for H100: 79.6 GiB
  reported; no threshold lies near a catalog device).
"""

from __future__ import annotations

from functools import lru_cache

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, model_validator

from planner.bounds import MAX_REQUESTS, MAX_TOKENS
from planner.errors import InputError
from planner.specs import _Spec

if TYPE_CHECKING:  # numpy is imported where the columns are built, not at start-up
    import numpy as np

ENGINE_KIND = "engines"
DEFAULT_ENGINE = "generic"


class DeviceTier(_Spec):
    """The engine's defaults on one class of device (module docstring, ``device_tiers``)."""

    min_gb: float = Field(0.0, ge=0.0, description="the tier's devices have at least this much memory")
    max_gb: Optional[float] = Field(None, gt=0.0, description="and less than this (None: no upper bound)")
    names: list[str] = Field(default_factory=list, description="or a device name containing one of these")
    token_budget: Optional[int] = Field(None, ge=1, le=MAX_TOKENS)
    max_running: Optional[int] = Field(None, ge=1, le=MAX_REQUESTS)
    cuda_graph_max_batch: Optional[int] = Field(None, ge=0, le=MAX_REQUESTS)

    def applies(self, memory_gb: float, name: str) -> bool:
        below = self.max_gb is None or memory_gb < self.max_gb
        return (self.min_gb <= memory_gb and below) or any(n.lower() in name.lower() for n in self.names)

    def values(self) -> dict:
        return {k: getattr(self, k) for k in TIERED if getattr(self, k) is not None}


TIERED = ("token_budget", "max_running", "cuda_graph_max_batch")  # the fields a device tier may set


class EngineProfile(_Spec):
    """Scheduler facts of one serving engine (units in the field names)."""

    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list, description="other names of this engine (a measured file's "
                                                                  "backend column: trt, dynamo-trt, ...)")
    description: str = ""
    token_budget: int = Field(ge=1, le=MAX_TOKENS, description="tokens per step, decodes and prefill chunks together")
    max_running: int = Field(ge=1, le=MAX_REQUESTS, description="requests in flight at most")
    chunked_prefill: bool
    mixed_batches: bool
    cuda_graph_max_batch: int = Field(0, ge=0, le=MAX_REQUESTS)
    host_step_us: float = Field(ge=0, le=1e6)  # at most a second per step (as a device's kernel_overhead_us)
    host_request_us: float = Field(0.0, ge=0, le=1e4)  # per running request per step; none documented: 0
    kv_block_tokens: int = Field(ge=1, le=MAX_TOKENS)
    kv_reserve_output: float = Field(0.5, ge=0.0, le=1.0, description="share of the output's KV held per running request")
    kv_admission: Literal["reserve", "on_demand"] = "on_demand"
    kv_memory_fraction: Optional[float] = Field(None, gt=0.0, le=1.0, description="memory share given to the KV cache")
    kv_memory_of: Literal["total", "free"] = "total"
    kv_dtype_auto: Literal["activations", "checkpoint"] = "activations"
    prefix_caching: bool
    cascade_attention: bool
    cascade_prefix: Literal["batch", "request"] = "request"
    cascade_min_prefix_tokens: int = Field(0, ge=0, le=MAX_TOKENS)
    cascade_min_sequences: int = Field(1, ge=1, le=MAX_REQUESTS)
    fp8_weight_only_fallback: bool = False
    dp_rank_budget: bool = False
    adp_balance_timeout_iters: int = Field(0, ge=0, description="attention-DP balancer's timeout in iterations "
                                                                 "(0: off)")
    device_tiers: list[DeviceTier] = Field(default_factory=list)

    spec_acceptance: float = Field(0.7, ge=0.0, le=1.0, description="per-position acceptance of MTP drafts")
    sources: dict[str, str]

    @model_validator(mode="before")
    @classmethod
    def _admission_from_reserve(cls, data):
        """A file that gives only ``kv_reserve_output`` (before ``kv_admission``) keeps its meaning."""
        if isinstance(data, dict) and "kv_admission" not in data and "kv_reserve_output" in data:
            try:
                data = {**data, "kv_admission": "reserve" if float(data["kv_reserve_output"]) >= 1.0 else "on_demand"}
            except (TypeError, ValueError):
                pass  # the field's own validation names it
        return data

    @model_validator(mode="after")
    def _admission_matches_reserve(self):
        if (self.kv_admission == "reserve") != (self.kv_reserve_output >= 1.0):
            raise ValueError(f"kv_admission {self.kv_admission!r} goes with kv_reserve_output "
                             f"{'1' if self.kv_admission == 'reserve' else 'below 1'}, "
                             f"not {self.kv_reserve_output}")
        return self

    def on_device(self, hw) -> "EngineProfile":
        """This profile as the engine configures itself on device ``hw`` (a hardware spec):
        the first device tier that applies replaces the tiered fields; the result has no
        tiers left, so resolving twice changes nothing."""
        if not self.device_tiers:
            return self
        update: dict = {"device_tiers": []}
        for tier in self.device_tiers:
            if tier.applies(float(hw.memory_gb), hw.name):
                update.update(tier.values())
                break
        return self.model_copy(update=update)

    @property
    def host_step_s(self) -> float:
        return self.host_step_us * 1e-6

    @property
    def host_request_s(self) -> float:
        return self.host_request_us * 1e-6

    def attention_columns(self) -> dict[str, float]:
        """The cost engine's shared-prompt read columns for this engine (planner.cost.engine
        INPUT_COLUMNS; read by planner.cost.passes.prompt_read_once): ``cascade`` 0 (no
        shared-prefix kernel: every sequence reads its whole context), 1 (a prefix common to
        every sequence of the step), 2 (each request's samples share their prompt's read);
        the shortest prefix and the fewest sequences the kernel is used at."""
        code = 0 if not self.cascade_attention else (1 if self.cascade_prefix == "batch" else 2)
        return {"cascade": float(code), "cascade_min_prompt": float(self.cascade_min_prefix_tokens),
                "cascade_min_seqs": float(self.cascade_min_sequences)}

    def kv_columns(self) -> dict[str, float]:
        """The cost engine's KV-cache columns for this engine (planner.cost.engine
        INPUT_COLUMNS; read by planner.cost.running): the output share held per running
        request, the memory fraction (-1: the planner's runtime reserve) and its basis
        (1: of the memory free after weights and activations, 0: of the whole device)."""
        return {"kv_reserve": float(self.kv_reserve_output),
                "kv_fraction": -1.0 if self.kv_memory_fraction is None else float(self.kv_memory_fraction),
                "kv_of_free": float(self.kv_memory_of == "free")}


def device_columns(engine: EngineProfile, hardware) -> dict[str, "np.ndarray"]:
    """Per device of ``hardware`` (a list of specs): the engine's token budget and running
    limit there (:meth:`EngineProfile.on_device`), arrays to index by a grid's hardware
    column."""
    import numpy as np

    on = [engine.on_device(h) for h in hardware]
    return {"token_budget": np.array([e.token_budget for e in on], dtype=np.int64),
            "max_running": np.array([e.max_running for e in on], dtype=np.int64)}


def engine_names() -> list[str]:
    from planner.catalog import list_names

    return list_names(ENGINE_KIND)


def engine_name(ref: str) -> str:
    """The engine a name stands for: the engines/*.yaml file it names or one whose
    ``aliases:`` hold it (``dynamo-trt`` -> ``trtllm``), else ``ref`` lower-cased (an
    unknown engine stays itself, for the caller's "unknown engine" message)."""
    from planner.catalog import find_alias

    found = find_alias(ENGINE_KIND, ref) if ref else None
    return found.stem if found is not None else ref.strip().lower()


def load_engine(ref: str | None) -> EngineProfile:
    """An engine profile by name (vllm, sglang, trtllm, generic) or YAML path; an unknown
    name is an InputError naming the field ``engine`` and the value."""
    import os

    from planner.catalog import parse_spec, read_yaml

    # a name or path (memoized lookup); anything else: engine_file's one-line error
    if ref is None or isinstance(ref, str):
        planner_path = os.environ.get("PLANNER_PATH")
        path = _located(ref, planner_path, _folder_stamps(planner_path))
    else:
        path = engine_file(ref)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:  # missing or unreadable: read_yaml's one-line error
        return parse_spec(EngineProfile, read_yaml(path), str(path))
    return _parsed(str(path), stamp)


def engine_file(ref: str | None):
    """The YAML file an engine reference names: a path as given, else the catalog's file of
    that name (None: the generic engine); an unknown name is an InputError naming the field
    ``engine`` and the value."""
    from pathlib import Path

    from planner.catalog import find_file, looks_like_path

    ref = DEFAULT_ENGINE if ref is None else ref
    if not isinstance(ref, str) or not ref:
        raise InputError(f"unknown engine (known: {', '.join(engine_names())})", field="engine", value=ref)
    if looks_like_path(ref):
        return Path(ref)
    try:
        return find_file(ENGINE_KIND, ref)
    except InputError:
        raise InputError(f"unknown engine (known: {', '.join(engine_names())})", field="engine", value=ref) from None


def _folder_stamps(planner_path: str | None) -> tuple:
    """The modification times of the folders ``$PLANNER_PATH`` names (each entry and its
    ``engines/`` folder): a file created in one, or removed, changes its folder's time, so a
    lookup memoized with these sees it. Empty without ``$PLANNER_PATH`` (the shipped folder's
    files are the package's: no command writes there), so the common call stats nothing."""
    import os

    from planner.files import mtimes

    if not planner_path:
        return ()
    return mtimes(os.path.expanduser(folder) for entry in planner_path.split(os.pathsep) if entry
                  for folder in (entry, os.path.join(entry, ENGINE_KIND)))


@lru_cache(maxsize=64)
def _located(ref: str | None, planner_path: str | None, folder_stamps: tuple):
    """:func:`engine_file` memoized by the reference, ``$PLANNER_PATH`` and the times of the
    folders it names (:func:`_folder_stamps`: an engine file created or removed there later in
    the process is seen at the next lookup); the catalog search it saves is most of an engine
    lookup's time (the API's estimates per second need it). :func:`_parsed` re-reads the file
    when it changes. An unknown name raises each time (an exception is not cached)."""
    return engine_file(ref)


@lru_cache(maxsize=64)
def _parsed(path: str, stamp: int) -> EngineProfile:
    """An engine file parsed once per modification time (the profile is frozen: shared safely)."""
    from planner.catalog import parse_spec, read_yaml

    return parse_spec(EngineProfile, read_yaml(path), path)
