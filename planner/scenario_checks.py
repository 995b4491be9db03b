"""The validator bodies of a scenario's lists, shared by the scenario specs
(planner.specs.RecommendScenario, the capacity scenario of planner.capacity): counts
within their flag's bound (:func:`positive_list`, :func:`list_within_bound`), known
quantization presets and dtypes, and device layouts (:func:`layout_entries`). Each raises
a ValueError that pydantic turns into the spec's one-line InputError
(planner.catalog.validation_error).

Data layer: it imports planner.bounds, planner.dtypes and planner.quantization only.
"""

from __future__ import annotations

from planner.bounds import MAX_DEVICES, UPPER, short_list
from planner.dtypes import DTYPES
from planner.quantization import quantization_error


# a scenario's list of counts -> the flag whose bound (planner.bounds.UPPER) each value keeps
LIST_BOUND = {"devices": "devices", "samples": "samples", "gen_lens": "gen_len", "batches": "batch",
              "concurrency": "concurrency", "kv_budgets": "kv_budget"}


def positive_list(v, info):
    """Validator body: a non-empty list of values >= 1 (or None), each within the bound of
    its flag (planner.bounds.UPPER through :data:`LIST_BOUND`: ``samples: [1e8]`` was
    searched, while ``--samples 1e8`` is refused)."""
    if v is not None:
        if not v:
            raise ValueError("must not be empty")
        bad = [x for x in v if x < 1]
        if bad:
            raise ValueError(f"values must be >= 1, got {bad[0]}")
        list_within_bound(v, info)
    return v


def list_within_bound(v, info) -> None:
    """Every value of the list at most its field's bound (:data:`LIST_BOUND`), else a ValueError."""
    hi = UPPER.get(LIST_BOUND.get(getattr(info, "field_name", None), ""))
    big = [x for x in v if hi is not None and x > hi]
    if big:
        raise ValueError(f"values must be <= {hi:,}, got {big[0]}")


def known_quantizations(v):
    """Validator body: quantization preset names of the search (or None)."""
    if v is not None:
        if not v:
            raise ValueError("must not be empty")
        for q in v:
            why = quantization_error(q)
            if why:
                raise ValueError(why)
    return v


def known_dtypes(v):
    """Validator body: storage dtype names (or None)."""
    if v is not None:
        if not v:
            raise ValueError("must not be empty")
        for d in v:
            if d not in DTYPES:
                raise ValueError(f"unknown dtype '{d}' (choose from {', '.join(DTYPES)})")
    return v


LAYOUT_FACTORS = ("tp", "pp", "dp", "ep")  # the factors of a device layout (planner.layouts)


def layout_entries(v):
    """Validator body: layout families (``tp``, ``tp*pp``, ``tp*dp*ep``: factors of
    LAYOUT_FACTORS joined by ``*``) or explicit ``{tp, pp, dp, ep}`` mappings (or None)."""
    if short_list(v, "layouts") is None:
        return v
    for e in v:
        if isinstance(e, str):
            parts = e.replace(" ", "").split("*")
            if not e or any(p not in LAYOUT_FACTORS for p in parts) or len(set(parts)) != len(parts):
                raise ValueError(f"unknown layout family '{e[:40]}' (factors {', '.join(LAYOUT_FACTORS)} "
                                 "joined by '*', e.g. tp*pp)")
        else:
            extra = set(e) - set(LAYOUT_FACTORS)
            if extra:
                raise ValueError(f"unknown layout factor '{sorted(extra)[0]}' "
                                 f"(choose from {', '.join(LAYOUT_FACTORS)})")
            for k, n in e.items():
                if isinstance(n, bool) or not 1 <= n <= MAX_DEVICES:
                    raise ValueError(f"layout factor {k} must be an integer in 1..{MAX_DEVICES}, got {n}")
    return [e.replace(" ", "") if isinstance(e, str) else e for e in v]
