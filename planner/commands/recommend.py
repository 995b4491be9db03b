"""`planner recommend`: search the configuration space for the best accuracy per cost."""

from __future__ import annotations

from typing import List, Optional

import typer

DEFAULT_SCENARIO = "default_scenario.yaml"


def load_scenario(path: str):
    from planner.catalog import parse_spec, read_yaml
    from planner.specs import RecommendScenario

    return parse_spec(RecommendScenario, read_yaml(path), path)


def default_scenario_path() -> str:
    from planner.catalog import builtin_dir

    return str(builtin_dir("examples") / DEFAULT_SCENARIO)


def recommend_cmd(
    task: Optional[str] = typer.Option(None, "--task", help="Task with accuracy profiles (e.g. aime24)."),
    hardware: Optional[List[str]] = typer.Option(None, "--hardware", "-H", help="Device (repeatable)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated models (default: all with a profile)."),
    objective: Optional[str] = typer.Option(None, "--objective",
                                            help="max-accuracy | min-cost | min-latency | min-energy | "
                                                 "accuracy-per-usd | accuracy-per-joule | accuracy-per-second"),
    max_latency_s: Optional[float] = typer.Option(None, "--max-latency-s", help="Per-request latency budget."),
    max_usd: Optional[float] = typer.Option(None, "--max-usd", help="Per-request dollar budget."),
    max_energy_j: Optional[float] = typer.Option(None, "--max-energy-j", help="Per-request energy budget."),
    min_accuracy: Optional[float] = typer.Option(None, "--min-accuracy", help="Accuracy floor in [0, 1]."),
    no_sparse: bool = typer.Option(False, "--no-sparse", help="Dense attention only."),
    top: Optional[int] = typer.Option(None, "--top", help="How many configurations to show."),
    scenario: Optional[str] = typer.Option(None, "--scenario", help="Scenario YAML (flags override it)."),
    calibration: Optional[str] = typer.Option(None, "--calibration",
                                              help="Calibration profile for the (single) --hardware."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recommend model, strategy, quantization, batch, sparsity and devices for a task.

    With no flags it runs the built-in default scenario (examples/default_scenario.yaml)."""
    from planner.errors import InputError
    from planner.recommend import run
    from planner.specs import RecommendScenario

    flags = {
        "task": task, "hardware": list(hardware) if hardware else None,
        "models": [m.strip() for m in models.split(",") if m.strip()] if models else None,
        "objective": objective, "max_latency_s": max_latency_s, "max_usd": max_usd,
        "max_energy_j": max_energy_j, "min_accuracy": min_accuracy, "top": top,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    search_flags = {k for k in given if k != "top"}
    if scenario is None and not search_flags and not no_sparse and calibration is None:
        scenario = default_scenario_path()  # no search flags: the built-in default scenario
    base = load_scenario(scenario).model_dump(exclude_unset=True) if scenario else {}
    base.update(given)
    if no_sparse:
        base["sparse"] = False
    if calibration:
        hw = base.get("hardware") or ["h100-sxm"]
        if len(hw) != 1:
            raise InputError("--calibration needs exactly one --hardware", field="calibration", value=calibration)
        base["calibration"] = {hw[0]: calibration}
    from planner.catalog import parse_spec

    scn = parse_spec(RecommendScenario, base, scenario or "command line")
    answer = run(scn)
    if scenario:
        answer["scenario"] = scenario
    if json_out:
        from planner.commands.output import print_json

        print_json(answer)
        return
    print_answer(answer)


def _row_cells(r: dict) -> list[str]:
    from planner.commands.output import fmt_si

    quant = r["weight_dtype"] if r["act_dtype"] in ("bf16", "fp16", "fp32") or r["act_dtype"] == r["weight_dtype"] \
        else f"{r['weight_dtype']}/a{r['act_dtype']}"
    if r["act_dtype"] == r["weight_dtype"] and r["weight_dtype"] in ("fp8", "int8"):
        quant = f"W8A8-{r['weight_dtype']}"
    return [r["model"], f"{r['devices']}x {r['hardware']}", r["strategy"], str(r["samples"]), str(r["gen_len"]),
            quant, r["kv_dtype"], str(r["batch"]), str(r["kv_budget"] or "dense"),
            f"{r['accuracy']:.1%}", fmt_si(r["latency_s"], "s"), fmt_si(r["energy_j"], "J"),
            f"${r['cost_usd']:.3g}", r["bottleneck"]]


COLUMNS = ("model", "devices", "strategy", "k", "gen", "weights", "KV", "batch", "KV budget", "accuracy",
           "latency", "energy", "$/req", "bound")


def print_answer(a: dict) -> None:
    from rich.table import Table

    from planner.commands.output import console

    con = console()
    budgets = ", ".join(f"{k}={v:g}" for k, v in a["budgets"].items()) or "none"
    inf = a["infeasible"]
    con.print(f"task {a['task']} | objective {a['objective']} | budgets per request: {budgets} | prompt {a['prompt_len']} tokens")
    con.print(f"evaluated {a['evaluated']:,} configurations ({a['stage_evaluations']:,} stage costings); "
              f"feasible {a['feasible']:,}; within budgets {a['within_budgets']:,}; dropped: "
              + ", ".join(f"{v:,} {k}" for k, v in inf.items()))
    for hw, label in a["efficiency"].items():
        con.print(f"efficiency for {hw}: {label}")
    rows = a["recommendations"]
    if a["status"] != "ok":
        con.print(f"[bold]{a['status']}[/]: the nearest configurations follow (they miss a budget).")
        rows = a.get("nearest", [])
    t = Table(title="recommended configurations" if a["status"] == "ok" else "nearest configurations")
    for c in COLUMNS:
        t.add_column(c, justify="left" if c in ("model", "devices", "strategy", "weights", "KV", "bound") else "right")
    for r in rows:
        t.add_row(*_row_cells(r))
    con.print(t)
    f = Table(title=f"Pareto frontier: accuracy vs {a['frontier_axis']}")
    for c in COLUMNS:
        f.add_column(c, justify="left" if c in ("model", "devices", "strategy", "weights", "KV", "bound") else "right")
    for r in a["frontier"]:
        f.add_row(*_row_cells(r))
    con.print(f)


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_cmd)
