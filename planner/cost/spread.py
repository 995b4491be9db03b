"""Lengths drawn per request by a benchmark client: the random range ratio's rule
(:func:`check_range_ratio`) and the mean lengths a mean-field model costs
(:func:`spread_length`). One home for ``planner estimate --range-ratio``, the checks
files' and capacity scenarios' ``range_ratio:`` and the simulator's entry point."""

from __future__ import annotations

from typing import Any

from planner.errors import InputError


def check_range_ratio(value: Any, field: str = "range-ratio", file: str | None = None) -> float:
    """A benchmark's random range ratio ``r``, 0 < r <= 1: each request's lengths drawn
    uniformly from the whole numbers in ``[int(r L), L]`` (sglang bench_serving
    ``--random-range-ratio``, vLLM's benchmark_serving.py before ``vllm bench serve``,
    InferenceMAX's copy of it at 0.8: planner.measured.HARNESS_RANGE_RATIO); 1 = fixed
    lengths. (``vllm bench serve --random-range-ratio b`` draws from ``[L (1 - b),
    L (1 + b)]`` instead: ``L' = L (1 + b)`` and ``r = (1 - b) / (1 + b)`` here.) Else an
    InputError naming the field and value (a bool, a string, NaN or a value outside (0, 1])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise InputError("must be a number > 0 and <= 1 (1: fixed lengths)", file=file, field=field, value=value)
    return float(value)


def spread_length(length, range_ratio: float) -> int:
    """The mean length of a benchmark that draws each request's from the whole numbers in
    ``[int(r L), L]`` (planner.measured.mean_length), rounded to whole tokens as the
    replay rounds them (planner.replay), at least 1; ``L`` at r = 1."""
    import numpy as np

    from planner.measured import mean_length

    return max(int(np.round(mean_length(length, range_ratio))), 1)


def spread_lengths(prompt_len, gen_len, range_ratio: float) -> tuple[int, int]:
    """:func:`spread_length` of the prompt and of the generation."""
    return spread_length(prompt_len, range_ratio), spread_length(gen_len, range_ratio)
