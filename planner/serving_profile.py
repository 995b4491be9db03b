"""Serving profiles: the parameters of one (device, engine) pair fitted on measured
serving runs, written in the calibration-profile format (planner.calibrate.profile).

The file is an ordinary profile (``format: planner-calibration``) whose curves are flat
efficiencies on the catalog device's datasheet peaks, so ``planner estimate
--calibration FILE`` reads it like any other, plus a ``fitted.serving`` section::

    fitted:
      ...
      serving:
        engine: vllm
        parameters: {memory_efficiency: 0.71, compute_efficiency: 0.55, step_host_s: 0.0004, ...}
        provenance: {file: serving-measured-hopper-dev.csv, sha256: ..., rows: 312, gemm_mix: {bf16: 246, fp8: 868},
                     date: ...}
        fit: {loss: soft_l1, ttft_median_abs_error: ..., tpot_median_abs_error: ...}

Shipped and default profiles live in ``calibration/serving/`` (a sub-folder, so the
per-device lookup of ``planner estimate`` does not take an engine-specific fit for a
device-wide one).

``provenance.gemm_mix`` is the file's rows by tabled GEMM path (planner.serving_fit.gemm_mix): the
mix the fitted kernel time is a mean over, which a carried kernel time takes along
(planner.serving_params.Values); a profile written before it lacks it, and a kernel time carried
from it stays one scalar.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from planner import serving_params as SP
from planner import serving_carry as SC
from planner.errors import InputError

SUBDIR = "serving"


# The decode-step physics a serving profile also writes in the calibration profile's own fields
# (read by planner.calibrate.apply, so that any reader of the profile, estimate or recommend,
# costs with them): that field -> the serving parameter it repeats. :func:`serving_of` refuses a
# profile whose two copies disagree (an edit of one of them).
PROFILE_FIELDS = {"expert_bytes_per_s": "expert_stream_bytes_per_s", "kernel_overhead_s": "kernel_time_s",
                  "interconnect_efficiency": "link_efficiency", "gemm_rows_half": "gemm_rows_half"}


def to_profile(hw, engine: str, values: dict, provenance: dict, fit: dict, date: str):
    from planner.calibrate.profile import Profile

    values = {k: float(f"{float(v):.4g}") for k, v in values.items()}  # 4 digits: the fit is not better
    values = {**SP.defaults(hw), **values}
    ce, me = values["compute_efficiency"], values["memory_efficiency"]
    fitted = {
        "peak_flops": {dt: hw.peak_flops(dt) for dt in hw.peak_tflops},
        "peak_bandwidth": hw.mem_bandwidth_gbps * 1e9,
        "peaks_from": "spec",
        "main_dtype": "bf16" if hw.has_dtype("bf16") else next(iter(hw.peak_tflops)),
        "compute": {dt: {"e_max": ce, "w_half": 0.0} for dt in hw.peak_tflops},
        "memory": {"e_max": me, "w_half": 0.0},
        "attention_memory": 1.0,
        **{field: values[name] for field, name in PROFILE_FIELDS.items()},
        "serving": {"engine": engine, "parameters": {k: float(values[k]) for k in SP.NAMES},
                    "provenance": provenance, "fit": fit},
    }
    return Profile(hardware=hw.name, device={"type": "cuda", "name": hw.name}, torch_version="none (fitted on "
                   "measured serving runs)", threads=1, date=date, fitted=fitted, scale="measured-serving")


def serving_of(profile) -> tuple[str, str, dict]:
    """(device, engine, parameters) of a serving profile; InputError naming the field."""
    file = profile.path or profile.hardware
    s = profile.fitted.get("serving")
    if not isinstance(s, dict):
        raise InputError("not a serving profile (no fitted.serving section; write one with planner calibrate "
                         "--from-measured)", file=file, field="fitted.serving")
    engine = s.get("engine")
    if not isinstance(engine, str) or not engine:
        raise InputError("must name the serving engine", file=file, field="fitted.serving.engine", value=engine)
    vals = s.get("parameters")
    if not isinstance(vals, dict):
        raise InputError("must map parameter names to values", file=file, field="fitted.serving.parameters",
                         value=vals)
    out = {}
    for name in SP.NAMES:
        v = vals.get(name)
        if v is None and name in SP.OPTIONAL:
            continue  # written before the parameter existed: the datasheet default applies
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError("must be a number", file=file, field=f"fitted.serving.parameters.{name}", value=v,
                             has_value=True)
        out[name] = float(v)
    problems = SP.check(out)
    if problems:
        name = problems[0].split(" =", 1)[0]
        raise InputError(problems[0].split(": ", 1)[1], file=file, field=f"fitted.serving.parameters.{name}",
                         value=out[name])
    _same_copies(profile.fitted, out, file)
    return profile.hardware, engine.lower(), SP.Values(out, gemm_mix=_gemm_mix(s.get("provenance"), file))


def _same_copies(fitted: dict, params: dict, file) -> None:
    """The calibration fields a serving profile repeats its parameters in (:data:`PROFILE_FIELDS`,
    and the memory and compute curves' ``e_max``) agree with ``fitted.serving.parameters`` to the
    4 digits both are written with; InputError naming the copy that differs otherwise (where a
    field is absent, nothing to compare)."""
    pairs = [(field, fitted.get(field), name) for field, name in PROFILE_FIELDS.items()]
    pairs.append(("memory.e_max", (fitted.get("memory") or {}).get("e_max"), "memory_efficiency"))
    pairs += [(f"compute.{dt}.e_max", (c or {}).get("e_max") if isinstance(c, dict) else None, "compute_efficiency")
              for dt, c in (fitted.get("compute") or {}).items()]
    for field, v, name in pairs:
        if name not in params or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not math.isclose(float(v), params[name], rel_tol=1e-3):
            raise InputError(f"disagrees with fitted.serving.parameters.{name} = {params[name]:.4g} (edit both, or "
                             "rewrite the profile with planner calibrate --from-measured)", file=file,
                             field=f"fitted.{field}", value=v)


def _gemm_mix(provenance, file) -> dict[str, int]:
    """``provenance.gemm_mix`` of a serving profile (module docstring): compute dtype -> a count of
    rows; {} where absent; InputError naming the field otherwise."""
    from planner.kernel_paths import PATH_OF_COMPUTE

    mix = provenance.get("gemm_mix") if isinstance(provenance, dict) else None
    if mix is None:
        return {}
    field = "fitted.serving.provenance.gemm_mix"
    if not isinstance(mix, dict):
        raise InputError("must map compute dtypes to row counts", file=file, field=field, value=mix)
    for d, n in mix.items():
        if d not in PATH_OF_COMPUTE:
            raise InputError(f"must be a compute dtype with a tabled GEMM path ({', '.join(PATH_OF_COMPUTE)})",
                             file=file, field=field, value=d)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError("must be a whole number of rows, >= 0", file=file, field=f"{field}.{d}", value=n,
                             has_value=True)
    return dict(sorted(mix.items()))


def serving_dirs() -> list[Path]:
    from planner.calibrate.lookup import profile_dirs

    return [d / SUBDIR for d in profile_dirs() if (d / SUBDIR).is_dir()]


def load_serving(paths: list[str] | None = None) -> dict[str, tuple[str, dict]]:
    """"device/engine" -> (profile name, parameters) from ``paths``, else from every
    profile in the serving folders (earlier folders win)."""
    from planner.calibrate.profile import load_profile

    files = [Path(p) for p in paths] if paths else [p for d in reversed(serving_dirs()) for p in sorted(d.glob("*.yaml"))]
    out: dict[str, tuple[str, dict]] = {}
    for f in files:
        prof = load_profile(f)
        device, engine, vals = serving_of(prof)
        device = _device_name(device, f)  # aliases resolve too
        shown = f.name if is_shipped(f) else str(f)  # a user's fit is never credited to the shipped file
        out[f"{device}/{engine}"] = (f"calibration:{shown}" if not paths else str(f), vals)
    return out


def find_serving(device: str, engine: str) -> tuple[str, dict] | None:
    """The shipped (or user) serving profile of a (device, engine) pair: (its path, its
    parameters), or None when that pair was never fitted."""
    for d in serving_dirs():
        for f in sorted(d.glob("*.yaml")):
            if f.name == f"{device}.{engine}.yaml":
                from planner.calibrate.profile import load_profile

                dev, eng, vals = serving_of(load_profile(f))
                _names_match(f, device, engine, dev, eng)
                return str(f), vals
    return None


def _device_name(name: str, f: Path) -> str:
    """The catalog name of a serving profile's ``hardware:`` (aliases resolve; never a file in
    the working folder: planner.catalog.hardware_by_name); an unknown device is an InputError
    naming the profile and the field."""
    from planner.catalog import hardware_by_name

    try:
        return hardware_by_name(name).name
    except InputError as exc:
        if exc.file:  # the device's own file is bad: that file's error
            raise
        raise InputError(exc.reason, file=str(f), field="hardware", value=name) from None


def _names_match(f: Path, device: str, engine: str, dev: str, eng: str) -> None:
    """A serving profile is found by its file name, ``<device>.<engine>.yaml``, and read by its
    content (load_serving keys it by ``hardware:`` and ``fitted.serving.engine``): the two
    must name the same pair, else estimate and the replay would use one file for two pairs."""
    if eng != engine:
        raise InputError(f"the file name says engine '{engine}', the profile was fitted on '{eng}' runs", file=str(f),
                         field="fitted.serving.engine", value=eng)
    if dev != device and _device_name(dev, f) != device:  # an alias of the device passes
        raise InputError(f"the file name says device '{device}', the profile is of another device", file=str(f),
                         field="hardware", value=dev)


class ServingChoice(NamedTuple):
    """What one device runs under an engine: the efficiency for the cost engine, the
    engine profile (its host time per step replaced by the fitted one), the serving
    parameters (fitted, carried or None), a label for estimate's ``efficiency`` line,
    ``profile``: the short name every output prints as "the profile used", and ``path``:
    which prediction path this is, the key of its measured error (planner.fidelity:
    fitted, carried, datasheet, generic or microbenchmark; :func:`expected_error`)."""

    efficiency: object
    engine: object
    parameters: dict | None
    label: str
    profile: str
    path: str


def is_shipped(path: str | Path) -> bool:
    """Whether a serving profile is one the package ships (in its calibration/serving/)."""
    from planner.locations import builtin_dir

    try:
        return Path(path).parent.samefile(builtin_dir("calibration") / SUBDIR)
    except OSError:
        return False


def shown_path(path: str | Path) -> str:
    """How outputs name a serving profile: ``calibration/serving/<file>`` for a shipped
    one, the full path of a user's (``$PLANNER_PATH``, the user calibration folder), so a
    prediction never credits the shipped profile with a user's fit."""
    return f"calibration/{SUBDIR}/{Path(path).name}" if is_shipped(path) else str(path)


def resolve_serving(hw, engine=None, calibration: str | None = None) -> ServingChoice:
    """The one rule for which profile a device uses (estimate, recommend, report, check):

    * an explicit ``calibration`` profile, or no engine / the generic one: the calibration
      lookup (planner.calibrate.lookup.resolve_efficiency), no serving parameters;
    * else the serving profile fitted on measured runs of this (device, engine) pair in
      ``calibration/serving/`` (its efficiencies, its host time per step);
    * else, a device never measured with that engine: its datasheet plus what the fitted
      devices of the engine carry over (serving_carry.unmeasured, the replay's rule too:
      the parameters of serving_carry.CARRIED, median over the fitted devices), said so
      in the label and the profile name (a device fitted with other engines takes the same
      rule: serving_carry.carried_over, ``own`` off). A device with its own calibration
      profile keeps its measured efficiencies and takes only the engine-scoped parameters.
    ``engine`` is an EngineProfile (planner.engine_profiles) or None; the choice carries it
    as the engine configures itself on this device (EngineProfile.on_device: its defaults
    by GPU class)."""
    from planner.calibrate.lookup import resolve_efficiency

    if engine is not None:
        engine = engine.on_device(hw)
    eff, label = resolve_efficiency(hw, calibration)
    name = getattr(engine, "name", None)
    datasheet = label.startswith("defaults")  # else a calibration profile (microbenchmarks or named)
    if calibration is not None:
        _check_serving_section(calibration)
    if calibration is not None or engine is None or name == "generic":
        return ServingChoice(eff, engine, None, label, label, "generic" if datasheet else "microbenchmark")
    found = find_serving(hw.name, name)
    if found is not None:
        eff, _ = resolve_efficiency(hw, found[0])
        vals = found[1]
        short = shown_path(found[0])
        per_request_us = vals.get("step_host_s_per_request", 0.0) * 1e6
        label = (f"serving profile {short} (fitted on measured {name} runs; host {vals['step_host_s'] * 1e3:.2f} "
                 f"ms/step" + (f" + {per_request_us:.1f} us/request" if per_request_us else "")
                 + f", wave sync {vals['wave_sync']:.2f})")
        return ServingChoice(eff, engine.model_copy(update=host_update(vals)), vals, label,
                             f"{short} (fitted on measured {name} runs)", "fitted")
    carry = None if datasheet else SP.ENGINE_SCOPE  # a device calibration keeps its own efficiencies
    pname, vals = SC.unmeasured(hw, name, engine, load_serving(), carry)
    if pname == SC.DATASHEET:
        return ServingChoice(eff, engine, None, label, f"{label}; no {name} profile fitted on any device",
                             "datasheet" if datasheet else "microbenchmark")
    what = pname.split(f"datasheet + {name} ", 1)[-1]  # "<parameters> of <fitted pairs>"
    sheet = SP.defaults(hw)
    if datasheet and any(vals[k] != sheet[k] for k in SC.DEVICE_FRACTIONS):
        eff = SP.efficiency(hw, vals, pname)  # the datasheet peaks at the carried fractions
    return ServingChoice(eff, engine.model_copy(update=host_update(vals)), vals,
                         f"{label}; {pname}",
                         f"datasheet + carried {name} parameters ({what})"
                         if datasheet else f"{label} + carried {name} parameters ({what})",
                         "carried" if datasheet else "microbenchmark")


def _check_serving_section(calibration: str) -> None:
    """An explicit calibration profile takes no serving parameters (its efficiencies only), but
    a serving section it holds is still checked: a malformed one is an InputError naming the
    field, never passed over in silence."""
    from planner.calibrate.profile import load_profile

    profile = load_profile(calibration)
    if "serving" in profile.fitted:
        serving_of(profile)


def host_update(vals: dict) -> dict:
    """An engine profile's host times replaced by a serving profile's fitted ones (a profile
    without the per-request one keeps the engine's, 0)."""
    up = {"host_step_us": vals["step_host_s"] * 1e6}
    if "step_host_s_per_request" in vals:
        up["host_request_us"] = vals["step_host_s_per_request"] * 1e6
    return up


def expected_error(choice: ServingChoice, device: str | None = None) -> dict:
    """The measured error of a choice's prediction path (planner.fidelity.expected_error:
    the shipped calibration/serving-fidelity.yaml), JSON-ready; the paths, as
    :func:`resolve_serving` decides them: ``fitted`` (a shipped serving profile of the pair:
    the leave-one-model-out error), ``carried`` (datasheet plus what the fitted devices of the
    engine carry: leave-one-device-out), ``datasheet`` (an engine no device was fitted with),
    ``generic`` (no engine named: the steady-state engine at datasheet efficiencies,
    engine-today), ``microbenchmark`` (a calibration profile: not measured on serving runs).
    With the ``device`` (catalog name): also its published checks' error (planner.fidelity);
    on the generic path, what naming an engine of :func:`fitted_engines` would give."""
    from planner.fidelity import expected_error as of_path

    return of_path(choice.path, device=device, engines=fitted_engines() if choice.path == "generic" else None,
                   engine=choice.engine.name if choice.engine is not None else None)


def fitted_engines() -> list[str]:
    """The engines some serving profile was fitted for: the ``<device>.<engine>.yaml`` names
    of the serving folders (:func:`find_serving`'s naming), without reading the files."""
    return sorted({f.stem.rsplit(".", 1)[-1] for d in serving_dirs() for f in d.glob("*.yaml") if "." in f.stem})


def replay_path(profile_name: str) -> str:
    """The prediction path of a replayed row's profile (planner.replay: the names
    :func:`load_serving` and serving_carry.unmeasured give): "datasheet", "datasheet + <engine>
    ..." (carried), "engine-today" (generic), else a serving profile's file (fitted): the
    key of its measured error, as :func:`resolve_serving` names the same paths."""
    if profile_name == SC.DATASHEET:
        return "datasheet"
    if profile_name.startswith(f"{SC.DATASHEET} + "):
        return "carried"
    return "generic" if profile_name == "engine-today" else "fitted"
