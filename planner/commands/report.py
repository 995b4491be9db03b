"""`planner report`: a capacity plan (fleet per candidate, cost, plots) as HTML or Markdown."""

from __future__ import annotations

import typer

from planner.commands import options as opt


def report_cmd(
    scenario: str = typer.Argument(..., help="Capacity scenario YAML (see examples/capacity.yaml)."),
    output: str = typer.Option("report.html", "--output", "-o",
                               help="Report file: .html (self-contained) or .md (plots as SVG files beside it)."),
    json_out: bool = opt.json_flag("Print the plan as JSON too (instead of the table)."),
) -> None:
    """Size a serving fleet per candidate model x device for the scenario's traffic and SLOs."""
    from planner.commands.output import console, print_json
    from planner.layouts import label_of
    from planner.report import fmt_usd, write

    from planner.errors import InputError, in_file

    from planner.catalog import refuse_shipped

    refuse_shipped(output)
    try:
        data = write(scenario, output)
    except InputError as exc:  # a field deep in the scenario names the file
        raise in_file(exc, scenario) from None
    if json_out:
        print_json({k: v for k, v in data.items() if k != "written"} | {"written": data["written"]})
        return
    from rich.table import Table

    con = console()
    t = Table(title=f"capacity plan: {data['scenario']['name']}")
    has_layout = data["scenario"]["search"].get("layouts") is not None
    for col in ("model", "hardware", f"config ({'layout' if has_layout else 'TP'} W/KV, max running)",
                "req/s / replica", "replicas x devices",
                "utilization", "$ / month", "$ / 1k req", "accuracy"):
        t.add_column(col, justify="left" if col in ("model", "hardware") or col.startswith("config") else "right")
    for c in data["plan"]["candidates"]:
        if c["status"] != "ok":
            continue
        cf, f = c["config"], c["fleet"]
        t.add_row(c["model"], c["hardware"],
                  f"{label_of(cf['layout']) if 'layout' in cf else 'TP' + str(cf['devices'])} "
                  f"{cf['weight_dtype']}/{cf['kv_dtype']} C{cf['concurrency']}",
                  f"{c['per_replica']['requests_per_s']:.3g}", f"{f['replicas']} x {cf['devices']}", f"{f['utilization']:.0%}", fmt_usd(f["monthly_usd"]),
                  f"${f['usd_per_1k_requests']:.3g}", "n/a" if c["accuracy"] is None else f"{c['accuracy']:.3f}")
    if any(c["status"] == "ok" for c in data["plan"]["candidates"]):
        con.print(t)
    for c in data["plan"]["candidates"]:
        if c["status"] != "ok":
            con.print(f"excluded {c['model']} @ {c['hardware']}: {c['status']}", markup=False)
    used: dict[str, str] = {}
    for c in data["plan"]["candidates"]:
        used.setdefault(c["hardware"], c.get("profile", c["efficiency"]))
    from planner.fidelity import describe

    errors = data.get("expected_error", {})
    for hw, label in used.items():
        con.print(f"profile for {hw}: {label}", markup=False)
        if hw in errors:
            con.print(describe(errors[hw]), markup=False)
    con.print(f"cheapest meeting the SLOs: {data['cheapest'] or 'none'}")
    con.print("wrote " + ", ".join(data["written"]))


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
