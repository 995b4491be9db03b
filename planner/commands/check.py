"""`planner check`: CI regression checks on estimates, recommendations and capacity plans."""

from __future__ import annotations

from typing import Optional

import typer

from planner.commands import options as opt


def check_cmd(
    checks: str = typer.Argument(..., help="Checks YAML (see examples/checks.yaml)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Baseline snapshot YAML (default: the checks "
                                                                    "file's 'baseline:')."),
    update_baseline: bool = typer.Option(False, "--update-baseline", help="Write the current values as the baseline."),
    junit: Optional[str] = typer.Option(None, "--junit", help="Write JUnit XML to this file."),
    json_out: bool = opt.json_flag("Print the verdict as JSON."),
) -> None:
    """Evaluate the checks; exit 0 when all hold, 1 when any fails, 2 on bad input."""
    from planner.check import junit_xml, run_checks
    from planner.commands.output import print_json
    from planner.errors import CheckFailed

    if junit:  # refused before the checks run
        from planner.catalog import refuse_input, refuse_shipped

        refuse_shipped(junit, field="junit")
        refuse_input(junit, [checks, baseline], field="junit")
    verdict = run_checks(checks, baseline, update_baseline)
    if junit:
        from planner.report import _save

        refuse_input(junit, [verdict["baseline"]], field="junit")  # the checks file's 'baseline:'

        _save(junit, junit_xml(verdict))
    if json_out:
        print_json(verdict)
    else:
        print_verdict(verdict)
    s = verdict["summary"]
    if s["failed"]:
        raise CheckFailed(f"{s['failed']} of {s['checks']} checks failed: {', '.join(s['failed_names'])}")


def print_verdict(v: dict) -> None:
    from rich.table import Table

    from planner.commands.output import console

    con = console()
    t = Table(title=f"planner check {v['file']}")
    for col in ("check", "metric", "rule", "baseline", "value", "change", "status"):
        t.add_column(col, justify="right" if col in ("baseline", "value", "change") else "left",
                     overflow="fold", no_wrap=col in ("rule", "status"))
    for r in v["checks"]:
        for i, it in enumerate(r["items"]):
            status = {"fail": "[bold red]FAIL[/]", "pass": "pass", "improved": "[green]improved[/]", "new": "new",
                      "updated": "updated"}[it["status"]]
            t.add_row(f"{r['name']} ({r['kind']})" if i == 0 else "", it["metric"], it["rule"],
                      _num(it["old"]), _num(it["new"]), _pct(it["change"]), status)
    con.print(t)
    used: dict[tuple[str, str], list[str]] = {}
    for r in v["checks"]:
        for hw, label in r.get("profiles", {}).items():
            used.setdefault((hw, label), []).append(r["name"])
    for (hw, label), names in used.items():
        con.print(f"profile for {hw}: {label} ({', '.join(names)})", markup=False)
    for r in v["checks"]:
        for it in r["items"]:
            if it["status"] == "fail":
                con.print(f"FAIL {r['name']}: {it['message']}", markup=False)
    s = v["summary"]
    tail = f"; baseline {v['baseline']} updated" if v["updated_baseline"] else ""
    con.print(f"{s['checks'] - s['failed']} of {s['checks']} checks passed ({s['assertions']} assertions, "
              f"{s['baseline_comparisons']} baseline comparisons){tail}", markup=False)


def _pct(x) -> str:
    if x is None:
        return ""
    return "+0.0%" if abs(x) < 5e-4 else f"{x:+.1%}"


def _num(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)
