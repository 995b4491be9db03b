"""`planner estimate`: the cost of one configuration, with its breakdown and bottleneck."""

from __future__ import annotations

from typing import Optional

import typer


def resolve_efficiency(hardware, calibration: Optional[str]):
    """The efficiency to use and a label saying where it came from: an explicit
    ``--calibration`` profile, else one found in calibration/ for this hardware, else the
    documented defaults."""
    if calibration is None:
        try:
            from planner.calibrate.profile import find_profile
        except ImportError:  # pragma: no cover - calibration package absent
            return None, "defaults (no calibration profile)"
        found = find_profile(hardware.name)
        if found is None:
            return None, "defaults (no calibration profile)"
        from planner.calibrate.profile import load_profile, machine_mismatch, profile_to_efficiency

        profile = load_profile(found)
        why = machine_mismatch(profile)
        if why is not None:  # applied automatically only on the machine it was made on
            return None, f"defaults (calibration profile {found} not applied: {why}; name it with --calibration)"
        return profile_to_efficiency(profile, hardware), f"calibration profile {found} (matches this machine)"
    from planner.calibrate.profile import load_profile, profile_to_efficiency

    eff = profile_to_efficiency(load_profile(calibration), hardware)
    return eff, f"calibration profile {calibration}"


def estimate_cmd(
    model: str = typer.Option("qwen3-8b", "--model", "-m", help="Model name or YAML path."),
    hardware: str = typer.Option("h100-sxm", "--hardware", "-H", help="Device name or YAML path."),
    devices: int = typer.Option(1, "--devices", help="Tensor-parallel degree."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Requests decoded together (static batch; default 1).",
                                        show_default=False),
    concurrency: int = typer.Option(0, "--concurrency",
                                    help="Requests in flight under continuous batching (0: static batch)."),
    prompt_len: int = typer.Option(1024, "--prompt-len", help="Prompt tokens."),
    gen_len: int = typer.Option(256, "--gen-len", help="Generated tokens per sample."),
    samples: int = typer.Option(1, "--samples", help="Samples per prompt (Best-of-N, voting)."),
    weight_dtype: str = typer.Option("bf16", "--weight-dtype", help="Weight storage dtype."),
    act_dtype: str = typer.Option("bf16", "--act-dtype", help="Activation / compute dtype."),
    kv_dtype: str = typer.Option("bf16", "--kv-dtype", help="KV-cache dtype."),
    kv_budget: int = typer.Option(0, "--kv-budget", help="Sparse attention KV budget in tokens (0: dense)."),
    prefix_sharing: bool = typer.Option(True, "--prefix-sharing/--no-prefix-sharing",
                                        help="Share the prompt's KV across samples."),
    calibration: Optional[str] = typer.Option(None, "--calibration", help="Calibration profile YAML."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when the configuration does not fit in memory."),
) -> None:
    """Estimate latency, throughput, memory, energy and dollars of one configuration."""
    from planner.errors import CheckFailed, InputError

    if batch is not None and concurrency:
        raise InputError("--batch is a static batch and --concurrency is continuous batching: give one",
                         field="batch", value=batch)
    batch = 1 if batch is None else batch
    from planner.catalog import load_hardware, load_model
    from planner.commands.output import print_json
    from planner.cost.api import estimate

    m = load_model(model)
    h = load_hardware(hardware)
    eff, eff_label = resolve_efficiency(h, calibration)
    r = estimate(m, h, devices=devices, batch=batch, concurrency=concurrency, prompt_len=prompt_len,
                 gen_len=gen_len, samples=samples, weight_dtype=weight_dtype, act_dtype=act_dtype,
                 kv_dtype=kv_dtype, kv_budget=kv_budget, prefix_sharing=prefix_sharing, efficiency=eff)
    r["efficiency"] = eff_label
    r["assumptions"] = assumptions(h, eff_label)
    if json_out:
        print_json(r)
    else:
        print_estimate(r)
    if strict and not r["memory"]["fits"]:
        raise CheckFailed("the configuration does not fit in device memory (--strict)")


def assumptions(hardware, eff_label: str) -> list[str]:
    """What the numbers rest on that the user did not give: listed in every output."""
    out = []
    if eff_label.startswith("defaults"):
        out.append("efficiency: documented defaults (no calibration profile for this device)")
    if hardware.price_per_hour_usd is None:
        out.append(f"price: owned device, purchase price amortized over {hardware.lifetime_years:g} years "
                   "(no rental price in the catalog)")
    return out


def print_estimate(r: dict) -> None:
    from rich.table import Table

    from planner.commands.output import console, fmt_si

    con = console()
    c = r["config"]
    mem = r["memory"]
    if not mem["fits"]:
        con.print(f"[bold red]DOES NOT FIT[/]: {fmt_si(mem['total_bytes'], 'B')} needed per device, "
                  f"{fmt_si(mem['capacity_bytes'], 'B')} available; the times below assume it would")
    head = (f"{r['model']} on {c['devices']}x {r['hardware']} | {r['mode']} | batch {c['batch']}"
            + (f", concurrency {c['concurrency']}" if c["concurrency"] else "")
            + f" | prompt {c['prompt_len']}, gen {c['gen_len']}, samples {c['samples']}"
            + f" | W {c['weight_dtype']} A {c['act_dtype']} KV {c['kv_dtype']}"
            + (f" | KV budget {c['kv_budget']}" if c["kv_budget"] else ""))
    con.print(head)
    con.print(f"efficiency: {r['efficiency']}")
    for note in r.get("assumptions", []):
        if not note.startswith("efficiency:"):  # the line above already says so
            con.print(f"assumption: {note}", markup=False)
    t = Table(title="summary")
    for col in ("TTFT", "TPOT", "latency", "throughput", "energy/request", "$/request", "bottleneck"):
        t.add_column(col, justify="right")
    t.add_row(fmt_si(r["ttft_s"], "s"), fmt_si(r["tpot_s"], "s"), fmt_si(r["latency_s"], "s"),
              f"{r['throughput_tok_s']:.4g} tok/s", fmt_si(r["energy_j"], "J"), f"${r['cost_usd']:.3g}",
              r["bottleneck"])
    con.print(t)

    tb = r["time_by_bound_s"]
    total = sum(tb.values()) or 1.0
    p = Table(title="time by phase and by bound")
    p.add_column("phase")
    p.add_column("time", justify="right")
    p.add_column("bound")
    p.add_column("time", justify="right")
    p.add_column("share", justify="right")
    phases = [("prefill", r["prefill_s"]), ("decode", r["decode_s"]), ("", None), ("", None)]
    for (ph, pt), (bound, bt) in zip(phases, tb.items()):
        p.add_row(ph, fmt_si(pt, "s") if pt is not None else "", bound, fmt_si(bt, "s"), f"{bt / total:.1%}")
    con.print(p)

    w = Table(title="work per request (all devices)")
    w.add_column("FLOPs by kind")
    w.add_column("", justify="right")
    w.add_column("bytes by kind")
    w.add_column("", justify="right")
    fl, by = list(r["flops"].items()), list(r["bytes"].items())
    for i in range(max(len(fl), len(by))):
        a = fl[i] if i < len(fl) else ("", None)
        b = by[i] if i < len(by) else ("", None)
        w.add_row(a[0], fmt_si(a[1], "FLOP") if a[1] is not None else "", b[0], fmt_si(b[1], "B") if b[1] is not None else "")
    con.print(w)

    mem = r["memory"]
    mt = Table(title="memory per device")
    for col in ("weights", "KV cache", "activations", "reserve", "total", "capacity", "fits"):
        mt.add_column(col, justify="right")
    mt.add_row(fmt_si(mem["weights_bytes"], "B"), fmt_si(mem["kv_cache_bytes"], "B"),
               fmt_si(mem["activations_bytes"], "B"), fmt_si(mem["reserve_bytes"], "B"),
               fmt_si(mem["total_bytes"], "B"), fmt_si(mem["capacity_bytes"], "B"),
               "yes" if mem["fits"] else "[bold red]NO[/]")
    con.print(mt)
    k = r["kinetics"]
    con.print(f"Kinetics eFLOPs: {k['eflops']:.4g} (compute {k['compute_flops']:.4g} FLOP + "
              f"{k['intensity']} x memory {k['memory_bytes']:.4g} B) = {k['b200_seconds']:.3g} B200-seconds")
    if not mem["fits"]:
        con.print("[bold red]does not fit in device memory[/]: add devices, quantize, or shrink batch/context")


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_cmd)
