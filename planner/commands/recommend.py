"""`planner recommend`: search the configuration space for the best accuracy per cost."""

from __future__ import annotations

import re
from typing import List, Optional

import typer

DEFAULT_SCENARIO = "default_scenario.yaml"
BUDGETS = ("max_latency_s", "max_usd", "max_energy_j", "min_accuracy")


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
    verifier: Optional[str] = typer.Option(None, "--verifier",
                                           help="Model that runs verify / reward stages (default: the policy)."),
    no_sparse: bool = typer.Option(False, "--no-sparse", help="Dense attention only."),
    no_budgets: bool = typer.Option(False, "--no-budgets",
                                    help="Drop the scenario's budgets (those not given as flags)."),
    show_zero_accuracy: bool = typer.Option(False, "--show-zero-accuracy",
                                            help="Keep configurations below 0.1% accuracy on the frontier."),
    top: Optional[int] = typer.Option(None, "--top", help="How many configurations to show."),
    engine: Optional[str] = typer.Option(None, "--engine",
                                         help="Serving engine (vllm | sglang | trtllm | generic): each device uses "
                                              "the serving profile fitted for it with that engine."),
    conservative: bool = typer.Option(False, "--conservative",
                                      help="Rank by the lower end of the 80% accuracy interval (the accuracy "
                                           "floor then applies to the lower end too)."),
    scenario: Optional[str] = typer.Option(None, "--scenario", help="Scenario YAML (flags override it)."),
    calibration: Optional[str] = typer.Option(None, "--calibration",
                                              help="Calibration profile for the (single) --hardware."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    wide: bool = typer.Option(False, "--wide", help="Show every table column, whatever the terminal width."),
) -> None:
    """Recommend model, strategy, quantization, batch, sparsity and devices for a task.

    With no flags it runs the built-in default scenario (examples/default_scenario.yaml)."""
    from planner.errors import InputError, flag_name, in_file
    from planner.recommend import run
    from planner.specs import RecommendScenario

    flags = {
        "task": task, "hardware": list(hardware) if hardware else None,
        "models": [m.strip() for m in models.split(",") if m.strip()] if models else None,
        "objective": objective, "max_latency_s": max_latency_s, "max_usd": max_usd,
        "max_energy_j": max_energy_j, "min_accuracy": min_accuracy, "top": top, "verifier": verifier,
        "engine": engine,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    # flags refine a scenario: --scenario FILE, else the built-in default one (its budgets
    # stay unless a flag overrides that budget or --no-budgets drops them)
    source = f"scenario {scenario}" if scenario else "default scenario"
    base = load_scenario(scenario or default_scenario_path()).model_dump(exclude_unset=True)
    if no_budgets:
        for k in BUDGETS:
            base.pop(k, None)
    origin = {k: ("--" + k.replace("_", "-") if k in given else source) for k in BUDGETS if k in given or k in base}
    base.update(given)
    if no_sparse:
        base["sparse"] = False
    if show_zero_accuracy:
        base["show_zero_accuracy"] = True
    if conservative:
        base["conservative"] = True
    if calibration:
        hw = base.get("hardware") or ["h100-sxm"]
        if len(hw) != 1:
            raise InputError("--calibration needs exactly one --hardware", field="calibration", value=calibration)
        base["calibration"] = {hw[0]: calibration}
    from planner.catalog import parse_spec

    try:
        scn = parse_spec(RecommendScenario, base, scenario or "command line")
    except InputError as exc:  # a flag's value is named as the flag, without a file (planner.errors)
        if re.split(r"[.\[]", exc.field or "")[0] not in given:
            raise
        raise InputError(exc.reason, field=flag_name(exc.field), value=exc.value, has_value=exc.has_value) from None
    try:
        answer = run(scn)
    except InputError as exc:  # a field of the scenario file (not a flag) names the file
        flag_fields = {flag_name(k) for k in given} | set(given) | {"calibration"}
        if "models" in given:
            flag_fields.add("model")
        if scenario is None or (exc.field or "").split(".")[0] in flag_fields:
            raise
        raise in_file(exc, scenario) from None
    answer["scenario"] = scenario or "default scenario"
    answer["budget_sources"] = origin
    if json_out:
        from planner.commands.output import print_json

        print_json(answer)
        return
    print_answer(answer, wide=wide)


def quant_label(weight: str, act: str) -> str:
    """W4A16, W8A8-fp8, W8A16-fp8 (weight-only), bf16."""
    bits = {"int4": 4, "fp4": 4, "int8": 8, "fp8": 8}
    if weight not in bits:
        return weight
    a = 8 if act == weight else 16
    tag = f"W{bits[weight]}A{a}"
    return f"{tag}-{weight}" if bits[weight] == 8 else tag


def tokens_label(n: int) -> str:
    return f"{n // 1024}k" if n >= 1024 and n % 1024 == 0 else str(n)


def _row_cells(r: dict) -> list[str]:
    from planner.units import fmt_si

    strategy = r["strategy"] if r["strategy"] == "single" else f"{r['strategy']} x{r['samples']}"
    iv = r.get("interval_80")
    return [r["model"], f"{r['devices']}x {r['hardware']}", layout_label(r.get("layout")), strategy,
            tokens_label(r["gen_len"]),
            quant_label(r["weight_dtype"], r["act_dtype"]), r["kv_dtype"], str(r["batch"]),
            tokens_label(r["kv_budget"]) if r["kv_budget"] else "dense",
            f"{r['accuracy']:.1%}", "n/a" if iv is None else f"{iv[0]:.2f}-{iv[1]:.2f}",
            fmt_si(r["latency_s"], "s"), fmt_si(r["energy_j"], "J"),
            f"${r['cost_usd']:.2g}", r["bottleneck"]]


def layout_label(layout: dict | None) -> str:
    """``tp4 pp2``, ``tp2 ep8 dp4`` (planner.layouts.label_of)."""
    from planner.layouts import label_of

    return label_of(layout)


COLUMNS = ("model", "devices", "layout", "strategy", "gen", "quant", "KV", "batch", "KV budget", "accuracy",
           "acc 80%", "latency", "energy", "$/req", "bound")
# In a narrow terminal these columns drop, first to last, until the table fits; model,
# strategy, accuracy, latency and $/req are never dropped nor cut (--wide shows all).
# "acc 80%" (the 80% accuracy interval) drops after energy and bound, before the grid axes.
DROP_ORDER = ("energy", "bound", "acc 80%", "KV budget", "batch", "KV", "gen", "layout", "devices", "quant")
LEFT = ("model", "devices", "layout", "strategy", "quant", "KV", "bound")
FRONTIER_SHOWN = 12
NO_INTERVAL_NOTE = "is n/a"


def _table(title: str, rows: list[dict], width: int | None = None):
    """The table of ``rows``; with ``width``, columns in DROP_ORDER are dropped to fit it."""
    from rich import box
    from rich.table import Table

    from planner.commands.output import fit_columns

    cells = [_row_cells(r) for r in rows]
    shown = list(COLUMNS) if width is None else fit_columns(list(COLUMNS), cells, width, DROP_ORDER, gap=3)
    hidden = [c for c in COLUMNS if c not in shown]
    if hidden:
        title += f" (hidden at this width: {', '.join(hidden)}; --wide shows all)"
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    keep = [COLUMNS.index(c) for c in shown]
    for c in shown:
        t.add_column(c, justify="left" if c in LEFT else "right", no_wrap=True)
    for row in cells:
        t.add_row(*[row[i] for i in keep])
    return t


def print_answer(a: dict, wide: bool = False) -> None:
    from planner.commands.output import console

    con = console(wide)
    width = None if wide else con.width
    origin = a.get("budget_sources", {})
    budgets = ", ".join(f"{k}={v:g}" + (f" ({origin[k]})" if k in origin else "")
                        for k, v in a["budgets"].items()) or "none"
    inf = a["infeasible"]
    con.print(f"task {a['task']} | objective {a['objective']} | budgets per request: {budgets} | "
              f"prompt {a['prompt_len']} tokens")
    if a.get("conservative"):
        con.print("conservative: ranked by the lower end of the 80% accuracy interval; the accuracy floor and the "
                  "frontier use the lower end too (the point accuracy where a model has no interval)")
    con.print(f"evaluated {a['evaluated']:,} configurations ({a['stage_evaluations']:,} stage costings); "
              f"feasible {a['feasible']:,}; within budgets {a['within_budgets']:,}; infeasible: "
              + ", ".join(f"{v:,} {k}" for k, v in inf.items()))
    from planner.fidelity import describe

    errors = a.get("expected_error", {})
    for hw, label in a.get("profiles_used", a["efficiency"]).items():
        con.print(f"profile for {hw}: {label}", markup=False)
        if hw in errors:
            con.print(describe(errors[hw]), markup=False)
    rows = a["recommendations"]
    if a["status"] != "ok":
        near = "the nearest configurations follow (they miss a budget)" if rows or a.get("nearest") else \
            "no configuration to show"
        con.print(f"[bold]{a['status']}[/]: {near}.")
        rows = a.get("nearest", [])
    con.print(_table("recommended configurations" if a["status"] == "ok" else "nearest configurations", rows,
                     width))
    front = a["frontier"]
    if len(front) > FRONTIER_SHOWN:
        pick = sorted({round(i * (len(front) - 1) / (FRONTIER_SHOWN - 1)) for i in range(FRONTIER_SHOWN)})
        front = [front[i] for i in pick]
    con.print(_table(f"Pareto frontier: accuracy vs {a['frontier_axis']} ({len(front)} of "
                     f"{len(a['frontier'])} points; --json has all)", front, width))
    no_iv = sorted({m for m, why in a.get("intervals", {}).items() if why.startswith("n/a")}
                   & {r["model"] for r in rows + front})
    if no_iv:
        con.print(f"acc 80% {NO_INTERVAL_NOTE} for {', '.join(no_iv)}: "
                  + a["intervals"][no_iv[0]].removeprefix("n/a: "))


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_cmd)
