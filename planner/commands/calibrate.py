"""`planner calibrate`: microbenchmarks -> a profile (``--refit`` and ``--compare`` work on
stored profiles). torch is imported inside the command only; `planner validate` is
:mod:`planner.commands.validate`."""

from __future__ import annotations

from typing import Optional, Tuple

import typer

from planner.commands.measuring import progress_bar, warn_busy

# ------------------------------------------------------------------------------------------
# planner calibrate
# ------------------------------------------------------------------------------------------
def calibrate_cmd(
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or mps."),
    hardware: Optional[str] = typer.Option(
        None, "--hardware", "-H",
        help="Catalog device being calibrated (curves become fractions of its datasheet peaks). "
             "Without it the peaks are measured and a hardware spec is written beside the profile."),
    quick: bool = typer.Option(False, "--quick", help="A short sweep (under 2 minutes on a 2-core CPU)."),
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="Profile path (default ~/.config/planner/calibration/<hardware>.yaml)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (default: all usable CPUs)."),
    compare: Optional[Tuple[str, str]] = typer.Option(
        None, "--compare", help="Compare two profiles: --compare OLD.yaml NEW.yaml.", show_default=False),
    refit: Optional[str] = typer.Option(
        None, "--refit", help="Refit a profile's stored measurements with this version's fits (no torch, "
                              "no measuring); writes -o or the profile in place."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    from_measured: Optional[str] = typer.Option(
        None, "--from-measured", help="Fit serving parameters per (device, engine) on measured serving runs (CSV) "
                                      "and write serving profiles (-o FILE.yaml; default calibration/serving/). No torch."),
    physical_bounds: bool = typer.Option(
        False, "--physical-bounds", help="With --from-measured: fit inside the physical ranges and report parameters "
                                         "at a limit, instead of refusing an unphysical fit."),
    allow_busy: bool = typer.Option(
        False, "--allow-busy", help="Write the profile even when over 10% of the benchmarks stayed disturbed by "
                                    "other processes after retakes (default: refuse it)."),
) -> None:
    """Measure the device with torch microbenchmarks and write a calibration profile
    (or, with --from-measured FILE.csv, fit serving profiles on measured runs)."""
    from planner.commands.options import refuse_unused
    from planner.errors import InputError

    measuring = {"device": device, "hardware": hardware, "quick": quick, "threads": threads, "allow-busy": allow_busy}
    if from_measured:
        refuse_unused("--from-measured", {"refit": refit, "compare": compare, **measuring})
    elif refit:
        refuse_unused("--refit", {"compare": compare, **measuring, "physical-bounds": physical_bounds})
    elif compare:
        refuse_unused("--compare", {**measuring, "output": output, "physical-bounds": physical_bounds})
    elif physical_bounds:
        raise InputError("is used only with --from-measured", field="physical-bounds")
    if from_measured:
        from planner.commands.measured import calibrate_measured

        return calibrate_measured(from_measured, output, physical_bounds, json_out)

    if refit:
        _refit(refit, output, json_out)
        return
    if compare:
        return _compare(compare[0], compare[1], json_out)
    if device is None:
        raise InputError("give --device cpu|cuda|mps (or --compare OLD.yaml NEW.yaml)", field="device")
    _calibrate(device, hardware, quick, output, threads, json_out, allow_busy)


def _fit(measurements: list, main: str, hw, dtypes, device: dict, name: str) -> dict:
    """Fit measurements (curves as fractions of a catalog device's datasheet peaks when
    ``hw`` is given, else of the measured peaks), then the end-to-end time scale on the
    reference-decoder passes, predicted with those curves."""
    from planner.calibrate.end_to_end import fit_time_scale
    from planner.calibrate.fit import fit_measurements
    from planner.calibrate.hardware_spec import hardware_spec
    from planner.calibrate.profile import now_iso
    from planner.catalog import validation_error
    from planner.cost.context import KERNELS_PER_LAYER
    from planner.errors import InputError
    from planner.specs import Hardware

    peaks = bw = None
    if hw is not None:
        peaks = {dt: hw.peak_flops(dt) for dt in dtypes if hw.has_dtype(dt)}
        bw = hw.mem_bandwidth_gbps * 1e9
    try:
        fitted = fit_measurements(measurements, main_dtype=main, kernels_per_layer=KERNELS_PER_LAYER,
                                  peak_flops=peaks, peak_bandwidth=bw)
    except ValueError as exc:
        raise InputError(f"the measurements could not be fitted: {exc}") from None
    if hw is not None:
        spec = hw
    else:
        from pydantic import ValidationError

        try:
            spec = Hardware(**hardware_spec(name, device, fitted, now_iso()))
        except ValidationError as exc:  # a fitted peak or bandwidth outside the physical range
            err = validation_error(exc, "the fitted hardware spec")
            raise InputError(f"refusing the fit: {err.reason}", file=err.file, field=err.field, value=err.value,
                             has_value=err.has_value) from None
    scale = fit_time_scale(fitted, measurements, spec)
    if scale is not None:
        fitted["time_scale"], fitted["fit_rms_log_error"]["time_scale"] = scale
    return fitted


def _refit(path: str, output: Optional[str], json_out: bool) -> None:
    """Refit a stored profile's raw measurements (e.g. after an upgrade of the fits)."""
    from dataclasses import replace

    from planner.calibrate.profile import dumps, load_profile, now_iso
    from planner.commands.output import print_json
    from planner.files import atomic_write_text

    old = load_profile(path)
    hw = None
    if old.fitted.get("peaks_from") == "spec":
        from planner.catalog import load_hardware

        hw = load_hardware(old.hardware)
    dtypes = sorted({r["dtype"] for r in old.measurements if "dtype" in r})
    fitted = _fit(old.measurements, old.fitted["main_dtype"], hw, dtypes, old.device, old.hardware)
    fitted["conditions"] = old.fitted.get("conditions")
    fitted["info"]["refit"] = f"refit from the stored measurements on {now_iso()} (measured {old.date})"
    from planner.calibrate.lookup import check_output_path
    from planner.calibrate.profile import check_physical

    out = output or path
    check_output_path(out)
    check_physical(fitted, str(out))
    atomic_write_text(out, dumps(replace(old, fitted=fitted, path=None)))
    if json_out:
        print_json({"profile": str(out), "hardware": old.hardware, "fitted": fitted})
        return
    _print_fitted(fitted, old.hardware)
    print(f"wrote profile {out}")


def _calibrate(device: str, hardware: Optional[str], quick: bool, output: Optional[str], threads: Optional[int],
               json_out: bool, allow_busy: bool = False) -> None:
    from pathlib import Path

    from planner.calibrate import DEVICES, require_torch
    from planner.errors import InputError

    if device not in DEVICES:
        raise InputError(f"unknown device (choose from {', '.join(DEVICES)})", field="device", value=device)
    if threads is not None and threads < 1:
        raise InputError("must be >= 1", field="threads", value=threads)
    torch = require_torch()
    from planner.calibrate import bench
    from planner.calibrate.hardware_spec import hardware_spec, hardware_spec_text
    from planner.calibrate.profile import HARDWARE_SUFFIX, Profile, dumps, fingerprint_name, now_iso
    from planner.commands.output import print_json
    from planner.files import atomic_write_text

    bench.check_device(device)
    hw = None
    if hardware:
        from planner.catalog import load_hardware

        hw = load_hardware(hardware)
    fp = bench.device_fingerprint(device)
    name = hw.name if hw is not None else fingerprint_name(fp)
    from planner.calibrate.lookup import check_output_path, user_dir
    from planner.calibrate.profile import check_physical

    out = Path(output) if output else user_dir() / f"{name}.yaml"
    check_output_path(out)
    scale = "quick" if quick else "full"

    with progress_bar() as bar:
        task = bar.add_task("calibrating", total=1.0)

        def progress(done, total, label):
            bar.update(task, completed=done / total if total else 1.0, description=label)

        result = bench.run(device, scale, threads=threads, progress=progress)

    _check_busy(result.get("busy") or {}, allow_busy, str(out))
    fitted = _fit(result["measurements"], result["dtypes"][0], hw, result["dtypes"], fp, name)
    fitted["conditions"] = {"other_cpu_fraction": result.get("other_cpu_fraction"), "passes": result["passes"],
                            "llc_bytes": result["llc_bytes"], "allocator": result.get("allocator"),
                            **(result.get("busy") or {})}
    date = now_iso()
    fp["threads"] = result["threads"]
    fp["torch_version"] = str(torch.__version__)
    spec_path = None
    if hw is None:
        spec_path = out.parent / (out.name[: -len(out.suffix)] + HARDWARE_SUFFIX if out.suffix else out.name + HARDWARE_SUFFIX)
    profile = Profile(hardware=name, device={k: v for k, v in fp.items() if k not in ("threads", "torch_version")},
                      torch_version=str(torch.__version__), threads=result["threads"], date=date, fitted=fitted,
                      measurements=result["measurements"], hardware_file=spec_path.name if spec_path else None,
                      scale=scale)
    check_physical(fitted, str(out))  # a busy machine's fit is refused, never written
    # render both before writing either: a failure leaves neither file behind
    spec_text = hardware_spec_text(hardware_spec(name, fp, fitted, date), spec_path) if spec_path else None
    profile_text = dumps(profile)
    if spec_text is not None:
        atomic_write_text(spec_path, spec_text)
    atomic_write_text(out, profile_text)
    warn_busy(result.get("other_cpu_fraction"))
    if json_out:
        print_json({"profile": str(out), "hardware_spec": str(spec_path) if spec_path else None,
                    "hardware": name, "fitted": fitted})
        return
    _print_fitted(fitted, name)
    print(f"wrote profile {out}")
    if spec_path is not None:
        print(f"wrote hardware spec {spec_path} (use it with --hardware {spec_path})")


def _check_busy(busy: dict, allow_busy: bool, out: str) -> None:
    """Refuse a profile whose benchmarks stayed disturbed after retakes (share above
    bench.MAX_DISTURBED), unless --allow-busy; say so either way."""
    import sys

    from planner.calibrate.quiet import MAX_DISTURBED
    from planner.errors import InputError

    n, total = busy.get("disturbed", 0), busy.get("benchmarks", 0)
    if not total or n <= MAX_DISTURBED * total:
        return
    load = busy.get("load_average") or [None, None]
    by = busy.get("disturbed_by") or {}
    which = f" ({by.get('contention', 0)} by CPU use, {by.get('drift', 0)} by reference drift)" if by else ""
    why = (f"machine busy: {n} of {total} benchmarks disturbed after {busy.get('retaken', 0)} retakes{which} "
           f"(load average {load[0]} -> {load[1]})")
    if not allow_busy:
        raise InputError(f"refusing the profile, {why}; re-run on a quiet machine or pass --allow-busy",
                         file=out, field="measurements")
    print(f"planner: warning: {why}; writing it anyway (--allow-busy)", file=sys.stderr)


def _print_fitted(f: dict, name: str) -> None:
    from rich.table import Table

    from planner.commands.output import console
    from planner.units import fmt_si

    t = Table(title=f"calibration of {name} (peaks {f['peaks_from']})")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("fit rms log error", justify="right")
    rms = f.get("fit_rms_log_error", {})
    for dt, c in f["compute"].items():
        t.add_row(f"compute {dt}: peak", fmt_si(f["peak_flops"][dt], "FLOP/s"), "")
        t.add_row(f"compute {dt}: e_max, w_half", f"{c['e_max']:.3f}, {fmt_si(c['w_half'], 'FLOP')}",
                  f"{rms.get('compute.' + dt, float('nan')):.3f}")
    t.add_row("memory: peak bandwidth", fmt_si(f["peak_bandwidth"], "B/s"), f"{rms.get('stream_read', float('nan')):.3f}")
    t.add_row("memory: e_max, w_half", f"{f['memory']['e_max']:.3f}, {fmt_si(f['memory']['w_half'], 'B')}",
              f"{rms.get('memory', float('nan')):.3f}")
    g = f.get("gemv") or {}
    if g.get("row_bytes"):
        curve_rate = f["peak_bandwidth"] * f["memory"]["e_max"]  # bytes/s of the memory curve
        per_row_s = g["row_bytes"] / curve_rate
        t.add_row("one-row GEMM: stream, per row", f"{fmt_si(curve_rate / g['stream_factor'], 'B/s')}, "
                  f"{fmt_si(per_row_s, 's')}", f"{rms.get('gemv_rows', float('nan')):.3f}")
    t.add_row("decode attention memory factor", f"{f['attention_memory']:.3f}", f"{rms.get('attention', float('nan')):.3f}")
    t.add_row("kernel overhead", fmt_si(f["kernel_overhead_s"], "s"), "")
    tok = (f.get("gemm_tokens") or {}).get(f.get("main_dtype"))
    if tok:
        t.add_row(f"GEMM {f['main_dtype']} by rows: peak, m_half",
                  f"{fmt_si(tok['peak_flops'] * tok['e_max'], 'FLOP/s')}, {tok['m_half']:.1f}",
                  f"{tok['rms_log_error']:.3f}")
    if "time_scale" in f:
        t.add_row("end-to-end time scale", f"{f['time_scale']:.3f}", f"{rms.get('time_scale', float('nan')):.3f}")
    console().print(t)


def _compare(old: str, new: str, json_out: bool) -> None:
    from rich.table import Table

    from planner.calibrate.compare import FLAG_THRESHOLD, compare_profiles
    from planner.calibrate.profile import load_profile
    from planner.commands.output import console, print_json
    from planner.units import fmt_si

    a, b = load_profile(old), load_profile(new)
    rows = compare_profiles(a, b)
    if json_out:
        print_json({"old": old, "new": new, "threshold": FLAG_THRESHOLD, "rows": rows,
                    "flagged": sum(r["flagged"] for r in rows)})
        return
    t = Table(title=f"{a.hardware} ({a.date[:10]}) -> {b.hardware} ({b.date[:10]})")
    for col in ("figure", "old", "new", "change", ""):
        t.add_column(col, justify="left" if col in ("figure", "") else "right")
    for r in rows:
        fmt = (lambda v: "-" if v is None else (fmt_si(v, r["unit"]) if r["unit"] else f"{v:.3g}"))
        change = f"{r['change']:+.1%}" if r["change"] is not None else "-"
        flag = f"<- {r['verdict']}" if r["flagged"] else ""
        t.add_row(r["figure"], fmt(r["old"]), fmt(r["new"]), change, flag)
    con = console()
    con.print(t)
    n = sum(r["flagged"] for r in rows)
    con.print(f"{n} figure(s) changed by more than {FLAG_THRESHOLD:.0%}" if n else
              f"no figure changed by more than {FLAG_THRESHOLD:.0%}")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)
