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
* ``kv_reserve_output``: the share of a request's output tokens whose KV the scheduler
  holds for a running request: 1 when the whole length is reserved at admission
  (TensorRT-LLM's GUARANTEED_NO_EVICT), 0.5 when blocks are allocated as tokens come
  (vLLM, SGLang: the mean occupancy over a request's life). With the free KV memory it
  caps the requests running at once (planner.cost.footprint.kv_running_limit);
* ``kv_block_tokens``, ``prefix_caching``, ``cascade_attention``, ``cuda_graph_max_batch``:
  paged-KV granularity and kernel facts (recorded; the memory and prefix models use them).
"""

from __future__ import annotations

from pydantic import Field

from planner.errors import InputError
from planner.specs import _Spec

ENGINE_KIND = "engines"
DEFAULT_ENGINE = "generic"


class EngineProfile(_Spec):
    """Scheduler facts of one serving engine (units in the field names)."""

    name: str
    description: str = ""
    token_budget: int = Field(ge=1, description="tokens per step, decodes and prefill chunks together")
    max_running: int = Field(ge=1, description="requests in flight at most")
    chunked_prefill: bool
    mixed_batches: bool
    cuda_graph_max_batch: int = Field(0, ge=0)
    host_step_us: float = Field(ge=0)
    kv_block_tokens: int = Field(ge=1)
    kv_reserve_output: float = Field(0.5, ge=0.0, le=1.0, description="share of the output's KV held per running request")
    prefix_caching: bool
    cascade_attention: bool
    sources: dict[str, str]

    @property
    def host_step_s(self) -> float:
        return self.host_step_us * 1e-6


def engine_names() -> list[str]:
    from planner.catalog import list_names

    return list_names(ENGINE_KIND)


def load_engine(ref: str | None) -> EngineProfile:
    """An engine profile by name (vllm, sglang, trtllm, generic) or YAML path; an unknown
    name is an InputError naming the field ``engine`` and the value."""
    from pathlib import Path

    from planner.catalog import find_file, looks_like_path, parse_spec, read_yaml

    ref = DEFAULT_ENGINE if ref is None else ref
    if not isinstance(ref, str) or not ref:
        raise InputError(f"unknown engine (known: {', '.join(engine_names())})", field="engine", value=ref)
    if looks_like_path(ref):
        path = Path(ref)
    else:
        try:
            path = find_file(ENGINE_KIND, ref)
        except InputError:
            raise InputError(f"unknown engine (known: {', '.join(engine_names())})",
                             field="engine", value=ref) from None
    return parse_spec(EngineProfile, read_yaml(path), str(path))
