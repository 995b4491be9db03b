"""`planner validate --measured FILE.csv` and `planner calibrate --from-measured FILE.csv`:
replay measured serving runs, and fit (device, engine) parameters on them."""

from __future__ import annotations

from typing import Optional


def _params(calibration: Optional[str], no_calibration: bool):
    from planner.errors import InputError
    from planner.serving_profile import load_serving

    if calibration and no_calibration:
        raise InputError("give --calibration or --no-calibration, not both", field="calibration", value=calibration)
    if no_calibration:
        return {}
    return load_serving([calibration] if calibration else None)


def validate_measured(path: str, calibration: Optional[str], no_calibration: bool, json_out: bool) -> None:
    from planner.commands.output import print_json
    from planner.measured import read_measured
    from planner.replay import predict, rows_json, summarize

    runs = read_measured(path)
    pred = predict(runs, _params(calibration, no_calibration))
    summary = summarize(pred, runs)
    if json_out:
        print_json({"file": path, "rows": rows_json(pred, runs), "summary": summary})
        return
    print_summary(summary, f"measured runs {path}")


def _pct(x) -> str:
    return "-" if x is None else f"{x:.0%}"


def print_summary(s: dict, title: str) -> None:
    from rich.table import Table

    from planner.commands.output import console

    con = console()
    t = Table(title=f"{title}: {s['predicted']} of {s['rows']} rows predicted, {s['measured']} with measurements")
    for col in ("slice", "value", "rows", "TTFT med |err|", "TTFT p90", "TTFT med", "TPOT med |err|", "TPOT p90",
                "TPOT med"):
        t.add_column(col, justify="left" if col in ("slice", "value") else "right")

    def add(slice_name, value, st):
        a, b = st["ttft"], st["tpot"]
        t.add_row(slice_name, value, str(b["n"]), _pct(a["median_abs"]), _pct(a["p90_abs"]),
                  "-" if a["median_signed"] is None else f"{a['median_signed']:+.0%}",
                  _pct(b["median_abs"]), _pct(b["p90_abs"]),
                  "-" if b["median_signed"] is None else f"{b['median_signed']:+.0%}")

    add("all", "", s)
    for name, entries in s["by_slice"].items():
        t.add_section()
        for e in entries:
            add(name, str(e["value"]), e)
    con.print(t)
    con.print("error = predicted / measured - 1; |err| columns: median and p90 of |error|; "
              f"profiles: {', '.join(s['profiles']) or '-'}")
    if s["unsupported"]:
        con.print("not predicted: " + "; ".join(f"{n} {r}" for r, n in s["unsupported"].items()))
