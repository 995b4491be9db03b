"""Lengths drawn per request by a benchmark client: the mean lengths a mean-field model
costs (:func:`spread_length`) for ``planner estimate --range-ratio``, the capacity
scenarios' ``range_ratio:`` and the simulator's entry point (the ratio's rule:
planner.bounds.check_range_ratio)."""

from __future__ import annotations


def spread_length(length, range_ratio: float) -> int:
    """The mean length of a benchmark that draws each request's from the whole numbers in
    ``[int(r L), L]``, in whole tokens and at least 1 as the replay takes it
    (planner.measured.mean_tokens); ``L`` at r = 1."""
    from planner.measured import mean_tokens

    return int(mean_tokens(length, range_ratio))


def spread_lengths(prompt_len, gen_len, range_ratio: float) -> tuple[int, int]:
    """:func:`spread_length` of the prompt and of the generation."""
    return spread_length(prompt_len, range_ratio), spread_length(gen_len, range_ratio)
