"""The cost engine's columns of a serving engine profile (planner.engine_profiles): its
scheduler facts, KV-cache rule and shared-prompt reads, for one configuration."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from planner.bounds import check_rate
from planner.errors import InputError


@lru_cache(maxsize=1)
def generic_engine():
    """The generic engine profile, read once (the API's scalar path must not parse YAML per call)."""
    from planner.engine_profiles import load_engine

    return load_engine(None)


def serving_columns(engine, arrival: str = "steady", rate: float = 0.0) -> dict[str, Any]:
    """The engine's serving columns for one configuration: an engine profile
    (planner.engine_profiles; None: the generic one), an arrival pattern of
    planner.cost.serving.ARRIVALS and a Poisson rate (requests/s, > 0 for ``poisson``)."""
    from planner.cost.serving import ARRIVAL_CODE, ARRIVALS

    if arrival not in ARRIVAL_CODE:
        raise InputError(f"unknown arrival pattern (choose from {', '.join(ARRIVALS)})", field="arrival", value=arrival)
    if arrival == "poisson":
        check_rate(rate)
    if engine is None:
        engine = generic_engine()
    cols = {"arrival": ARRIVAL_CODE[arrival], "rate": float(rate or 0.0), "token_budget": engine.token_budget,
            "max_running": engine.max_running, "chunked": int(engine.chunked_prefill),
            "mixed": int(engine.mixed_batches), "host_step_s": engine.host_step_s,
            "host_request_s": engine.host_request_s,
            "dp_rank_budget": int(engine.dp_rank_budget), "adp_balance_iters": int(engine.adp_balance_timeout_iters),
            **engine.attention_columns()}
    if arrival != "steady":  # the free KV memory caps the running set (planner.cost.running)
        cols.update(engine.kv_columns())
    return cols
