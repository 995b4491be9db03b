"""Capacity-planning reports: ``planner report SCENARIO.yaml -o report.html|report.md``.

:func:`build` sizes the fleet for every candidate (planner.sizing) under the scenario and
under each sensitivity variant; :func:`write` renders Markdown or one self-contained HTML
file (plots inline as data URIs) and writes it atomically. Output is deterministic: no
dates, fixed plot metadata, stable ordering.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from planner.errors import InputError
from planner.units import HOURS_PER_MONTH

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


def build(path: str) -> dict[str, Any]:
    """Everything the report shows, as a JSON-ready dict."""
    from planner.capacity import load_scenario
    from planner.sizing import Variant, plan, resolve_efficiencies

    scn, models, hardware = load_scenario(path)
    effs = resolve_efficiencies(scn, hardware)
    grids: dict = {}  # one engine grid and Poisson sizing per generation-length scale
    base = plan(scn, models, hardware, Variant(), effs, grids)
    s = scn.sensitivity
    variants = [Variant("generation length x2", gen_scale=2.0), Variant("traffic x2", traffic_scale=2.0),
                Variant(f"prices {s.price_change:+.0%}", price_scale=1.0 + s.price_change)]
    if s.model_error > 0:
        variants.append(Variant(f"throughput {-s.model_error:+.0%} (model error)", throughput_scale=1.0 - s.model_error))
    sens = [plan(scn, models, hardware, v, effs, grids) for v in variants]
    ok = [c for c in base["candidates"] if c["status"] == "ok"]
    floor = scn.min_accuracy
    acceptable = [c for c in ok if floor is None or c["accuracy"] is None or c["accuracy"] >= floor]
    cheapest = min(acceptable, key=lambda c: (c["fleet"]["monthly_usd"], c["model"], c["hardware"]), default=None)
    from planner.fidelity import with_arrival
    from planner.serving_profile import expected_error

    return {"scenario": scn.model_dump(mode="json"), "file": str(path), "plan": base, "sensitivity": sens,
            "cheapest": None if cheapest is None else f"{cheapest['model']} @ {cheapest['hardware']}",
            "expected_error": {h.name: with_arrival(expected_error(e[2], h.name), "poisson")  # sized at Poisson rates
                               for h, e in zip(hardware, effs)}}


def fmt_usd(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _s(x: float) -> str:
    from planner.units import fmt_si

    return fmt_si(x, "s")


def blocks(data: dict) -> list:
    """The report's content, format-neutral."""
    scn, plan = data["scenario"], data["plan"]
    tr = scn["traffic"]
    from planner.capacity import CapacityScenario

    model = CapacityScenario.model_validate(scn)
    sets = plan["length_sets"]
    b: list = [("h1", f"Capacity plan: {scn['name']}")]
    b.append(("p", f"Scenario file `{Path(data['file']).name}`. Traffic {tr['requests_per_s']:g} requests/s; prompt "
                   f"lengths {model.traffic.prompt_len.describe()}; generation lengths "
                   f"{model.traffic.gen_len.describe()}, capped at {model.traffic.gen_cap()} tokens. Headroom "
                   f"{scn['headroom']:.0%}; horizon {scn['horizon_months']:g} months."))
    bounds = [f"p{q:g} {m} <= {v:g} s" for m, v, q in model.slo.bounds()]
    b.append(("p", "SLOs: " + (", ".join(bounds) if bounds else "none") + ". Task: "
              + (f"`{scn['task']}`" if scn["task"] else "none") +
              (f", minimum accuracy {scn['min_accuracy']:g}" if scn["min_accuracy"] is not None else "") + "."))
    ok = [c for c in plan["candidates"] if c["status"] == "ok"]
    best = next((c for c in ok if f"{c['model']} @ {c['hardware']}" == data["cheapest"]), None)
    if best is None:
        rec = "no candidate meets the SLOs" + (" and the accuracy floor." if scn["min_accuracy"] is not None else ".")
    else:
        f = best["fleet"]
        rec = (f"**{data['cheapest']}** is the cheapest fleet that meets every SLO: {f['replicas']} replica(s) of "
               f"{best['config']['devices']} device(s), {fmt_usd(f['monthly_usd'])} per month, "
               f"${f['usd_per_1k_requests']:.3g} per 1,000 requests")
        if scn["min_accuracy"] is not None:
            rec += (", accuracy not verified (no profile)" if best["accuracy"] is None
                    else f", accuracy {best['accuracy']:.3f} >= {scn['min_accuracy']:g}")
        rec += "."
    b.append(("p", "Recommendation: " + rec))
    b.append(("h2", "Best serving configuration per candidate"))
    from planner.layouts import label_of

    layouts = scn["search"].get("layouts") is not None  # the layout column, where the file searches layouts
    head = ["model", "hardware", "devices / replica"] + (["layout"] if layouts else []) + [
        "weights / KV", "max running", "requests/s / replica",
        "TPOT (mean)", "TTFT (mean)"] + [f"p{q:g} {m}" for m, _, q in model.slo.bounds()] + ["bottleneck", "accuracy"]
    rows = []
    for c in plan["candidates"]:
        if c["status"] != "ok":
            rows.append({"cells": [c["model"], c["hardware"], c["status"]], "bad": True})
            continue
        cf, pr = c["config"], c["per_replica"]
        rows.append({"cells": [c["model"], c["hardware"], cf["devices"]] + (
            [label_of(cf.get("layout"))] if layouts else []) + [cf["weight_dtype"] + (
            f" (A {cf['act_dtype']})" if cf["act_dtype"] != cf["weight_dtype"] else "") + f" / {cf['kv_dtype']}",
            pr.get("max_running", cf["concurrency"]), f"{pr['requests_per_s']:.3g}", _s(pr["tpot_s"]), _s(pr["ttft_s"])]
            + [_s(x["value"]) for x in c["slo"]] + [pr["bottleneck"], _acc(c)]})
    engine = scn.get("engine") or "generic"
    b.append(("table", head, rows,
              "Per replica at the highest Poisson arrival rate that keeps every SLO (open-loop scheduler model with "
              f"queueing, engine {engine}, at most \"max running\" requests in flight: planner/replica_rate.py). Means at "
              f"the mean lengths (prompt {sets[0]['prompt_len']}, generation {sets[0]['gen_len']}) are the numbers of "
              f"`planner estimate --engine {engine} --rate R --prompt-len {sets[0]['prompt_len']} --gen-len "
              f"{sets[0]['gen_len']}` with that configuration. Percentile columns: that percentile's lengths, and "
              "TTFT's queue wait at that percentile."))
    b.append(("h2", "Profiles used"))
    used = {}
    for c in plan["candidates"]:
        used.setdefault(c["hardware"], c.get("profile", c["efficiency"]))
    from planner.fidelity import describe

    errors = data.get("expected_error", {})
    b.append(("ul", [f"{hw}: {label}" + (f"; {describe(errors[hw])}" if hw in errors else "")
                     for hw, label in used.items()]))
    b.append(("h2", "Fleet and cost"))
    head = ["model", "hardware", "replicas", "devices", "in flight", "utilization", "$ / device-hour", "$ / month",
            "kWh / month", f"$ / {scn['horizon_months']:g} months", "$ / 1k requests"]
    rows = [{"cells": [c["model"], c["hardware"], _replicas(f), f["devices"], f"{f['in_flight']:,.1f}",
                       f"{f['utilization']:.0%}", f"{f['price_per_device_hour']:.3g}" + (" (owned)" if f["owned"] else ""),
                       fmt_usd(f["monthly_usd"]), f"{f['monthly_kwh']:,.0f}", fmt_usd(f["horizon_usd"]),
                       f"${f['usd_per_1k_requests']:.3g}"]}
            for c in ok for f in [c["fleet"]]]
    b.append(("table", head, rows,
              f"replicas = ceil(rps x (1 + {scn['headroom']:g}) / requests/s per replica under Poisson arrivals within "
              f"the SLOs) + {scn['redundancy']} spare "
              f"(N+{scn['redundancy']}; all replicas serve, so utilization counts the spares); in flight = rps x mean "
              "latency (Little's law); owned devices cost their purchase price over their lifetime plus electricity "
              f"at ${scn['electricity_usd_per_kwh']:g}/kWh; kWh are the facility's (IT power x PUE {scn['pue']:g}); "
              f"{HOURS_PER_MONTH:g} hours per month."))
    b.append(("h2", "Prices used"))
    b.append(("table", ["hardware", "$ / device-hour", "kind", "date", "source"], _price_rows(ok),
              "Rental prices are all-in per device-hour; an owned device's hourly figure is its purchase price over its "
              "lifetime. Prices from the scenario file are marked as overrides. Snapshots come from different providers "
              "and dates: re-check them before you buy."))
    b.append(("h2", f"Rent or buy over {scn['horizon_months']:g} months"))
    head = ["model", "hardware", "devices", "rent", "buy (purchase + electricity)", "buy, amortized", "break-even"]
    b.append(("table", head, [{"cells": [c["model"], c["hardware"], c["fleet"]["devices"], *_rvb(c["fleet"])]}
                              for c in ok],
              "Rent: device-hours x rental price. Buy: every device's purchase price up front plus the facility's "
              f"electricity (IT power x PUE {scn['pue']:g} at ${scn['electricity_usd_per_kwh']:g}/kWh); amortized: "
              "purchase x horizon / lifetime plus electricity. Break-even: months until cumulative rent exceeds the "
              "purchase plus electricity. Hosting (space, staff, network) is not included."))
    b.append(("h2", "Power"))
    head = ["model", "hardware", "devices", "peak IT kW", "peak facility kW", "average facility kW", "kWh / month"]
    b.append(("table", head, [{"cells": [c["model"], c["hardware"], f["devices"], f"{f['peak_it_kw']:,.1f}",
                                         f"{f['peak_facility_kw']:,.1f}", f"{f['average_facility_kw']:,.1f}",
                                         f"{f['monthly_kwh']:,.0f}"]} for c in ok for f in [c["fleet"]]],
              "Peak: every device at its rated maximum power"
              + (f" plus {scn['host_power_w_per_device']:g} W of host per device" if scn["host_power_w_per_device"]
                 else " (devices only: set host_power_w_per_device for CPUs, NICs and fans, e.g. 575 W for a DGX "
                      "H100, rated 10.2 kW for 8 x 700 W GPUs)")
              + f"; facility = IT x PUE {scn['pue']:g}. This is the power the racks and the site must supply."))
    axis = _pareto_axis(ok)
    b.append(("h2", f"{axis[0].upper()}{axis[1:]} vs cost"))
    b.append(("figure", "pareto", "Pareto plot: " + axis + " vs USD per 1,000 requests. Large markers: "
              "the chosen configuration per candidate; small: the cheapest SLO-meeting configuration per "
              "(quantization, KV dtype). Points on the frontier are labelled."))
    b.append(("h2", "Roofline of the chosen configurations"))
    b.append(("figure", "roofline", "Roofline: arithmetic intensity vs achieved FLOP/s per device at full load, "
              "against each device's roof (peak of the compute dtype, memory bandwidth)."))
    b.append(("h2", "Sensitivity"))
    head = ["model", "hardware", "base"] + [v["variant"] for v in data["sensitivity"]]
    rows = []
    for i, c in enumerate(plan["candidates"]):
        cells = [c["model"], c["hardware"], _cell(c)] + [_cell(v["candidates"][i]) for v in data["sensitivity"]]
        rows.append({"cells": cells, "bad": c["status"] != "ok"})
    b.append(("table", head, rows, "Monthly dollars (devices) after re-optimizing the configuration under each "
              "change (a longer generation also raises the accuracy model's budget); \"no fit\": no "
              "configuration meets the SLOs and the accuracy floor."))
    b.append(("h2", "Assumptions and known model error"))
    b.append(("ul", assumptions(data, model)))
    return b


def _replicas(f: dict) -> str:
    return f"{f['replicas_needed']} + {f['spare_replicas']}" if f["spare_replicas"] else str(f["replicas"])


def _price_rows(ok: list) -> list:
    seen, rows = set(), []
    for c in ok:
        f = c["fleet"]
        if c["hardware"] in seen:
            continue
        seen.add(c["hardware"])
        kind = "override (scenario)" if f["price_override"] else ("owned" if f["owned"] else "rental")
        rows.append({"cells": [c["hardware"], f"{f['price_per_device_hour']:.3g}", kind, f["price_date"] or "not dated",
                               f["price_source"]]})
    return rows


def _rvb(f: dict) -> list[str]:
    r = f["rent_vs_buy"]
    money = lambda x: "no price" if x is None else fmt_usd(x)  # noqa: E731
    be = r["breakeven_months"]
    if r["rent_usd"] is None or r["buy_usd"] is None:
        be_txt = "n/a (one price missing)"
    else:
        be_txt = "never" if be is None else f"{be:,.1f} months"
    return [money(r["rent_usd"]), money(r["buy_usd"]), money(r["buy_amortized_usd"]), be_txt]


def _acc(c: dict) -> str:
    return "n/a" if c["accuracy"] is None else f"{c['accuracy']:.3f}"


def _cell(c: dict) -> str:
    if c["status"] != "ok":
        return "no fit"
    return f"{fmt_usd(c['fleet']['monthly_usd'])} ({c['fleet']['devices']})"


def _pareto_axis(ok: list) -> str:
    return "accuracy" if any(c["accuracy"] is not None for c in ok) else "mean end-to-end latency (no accuracy profile)"


def assumptions(data: dict, model) -> list[str]:
    effs = sorted({f"{c['hardware']}: {c.get('profile', c['efficiency'])}" for c in data["plan"]["candidates"]})
    sets = data["plan"]["length_sets"]
    items = [
        "Serving: continuous batching with chunked prefill under Poisson arrivals (the open-loop scheduler model of "
        "planner/cost/serving.py, with queueing): each replica takes the highest request rate at which every SLO "
        "holds, with at most \"max running\" requests in flight: the searched C (max_num_seqs), the engine's limit "
        "and what the free KV memory holds (planner/cost/running.py); later requests wait for a slot. Replicas are "
        "tensor-parallel groups of one device type; each receives an equal share of the Poisson traffic.",
        f"Sizing uses the mean lengths (prompt {sets[0]['prompt_len']}, generation {sets[0]['gen_len']}); means not "
        "given come from a log-normal fitted to the percentiles.",
        "Percentile SLOs are checked with every request in flight at that percentile's prompt and generation "
        "lengths (an upper bound for TPOT and latency), TTFT with its queue wait at that percentile (zero with "
        "probability 1 - rho, else exponential: the heavy-traffic form of the M/G/1 wait). The headroom is a margin "
        "on the traffic (growth, bursts beyond Poisson), not for queueing, which the rate already includes.",
        "Accuracy is one sample at the generation cap from the accuracy model's profile for the task (quantization "
        "penalties included); \"n/a\" where no profile exists. Strategies with several samples are not sized here.",
        "Energy: the cost engine's power model (idle power plus dynamic power up to the device's maximum) per "
        "device; a fleet at utilization u draws u x full-load + (1 - u) x idle power, plus the host power per "
        f"device given in the scenario ({data['scenario']['host_power_w_per_device']:g} W), times the PUE "
        f"({data['scenario']['pue']:g}; default: the Uptime Institute 2023 industry average, 1.58).",
        f"Redundancy: N+{data['scenario']['redundancy']}: the fleet keeps serving the traffic (with its headroom) "
        "after that many replica failures.",
        "Prices: scenario prices are all-in per device-hour; catalog rental prices otherwise; a device with only a "
        "purchase price is owned (amortized over its lifetime, plus electricity).",
        "Profiles (efficiency, serving parameters): " + "; ".join(effs) + ".",
        "Known model error: the cost engine is an analytical roofline model. Without a calibration profile it uses "
        "documented default efficiencies (70% of peak compute, 80% of memory bandwidth); serving-stack overheads "
        "(scheduling, sampling, paging, tokenization, networking) are not modeled, so absolute throughput can be off "
        "by tens of percent, usually optimistic. Rankings between candidates are more reliable than absolute "
        f"numbers. The sensitivity column \"throughput {-model.sensitivity.model_error:+.0%}\" shows the fleet if "
        "the model overestimates throughput by that much; calibrate the devices (`planner calibrate`) to shrink it.",
    ]
    ok = [c for c in data["plan"]["candidates"] if c["status"] == "ok"]
    full = ("bf16", "fp16", "fp32")
    blind = sorted({f"{c['model']} @ {c['hardware']} ({c['config']['weight_dtype']})" for c in ok
                    if c["accuracy"] is None and c["config"]["weight_dtype"] not in full})
    generic = sorted({f"{c['model']} @ {c['hardware']} ({c['config']['weight_dtype']})" for c in ok
                      if c["accuracy"] is not None and c["config"]["weight_dtype"] not in full})
    if blind:
        items.append("Quantized without any accuracy check (no accuracy profile for the task): " + ", ".join(blind)
                     + ". Their format was chosen on cost alone; measure its accuracy before relying on it.")
    if generic:
        items.append("Quantized accuracy is the profile's full-precision accuracy minus the generic quantization "
                     "penalty (planner/accuracy/penalties.py), not a measurement at that format: " + ", ".join(generic)
                     + ".")
    return items


def figures(data: dict) -> tuple[dict[str, str | None], dict[str, str]]:
    """SVG text per figure key, and a note for any that could not be drawn."""
    from planner.plots import PlotsUnavailable, pareto_svg, roofline_svg

    ok = [c for c in data["plan"]["candidates"] if c["status"] == "ok"]
    has_acc = any(c["accuracy"] is not None for c in ok)
    pts = []
    for c in ok:
        g = {"model": c["model"], "hardware": c["hardware"]}
        label = f"{c['model']} @ {c['hardware']} ({c['config']['weight_dtype']})"
        if has_acc:
            pts += [{**g, "label": f"{c['model']} @ {c['hardware']} ({o['quantization']}, KV {o['kv_dtype']})",
                     "x": o["usd_per_1k_requests"], "y": o["accuracy"], "chosen": False}
                    for o in c["options"] if o["accuracy"] is not None]
            if c["accuracy"] is not None:
                pts.append({**g, "label": label, "x": c["fleet"]["usd_per_1k_requests"], "y": c["accuracy"],
                            "chosen": True})
        else:
            pts.append({**g, "label": label, "x": c["fleet"]["usd_per_1k_requests"],
                        "y": c["per_replica"]["latency_s"], "chosen": True})
    roofs, rpts = [], []
    for c in ok:
        name = f"{c['hardware']} {c['config']['act_dtype']}"
        if all(r["name"] != name for r in roofs):
            roofs.append({"name": name, "hardware": c["hardware"], "dtype": c["config"]["act_dtype"],
                          "peak_flops": c["peak_flops_per_device"], "bandwidth": c["bandwidth_bytes_per_device"]})
        pr = c["per_replica"]
        rpts.append({"label": c["model"], "hardware": c["hardware"], "intensity": pr["flops_per_request"] / pr["bytes_per_request"],
                     "flops_s": pr["flops_per_request"] * pr["requests_per_s"] / c["config"]["devices"]})
    try:
        return ({"pareto": pareto_svg(pts, "accuracy" if has_acc else "mean end-to-end latency (s)"),
                 "roofline": roofline_svg(rpts, roofs)}, {})
    except PlotsUnavailable as exc:
        return {"pareto": None, "roofline": None}, {"pareto": str(exc), "roofline": str(exc)}


def _save(path: Path, text: str) -> None:
    """Atomic write, then the usual permissions (the temporary file is private)."""
    from planner.files import atomic_write_text

    atomic_write_text(path, text)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write(scenario: str, out: str) -> dict[str, Any]:
    """Build and write the report (format from ``out``'s suffix); returns the data."""
    from planner.report_render import to_html, to_markdown

    p = Path(out)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"unknown report format (use {', '.join(sorted(FORMATS))})", field="output", value=out)
    data = build(scenario)
    figs, notes = figures(data)
    content = blocks(data)
    if fmt == "html":
        _save(p, to_html(f"Capacity plan: {data['scenario']['name']}", content, figs, notes))
        data["written"] = [str(p)]
        return data
    files: dict[str, str | None] = {}
    out_files: dict[Path, str] = {}
    written = []
    for key, svg in figs.items():
        if svg is None:
            files[key] = None
            continue
        f = p.with_name(f"{p.stem}-{key}.svg")
        out_files[f] = svg
        files[key] = f.name
        written.append(str(f))
    from planner.files import atomic_write_files

    # the report and its plots move in together at the end (the .md last)
    atomic_write_files({**out_files, p: to_markdown(content, files, notes)})
    data["written"] = [str(p)] + written
    return data
