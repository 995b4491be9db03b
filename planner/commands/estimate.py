"""`planner estimate`: the cost of one configuration, with its breakdown and bottleneck."""

from __future__ import annotations

import math
from typing import Optional

import typer

from planner.commands import options as opt
from planner.cost.defaults import ESTIMATE_DEFAULTS as D


def estimate_cmd(
    model: str = typer.Option(D["model"], "--model", "-m", help="Model name or YAML path."),
    hardware: str = typer.Option(D["hardware"], "--hardware", "-H", help="Device name or YAML path."),
    devices: int = typer.Option(D["devices"], "--devices", help="Tensor-parallel degree."),
    batch: Optional[int] = typer.Option(None, "--batch", help=f"Requests decoded together (static batch; "
                                                             f"default {D['batch']}).", show_default=False),
    concurrency: int = typer.Option(D["concurrency"], "--concurrency",
                                    help="Requests in flight under continuous batching (0: static batch)."),
    prompt_len: int = typer.Option(D["prompt_len"], "--prompt-len", help="Prompt tokens."),
    gen_len: int = typer.Option(D["gen_len"], "--gen-len", help="Generated tokens per sample."),
    samples: int = typer.Option(D["samples"], "--samples", help="Samples per prompt (Best-of-N, voting)."),
    range_ratio: str = typer.Option("1", "--range-ratio", metavar="R",
                                    help="Lengths drawn per request from [int(R L), L], as sglang bench_serving and "
                                         "InferenceMAX --random-range-ratio R (0 <= R <= 1; 1: fixed lengths; "
                                         "vllm bench serve's b: L(1+b) and R = (1-b)/(1+b)). Serving only."),
    weight_dtype: str = opt.weight_dtype(),
    act_dtype: str = opt.act_dtype(),
    kv_dtype: str = opt.kv_dtype(),
    kv_budget: int = opt.kv_budget(),
    prefix_sharing: bool = typer.Option(D["prefix_sharing"], "--prefix-sharing/--no-prefix-sharing",
                                        help="Share the prompt's KV across samples."),
    calibration: Optional[str] = typer.Option(None, "--calibration", help="Calibration profile YAML."),
    engine: str = typer.Option("generic", "--engine", help="Serving engine profile: vllm | sglang | trtllm | generic "
                                                           "(or a YAML path)."),
    arrival: Optional[str] = typer.Option(None, "--arrival",
                                          help="Serving arrivals: closed (fixed concurrency, as benchmarks run) | "
                                               "poisson (at --rate) | steady (steady state). Default: closed where an "
                                               "engine is named and requests are in flight, else steady."),
    rate: Optional[float] = typer.Option(None, "--rate", help="Poisson arrival rate, requests/s (implies --arrival poisson)."),
    simulate: bool = typer.Option(False, "--simulate", help="Also run the discrete-event simulator: percentiles, goodput."),
    requests: Optional[int] = typer.Option(None, "--requests", help="Requests simulated (default: 10 x concurrency, "
                                                                     "1,000 for Poisson)."),
    slo_ttft_s: Optional[float] = typer.Option(None, "--slo-ttft-s", help="TTFT SLO for goodput / attainment (implies --simulate)."),
    slo_tpot_s: Optional[float] = typer.Option(None, "--slo-tpot-s", help="TPOT SLO for goodput / attainment (implies --simulate)."),
    pp: int = typer.Option(1, "--pp", help="Pipeline-parallel stages."),
    ep: int = typer.Option(1, "--ep", help="Expert-parallel degree (MoE)."),
    dp: int = typer.Option(1, "--dp", help="Attention data-parallel degree (with EP MoE, DeepSeek-style)."),
    num_devices: Optional[int] = typer.Option(None, "--num-devices", help="Devices available (default: tp x pp x dp)."),
    spec_tokens: int = typer.Option(0, "--spec-tokens", help="Speculative decoding: MTP draft tokens per step "
                                                             "(DeepSeek's module; closed or poisson arrivals)."),
    prefill_workers: int = typer.Option(0, "--prefill-workers", help="Disaggregated serving: prefill workers."),
    decode_workers: int = typer.Option(0, "--decode-workers", help="Disaggregated serving: decode workers."),
    prefill_devices: Optional[int] = typer.Option(None, "--prefill-devices", help="TP of a prefill worker (default --devices)."),
    decode_devices: Optional[int] = typer.Option(None, "--decode-devices", help="TP of a decode worker (default --devices)."),
    json_out: bool = opt.json_flag("Print one JSON object."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when the configuration does not fit in memory."),
) -> None:
    """Estimate latency, throughput, memory, energy and dollars of one configuration."""
    from planner.catalog import load_hardware, load_model
    from planner.commands.output import print_json
    from planner.cost.layout import check_layout
    from planner.cost.serving_api import simulate_estimate
    from planner.engine_profiles import load_engine
    from planner.errors import CheckFailed, InputError
    from planner.cost.serving import serving_pattern
    from planner.estimating import arrival_of, estimate, profile_for
    from planner.fidelity import with_arrival

    from planner.bounds import check_count

    for field, v, lo in (("concurrency", concurrency, 0), ("requests", requests, 1), ("num_devices", num_devices, 1),
                         ("prefill_workers", prefill_workers, 0), ("decode_workers", decode_workers, 0),
                         ("prefill_devices", prefill_devices, 1), ("decode_devices", decode_devices, 1)):
        if v is not None:  # checked where given, used or not (a bad value is never passed over in silence)
            check_count(field, v, lo)
    if batch is not None and concurrency:
        raise InputError("--batch is a static batch and --concurrency is continuous batching: give one",
                         field="batch", value=batch)
    batch = D["batch"] if batch is None else batch
    ratio = _range_ratio(range_ratio)

    m = load_model(model)
    h = load_hardware(hardware)
    prof = load_engine(engine)
    check_layout(m, tp=devices, pp=pp, ep=ep, dp=dp, num_devices=num_devices)
    arrival, concurrency = serving_pattern(prof, arrival, rate, concurrency, batch,
                                           closed=simulate or slo_ttft_s is not None or slo_tpot_s is not None)
    for field, v in (("slo-ttft-s", slo_ttft_s), ("slo-tpot-s", slo_tpot_s)):
        if v is not None and not 0 < v < math.inf:
            raise InputError("must be a finite number of seconds > 0", field=field, value=v)
    # the profile this device uses (planner.estimating.profile_for: a calibration, else the serving
    # profile fitted for this (device, engine), else the datasheet plus the engine's carried parameters)
    choice, error = profile_for(h, prof, calibration)  # a bad shipped file: exit 2 before costing
    eff, eff_label, prof = choice.efficiency, choice.label, choice.engine
    if prefill_workers or decode_workers:
        from planner.cost.serving_api import disaggregated_estimate

        if ep > 1 or dp > 1:
            raise InputError("disaggregated serving from the command line is tensor parallel only (the Python API "
                             "planner.cost.disagg.disaggregated_rows takes each side's ep and attention dp)",
                             field="ep" if ep > 1 else "dp", value=ep if ep > 1 else dp)
        if spec_tokens:
            raise InputError("disaggregated serving from the command line has no speculative decoding (a measured "
                             "run's spec_decode_tokens column has)", field="spec-tokens", value=spec_tokens)
        if ratio != 1.0:
            raise InputError("disaggregated serving is costed at fixed lengths", field="range-ratio", value=range_ratio)
        if pp > 1 or rate is not None or simulate or arrival == "poisson":
            raise InputError("disaggregated serving is costed as a closed loop, tensor parallel only",
                             field="prefill-workers", value=prefill_workers)
        r = disaggregated_estimate(m, h, prefill_workers=prefill_workers, decode_workers=decode_workers,
                                   prefill_devices=prefill_devices or devices, decode_devices=decode_devices or devices,
                                   concurrency=concurrency, prompt_len=prompt_len, gen_len=gen_len,
                                   weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype,
                                   efficiency=eff, engine=prof)
        r["efficiency"], r["expected_error"] = eff_label, with_arrival(error, arrival_of(r["config"]))
        if json_out:
            print_json(r)
        else:
            print_estimate(r)
        return
    r = estimate(m, h, engine=prof, arrival=arrival, rate=rate, choice=(choice, error), devices=devices,
                 batch=batch, concurrency=concurrency, prompt_len=prompt_len, gen_len=gen_len, samples=samples,
                 weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget,
                 prefix_sharing=prefix_sharing, pp=pp, ep=ep, dp=dp, spec_tokens=spec_tokens,
                 **({"range_ratio": ratio} if ratio != 1.0 else {}))
    if simulate or slo_ttft_s is not None or slo_tpot_s is not None:
        if spec_tokens:
            raise InputError("the simulator has no speculative decoding yet (the analytic estimate has)",
                             field="spec-tokens", value=spec_tokens)
        if arrival == "steady":
            raise InputError("the simulator runs closed or poisson arrivals", field="arrival", value=arrival)
        r["simulation"] = simulate_estimate(
            m, h, devices=devices, concurrency=max(concurrency, 1) if arrival == "closed" else 0,
            prompt_len=prompt_len, gen_len=gen_len, weight_dtype=weight_dtype, act_dtype=act_dtype,
            kv_dtype=kv_dtype, efficiency=eff, engine=prof, arrival=arrival, rate=rate or 0.0,
            n_requests=requests, slo_ttft_s=slo_ttft_s, slo_tpot_s=slo_tpot_s, pp=pp, ep=ep, dp=dp,
            samples=samples, prefix_sharing=prefix_sharing, **({"range_ratio": ratio} if ratio != 1.0 else {}))
    if json_out:
        print_json(r)
    else:
        print_estimate(r)
    if strict and not r["memory"]["fits"]:
        raise CheckFailed("the configuration does not fit in device memory (--strict)")


def _range_ratio(text: str) -> float:
    """The --range-ratio flag's value (planner.bounds.check_range_ratio: 0 <= R <= 1)."""
    from planner.bounds import RANGE_RATIO_RULE, check_range_ratio
    from planner.errors import InputError

    try:
        return check_range_ratio(float(text))
    except (ValueError, InputError):  # not a number, or outside [0, 1]: the value as given
        raise InputError(RANGE_RATIO_RULE, field="range-ratio", value=text) from None


def print_estimate(r: dict) -> None:
    from rich.table import Table

    from planner.commands.output import console
    from planner.units import fmt_si

    con = console()
    c = r["config"]
    mem = r["memory"]
    if not mem["fits"]:
        con.print(f"[bold red]DOES NOT FIT[/]: {fmt_si(mem['total_bytes'], 'B')} needed per device, "
                  f"{fmt_si(mem['capacity_bytes'], 'B')} available; the times below assume it would")
    head = (f"{r['model']} on {c['devices']}x {r['hardware']}" + (f" x {c['pp']} stages" if c.get("pp", 1) > 1 else "")
            + (f" x {c['attn_dp']} attention-dp groups" if c.get("attn_dp", 1) > 1 else "")
            + (f", experts over {c['ep']} ep groups" if c.get("ep", 1) > 1 else "")
            + f" | {r['mode']}"
            + (f" | engine {c['engine']}" if c["concurrency"] else "")
            + (f" | rate {c['rate']:g}/s" if c.get("arrival") == "poisson" else
               f" | batch {c['batch']}" + (f", concurrency {c['concurrency']}" if c["concurrency"] else ""))
            + f" | prompt {c['prompt_len']}, gen {c['gen_len']}, samples {c['samples']}"
            + (f" | range ratio {c['range_ratio']:g}: mean prompt {c['mean_prompt_len']}, gen {c['mean_gen_len']}"
               if "range_ratio" in c else "")
            + f" | W {c['weight_dtype']} A {c['act_dtype']} KV {c['kv_dtype']}"
            + (f" | KV budget {c['kv_budget']}" if c["kv_budget"] else ""))
    con.print(head)
    con.print(f"efficiency: {r['efficiency']}")
    if "expected_error" in r:
        from planner.fidelity import describe

        err = r["expected_error"]
        con.print(describe(err), markup=False)
    for note in r.get("assumptions", []):
        if not note.startswith("efficiency:"):  # the line above already says so
            con.print(f"assumption: {note}", markup=False)
    t = Table(title="summary")
    for col in ("TTFT", "TPOT", "latency", "throughput", "energy/request", "$/request", "bottleneck"):
        t.add_column(col, justify="right")
    u = "unbounded" if r.get("unbounded") else None
    finite = lambda x: x is not None and math.isfinite(x)  # noqa: E731 (else "n/a", as fmt_si: never "$nan")
    t.add_row(u or fmt_si(r["ttft_s"], "s"), u or fmt_si(r["tpot_s"], "s"), u or fmt_si(r["latency_s"], "s"),
              u or (f"{r['throughput_tok_s']:.4g} tok/s" if finite(r["throughput_tok_s"]) else "n/a"),
              fmt_si(r["energy_j"], "J"), f"${r['cost_usd']:.3g}" if finite(r["cost_usd"]) else "n/a", r["bottleneck"])
    con.print(t)
    if "disaggregated" in r:
        dg = r["disaggregated"]
        con.print(f"disaggregated: {dg['prefill_workers']} prefill x TP{dg['prefill_devices']}, {dg['decode_workers']} "
                  f"decode x TP{dg['decode_devices']} ({dg['devices']} devices), KV transfer "
                  f"{fmt_si(dg['kv_transfer_s'], 's')}, decode admission {fmt_si(dg['admission_s'], 's')}, wait for a "
                  f"decode slot {fmt_si(dg['decode_wait_s'], 's')} per request ({dg['decode_running']:.0f} of "
                  f"{r['config']['concurrency']} running); work and memory below are one decode worker's")
    if "pipeline" in r:
        pl = r["pipeline"]
        if "max_running" in pl:  # Poisson arrivals: the open loop's groups
            con.print(f"pipeline: {pl['stages']} stages, the running set (up to {pl['max_running']:g}) in "
                      f"{pl['stages']} groups, stage sends {fmt_si(pl['send_per_step_s'], 's')} per step of a group "
                      f"of {pl['microbatch']} ({'as given' if r.get('unbounded') else 'rate x latency in flight'})")
        else:
            con.print(f"pipeline: {pl['stages']} stages, {pl['microbatches']} microbatches of {pl['microbatch']} in "
                      f"flight (bubble {pl['bubble']:.0%}), stage sends {fmt_si(pl['send_per_step_s'], 's')} per step")
    if r.get("unbounded"):
        con.print(f"[bold red]unbounded queueing[/]: {c.get('rate')} requests/s is above this configuration's "
                  "capacity; the queue and TTFT grow without limit")
    if "simulation" in r:
        print_simulation(con, r["simulation"])

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


def print_simulation(con, s: dict) -> None:
    from rich.table import Table

    from planner.units import fmt_si

    k = s.get("sequences_per_request", 1)
    wide = f", {k} samples each ({'one shared prompt' if s.get('shared_prompt') else 'a prompt each'})" if k > 1 else ""
    t = Table(title=f"simulated: {s['requests']:,} requests{wide}, {s['steps']:,} steps ({s['engine']}, {s['arrival']})")
    for col in ("", "mean", "p50", "p90", "p99"):
        t.add_column(col, justify="right")
    for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end-to-end")):
        v = s[key]
        t.add_row(label, *(fmt_si(v[q], "s") for q in ("mean_s", "p50_s", "p90_s", "p99_s")))
    con.print(t)
    con.print(f"throughput {s['throughput_req_s']:.4g} req/s, {s['throughput_tok_s']:.4g} tok/s | "
              f"SLO attainment {s['slo_attainment']:.1%} | goodput {s['goodput_req_s']:.4g} req/s")
    if s.get("balance_hold_iters"):  # TensorRT-LLM's attention-DP balancer held the prompts
        con.print(f"attention-DP balancer: a prompt held {s['balance_hold_iters']:.3g} iterations on average")


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_cmd)
