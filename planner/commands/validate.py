"""`planner validate`: the engine's prediction against a real torch decoder timed on the
device at hand (or, with ``--measured``, replayed serving runs). torch is imported inside
the command only."""

from __future__ import annotations

from typing import List, Optional

import typer

from planner.commands.measuring import progress_bar, warn_busy


def validate_cmd(
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    calibration: Optional[str] = typer.Option(
        None, "--calibration", help="Profile YAML (default: the one in calibration/ for this device)."),
    no_calibration: bool = typer.Option(False, "--no-calibration", help="Predict with the spec's default efficiencies."),
    hardware: Optional[str] = typer.Option(
        None, "--hardware", "-H", help="Device name or YAML (default: the profile's device / spec)."),
    model: Optional[List[str]] = typer.Option(
        None, "--model", "-m", help="Model name or YAML (repeatable; default qwen3-0.6b and llama-3.2-1b)."),
    layers: Optional[int] = typer.Option(None, "--layers", help="Layers to build (default 4; the prediction uses the same)."),
    quick: bool = typer.Option(False, "--quick", help="Fewer cases."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default: the profile's)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    measured: Optional[str] = typer.Option(
        None, "--measured", help="Replay measured serving runs (CSV, README 'Measured serving runs') instead: "
                                 "predict every row and report the error by slice. No torch."),
) -> None:
    """Time a real torch decoder (random weights) and compare with the engine's prediction,
    or (--measured FILE.csv) replay measured serving runs."""
    from planner.calibrate import DEVICES, require_torch
    from planner.errors import InputError

    if measured:
        from planner.commands.measured import validate_measured
        from planner.commands.options import refuse_unused

        refuse_unused("--measured", {"hardware": hardware, "model": model, "layers": layers, "quick": quick,
                                     "threads": threads})

        return validate_measured(measured, calibration, no_calibration, json_out)

    if device not in DEVICES:
        raise InputError(f"unknown device (choose from {', '.join(DEVICES)})", field="device", value=device)
    if layers is not None and layers < 1:
        raise InputError("must be >= 1", field="layers", value=layers)
    if threads is not None and threads < 1:
        raise InputError("must be >= 1", field="threads", value=threads)
    if calibration and no_calibration:
        raise InputError("give --calibration or --no-calibration, not both", field="calibration", value=calibration)
    require_torch()
    from planner.calibrate import bench
    from planner.calibrate import validate as V
    from planner.catalog import load_model
    from planner.commands.output import print_json

    bench.check_device(device)
    hw, profile, eff = _resolve(device, calibration, no_calibration, hardware)
    if threads is None and profile is not None:
        threads = profile.threads
    models = [load_model(m) for m in (model or V.DEFAULT_MODELS)]
    n_layers = layers or V.DEFAULT_LAYERS
    cases = V.SHORT_CASES if quick else V.STANDARD_CASES

    with progress_bar() as bar:
        # the short cases (decode, as a rule) get a further pass between each two
        total = len(models) * V.PASSES * (len(cases) + sum(c.phase == "decode" for c in cases))
        task = bar.add_task("validating", total=total + 1)

        seen = [0]

        def progress(label):
            seen[0] += 1
            bar.update(task, completed=min(seen[0], total), description=label)

        report = V.validate(models, hw, eff, device=device, layers=n_layers, cases=cases, threads=threads,
                            progress=progress)
        bar.update(task, completed=total, description="done")
    report["calibration"] = profile.path if profile is not None else None
    warn_busy(report.get("other_cpu_fraction"))
    if json_out:
        print_json(report)
        return
    _print_report(report)


def _resolve(device: str, calibration, no_calibration: bool, hardware):
    """(hardware spec, profile or None, efficiency or None) for validate."""
    from pathlib import Path

    from planner.calibrate import bench
    from planner.calibrate.apply import profile_to_efficiency
    from planner.calibrate.lookup import find_profile, machine_mismatch
    from planner.calibrate.profile import HARDWARE_SUFFIX, fingerprint_name, load_profile
    from planner.catalog import load_hardware, search_dirs
    from planner.errors import InputError

    hw = load_hardware(hardware) if hardware else None
    profile = None
    if not no_calibration:
        if calibration:
            profile = load_profile(calibration)
        else:
            name = hw.name if hw is not None else fingerprint_name(bench.device_fingerprint(device))
            found = find_profile(name)
            if found is not None:

                why = machine_mismatch(load_profile(found))
                if why is not None:
                    raise InputError(f"the profile {found} was made on another machine ({why}): recalibrate, "
                                     "or name it with --calibration", field="calibration")
            if found is None:
                raise InputError(f"no calibration profile for '{name}': run planner calibrate --device {device}, "
                                 "or pass --calibration FILE or --no-calibration", field="calibration")
            profile = load_profile(found)
    if hw is None:
        spec = profile.hardware_path() if profile is not None else None
        if spec is not None and spec.is_file():
            hw = load_hardware(str(spec))
        elif profile is not None:
            hw = load_hardware(profile.hardware)
        else:
            name = fingerprint_name(bench.device_fingerprint(device))
            for d in search_dirs("calibration"):
                p = Path(d) / f"{name}{HARDWARE_SUFFIX}"
                if p.is_file():
                    hw = load_hardware(str(p))
                    break
            if hw is None:
                raise InputError(f"no hardware spec for '{name}': pass --hardware NAME|FILE", field="hardware")
    eff = profile_to_efficiency(profile, hw) if profile is not None else None
    return hw, profile, eff


def _print_report(r: dict) -> None:
    from rich.table import Table

    from planner.commands.output import console
    from planner.units import fmt_si

    con = console()
    t = Table(title=f"validate on {r['device']} ({r['dtype']}, {r['threads']} threads): {r['hardware']}, "
                    f"efficiency {r['efficiency']}")
    for col in ("model", "layers", "phase", "batch", "context", "measured", "predicted", "error"):
        t.add_column(col, justify="left" if col in ("model", "phase") else "right")
    for c in r["cases"]:
        t.add_row(c["model"], str(c["layers"]), c["phase"], str(c["batch"]), str(c["context"]),
                  fmt_si(c["measured_s"], "s"), fmt_si(c["predicted_s"], "s"), f"{c['error']:+.1%}")
    con.print(t)
    reduced = [f"{m['model']} {m['layers']} of {m['layers_full']} layers" for m in r["models"]
               if m["layers"] < m["layers_full"]]
    if reduced:
        con.print("reduced depth (the predictions use the same reduced models): " + "; ".join(reduced))
    con.print(f"median |error| {r['median_abs_error']:.1%}, max |error| {r['max_abs_error']:.1%} "
              f"over {len(r['cases'])} cases")
    from planner.calibrate.quiet import CONTENDED

    busy = sum((c.get("contention") or 0.0) > CONTENDED for c in r["cases"])
    if busy:
        load = r.get("load_average") or [None, None]
        con.print(f"{busy} of {len(r['cases'])} cases measured while other processes took over {CONTENDED:.0%} of "
                  f"our cores even after retakes (load average {load[0]} -> {load[1]}): re-run on a quiet machine")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_cmd)
