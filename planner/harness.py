"""The settings a measured row leaves to its benchmark harness, and their resolution.

Rows of InferenceMAX's sweeps (SemiAnalysis; their provenance, ``silicon_data_source``,
names the GitHub workflow run, ``workflow_run_id=``, or the results database's ``wip=``
flag; the gap-analysis files' rows, ``aic_database_mode=``, are copies of them: the dev
file holds both copies of some runs, identical figures: :func:`is_harness_row`) ran under
the harness's launch scripts, which set what the rows do not write: the benchmark's
random range ratio, the KV-cache dtype of some launches and SGLang's scheduler poll
interval. Two of these depend on the device the row ran on, which the reader
(planner.measured) does not resolve: it marks such a row with a typed flag
(``MeasuredRuns.kv_fp8_on_blackwell``, ``MeasuredRuns.recv_by_harness``), and the one
function here that knows the rule resolves it once the device is known
(:func:`resolve_kv_dtype`, called by planner.replay_rows.read_rows;
:func:`resolve_recv_interval`, called by planner.replay). A row's own column always wins.

Data layer: it imports numpy only.
"""

from __future__ import annotations

import re

import numpy as np

HARNESS_SOURCE = re.compile(r"(?:^|[;\s])(?:workflow_run_id|wip|aic_database_mode)=")


def is_harness_row(source: str) -> bool:
    """Whether a row's provenance (``silicon_data_source``) names the harness's sweeps."""
    return HARNESS_SOURCE.search(source or "") is not None


# The benchmark's random range ratio: input and output lengths drawn per request,
# uniformly from [r L, L] (InferenceMAX's utils/bench_serving/benchmark_serving.py
# sample_random_requests: lower = int(seq_len * range_ratio), upper = seq_len): the
# harness's 0.8 (.github/workflows/full-sweep-tmpl.yml ``random-range-ratio: 0.8``; the
# srt-slurm recipes' sa-bench ``random_range_ratio: 0.8``), every other row fixed lengths
# (1; the data's README: "fixed input length isl and output length osl").
HARNESS_RANGE_RATIO = 0.8


def harness_range_ratio(source: str) -> float:
    """The random range ratio of the harness a row's provenance names (comment above)."""
    return HARNESS_RANGE_RATIO if is_harness_row(source) else 1.0


# The KV-cache dtype: every TensorRT-LLM launch of an fp8 checkpoint in the InferenceMAX
# sweeps sets ``kv_cache_config: dtype: fp8`` (InferenceMAX benchmarks/dsr1_fp8_h200_trt.sh
# and 70b_fp8_h200_trt_slurm.sh; the dynamo-trt DeepSeek-R1 recipes the sweeps launch,
# srt-slurm recipes/trtllm/h200/ and h100-fp8/ ``kv_cache_config.dtype: fp8`` in prefill and
# decode), and so does every TensorRT-LLM launch of an fp4 checkpoint on Blackwell, where the
# fp4 GEMMs run natively (InferenceX benchmarks/dsr1_fp4_b200_trt_slurm.sh,
# single_node/dsr1_fp4_b200_trt.sh and single_node/gptoss_fp4_b200_trt.sh: ``dtype: fp8``),
# while its fp4 launches on Hopper keep ``dtype: auto`` (gptoss_fp4_h200_trt.sh). Its SGLang
# and vLLM launches pass no --kv-cache-dtype (dsr1_fp8_h200.sh): "auto", the model's
# activation dtype. For DeepSeek's MLA an fp8 cache holds the 576-value latent per token and
# layer in 576 bytes instead of 1,152.
HARNESS_FP8_KV_ENGINES = ("trtllm",)


def harness_kv_dtype(source: str, engine: str, weight_dtype: str | None) -> str | None:
    """The KV-cache dtype the harness's launch of a row sets (comment above): "fp8" for a
    TensorRT-LLM fp8 checkpoint; None for a TensorRT-LLM fp4 one, whose KV dtype depends on
    the device (:func:`resolve_kv_dtype`); "" (the engine's default) otherwise."""
    if weight_dtype is None or engine.strip().lower() not in HARNESS_FP8_KV_ENGINES or not is_harness_row(source):
        return ""
    return {"fp8": "fp8", "fp4": None}.get(weight_dtype, "")


def resolve_kv_dtype(kv_dtype: str, fp8_on_blackwell: bool, blackwell: bool) -> str:
    """A row's KV-cache dtype once its device is known: fp8 for the harness's fp4 launch
    (:func:`harness_kv_dtype` None, ``MeasuredRuns.kv_fp8_on_blackwell``) on a
    Blackwell-class part (planner.specs.Hardware.blackwell_class), else ``kv_dtype``."""
    return "fp8" if fp8_on_blackwell and blackwell else kv_dtype


# SGLang's scheduler poll interval (--scheduler-recv-interval N, in decode iterations:
# planner.cost.waves.recv_wait_steps): InferenceX's SGLang launches on Blackwell set N = 10
# below 16 requests in flight and 30 from 16 on (benchmarks/dsr1_fp4_b200.sh and its MTP twin
# dsr1_fp4_b200_mtp.sh; dsr1_fp8_b200.sh at TP8, its TP4 8K/1K launch 10 throughout;
# single_node/qwen3.5_fp8_b200.sh: "recv every ~10 requests; if CONC >= 16, relax to ~30"),
# while its SGLang launches on Hopper and AMD parts leave the default, 1 (dsr1_fp8_h200.sh,
# single_node/qwen3.5_fp8_h200.sh, glm5_fp8_h200.sh, dsr1_fp8_mi355x.sh), and so does its
# GLM-5 B200 launch (glm5_fp8_b200.sh; not told apart: a GLM-5 B200 row takes the rule).
# The MI355X launches' --num-continuous-decode-steps 4 is not such a wait: since SGLang pull
# request 2095 (2024-11, the overlap scheduler) the argument is parsed and never read.
HARNESS_RECV_ENGINES = ("sglang",)
HARNESS_RECV_LOW, HARNESS_RECV_HIGH, HARNESS_RECV_FROM = 10.0, 30.0, 16.0


def harness_sets_recv(source: str, engine: str) -> bool:
    """Whether the harness's launch of a row chose its poll interval (comment above)."""
    return engine.strip().lower() in HARNESS_RECV_ENGINES and is_harness_row(source)


def harness_recv_interval(concurrency, blackwell):
    """The harness's poll interval: 10 below 16 requests in flight and 30 from 16 on where
    ``blackwell`` (planner.specs.Hardware.blackwell_class), 1 elsewhere; arrays broadcast."""
    c = np.asarray(concurrency, dtype=float)
    n = np.where(c >= HARNESS_RECV_FROM, HARNESS_RECV_HIGH, HARNESS_RECV_LOW)
    return np.where(np.asarray(blackwell, dtype=bool), n, 1.0)


def resolve_recv_interval(interval, by_harness, concurrency, blackwell):
    """Rows' poll intervals once their devices are known: the harness's rule
    (:func:`harness_recv_interval`) where ``by_harness`` (``MeasuredRuns.recv_by_harness``),
    else ``interval`` (the row's own, or 1); arrays broadcast."""
    return np.where(by_harness, harness_recv_interval(concurrency, blackwell), interval)
