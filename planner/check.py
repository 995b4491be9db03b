"""CI regression checks: ``planner check CHECKS.yaml [--baseline F] [--update-baseline]``.

The checks file (its format and parsing: planner.check_file) lists checks; each evaluates
one thing (an estimate, a recommendation, a capacity plan) and asserts on its metrics.

Assertions are strings ``METRIC OP NUMBER`` with OP in <=, <, >=, >, ==. Tracked metrics
are also compared with a baseline snapshot (YAML) with a relative tolerance: a regression
is a change in the bad direction by more than the tolerance (higher is better for
throughput, accuracy, requests/s, utilization and fits; lower for everything else).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional

from planner.check_file import OPS, CheckSpec, check_field, load_checks
from planner.errors import InputError

HIGHER_IS_BETTER = {"throughput_tok_s", "accuracy", "requests_per_s", "utilization", "fits"}
DEFAULT_TRACK = {
    "estimate": ["ttft_s", "tpot_s", "latency_s", "throughput_tok_s", "energy_j", "cost_usd"],
    "recommend": ["accuracy", "latency_s", "energy_j", "usd_per_1k"],
    "capacity": ["fleet.devices", "fleet.monthly_usd", "fleet.usd_per_1k_requests", "accuracy"],
}
BASELINE_DIGITS = 6


def _flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, bool):
            out[key] = 1.0 if v else 0.0
        elif isinstance(v, (int, float)) and v is not None:
            out[key] = float(v)
    return out


def evaluate_check(spec: CheckSpec, base_dir: Path, file: str) -> tuple[dict[str, float], Optional[str], dict]:
    """Metrics of one check, a reason when there is nothing to measure (e.g. no
    recommendation meets the budgets), and the profile each device used (device name ->
    label: planner.serving_profile.resolve_serving, the rule every command follows)."""
    if spec.kind == "estimate":
        from planner.catalog import load_hardware, load_model
        from planner.cost.api import estimate
        from planner.serving_profile import resolve_serving

        e = spec.estimate
        h = load_hardware(e.hardware)
        cal = str(_rel(base_dir, e.calibration)) if e.calibration else None
        kw = e.model_dump(exclude={"model", "hardware", "calibration", "engine"})
        engine = None
        if e.engine is not None:
            from planner.engine_profiles import load_engine

            try:
                engine = load_engine(e.engine)
            except InputError as exc:
                raise InputError(exc.reason, field="engine", value=e.engine) from None  # in_file names the file
        choice = resolve_serving(h, engine, cal)
        r = estimate(load_model(e.model), h, efficiency=choice.efficiency, engine=choice.engine,
                     serving=choice.parameters, **kw)
        return _flatten(r), None, {h.name: choice.profile}
    if spec.kind == "recommend":
        from planner.catalog import parse_spec, read_yaml
        from planner.recommend import run
        from planner.specs import RecommendScenario

        data = dict(spec.recommend)
        if "scenario" in data:
            p = _rel(base_dir, str(data.pop("scenario")))
            base = parse_spec(RecommendScenario, read_yaml(p), str(p)).model_dump(exclude_unset=True)
            data = {**base, **data}
        try:
            scenario = parse_spec(RecommendScenario, data, file)
        except InputError as exc:  # the field as the checks file spells it (check_field)
            field = "recommend" + (f".{exc.field}" if exc.field else "")
            raise InputError(exc.reason, file=file, field=check_field(spec.name, field), value=exc.value,
                             has_value=exc.has_value) from None
        ans = run(scenario)
        used = ans.get("profiles_used", {})
        if not ans["recommendations"]:
            return {}, ans.get("status", "no recommendation"), used
        row = dict(ans["recommendations"][0])
        row.pop("interval_80", None)
        row["usd_per_1k"] = row["cost_usd"] * 1000.0
        return _flatten(row), None, used
    from planner.report import build

    data = build(str(_rel(base_dir, spec.capacity)))
    cands = data["plan"]["candidates"]
    used = {c["hardware"]: c.get("profile", c["efficiency"]) for c in cands}
    if spec.candidate is not None:
        names = [f"{c['model']} @ {c['hardware']}" for c in cands]
        want = " @ ".join(x.strip() for x in spec.candidate.split("@"))
        if want not in names:
            raise InputError(f"no such candidate (choose from {', '.join(names)})", file=file,
                             field=check_field(spec.name, "candidate"), value=spec.candidate)
        c = cands[names.index(want)]
    else:
        c = next((c for c in cands if f"{c['model']} @ {c['hardware']}" == data["cheapest"]), None)
        if c is None:
            return {}, "no candidate meets the SLOs", used
    if c["status"] != "ok":
        return {}, c["status"], used
    return _flatten({k: v for k, v in c.items() if k not in ("options",)}), None, used


def _rel(base_dir: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else base_dir / q


def load_baseline(path: Path) -> dict[str, dict[str, float]]:
    from planner.catalog import read_yaml

    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("checks", {}), dict):
        raise InputError("expected a mapping 'checks: {name: {metric: value}}'", file=str(path))
    out = {}
    for name, metrics in (data.get("checks") or {}).items():
        if not isinstance(metrics, dict):
            raise InputError("expected a mapping of metric to value", file=str(path), field=f"checks.{name}")
        for k, v in metrics.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError("expected a number", file=str(path), field=f"checks.{name}.{k}", value=v)
        out[str(name)] = {str(k): float(v) for k, v in metrics.items()}
    return out


def _check_overwritable(path: Path) -> None:
    """``--update-baseline`` writes only a file that does not exist yet or that is a
    baseline (a mapping with the one key ``checks``): never a scenario or checks file."""
    from planner.catalog import refuse_shipped
    from planner.safeload import is_file

    refuse_shipped(path, field="baseline", hint="give --baseline a file of your own")
    if not path.exists() and not path.is_symlink():
        return
    if not is_file(path):
        raise InputError("not a file: refusing to write the baseline there", file=str(path))
    try:
        from planner.catalog import read_yaml

        data = read_yaml(path)
        ok = data is None or (isinstance(data, dict) and set(data) <= {"checks"})
        if ok:
            load_baseline(path)
    except InputError:
        ok = False
    if not ok:
        raise InputError("not a baseline file (expected only 'checks: {name: {metric: value}}'): "
                         "refusing to overwrite it", file=str(path), field="baseline")


def dump_baseline(values: dict[str, dict[str, float]]) -> str:
    import yaml

    rounded = {n: {k: float(f"{v:.{BASELINE_DIGITS}g}") for k, v in m.items()} for n, m in values.items()}
    head = ("# planner check baseline: tracked metric values per check, compared with a relative tolerance.\n"
            "# Written by `planner check CHECKS.yaml --update-baseline`; edit only to accept a change.\n")
    return head + yaml.safe_dump({"checks": rounded}, sort_keys=False, default_flow_style=False)


def regression(metric: str, old: float, new: float, tol: float) -> tuple[str, Optional[float]]:
    """(status, relative change): status is pass, fail (worse beyond tol) or improved."""
    change = None if old == 0 else (new - old) / abs(old)
    higher = metric.rsplit(".", 1)[-1] in HIGHER_IS_BETTER
    worse = (new < old - tol * abs(old)) if higher else (new > old + tol * abs(old))
    better = (new > old + tol * abs(old)) if higher else (new < old - tol * abs(old))
    if worse and not math.isclose(new, old, rel_tol=1e-12, abs_tol=1e-300):
        return "fail", change
    return ("improved" if better else "pass"), change


def run_checks(path: str, baseline: Optional[str] = None, update_baseline: bool = False) -> dict[str, Any]:
    """Evaluate every check; returns a JSON-ready verdict (and writes the baseline when
    asked). Bad input raises InputError; failures are in the verdict, not raised."""
    cf = load_checks(path)
    base_dir = Path(path).resolve().parent
    bpath = Path(baseline) if baseline else (_rel(base_dir, cf.baseline) if cf.baseline else None)
    if update_baseline and bpath is None:
        raise InputError("no baseline file: give --baseline or a 'baseline:' field", file=path, field="baseline")
    old: dict[str, dict[str, float]] = {}
    if update_baseline:
        _check_overwritable(bpath)
    if bpath is not None and not update_baseline:
        from planner.safeload import is_file

        if os.path.isdir(bpath):
            raise InputError("is a folder, not a file", file=str(bpath), field="baseline")
        if not is_file(bpath):
            raise InputError("baseline file not found (create it with --update-baseline)", file=str(bpath))
        old = load_baseline(bpath)
    results, snapshot = [], {}
    for spec in cf.checks:
        try:
            metrics, missing, used = evaluate_check(spec, base_dir, path)
        except InputError as exc:  # a field of this check names the checks file
            from planner.errors import in_file

            raise in_file(exc, path, check_field(spec.name, f"{spec.kind}.")) from None
        tol = cf.tolerance if spec.tolerance is None else spec.tolerance
        items = []
        for metric, op, bound in spec.assertions():
            if missing is not None:
                items.append(_item("assert", metric, f"{op} {bound:g}", None, None, "fail", missing))
                continue
            if metric not in metrics:
                raise InputError(f"unknown metric (available: {', '.join(sorted(metrics))})", file=path,
                                 field=check_field(spec.name, "assert"), value=metric)
            v = metrics[metric]
            ok = OPS[op](v, bound)
            items.append(_item("assert", metric, f"{op} {bound:g}", None, v, "pass" if ok else "fail",
                               "" if ok else f"{metric} = {v:.6g}, expected {op} {bound:g}"))
        track = spec.track if spec.track is not None else _default_track(spec)
        snap = {}
        for metric in track:
            if missing is not None:
                continue
            if metric not in metrics:
                if spec.track is not None:
                    raise InputError(f"unknown metric (available: {', '.join(sorted(metrics))})", file=path,
                                     field=check_field(spec.name, "track"), value=metric)
                continue  # a default metric this result lacks (e.g. accuracy n/a)
            v = metrics[metric]
            snap[metric] = v
            if bpath is None:
                continue
            if update_baseline:
                items.append(_item("baseline", metric, f"within {tol * 100:g}%", None, v, "updated", ""))
                continue
            prev = old.get(spec.name, {}).get(metric)
            if prev is None:
                items.append(_item("baseline", metric, f"within {tol * 100:g}%", None, v, "new", "not in the baseline"))
                continue
            status, change = regression(metric, prev, v, tol)
            msg = "" if status != "fail" else (f"{metric} regressed {change:+.1%} (baseline {prev:.6g}, now {v:.6g}, "
                                               f"tolerance {tol:.0%})" if change is not None else
                                               f"{metric} regressed from {prev:.6g} to {v:.6g}")
            items.append(_item("baseline", metric, f"within {tol * 100:g}%", prev, v, status, msg, change))
        if missing is not None and not spec.asserts:
            items.append(_item("assert", "-", "", None, None, "fail", missing))
        snapshot[spec.name] = snap
        passed = all(i["status"] != "fail" for i in items)
        results.append({"name": spec.name, "kind": spec.kind, "passed": passed, "items": items, "profiles": used})
    if update_baseline:
        from planner.report import _save

        _save(bpath, dump_baseline(snapshot))
    failed = [r["name"] for r in results if not r["passed"]]
    return {"file": str(path), "baseline": None if bpath is None else str(bpath), "updated_baseline": update_baseline,
            "passed": not failed, "checks": results,
            "summary": {"checks": len(results), "failed": len(failed), "failed_names": failed,
                        "assertions": sum(1 for r in results for i in r["items"] if i["type"] == "assert"),
                        "baseline_comparisons": sum(1 for r in results for i in r["items"] if i["type"] == "baseline")}}


def _default_track(spec: CheckSpec) -> list[str]:
    track = list(DEFAULT_TRACK[spec.kind])
    for metric, _, _ in spec.assertions():
        if metric not in track:
            track.append(metric)
    return track


def _item(type_, metric, rule, old, new, status, message, change=None) -> dict:
    return {"type": type_, "metric": metric, "rule": rule, "old": old, "new": new,
            "change": change if change is not None else (None if old in (None, 0) or new is None
                                                         else (new - old) / abs(old)),
            "status": status, "message": message}


def junit_xml(verdict: dict) -> str:
    """JUnit XML: one testcase per check, a <failure> listing what failed."""
    import xml.etree.ElementTree as ET

    n, f = verdict["summary"]["checks"], verdict["summary"]["failed"]
    root = ET.Element("testsuites", name="planner check", tests=str(n), failures=str(f), errors="0")
    suite = ET.SubElement(root, "testsuite", name=f"planner check {Path(verdict['file']).name}", tests=str(n),
                          failures=str(f), errors="0", skipped="0", time="0")
    for r in verdict["checks"]:
        case = ET.SubElement(suite, "testcase", classname=f"planner.check.{r['kind']}", name=r["name"], time="0")
        lines = [f"{i['type']} {i['metric']} {i['rule']}: old {_num(i['old'])} new {_num(i['new'])} -> {i['status']}"
                 for i in r["items"]]
        if not r["passed"]:
            msgs = [i["message"] for i in r["items"] if i["status"] == "fail"]
            fail = ET.SubElement(case, "failure", message="; ".join(msgs), type="CheckFailed")
            fail.text = "\n".join(lines)
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(lines)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _num(x) -> str:
    return "-" if x is None else f"{x:.6g}"
