"""`planner validate --measured FILE.csv` and `planner calibrate --from-measured FILE.csv`:
replay measured serving runs, and fit (device, engine) parameters on them."""

from __future__ import annotations

from pathlib import Path
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
    from planner.replay import predict
    from planner.replay_scoring import input_notes, rows_json, summarize

    params = _params(calibration, no_calibration)  # a flag conflict before reading the file
    runs = read_measured(path)
    pred = predict(runs, params)
    summary = summarize(pred, runs)
    if json_out:
        print_json({"file": path, "rows": rows_json(pred, runs), "summary": summary})
        return
    print_summary(summary, f"measured runs {path}")
    _print_path_errors(summary["profiles"])
    _print_notes(input_notes(runs))


def _print_path_errors(profiles: list[str]) -> None:
    """Under the table: the measured error of each prediction path the replay's profiles take
    (planner.fidelity, on the shipped measurements), to set this file's error beside."""
    from planner.commands.output import console
    from planner.fidelity import describe, expected_error
    from planner.serving_profile import replay_path

    con = console()
    for path in dict.fromkeys(replay_path(p) for p in profiles):
        con.print(describe(expected_error(path)), markup=False)


def _print_notes(notes: list[str]) -> None:
    from planner.commands.output import console

    for note in notes:
        console().print(f"note: {note}", markup=False)


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
    if s.get("flagged"):
        con.print(f"flagged, faster than the datasheet allows as written (scored, not fitted; --json says why): "
                  f"{s['flagged']} rows: "
                  + "; ".join(f"{n} {r}" for r, n in s["flagged_by_reason"].items()))


def _outputs(output: Optional[str], groups: list[str]) -> dict[str, Path]:
    """Where each pair's profile goes: -o FILE.yaml for one pair; with several,
    FILE-<device>-<engine>.yaml beside it; a folder (default: ``serving/`` in the user's
    calibration folder, where the lookup finds it) holds <device>.<engine>.yaml files.
    Never the shipped calibration folder or the installed package (exit 2)."""
    from planner.calibrate.lookup import check_output_path, user_dir
    from planner.serving_profile import SUBDIR

    def name(g):
        return g.replace("/", ".") + ".yaml"

    out = Path(output) if output is not None else user_dir() / SUBDIR
    if out.suffix in (".yaml", ".yml"):
        outs = ({groups[0]: out} if len(groups) == 1 else
                {g: out.with_name(f"{out.stem}-{g.replace('/', '-')}{out.suffix}") for g in groups})
    else:
        outs = {g: out / name(g) for g in groups}
    for target in outs.values():
        check_output_path(target)
    return outs


def calibrate_measured(path: str, output: Optional[str], physical: bool, json_out: bool) -> None:
    import hashlib
    from planner.calibrate.profile import dumps, now_iso
    from planner.commands.output import print_json
    from planner.files import atomic_write_text
    from planner.errors import InputError
    from planner.measured import read_measured
    from planner.replay import Prepared
    from planner.serving_fit import F_SCALE, LOSS, TTFT_WEIGHT, fit_all
    from planner.serving_profile import to_profile

    if output is not None:  # refused before the fit, not after it
        from planner.calibrate.lookup import check_output_path
        from planner.catalog import refuse_input

        check_output_path(output)
        refuse_input(output, [path])
    runs = read_measured(path)
    prep = Prepared(runs)
    fits = fit_all(runs, strict=not physical, physical=physical, prep=prep)
    if not fits:
        raise InputError("no (device, engine) pair has enough predictable rows with measurements to fit", file=path)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    date = now_iso()
    outs = _outputs(output, sorted(fits))
    texts = {}
    for g, f in fits.items():
        provenance = {"file": Path(path).name, "sha256": digest, "rows": f.rows, "gemm_mix": f.values.gemm_mix,
                      "date": date,
                      "engine_versions": sorted({str(v) for v in runs.engine_version[(prep.group == g)] if v}),
                      "how": "planner calibrate --from-measured" + (" --physical-bounds" if physical else "")}
        fit = {"loss": LOSS, "f_scale": F_SCALE, "ttft_weight": TTFT_WEIGHT, "rms_log_ttft": f.rms_log_ttft,
               "rms_log_tpot": f.rms_log_tpot, "at_physical_limit": f.at_limit}
        texts[g] = dumps(to_profile(prep.hw[g], g.split("/", 1)[1], f.values, provenance, fit, date))
    for g, text in texts.items():  # all rendered first: a failure writes none
        atomic_write_text(outs[g], text)
    if json_out:
        print_json({"file": path, "profiles": {g: str(outs[g]) for g in fits},
                    "fits": {g: {"parameters": f.values, "rows": f.rows, "rms_log_ttft": f.rms_log_ttft,
                                 "rms_log_tpot": f.rms_log_tpot, "at_physical_limit": f.at_limit}
                             for g, f in fits.items()}})
        return
    _print_fits(fits, outs)
    from planner.replay_scoring import input_notes

    _print_notes(input_notes(runs))


def _print_fits(fits: dict, outs: dict) -> None:
    from rich.table import Table

    from planner import serving_params as SP
    from planner.commands.output import console
    from planner.units import fmt_si

    t = Table(title="serving parameters fitted on measured runs")
    for col in ("device/engine", "rows", *SP.NAMES, "rms log TTFT", "rms log TPOT"):
        t.add_column(col, justify="left" if col == "device/engine" else "right")
    for g, f in sorted(fits.items()):
        cells = [fmt_si(f.values[k], "s") if SP.BY_NAME[k].unit == "s" else f"{f.values[k]:.3f}" for k in SP.NAMES]
        cells = [c + ("*" if k in f.at_limit else "") for c, k in zip(cells, SP.NAMES)]
        t.add_row(g, str(f.rows), *cells, f"{f.rms_log_ttft:.3f}", f"{f.rms_log_tpot:.3f}")
    con = console()
    con.print(t)
    if any(f.at_limit for f in fits.values()):
        con.print("* at its physical limit: the model misses an effect for these rows")
    for g in sorted(fits):
        con.print(f"wrote {outs[g]}")
