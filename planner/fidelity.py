"""The measured error of each prediction path: ``calibration/serving-fidelity.yaml``.

A serving prediction takes one of a few paths (decided in one place,
planner.serving_profile.resolve_serving, its ``path`` field):

* ``fitted``: a (device, engine) pair with a shipped serving profile fitted on measured runs;
  its honest out-of-sample figure is the leave-one-model-out error (a model the fit never saw);
* ``carried``: a device never measured with the engine: its datasheet plus the parameters the
  fitted devices carry (planner.serving_carry.unmeasured); measured by leave-one-device-out;
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

Its ``published`` section: per catalog device that a published check file covers (the files
benchmarks/unmeasured_devices.py replays: tests/data/*.csv, runs nobody fitted on), the rows,
the median and p90 of |error| of TTFT and TPOT, the prediction paths the rows took and the
files they came from (name, harness, engines, rows), scored as ``planner validate --measured
FILE --json`` scores them (the shipped profiles). A device with no measurements of its own
(the ``carried`` and ``datasheet`` paths) states its published figure where it has one, else
that it has none (:func:`describe`), beside the Hopper one.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
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
# paths whose published rows are replayed as the path predicts (the shipped profiles), so the
# device's published entry is their figure too; DEVICE_PATHS print it (no measurement of their own)
PUBLISHED_PATHS = ("fitted", "carried", "datasheet")
DEVICE_PATHS = ("carried", "datasheet")


@lru_cache(maxsize=1)
def shipped_path() -> Path:
    from planner.locations import builtin_dir

    return builtin_dir("calibration") / FILE_NAME


def _pct(x: float, digits: int) -> float:
    """A fraction as the percent figure the benchmark prints (``f"{x:.{digits}%}"``)."""
    return float(f"{x:.{digits}%}"[:-1])


def _figures(st: dict) -> dict:
    return {k: {"median_abs_pct": _pct(st[k]["median_abs"], 2), "p90_abs_pct": _pct(st[k]["p90_abs"], 1)}
            for k in ("ttft", "tpot")}


def published_doc(files: dict, devices: dict) -> dict:
    """The ``published`` section: ``files`` (file name -> {"sha256", "harness"}) and ``devices``
    (catalog name -> {"rows", "ttft", "tpot" (planner.replay_scoring.error_stats of the device's
    predicted rows, all files pooled), "paths" (path -> rows), "sources" (a list of {"file",
    "harness", "engines", "rows"}), "engines" (engine -> {"rows", "ttft", "tpot"}: the same
    figures over that engine's rows)})."""
    return {"what": "the published check files replayed with the shipped profiles; nothing fitted on them",
            "files": {f: dict(v) for f, v in files.items()},
            "devices": {d: {"rows": int(v["rows"]), **_figures(v), "paths": dict(v["paths"]),
                            "sources": [dict(s) for s in v["sources"]],
                            "engines": {e: {"rows": int(x["rows"]), **_figures(x)}
                                        for e, x in sorted(v["engines"].items())}}
                        for d, v in sorted(devices.items())}}


def summary_doc(results: dict, sources: dict, published: dict) -> dict:
    """The file's content from benchmarks/serving_fidelity.py's results (predictor ->
    planner.replay_scoring.summarize output), its ``sources`` (:data:`SOURCE_FIELDS`) and the
    :func:`published_doc` section."""
    paths: dict[str, Any] = {}
    for path, (predictor, _) in MEASURED.items():
        st = results[predictor]
        paths[path] = {"measured": True, "predictor": predictor, "rows": int(st["ttft"]["n"]), **_figures(st)}
    for path in UNMEASURED:
        paths[path] = {"measured": False}
    return {"format": FORMAT, "sources": dict(sources), "paths": paths, "published": published}


def _need(cond: bool, reason: str, file: str, field: str, value: Any = None) -> None:
    if not cond:
        raise InputError(reason, file=file, field=field, value=value, has_value=value is not None)


def _check_figure(v: Any, file: str, field: str) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    _need(ok, "must be a percentage, a finite number >= 0", file, field, v)
    return float(v)


def _check_count(v: Any, file: str, field: str) -> int:
    _need(isinstance(v, int) and not isinstance(v, bool) and v > 0, "must be a whole number > 0", file, field, v)
    return v


def _check_figures(e: dict, file: str, at: str) -> None:
    for k in ("ttft", "tpot"):
        f = e.get(k)
        _need(isinstance(f, dict), "must hold median_abs_pct and p90_abs_pct", file, f"{at}.{k}", f)
        med = _check_figure(f.get("median_abs_pct"), file, f"{at}.{k}.median_abs_pct")
        p90 = _check_figure(f.get("p90_abs_pct"), file, f"{at}.{k}.p90_abs_pct")
        _need(med <= p90, "the median is above the p90", file, f"{at}.{k}.median_abs_pct", med)


def _mapping(v: Any, reason: str, file: str, at: str) -> dict:
    """``v`` when it is a non-empty mapping, else the InputError naming ``at``."""
    _need(isinstance(v, dict) and bool(v), reason, file, at, v)
    return v


def _check_entry(e: Any, file: str, at: str) -> int:
    """A published entry (a device's, or one engine's on it): a mapping with its ``rows`` and
    TTFT / TPOT figures; its rows."""
    _need(isinstance(e, dict), "must be a mapping", file, at, e)
    rows = _check_count(e.get("rows"), file, f"{at}.rows")
    _check_figures(e, file, at)
    return rows


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _check_published(pub: Any, file: str) -> dict:
    """The ``published`` section (:func:`published_doc`'s shape), or an InputError naming the field."""
    _need(isinstance(pub, dict), "must hold the published checks' files and devices", file, "published", pub)
    files = _mapping(pub.get("files"), "must map each check file to its sha256 and harness", file, "published.files")
    for name, f in files.items():
        at = f"published.files.{name}"
        _need(isinstance(f, dict), "must hold sha256 and harness", file, at, f)
        for k in ("sha256", "harness"):
            _need(_text(f.get(k)), "must be a non-empty text", file, f"{at}.{k}", f.get(k))
    devices = _mapping(pub.get("devices"), "must map each device to its published error", file, "published.devices")
    for dev, e in devices.items():
        at = f"published.devices.{dev}"
        rows = _check_entry(e, file, at)
        paths = e.get("paths")
        _need(isinstance(paths, dict) and bool(paths) and set(paths) <= set(PUBLISHED_PATHS),
              f"must map paths ({', '.join(PUBLISHED_PATHS)}) to rows", file, f"{at}.paths", paths)
        for p, n in paths.items():
            _check_count(n, file, f"{at}.paths.{p}")
        _need(sum(paths.values()) == rows, f"must add up to rows ({rows})", file, f"{at}.paths", paths)
        srcs = e.get("sources")
        _need(isinstance(srcs, list) and bool(srcs), "must list the files the rows came from", file,
              f"{at}.sources", srcs)
        for i, s in enumerate(srcs):
            _need(isinstance(s, dict) and s.get("file") in files, "must name a file of published.files", file,
                  f"{at}.sources[{i}].file", s.get("file") if isinstance(s, dict) else s)
            _need(_text(s.get("harness")), "must be a non-empty text", file, f"{at}.sources[{i}].harness",
                  s.get("harness"))
            eng = s.get("engines")
            _need(isinstance(eng, list) and bool(eng) and all(_text(x) for x in eng), "must list engine names", file,
                  f"{at}.sources[{i}].engines", eng)
            _check_count(s.get("rows"), file, f"{at}.sources[{i}].rows")
        _need(sum(s["rows"] for s in srcs) == rows, f"must add up to rows ({rows})", file, f"{at}.sources", srcs)
        engines = _mapping(e.get("engines"), "must map each engine of the rows to its error", file, f"{at}.engines")
        for name, x in engines.items():
            _check_entry(x, file, f"{at}.engines.{name}")
        _need(sum(x["rows"] for x in engines.values()) == rows, f"must add up to rows ({rows})", file,
              f"{at}.engines", engines)
    return pub


def read(path: str | Path | None = None) -> dict:
    """The validated file (default: the shipped one): ``{"sources": {...}, "paths": {path:
    entry}}``; an InputError naming the file and the field otherwise. Read and checked once
    per process while the file's modification time and size stay the same (callers only
    read the mapping it returns)."""
    path = Path(path) if path is not None else shipped_path()
    key = state(path)
    if key in _READ:
        return _READ[key]
    doc = _read(path)
    if key[1] is not None:
        if len(_READ) >= 16:
            _READ.clear()
        _READ[key] = doc
    return doc


_READ: dict = {}


def state(path: str | Path | None = None) -> tuple:
    """The file's identity for memos (its path, modification time and size; None for a
    missing file): what :func:`read` keys its cache by."""
    path = shipped_path() if path is None else path
    try:
        st = os.stat(path)
    except OSError:
        return (str(path), None, None)
    return (str(path), st.st_mtime_ns, st.st_size)


def _read(path: Path) -> dict:
    from planner.catalog import read_yaml

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
        _check_count(e.get("rows"), file, f"paths.{name}.rows")
        _check_figures(e, file, f"paths.{name}")
    devices = src.get("devices")
    _need(devices is None or (isinstance(devices, list) and all(isinstance(d, str) for d in devices)),
          "must list device names", file, "sources.devices", devices)
    return {"file": file, "sources": src, "paths": paths, "published": _check_published(doc.get("published"), file)}


def _fractions(e: dict) -> dict:
    return {k: {"median_abs": round(e[k]["median_abs_pct"] / 100, 6), "p90_abs": round(e[k]["p90_abs_pct"] / 100, 6)}
            for k in ("ttft", "tpot")}


def expected_error(path_name: str, file: str | Path | None = None, device: str | None = None,
                   engines: list[str] | None = None, engine: str | None = None) -> dict:
    """One path's measured error, JSON-ready: ``{"path", "measured", "what", "source"}`` plus,
    for a measured path, ``rows``, ``devices``, ``predictor`` and ``ttft`` / ``tpot`` as
    ``{"median_abs", "p90_abs"}`` fractions; an unmeasured one says :data:`NOT_MEASURED`.
    With a ``device`` (catalog name): ``device`` and ``published``, the device's entry of the
    published section (its ``rows``, ``ttft`` / ``tpot`` fractions, ``paths``, ``sources``) on
    a path those rows were replayed on (:data:`PUBLISHED_PATHS`), else None; with the ``engine``
    too, ``published.engine``: that engine's name and its rows' ``rows``, ``ttft``, ``tpot`` (the
    name alone where the device's published rows hold none of it). On the generic
    path with the ``engines`` that have fitted profiles: ``with_engine``, the fitted path's
    figures, what naming one of them gives on the devices they were fitted on."""
    if path_name not in PATHS:
        raise InputError(f"unknown prediction path (choose from {', '.join(PATHS)})", field="path", value=path_name)
    doc = read(file)
    e = doc["paths"][path_name]
    out = {"path": path_name, "measured": e["measured"], "what": MEASURED.get(path_name, (None, None))[1]
           or UNMEASURED[path_name], "source": f"calibration/{FILE_NAME}" if file is None else str(file)}
    if device is not None:
        p = doc["published"]["devices"].get(device) if path_name in PUBLISHED_PATHS else None
        out.update(device=device, published=None if p is None else {
            "rows": p["rows"], **_fractions(p), "paths": dict(p["paths"]), "sources": [dict(s) for s in p["sources"]]})
        if p is not None and engine is not None:
            x = p["engines"].get(engine)
            out["published"]["engine"] = {"name": engine, **({"rows": x["rows"], **_fractions(x)} if x else {})}
    if not e["measured"]:
        return {**out, "note": NOT_MEASURED}
    devices = doc["sources"].get("devices")
    out = {**out, "predictor": MEASURED[path_name][0], "rows": e["rows"], "devices": None if devices is None else list(devices),
           **_fractions(e)}
    if path_name == "generic" and engines:
        out["with_engine"] = {"path": "fitted", "engines": list(engines), **_fractions(doc["paths"]["fitted"])}
    return out


# what a prediction's figures were measured under: the replay runs every measured path
# (fitted, carried, datasheet) as the benchmarks do, a closed loop at a fixed concurrency; the
# generic path's figure is the steady-state engine's, which is what it predicts
REPLAYED_UNDER = "closed-loop replays"
OTHER_ARRIVALS = {"steady": "the steady state here", "poisson": "Poisson arrivals here",
                  "static": "static batches here"}


def _differs(err: dict, arrival: str) -> bool:
    """Whether a prediction made under ``arrival`` is not what the path's figures measured:
    every measured path but the generic one was replayed as a closed loop (the generic
    path's figure is the steady-state engine's, which is what it predicts)."""
    return bool(err.get("measured")) and err.get("path") != "generic" and arrival in OTHER_ARRIVALS


def with_arrival(err: dict, arrival: str) -> dict:
    """The JSON form of the qualifier :func:`lead_for` prints: ``err`` plus ``predicted_under``
    (the arrival pattern of this prediction: closed, poisson, steady, or static for a static
    batch) and, for a measured path, ``measured_under`` (what its figures were measured on,
    :data:`REPLAYED_UNDER`) and ``same_as_measured``."""
    out = {**err, "predicted_under": arrival}
    if err.get("measured"):
        out.update(measured_under=REPLAYED_UNDER, same_as_measured=not _differs(err, arrival))
    return out


def lead_for(err: dict, arrival: str) -> str:
    """The line's lead for a prediction made under ``arrival`` (closed, poisson, steady, or
    static for a static batch and the search's batches): where that is not how the path's
    figures were measured (:data:`REPLAYED_UNDER`), it says so, e.g. ``measured error of
    this path on closed-loop replays, the steady state here``."""
    lead = "measured error of this path"
    return f"{lead} on {REPLAYED_UNDER}, {OTHER_ARRIVALS[arrival]}" if _differs(err, arrival) else lead


def describe(err: dict, lead: str | None = None) -> str:
    """The one line every output prints, e.g. ``measured error of this path (fitted,
    leave-one-model-out, 1,294 runs on h100-sxm, h200): median TTFT 33%, TPOT 14% (p90 96%,
    48%)``: median |error| of TTFT and TPOT, then their p90. On a path with no measurement of
    the device (:data:`DEVICE_PATHS`) and a ``device`` given: the device's published figures
    first and the Hopper one after (``(carried; published runs of mi300x, 35 rows (sglang,
    vllm): median TTFT 88%, TPOT 58% (p90 ...); leave-one-device-out, 1,294 runs on h100-sxm,
    h200: 37% / 17%)``), or, with none, ``; no published check of <device>`` after it. The
    lead (default): :func:`lead_for` the arrival the prediction was made under (``predicted_under``,
    :func:`with_arrival`), else ``measured error of this path``."""
    if lead is None:
        lead = lead_for(err, err["predicted_under"]) if "predicted_under" in err else "measured error of this path"
    if not err["measured"]:
        return f"{lead} ({err['what']}): {NOT_MEASURED}"
    on = f" on {', '.join(err['devices'])}" if err.get("devices") else ""
    a, b = err["ttft"], err["tpot"]
    own = err["path"] in DEVICE_PATHS and err.get("device") is not None
    pub = err.get("published") if own else None
    if pub is not None:
        engines = list(dict.fromkeys(e for s in pub["sources"] for e in s["engines"]))
        hopper = (f"{err['what'].split(', ')[-1]}, {err['rows']:,} runs{on}: "
                  f"{a['median_abs']:.0%} / {b['median_abs']:.0%}")
        own_engine = pub.get("engine") or {}
        pooled = f"{pub['rows']:,} rows ({', '.join(engines)})"
        if "rows" in own_engine and engines != [own_engine["name"]]:  # that engine's rows first, then all of them
            pa, pb = own_engine["ttft"], own_engine["tpot"]
            return (f"{lead} ({err['path']}; published runs of {err['device']} with {own_engine['name']}, "
                    f"{own_engine['rows']:,} rows: median TTFT {pa['median_abs']:.0%}, TPOT {pb['median_abs']:.0%} "
                    f"(p90 {pa['p90_abs']:.0%}, {pb['p90_abs']:.0%}); all its published runs, {pooled}: "
                    f"{pub['ttft']['median_abs']:.0%} / {pub['tpot']['median_abs']:.0%}; {hopper})")
        none = f", none with {own_engine['name']}" if own_engine and "rows" not in own_engine else ""
        pa, pb = pub["ttft"], pub["tpot"]
        return (f"{lead} ({err['path']}; published runs of {err['device']}, {pooled}{none}: median "
                f"TTFT {pa['median_abs']:.0%}, TPOT {pb['median_abs']:.0%} (p90 {pa['p90_abs']:.0%}, "
                f"{pb['p90_abs']:.0%}); {hopper})")
    none = f"; no published check of {err['device']}" if own else ""
    w = err.get("with_engine")
    hint = (f"; with an engine named ({', '.join(w['engines'])}): {w['ttft']['median_abs']:.0%} / "
            f"{w['tpot']['median_abs']:.0%} on the fitted devices" if w else "")
    return (f"{lead} ({err['what']}, {err['rows']:,} runs{on}): median TTFT {a['median_abs']:.0%}, TPOT "
            f"{b['median_abs']:.0%} (p90 {a['p90_abs']:.0%}, {b['p90_abs']:.0%}){none}{hint}")
