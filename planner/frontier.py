"""Choosing among the search's configurations (planner.search): the objectives, the
budgets, the top rows, the Pareto frontier and the nearest misses, on the flat result
columns (vectorized: no loop over configurations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from planner.errors import InputError

OBJECTIVES = {
    # name: (score to maximize, cost axis of the frontier)
    "max-accuracy": ("accuracy", "cost_usd"),
    "min-cost": ("-cost_usd", "cost_usd"),
    "min-latency": ("-latency_s", "latency_s"),
    "min-energy": ("-energy_j", "energy_j"),
    "accuracy-per-usd": ("accuracy/cost_usd", "cost_usd"),
    "accuracy-per-joule": ("accuracy/energy_j", "energy_j"),
    "accuracy-per-second": ("accuracy/latency_s", "latency_s"),
}


@dataclass
class Budgets:
    max_latency_s: Optional[float] = None
    max_usd: Optional[float] = None
    max_energy_j: Optional[float] = None
    min_accuracy: Optional[float] = None


def check_objective(objective: str) -> str:
    """``objective`` if it is one of :data:`OBJECTIVES`, else the one-line InputError."""
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective (choose from {', '.join(OBJECTIVES)})", field="objective",
                         value=objective)
    return objective


def objective_score(cols: dict, objective: str) -> np.ndarray:
    expr = OBJECTIVES[check_objective(objective)][0]
    if expr.startswith("-"):
        return -cols[expr[1:]]
    if "/" in expr:
        a, b = expr.split("/")
        return cols[a] / np.maximum(cols[b], 1e-30)
    return cols[expr]


def within_budgets(cols: dict, b: Budgets) -> np.ndarray:
    ok = np.ones(cols["latency_s"].shape, dtype=bool)
    if b.max_latency_s is not None:
        ok &= cols["latency_s"] <= b.max_latency_s
    if b.max_usd is not None:
        ok &= cols["cost_usd"] <= b.max_usd
    if b.max_energy_j is not None:
        ok &= cols["energy_j"] <= b.max_energy_j
    if b.min_accuracy is not None:
        ok &= cols["accuracy"] >= b.min_accuracy
    return ok


def top_indices(score: np.ndarray, mask: np.ndarray, n: int, tiebreak) -> np.ndarray:
    """Indices of the n best rows by score; ties broken by ``tiebreak`` (one array, or a
    sequence of arrays applied in order: lower first). Every row tied with the n-th best
    takes part in the tie-break (a partial sort never cuts a tie arbitrarily)."""
    keys = [tiebreak] if isinstance(tiebreak, np.ndarray) else list(tiebreak)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx
    s = score[idx]
    if idx.size > n:
        nth = np.partition(s, idx.size - n)[idx.size - n]  # the n-th largest score
        keep = s >= nth
        idx, s = idx[keep], s[keep]
    order = np.lexsort(tuple(k[idx] for k in reversed(keys)) + (-s,))
    return idx[order[:n]]


def pareto_frontier(cost: np.ndarray, accuracy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Indices of rows no other row beats on both lower cost and higher accuracy,
    in increasing cost (one row per frontier point)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx
    idx = idx[np.argsort(cost[idx], kind="quicksort")]
    acc = accuracy[idx]
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], acc[:-1]]))
    cand = idx[acc > best_before]  # strictly better than everything cheaper or as cheap before it
    c = cost[cand]
    # among candidates of equal cost, accuracy increases along the list: keep the last one
    keep = np.ones(cand.size, dtype=bool)
    keep[:-1] = c[:-1] != c[1:]
    return cand[keep]


def nearest_to_budget(cols: dict, feasible: np.ndarray, b: Budgets, n: int) -> np.ndarray:
    """When nothing meets the budgets: the feasible rows that miss them by the least
    (largest relative overshoot over the latency, dollar and energy budgets, smallest
    first). The accuracy floor is respected, not traded: only rows that reach it are
    candidates (none, if nothing reaches it: see :func:`best_accuracy`)."""
    miss = np.zeros(cols["latency_s"].shape, dtype=np.float64)
    for key, limit in (("latency_s", b.max_latency_s), ("cost_usd", b.max_usd), ("energy_j", b.max_energy_j)):
        if limit is None:
            continue
        v = cols[key].astype(np.float64)
        miss = np.maximum(miss, (v - limit) / max(abs(limit), 1e-30))
    reach = feasible if b.min_accuracy is None else feasible & (cols["accuracy"] >= b.min_accuracy)
    idx = np.flatnonzero(reach)
    if idx.size == 0:
        return idx
    m = miss[idx]
    k = min(n, idx.size)
    part = np.argpartition(m, k - 1)[:k]
    return idx[part[np.lexsort((cols["cost_usd"][idx[part]], m[part]))]]


def best_accuracy(cols: dict, feasible: np.ndarray) -> float:
    """The highest accuracy any feasible row reaches (NaN if none is feasible)."""
    return float(cols["accuracy"][feasible].max()) if feasible.any() else float("nan")
