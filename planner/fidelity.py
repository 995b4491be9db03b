"""The measured error of each prediction path: ``calibration/serving-fidelity.yaml``.

A serving prediction takes one of a few paths (decided in one place,
planner.serving_profile.resolve_serving, its ``path`` field):

* ``fitted``: a (device, engine) pair with a shipped serving profile fitted on measured runs;
  its honest out-of-sample figure is the leave-one-model-out error (a model the fit never saw);
* ``carried``: a device never measured with the engine: its datasheet plus the parameters the
  fitted devices carry (planner.serving_params.unmeasured); measured by leave-one-device-out;
* ``datasheet``: no profile and nothing carried (an engine no device was fitted with): the
  scheduler model at datasheet figures and the engine profile's defaults;
* ``generic``: no serving engine named (the generic engine, datasheet efficiencies): the
  steady-state cost engine with no host time, the ``engine-today`` predictor;
* ``microbenchmark``: a calibration profile (microbenchmarks, or one named with
  --calibration): not measured on serving runs, so no figures.

The figures are the median and p90 of |predicted / measured - 1| over every measured row,
written by ``python benchmarks/serving_fidelity.py --write-error-summary PATH`` from that
run's own results (:func:`summary_doc`), in percent as that script prints them (median to
the hundredth, p90 to the tenth), with a ``sources`` field naming the command, the measured
file and its SHA-256, the date and the commit. :func:`read` validates the file (a bad or
missing one is one InputError naming the file and the field); :func:`expected_error` gives
one path's entry and :func:`describe` its one-line text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from planner.errors import InputError

FILE_NAME = "serving-fidelity.yaml"
FORMAT = "planner-serving-fidelity"

# path -> (the predictor of benchmarks/serving_fidelity.py that measures it, how it is said)
MEASURED = {
    "fitted": ("leave-one-model-out", "fitted, leave-one-model-out"),
    "carried": ("leave-one-device-out", "carried, leave-one-device-out"),
    "datasheet": ("datasheet", "datasheet alone"),
    "generic": ("engine-today", "no engine named: no host time"),
}
UNMEASURED = {"microbenchmark": "a calibration profile"}
PATHS = (*MEASURED, *UNMEASURED)
NOT_MEASURED = "not measured on serving runs"
SOURCE_FIELDS = ("command", "measured_file", "measured_file_sha256", "date", "commit")


def shipped_path() -> Path:
    from planner.locations import builtin_dir

    return builtin_dir("calibration") / FILE_NAME


def _pct(x: float, digits: int) -> float:
    """A fraction as the percent figure the benchmark prints (``f"{x:.{digits}%}"``)."""
    return float(f"{x:.{digits}%}"[:-1])


def summary_doc(results: dict, sources: dict) -> dict:
    """The file's content from benchmarks/serving_fidelity.py's results (predictor ->
    planner.replay_scoring.summarize output) and its ``sources`` (:data:`SOURCE_FIELDS`)."""
    paths: dict[str, Any] = {}
    for path, (predictor, _) in MEASURED.items():
        st = results[predictor]
        paths[path] = {"measured": True, "predictor": predictor, "rows": int(st["ttft"]["n"]),
                       **{k: {"median_abs_pct": _pct(st[k]["median_abs"], 2), "p90_abs_pct": _pct(st[k]["p90_abs"], 1)}
                          for k in ("ttft", "tpot")}}
    for path in UNMEASURED:
        paths[path] = {"measured": False}
    return {"format": FORMAT, "sources": dict(sources), "paths": paths}


def _need(cond: bool, reason: str, file: str, field: str, value: Any = None) -> None:
    if not cond:
        raise InputError(reason, file=file, field=field, value=value, has_value=value is not None)


def _check_figure(v: Any, file: str, field: str) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    _need(ok, "must be a percentage, a finite number >= 0", file, field, v)
    return float(v)


def read(path: str | Path | None = None) -> dict:
    """The validated file (default: the shipped one): ``{"sources": {...}, "paths": {path:
    entry}}``; an InputError naming the file and the field otherwise."""
    from planner.catalog import read_yaml

    path = Path(path) if path is not None else shipped_path()
    file = str(path)
    if not path.is_file():
        raise InputError(f"missing: the measured error of each prediction path (write it with python "
                         f"benchmarks/serving_fidelity.py --write-error-summary {FILE_NAME})", file=file)
    doc = read_yaml(path)
    _need(isinstance(doc, dict), "must be a mapping", file, None)
    _need(doc.get("format") == FORMAT, f"must be '{FORMAT}'", file, "format", doc.get("format"))
    src = doc.get("sources")
    _need(isinstance(src, dict), "must map command, measured_file, ... to text", file, "sources", src)
    for k in SOURCE_FIELDS:
        _need(isinstance(src.get(k), str) and bool(src[k].strip()), "must be a non-empty text", file,
              f"sources.{k}", src.get(k))
    paths = doc.get("paths")
    _need(isinstance(paths, dict), "must map each prediction path to its error", file, "paths", paths)
    for name in PATHS:
        e = paths.get(name)
        _need(isinstance(e, dict), f"missing or not a mapping (every path: {', '.join(PATHS)})", file,
              f"paths.{name}", e)
        measured = name in MEASURED
        _need(e.get("measured") is measured, f"must be {str(measured).lower()}", file, f"paths.{name}.measured",
              e.get("measured"))
        if not measured:
            continue
        _need(e.get("predictor") == MEASURED[name][0], f"must be '{MEASURED[name][0]}'", file,
              f"paths.{name}.predictor", e.get("predictor"))
        rows = e.get("rows")
        _need(isinstance(rows, int) and not isinstance(rows, bool) and rows > 0, "must be a whole number > 0", file,
              f"paths.{name}.rows", rows)
        for k in ("ttft", "tpot"):
            f = e.get(k)
            _need(isinstance(f, dict), "must hold median_abs_pct and p90_abs_pct", file, f"paths.{name}.{k}", f)
            med = _check_figure(f.get("median_abs_pct"), file, f"paths.{name}.{k}.median_abs_pct")
            p90 = _check_figure(f.get("p90_abs_pct"), file, f"paths.{name}.{k}.p90_abs_pct")
            _need(med <= p90, "the median is above the p90", file, f"paths.{name}.{k}.median_abs_pct", med)
    devices = src.get("devices")
    _need(devices is None or (isinstance(devices, list) and all(isinstance(d, str) for d in devices)),
          "must list device names", file, "sources.devices", devices)
    return {"file": file, "sources": src, "paths": paths}


def expected_error(path_name: str, file: str | Path | None = None) -> dict:
    """One path's measured error, JSON-ready: ``{"path", "measured", "what", "source"}`` plus,
    for a measured path, ``rows``, ``devices``, ``predictor`` and ``ttft`` / ``tpot`` as
    ``{"median_abs", "p90_abs"}`` fractions; an unmeasured one says :data:`NOT_MEASURED`."""
    if path_name not in PATHS:
        raise InputError(f"unknown prediction path (choose from {', '.join(PATHS)})", field="path", value=path_name)
    doc = read(file)
    e = doc["paths"][path_name]
    out = {"path": path_name, "measured": e["measured"], "what": MEASURED.get(path_name, (None, None))[1]
           or UNMEASURED[path_name], "source": f"calibration/{FILE_NAME}" if file is None else str(file)}
    if not e["measured"]:
        return {**out, "note": NOT_MEASURED}
    return {**out, "predictor": MEASURED[path_name][0], "rows": e["rows"], "devices": doc["sources"].get("devices"),
            **{k: {"median_abs": round(e[k]["median_abs_pct"] / 100, 6), "p90_abs": round(e[k]["p90_abs_pct"] / 100, 6)}
               for k in ("ttft", "tpot")}}


def describe(err: dict, lead: str = "measured error of this path") -> str:
    """The one line every output prints, e.g. ``measured error of this path (fitted,
    leave-one-model-out, 1,294 runs on h100-sxm, h200): median TTFT 33%, TPOT 14% (p90 96%,
    48%)``: median |error| of TTFT and TPOT, then their p90."""
    if not err["measured"]:
        return f"{lead} ({err['what']}): {NOT_MEASURED}"
    on = f" on {', '.join(err['devices'])}" if err.get("devices") else ""
    a, b = err["ttft"], err["tpot"]
    return (f"{lead} ({err['what']}, {err['rows']:,} runs{on}): median TTFT {a['median_abs']:.0%}, TPOT "
            f"{b['median_abs']:.0%} (p90 {a['p90_abs']:.0%}, {b['p90_abs']:.0%})")
