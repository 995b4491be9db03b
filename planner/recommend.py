"""`planner recommend` as a library call: scenario in, JSON-ready answer out."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from planner.accuracy.search_cache import accuracy_for_search, interval_for_search
from planner.accuracy.special import unique_sorted
from planner.errors import InputError
from planner.fidelity import with_arrival
from planner.frontier import (
    OBJECTIVES,
    Budgets,
    best_accuracy,
    check_objective,
    nearest_to_budget,
    objective_score,
    pareto_frontier,
    top_indices,
    within_budgets,
)
from planner.search import Space, evaluate_space
from planner.specs import RecommendScenario

DEFAULT_STRATEGIES = ["single", "majority", "best-of-k", "verify"]
FRONTIER_POINTS = 40
MIN_FRONTIER_ACCURACY = 0.001  # frontier rows below 0.1% (shown as 0.0%) only with show_zero_accuracy


def _engine_columns(engine: str | None) -> dict | None:
    """The named engine's cost-engine columns for the search (its shared-prompt reads:
    planner.engine_profiles.EngineProfile.attention_columns); None without an engine."""
    if engine is None:
        return None
    from planner.engine_profiles import load_engine

    return load_engine(engine).attention_columns()


def _efficiencies(hardware, calibration: dict[str, str] | None, engine: str | None = None):
    """Per device: the efficiency, where it came from, the profile used and the measured
    error of its path (one rule for every command: planner.serving_profile.resolve_serving)."""
    from planner.serving_profile import expected_error, resolve_serving

    effs, labels, used, errors = [], {}, {}, {}
    names = {h.name for h in hardware}
    for name in calibration or {}:
        if name not in names:  # never ignored silently
            raise InputError("calibration given for a device not in hardware", field=f"calibration.{name}",
                             value=name)
    prof = None
    if engine is not None:
        from planner.engine_profiles import load_engine

        prof = load_engine(engine)
    for h in hardware:
        choice = resolve_serving(h, prof, (calibration or {}).get(h.name))
        effs.append(choice.efficiency)
        labels[h.name] = choice.label
        used[h.name] = choice.profile
        errors[h.name] = expected_error(choice, h.name)
    return effs, labels, used, errors


def build_space(scn: RecommendScenario, profiles: list) -> Space:
    """The search grid for a scenario: its own lists where given, else the defaults."""
    strategies = scn.strategies or list(DEFAULT_STRATEGIES)
    if scn.strategies is None and all(p.spec.perfect_checker for p in profiles):
        strategies.append("pass@k")
    space = Space(strategies=strategies)
    for name in ("devices", "samples", "gen_lens", "quantizations", "kv_dtypes", "batches", "kv_budgets"):
        v = getattr(scn, name)
        if v is not None:
            setattr(space, name, list(v))
    if not scn.sparse:
        space.kv_budgets = [0]
    # the device-count axis as a layout axis (planner.layouts): the scenario's families and
    # explicit layouts over its device counts
    from planner.layouts import DEFAULT_LAYOUTS, expand

    space.layouts = expand(scn.layouts or DEFAULT_LAYOUTS, space.devices)
    space.prompt_len = scn.prompt_len or PROMPT_TOKENS.get(scn.task, DEFAULT_PROMPT_TOKENS)
    return space


# Typical prompt lengths in tokens (problem statement + chat template). AIME: Kinetics uses
# Lin = 150; the others are the medians of the public sets tokenized with the Qwen3 tokenizer
# (assumption, rounded).
PROMPT_TOKENS = {"aime24": 150, "aime25": 150, "math500": 120, "gsm8k": 110, "humaneval": 180,
                 "livecodebench": 500, "livecodebench-v5": 500}
DEFAULT_PROMPT_TOKENS = 200


def _verifier_notes(verifier, profiles) -> dict:
    """Per model profile, where the verifier's quality came from (a verifier profile or,
    with a note, the task profile's defaults)."""
    from planner.accuracy.verifiers import verifier_quality

    out = {}
    for prof in profiles:
        vq = verifier_quality(verifier, prof)
        out[prof.model] = {k: vq[k] for k in ("completeness", "soundness", "reward_auc", "source")}
        if vq["note"]:
            out[prof.model]["note"] = vq["note"]
    return out


NO_INTERVAL = ("n/a: shipped profiles built from published figures carry no bootstrap replicates "
               "(`planner fit` on an eval log writes them)")


def _interval_sources(profiles) -> dict[str, str]:
    """Per model: where its interval comes from, or why it has none."""
    out = {}
    for p in profiles:
        unc = p.spec.uncertainty
        out[p.model] = (f"bootstrap of the fit ({len(unc.replicates)} replicates)" if unc is not None
                        and unc.replicates else NO_INTERVAL)
    return out


def run(scn: RecommendScenario) -> dict[str, Any]:
    """Evaluate the scenario's space and pick the best configurations."""
    from planner import accuracy
    from planner.catalog import load_hardware, load_model

    check_objective(scn.objective)  # before the search runs
    hardware = [load_hardware(h) for h in scn.hardware]
    if not hardware:
        raise InputError("give at least one device", field="hardware", value=[])
    if scn.models:
        pairs = [(load_model(m), accuracy.find_profile(m, scn.task)) for m in scn.models]
    else:
        pairs = []
        for prof in accuracy.profiles_for_task(scn.task):
            name = prof.model
            try:
                pairs.append((load_model(name), prof))
            except InputError:
                continue  # a profile for a model the catalog cannot cost
        if not pairs:
            raise InputError("no model in the catalog has an accuracy profile for this task", field="task",
                             value=scn.task)
    models = [m for m, _ in pairs]
    profiles = [p for _, p in pairs]
    effs, eff_labels, used, errors = _efficiencies(hardware, scn.calibration, scn.engine)
    space = build_space(scn, profiles)
    verifier = None
    if scn.verifier:
        try:
            verifier = load_model(scn.verifier)
        except InputError as exc:  # name the flag the user gave, not the catalog's 'model'
            if exc.field != "model":
                raise
            raise InputError(exc.reason, file=exc.file, field="verifier", value=scn.verifier) from None
    res = evaluate_space(space, models, hardware, effs, profiles,
                         partial(accuracy_for_search, verifier=scn.verifier), verifier,
                         interval_fn=partial(interval_for_search, verifier=scn.verifier),
                         engine_cols=_engine_columns(scn.engine))
    # --conservative: the accuracy every rule below sees is the interval's lower end (the
    # point accuracy where a profile has no interval)
    lo = res.cols["accuracy_lo"]
    cols = dict(res.cols, accuracy=np.where(np.isnan(lo), res.cols["accuracy"], lo)) if scn.conservative \
        else res.cols

    def row(i):
        r = res.row(i)
        a, b = float(lo[i]), float(res.cols["accuracy_hi"][i])
        r["interval_80"] = None if np.isnan(a) else [a, b]
        return r

    budgets = Budgets(scn.max_latency_s, scn.max_usd, scn.max_energy_j, scn.min_accuracy)
    ok = res.feasible & within_budgets(cols, budgets)
    score = objective_score(cols, scn.objective)
    cost_axis = OBJECTIVES[scn.objective][1]
    # ties in the objective: the cheaper row first, then the faster one
    top = top_indices(score, ok, scn.top, (res.cols["cost_usd"], res.cols["latency_s"]))
    answer: dict[str, Any] = {
        "task": scn.task,
        "objective": scn.objective,
        "budgets": {k: v for k, v in vars(budgets).items() if v is not None},
        "evaluated": res.evaluated,
        "feasible": int(res.feasible.sum()),
        "within_budgets": int(ok.sum()),
        "infeasible": res.infeasible_counts,
        "stage_evaluations": res.stage_rows,
        "prompt_len": space.prompt_len,
        "verifier": scn.verifier or "the policy model",
        "verifier_quality": _verifier_notes(scn.verifier, profiles),
        "efficiency": eff_labels,
        "engine": scn.engine,
        "profiles_used": used,
        "expected_error": {hw: with_arrival(e, "static") for hw, e in errors.items()},  # the search's batches
        "conservative": scn.conservative,
        "intervals": _interval_sources(profiles),
        "recommendations": [row(i) for i in top],
        "frontier_axis": cost_axis,
        "frontier": [],
    }
    shown = ok if ok.any() else res.feasible
    if not scn.show_zero_accuracy:  # a configuration that solves nothing is no point of a trade-off
        shown = shown & (cols["accuracy"] >= MIN_FRONTIER_ACCURACY)
    front = pareto_frontier(cols[cost_axis], cols["accuracy"], shown)
    answer["frontier"] = [row(i) for i in thin_frontier(cols[cost_axis][front], front)]
    if top.size:
        answer["status"] = "ok"
        return answer
    near = nearest_to_budget(cols, res.feasible, budgets, scn.top)
    answer["nearest"] = [row(i) for i in near]
    best = best_accuracy(cols, res.feasible)
    if budgets.min_accuracy is not None and not best >= budgets.min_accuracy:
        what = "the lower end of its 80% interval" if scn.conservative else "its accuracy"
        answer["status"] = (f"no configuration reaches the accuracy floor {budgets.min_accuracy:g} "
                            f"(the most accurate feasible one reaches {best:.3f}, by {what})")
    else:
        answer["status"] = "no configuration meets the budgets"
    return answer


def thin_frontier(cost: np.ndarray, idx: np.ndarray, n: int = FRONTIER_POINTS) -> np.ndarray:
    """At most ``n`` frontier points spread evenly in log cost (ends kept)."""
    if idx.size <= n:
        return idx
    logc = np.log(np.maximum(cost.astype(np.float64), 1e-30))
    targets = np.linspace(logc[0], logc[-1], n)
    pick = unique_sorted(np.searchsorted(logc, targets).clip(0, idx.size - 1))
    return idx[pick]
