"""planner: a hardware-aware cost simulator and inference planner for LLMs.

The Python API (README "Python API"); each function imports what it needs when first
called, so ``import planner`` and ``planner --help`` stay light:

    planner.estimate(model=, hardware=, ...)   one configuration: latency, memory, energy, $
    planner.recommend(scenario=None, **fields)  the `planner recommend` search
    planner.predict_accuracy(profile, strategy, samples, ...)
    planner.fit(eval_log, model=, task=, ...)   a task profile from an eval log
    planner.load_model(ref), planner.load_hardware(ref)

Models and devices are given as catalog names, YAML paths or spec objects. Bad input
raises :class:`planner.errors.InputError` (a ValueError) naming the field and the value.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pathlib import Path

    from planner.accuracy.fit import FitResult
    from planner.cost.efficiency import Efficiency
    from planner.specs import Hardware, Model

__version__ = "0.1.0"
__all__ = ["estimate", "recommend", "predict_accuracy", "fit", "load_model", "load_hardware", "__version__"]


def load_model(ref: Union[str, "Path"]) -> "Model":
    """A model descriptor by catalog name (``"llama-3.1-8b"``) or YAML path."""
    from planner.catalog import load_model as _load

    return _load(str(ref))


def load_hardware(ref: Union[str, "Path"]) -> "Hardware":
    """A device spec by catalog name (``"h100-sxm"``) or YAML path."""
    from planner.catalog import load_hardware as _load

    return _load(str(ref))


def estimate(model: Union[None, str, "Model"] = None, hardware: Union[None, str, "Hardware"] = None, *,
             devices: Optional[int] = None, batch: Optional[int] = None, concurrency: Optional[int] = None,
             prompt_len: Optional[int] = None, gen_len: Optional[int] = None, samples: Optional[int] = None,
             weight_dtype: Optional[str] = None, act_dtype: Optional[str] = None, kv_dtype: Optional[str] = None,
             kv_budget: Optional[int] = None, prefix_sharing: Optional[bool] = None,
             efficiency: Optional["Efficiency"] = None, pp: int = 1, ep: int = 1, dp: int = 1,
             engine: Union[None, str, Any] = None, arrival: Optional[str] = None, rate: Optional[float] = None,
             calibration: Union[None, str, "Path"] = None, spec_tokens: int = 0,
             range_ratio: float = 1.0) -> dict[str, Any]:
    """Latency, throughput, memory, energy and dollars of one configuration: the
    ``planner estimate --json`` object (``ttft_s``, ``tpot_s``, ``latency_s``,
    ``memory``, ``efficiency``, ``expected_error``, ...), the same numbers as the command
    line for the same options (planner.estimating). Options left as None take the
    defaults of ``planner estimate`` (planner.cost.defaults).

    ``engine``: vllm, sglang, trtllm, generic (None), a YAML path or an EngineProfile;
    a named engine on a device with a shipped serving profile uses it, else the datasheet
    plus what the engine's fitted devices carry (``efficiency`` says which, and
    ``expected_error`` its measured error). ``arrival``: closed, poisson or steady (None:
    a named engine's requests in flight as the closed loop, else the steady state); a
    ``rate`` (requests/s) is Poisson arrivals. ``calibration``: a profile YAML, as
    ``--calibration``; ``efficiency``: an Efficiency used as is (no serving profile).
    ``pp``, ``ep``, ``dp``: the layout of ``planner estimate --pp/--ep/--dp`` (1: tensor
    parallel over ``devices``). ``spec_tokens``: MTP drafts per step; ``range_ratio``:
    lengths drawn per request from [int(r L), L]. About 0.1 ms per call for a static
    batch or the steady state (benchmarks/api_speed.py), a few ms for a closed loop
    (the vectorized engine on one row); profiles found on disk are resolved once per
    process while their folders stay unchanged (planner.estimating.profile_for)."""
    from planner.cost.defaults import ESTIMATE_DEFAULTS
    from planner.estimating import estimate as _estimate

    model = ESTIMATE_DEFAULTS["model"] if model is None else model
    hardware = ESTIMATE_DEFAULTS["hardware"] if hardware is None else hardware
    given = {"devices": devices, "batch": batch, "concurrency": concurrency, "prompt_len": prompt_len,
             "gen_len": gen_len, "samples": samples, "weight_dtype": weight_dtype, "act_dtype": act_dtype,
             "kv_dtype": kv_dtype, "kv_budget": kv_budget, "prefix_sharing": prefix_sharing}
    extra = {"spec_tokens": spec_tokens} if spec_tokens else {}
    if range_ratio != 1.0:
        extra["range_ratio"] = range_ratio
    return _estimate(model, hardware, engine=engine, calibration=None if calibration is None else str(calibration),
                     efficiency=efficiency, arrival=arrival, rate=rate, pp=pp, ep=ep, dp=dp, **extra,
                     **{k: v for k, v in given.items() if v is not None})


def recommend(scenario: Union[None, str, "Path", dict] = None, **fields: Any) -> dict[str, Any]:
    """The ``planner recommend`` search: a scenario YAML path, a dict of its fields, or
    None (the built-in default scenario); keyword ``fields`` override it (``task=``,
    ``hardware=[...]``, ``max_latency_s=``, ...). Returns the ``--json`` object."""
    from planner.catalog import builtin_dir, parse_spec, read_yaml
    from planner.recommend import run
    from planner.specs import RecommendScenario

    if scenario is None:
        scenario = builtin_dir("examples") / "default_scenario.yaml"
    if isinstance(scenario, dict):
        data, where = dict(scenario), "<scenario>"
    else:
        data, where = read_yaml(scenario) or {}, str(scenario)
    data = {**data, **fields}
    return run(parse_spec(RecommendScenario, data, where))


def predict_accuracy(profile: Any, strategy: str = "pass@k", samples: Any = 1, gen_len: Any = None,
                     **options: Any) -> Any:
    """Expected accuracy of a test-time strategy (planner.accuracy.predict): ``profile``
    is ``"model/task"``, a YAML path or a profile object; ``options`` are the dtypes,
    ``kv_budget`` and strategy parameters. A float for scalar inputs, else an array."""
    import numpy as np

    from planner.accuracy import predict

    out = predict(profile, strategy, samples, gen_len, **options)
    return float(out) if np.ndim(out) == 0 else out


def fit(eval_log: Union[str, "Path"], *, model: str, task: str, task_kind: str = "math_answer",
        difficulty: str = "auto", gen_len: Optional[int] = None, seed: int = 0,
        templates: Optional[list] = None) -> "FitResult":
    """Fit a task profile from an eval log (JSONL/CSV of per-problem samples, as
    ``planner fit``); ``result.profile`` is the profile, ``result.summary()`` its figures.
    ``templates``: other models' profiles of the task (``planner fit --template``)."""
    from planner.accuracy.fit import fit_eval_log

    return fit_eval_log(eval_log, model, task, task_kind=task_kind, difficulty=difficulty, gen_len=gen_len,
                        seed=seed, templates=templates)


class _Package(types.ModuleType):
    """The package module, keeping its API functions when a same-named submodule is
    imported (``planner.recommend`` the function vs ``planner/recommend.py``: the import
    system would otherwise rebind the package attribute to the submodule). The submodule
    stays reachable as ``sys.modules["planner.recommend"]`` and by ``from ... import``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in __all__ and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
