"""One configuration's estimate as every front end gives it (`planner estimate`, the
Python API ``planner.estimate``): the engine profile named, the arrival pattern chosen,
the profile the device uses resolved (planner.serving_profile.resolve_serving: a
calibration, else the serving profile fitted on measured runs of the (device, engine)
pair, else the datasheet plus what the fitted devices of the engine carry), the cost
engine run (planner.cost.api.estimate), and the answer labelled with where its numbers
come from (``efficiency``), the measured error of that path (``expected_error``,
planner.fidelity) and the assumptions the user did not give.

Use-case layer: it composes the models (cost, serving profiles, fidelity figures) and
holds the rules the front ends share, so the command line and the Python API give the
same numbers for the same configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from planner.calibrate.lookup import profile_state
from planner.cost.api import estimate as cost_estimate
from planner.cost.api import resolve_hardware, resolve_model
from planner.cost.defaults import ESTIMATE_DEFAULTS as D
from planner.cost.serving import serving_pattern
from planner.engine_profiles import EngineProfile, load_engine
from planner.errors import InputError
from planner.fidelity import state as fidelity_state
from planner.fidelity import with_arrival
from planner.serving_profile import expected_error, resolve_serving


def engine_of(engine) -> Any:
    """An engine profile from a name, a YAML path, an EngineProfile or None (the generic
    engine: the cost engine with no scheduler facts, planner.engine_profiles); the lookup and
    the parsed file are memoized there (planner.engine_profiles.load_engine)."""
    if isinstance(engine, EngineProfile):
        return engine
    return load_engine(str(engine) if isinstance(engine, Path) else engine)


def arrival_of(config: dict) -> str:
    """The arrival pattern a prediction was made under, as planner.fidelity names them: the
    config's (closed, poisson, steady), ``static`` for a static batch (no requests in flight)."""
    arrival = config.get("arrival", "steady")
    return "static" if arrival == "steady" and not config.get("concurrency") else arrival


def assumptions(hardware, eff_label: str) -> list[str]:
    """What the numbers rest on that the user did not give: listed in every output."""
    out = []
    if eff_label.startswith("defaults"):
        out.append("efficiency: documented defaults (no calibration profile for this device)")
    if hardware.price_per_hour_usd is None:
        out.append(f"price: owned device, purchase price amortized over {hardware.lifetime_years:g} years "
                   "(no rental price in the catalog)")
    return out


def shared_prompt_reads(engine, samples: int, prefix_sharing: bool) -> list[str]:
    """How the engine's decode attention reads a prompt its ``samples`` share (the profile's
    cascade facts, planner.cost.passes.prompt_read_once applies them): one line where it matters."""
    if samples <= 1 or not prefix_sharing:
        return []
    name = engine.name if engine is not None else "generic"
    if engine is None or (engine.cascade_attention and engine.cascade_prefix == "request"):
        how = "read once a decode step for each request's samples (a cascade kernel)"
    elif engine.cascade_attention:
        how = (f"read once a decode step only when one request's samples are the whole step, at least "
               f"{engine.cascade_min_sequences} sequences and {engine.cascade_min_prefix_tokens} prompt tokens, "
               f"no sliding-window layers; else per sequence")
    else:
        how = "read per sequence (no shared-prefix decode kernel)"
    return [f"samples: the prompt's KV is stored once per request; {name} engine: {how}"]


def profile_for(hardware, engine, calibration: Optional[str] = None):
    """The profile the device runs under ``engine`` (planner.serving_profile.ServingChoice,
    the one rule: :func:`planner.serving_profile.resolve_serving`) and the measured error of
    that prediction path on this device (planner.serving_profile.expected_error; a bad
    shipped file is an InputError before anything is costed). Memoized per process
    (:data:`_PROFILES`)."""
    key = (id(hardware), id(engine), calibration, profile_state(), fidelity_state())
    hit = _PROFILES.get(key)
    if hit is not None and hit[0] is hardware and hit[1] is engine:
        return hit[2]
    choice = resolve_serving(hardware, engine, calibration)
    found = choice, expected_error(choice, hardware.name)
    if len(_PROFILES) >= _PROFILES_MAX:
        _PROFILES.clear()
    _PROFILES[key] = (hardware, engine, found)  # the specs held, so their ids stay theirs
    return found


# Resolved profiles of this process, keyed by the specs' identities, the calibration named, the
# state of the folders profiles are found in (planner.calibrate.lookup.profile_state) and of the
# measured-error file (planner.fidelity.state): a loop over configurations reads the profile
# files once, and a profile written meanwhile is seen.
_PROFILES: dict = {}
_PROFILES_MAX = 256


def estimate(model, hardware, *, engine=None, calibration: Optional[str] = None, efficiency=None,
             arrival: Optional[str] = None, rate: Optional[float] = None, batch: int = D["batch"],
             concurrency: int = D["concurrency"], closed: bool = False, choice=None,
             **options) -> dict[str, Any]:
    """The ``planner estimate --json`` object of one configuration: the cost engine's answer
    (planner.cost.api.estimate) under the profile :func:`profile_for` resolves, plus
    ``efficiency`` (where the numbers come from), ``expected_error`` (the measured error of
    that path, with the arrival pattern it was predicted under: planner.fidelity.with_arrival)
    and ``assumptions``.

    ``engine``: a name, YAML path or EngineProfile (None: generic). ``efficiency`` given: it
    is used as is, with the engine's own scheduler facts and no fitted serving parameters
    (``expected_error`` None: no path's error was measured for it). ``calibration``: a
    calibration profile YAML, as ``--calibration``. ``choice``: an already resolved
    (ServingChoice, error) pair (the command line's, which also feeds the simulator).
    A closed loop with no requests in flight takes the batch as its concurrency.
    ``options``: the other keywords of planner.cost.api.estimate (devices, prompt_len, ...)."""
    m, h = resolve_model(model), resolve_hardware(hardware)
    prof = engine_of(engine)
    arrival, concurrency = serving_pattern(prof, arrival, rate, concurrency, batch, closed)
    if efficiency is not None and (calibration is not None or choice is not None):
        raise InputError("give an efficiency or a calibration profile, not both", field="efficiency",
                         value=type(efficiency).__name__)
    if efficiency is not None:
        eff, label, serving, error = efficiency, "given by the caller (planner.estimate efficiency=)", None, None
        prof = prof.on_device(h)
    else:
        c, error = profile_for(h, prof, calibration) if choice is None else choice
        eff, label, serving, prof = c.efficiency, c.label, c.parameters, c.engine
    r = cost_estimate(m, h, efficiency=eff, engine=prof, arrival=arrival, rate=rate or 0.0, serving=serving,
                      batch=batch, concurrency=concurrency, **options)
    r["efficiency"] = label
    r["expected_error"] = None if error is None else with_arrival(error, arrival_of(r["config"]))
    r["assumptions"] = assumptions(h, label) + shared_prompt_reads(prof, options.get("samples", 1),
                                                                   options.get("prefix_sharing", True))
    return r
