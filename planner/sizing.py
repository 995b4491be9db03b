"""Fleet sizing for a capacity scenario: the best serving configuration per candidate.

For every candidate (model x device) the search grid is devices per replica (tensor
parallel, or the device layouts of ``search.layouts``: expert parallel and attention data
parallel, costed as ``planner estimate --ep --dp`` costs them) x quantization x KV dtype x
``C``, the most requests a replica runs at once
(the engine's max_num_seqs). Each row is costed by the engine in serving mode with ``C``
requests in flight (continuous batching; a closed loop under the scenario's ``engine:``,
else the steady state) at the traffic's mean lengths and at each SLO percentile's lengths,
in one vectorized engine call: that gives the memory verdict at ``C`` in flight and the
full-load throughput.

Sizing (per row) is from Poisson arrivals (issue 10, item 3): the replica's rate
``r`` is the highest Poisson arrival rate at which the open-loop scheduler model stays
bounded, keeps at most ``C`` running and meets every SLO at its percentile
(:mod:`planner.replica_rate`, vectorized over all rows); ``replicas = ceil(rps * (1 +
headroom) / r) + redundancy``; utilization = rps / (replicas * r). Requests in flight
(Little's law) = rps * mean latency at ``r``. Monthly dollars = replicas * devices * hours
* price per device-hour (+ electricity for owned devices: the price is then the purchase
over its lifetime); monthly kWh = replicas * (u * full-load power + (1 - u) * idle power)
* hours, full-load power = energy per request at ``C`` in flight * ``r``. The best row is
the cheapest that meets every SLO and the accuracy floor (ties: higher accuracy, fewer
devices, lower latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from planner import fleet
from planner.errors import InputError
from planner.quantization import QUANTIZATIONS, act_dtype_for
from planner.units import HOURS_PER_MONTH, SECONDS_PER_HOUR

SECONDS_PER_MONTH = HOURS_PER_MONTH * SECONDS_PER_HOUR


@dataclass(frozen=True)
class Variant:
    """A perturbation of the scenario (the sensitivity table)."""

    label: str = "base"
    gen_scale: float = 1.0
    traffic_scale: float = 1.0
    price_scale: float = 1.0
    throughput_scale: float = 1.0


def candidate_accuracy(model_name: str, task: Optional[str], weight_dtype: str, act_dtype: str, kv_dtype: str,
                       gen_cap: int) -> tuple[Optional[float], str]:
    """Accuracy of one sample from the accuracy model, or (None, why) without a profile."""
    if task is None:
        return None, "no task given"
    try:
        from planner import accuracy

        prof = accuracy.find_profile(model_name, task)
        a = accuracy.predict(prof, "single", 1, gen_cap, weight_dtype=weight_dtype, act_dtype=act_dtype,
                             kv_dtype=kv_dtype, kv_budget=0)
    except InputError as exc:
        return None, exc.reason
    except (ImportError, AttributeError):  # pragma: no cover - accuracy model absent
        return None, "accuracy model unavailable"
    return float(np.asarray(a).reshape(-1)[0]), f"accuracy model ({task})"


def layout_axis(scn, hardware) -> list:
    """The devices-per-replica axis as device layouts, by the one mechanism ``planner
    recommend`` uses (planner.layouts.expand): the scenario's ``search.layouts`` (families
    over the devices grid, explicit layouts as given), else tensor parallel over the grid."""
    from planner.layouts import DEFAULT_LAYOUTS, expand

    return expand(scn.search.layouts or DEFAULT_LAYOUTS, _device_grid(scn, hardware))


def _layout_columns(lays, models, im, idv) -> tuple[dict, np.ndarray]:
    """The engine's ``ep`` / ``attn_dp`` columns of the layout axis (none for tensor
    parallel alone: the columns' defaults) and the ``[model, layout]`` mask of the layouts a
    model takes (planner.layouts.suits_model; the others run as plain tp and are masked)."""
    from planner.layouts import suits_model

    fit = np.array([[suits_model(m, x) for x in lays] for m in models], dtype=bool).reshape(len(models), len(lays))
    if all(x.plain_tp for x in lays):
        return {}, fit
    take = fit[im, idv]
    ep = np.array([x.ep for x in lays], dtype=float)[idv]
    dp = np.array([x.dp for x in lays], dtype=float)[idv]
    return {"ep": np.where(take, ep, 1.0), "attn_dp": np.where(take, dp, 1.0)}, fit


def _device_grid(scn, hardware) -> list[int]:
    if scn.search.devices:
        return sorted(set(scn.search.devices))
    top = min(scn.search.max_devices, max(h.max_devices for h in hardware))
    return [2 ** i for i in range(int(math.log2(top)) + 1)]


def length_sets(scn, variant: Variant) -> list[tuple[str, float, int, int]]:
    """(label, percentile or 0 for the mean, prompt_len, gen_len) per evaluation set."""
    tr = scn.traffic
    gl = tr.gen_len.scaled(variant.gen_scale) if variant.gen_scale != 1.0 else tr.gen_len
    cap = int(round(tr.gen_cap() * variant.gen_scale))
    sets = [("mean", 0.0, tr.prompt_len.mean_len(), min(gl.mean_len(), cap))]
    for q in sorted({q for _, _, q in scn.slo.bounds()}):
        sets.append((f"p{q:g}", q, tr.prompt_len.quantile(q), min(gl.quantile(q), cap)))
    return sets


def _engine(scn, choices=None):
    """The scenario's engine profile (the generic one without ``engine:``), with the host
    time per step of the serving profile its devices use (the first that has one)."""
    from planner.engine_profiles import load_engine

    prof = load_engine(getattr(scn, "engine", None))
    for c in choices or ():
        if c.parameters is not None:
            return c.engine, c.parameters
    return prof, None


def _serving(scn, engine=None, params=None) -> dict:
    """The engine columns of the full-load grid: with an ``engine:`` the replicas are
    costed as a closed loop under that engine's scheduler (planner.cost.serving), else the
    steady state."""
    if getattr(scn, "engine", None) is None:
        return {}
    from planner.cost.api import serving_columns

    cols = serving_columns(engine or _engine(scn)[0], "closed")
    if params:
        cols.update(wave_sync=params["wave_sync"], request_overhead_s=params["request_overhead_s"])
    return cols


def plan(scn, models, hardware, variant: Variant = Variant(), efficiencies=None,
         grids: Optional[dict] = None) -> dict[str, Any]:
    """Size a fleet for every candidate. Returns a JSON-ready dict.

    The engine grid and the per-replica Poisson rates depend on the variant only through
    its generation-length scale (traffic, prices and the throughput factor act on the
    fleet arithmetic after them): pass the same ``grids`` dict to several calls on one
    scenario and each distinct ``gen_scale`` is costed once (the accuracy per generation
    cap, likewise)."""
    from planner.cost.engine import BOTTLENECKS
    if efficiencies is None:
        efficiencies = resolve_efficiencies(scn, hardware)
    key = (variant.gen_scale, id(scn), id(efficiencies), tuple(id(m) for m in models),
           tuple(id(h) for h in hardware))
    if grids is None or key not in grids:
        g = _grid(scn, models, hardware, variant, efficiencies)
        if grids is not None:
            grids[key] = g
    else:
        g = grids[key]
    sets, D, quants, kvs, C, acts, R, lay = g
    rps = scn.traffic.requests_per_s * variant.traffic_scale
    gen_cap = int(round(scn.traffic.gen_cap() * variant.gen_scale))
    cands = []
    for mi, m in enumerate(models):
        cache: dict = {} if grids is None else grids.setdefault(("accuracy", id(m), gen_cap), {})
        for hi, h in enumerate(hardware):
            acc = {}
            for qi, q in enumerate(quants):
                for vi, v in enumerate(kvs):
                    key = (QUANTIZATIONS[q][0], acts[hi][qi] or "bf16", v)
                    if key not in cache:
                        cache[key] = candidate_accuracy(m.name, scn.task, *key, gen_cap)
                    acc[qi, vi] = cache[key]
            sub = {k: v[mi, hi] for k, v in R.items()}  # (D, Q, V, C, S)
            cands.append(_candidate(scn, m, h, sub, D, quants, kvs, C, sets, acc, acts[hi], rps, variant,
                                    efficiencies[hi][1], BOTTLENECKS, (lay[0], lay[1][mi])))
    return {"variant": variant.label, "requests_per_s": rps, "length_sets": [
        {"label": s[0], "percentile": s[1], "prompt_len": s[2], "gen_len": s[3]} for s in sets],
        "candidates": cands}


def _grid(scn, models, hardware, variant: Variant, efficiencies) -> tuple:
    """The full-load engine grid and the Poisson sizing of every serving configuration:
    (length sets, devices, quantizations, KV dtypes, concurrencies, act dtypes, results,
    (layouts, which layouts suit each model))."""
    from planner.cost.api import columns
    from planner.cost.engine import evaluate
    from planner.cost.tables import HardwareTable, ModelTable
    effs = [e[0] for e in efficiencies]
    engine, params = _engine(scn, [c for _, _, c in efficiencies])
    sets = length_sets(scn, variant)
    lays = layout_axis(scn, hardware)  # the D axis: devices per replica as layouts
    D = np.array([x.devices for x in lays], dtype=float)
    quants = list(scn.search.quantizations)
    kvs = list(scn.search.kv_dtypes)
    C = np.array(sorted(set(scn.search.concurrency)), dtype=float)
    nM, nH, nD, nQ, nV, nC, nS = len(models), len(hardware), len(D), len(quants), len(kvs), len(C), len(sets)
    shape = (nM, nH, nD, nQ, nV, nC, nS)
    im, ih, idv, iq, iv, ic, isx = (a.ravel() for a in np.indices(shape))
    acts = [[act_dtype_for(h, q) for q in quants] for h in hardware]
    act_name = np.array([[a or "bf16" for a in row] for row in acts])
    w_name = np.array([QUANTIZATIONS[q][0] for q in quants])
    P = np.array([s[2] for s in sets], dtype=float)
    G = np.array([s[3] for s in sets], dtype=float)
    n = im.size
    lay_cols, lay_fit = _layout_columns(lays, models, im, idv)
    TP = np.array([x.tp for x in lays], dtype=float)
    cols = columns(n, model=im, hardware=ih, devices=TP[idv], batch=1, concurrency=C[ic], prompt_len=P[isx],
                   gen_len=G[isx], samples=1, weight_dtype=w_name[iq], act_dtype=act_name[ih, iq],
                   kv_dtype=np.array(kvs)[iv], kv_budget=0, prefix_sharing=True, **lay_cols,
                   **_serving(scn, engine, params))
    mt, ht = ModelTable.build(models), HardwareTable.build(hardware, effs)
    out = evaluate(cols, mt, ht, threads=1)
    R = {k: np.asarray(v, dtype=float).reshape(shape) for k, v in out.items()}
    R.update(_poisson(scn, cols, mt, ht, shape, C, sets, R, engine))
    return sets, D, quants, kvs, C, acts, R, (lays, lay_fit)


def resolve_efficiencies(scn, hardware) -> list[tuple[Any, str, Any]]:
    """Per device: (efficiency, the profile used, the ServingChoice): one rule for every
    command (planner.serving_profile.resolve_serving)."""
    from planner.engine_profiles import load_engine
    from planner.serving_profile import resolve_serving

    engine = load_engine(scn.engine) if getattr(scn, "engine", None) else None
    out = []
    for h in hardware:
        c = resolve_serving(h, engine, (scn.calibration or {}).get(h.name))
        out.append((c.efficiency, c.profile, c))
    return out


def _poisson(scn, cols, mt, ht, shape, C, sets, R, engine) -> dict:
    """Per serving configuration (all axes but the length sets): the highest Poisson rate
    that keeps every SLO (planner.replica_rate.max_rates, with at most C requests running
    and the engine's own cap), and the metrics at that rate: ``poisson_<metric>`` at each
    set's percentile (the means on the mean set)."""
    from planner.cost.api import serving_columns
    from planner.cost.context import Ctx
    from planner.replica_rate import max_rates, set_metrics

    eng = serving_columns(engine, "steady")
    nS = shape[-1]
    G_all = np.asarray(cols["gen_len"], dtype=float).reshape(-1, nS)
    full = R["throughput_tok_s"][..., 0].ravel() / G_all[:, 0]  # requests/s at full load, C in flight
    # only configurations that fit in memory at C in flight are searched (the rest never serve)
    keep = np.flatnonzero((R["fits"][..., 0].ravel() > 0) & np.isfinite(full) & (full > 0))
    mean_rows = {k: np.asarray(v).reshape(-1, nS)[keep, 0] for k, v in cols.items()}
    x = Ctx(mean_rows, mt, ht)  # the mean lengths' rows
    P = np.asarray(cols["prompt_len"], dtype=float).reshape(-1, nS)[keep]
    G = G_all[keep]
    Q = np.broadcast_to(np.array([s[1] for s in sets], dtype=float), P.shape)
    cap = np.minimum(np.broadcast_to(C.reshape(1, 1, 1, 1, 1, -1), shape[:-1]).ravel()[keep],
                     float(engine.max_running))
    lam = max_rates(x, P, G, Q, scn.slo.bounds(), eng, cap, 2.0 * full[keep])
    m = set_metrics(x, lam, P, G, Q, eng, cap)
    out = {}
    for k, v in m.items():
        full_v = np.full((G_all.shape[0], nS), np.inf)
        full_v[keep] = v
        out["poisson_" + k] = full_v.reshape(shape)
    rate = np.zeros(G_all.shape[0])
    rate[keep] = lam
    out["poisson_rate"] = rate.reshape(shape[:-1])
    return out


def _candidate(scn, m, h, sub, D, quants, kvs, C, sets, acc, acts, rps, variant, eff_label, BOTTLENECKS,
               layout):
    grid = sub["tpot_s"].shape[:4]  # (D, Q, V, C)
    mean = {k: v[..., 0] for k, v in sub.items()}
    dev = np.broadcast_to(D.reshape(-1, 1, 1, 1), grid)
    lays, fit = layout  # the D axis' layouts and which of them the model takes
    # tensor parallel within one NVLink domain; a layout the model does not take is out
    tp = np.broadcast_to(np.array([x.tp for x in lays], dtype=float).reshape(-1, 1, 1, 1), grid)
    lay_ok = np.broadcast_to(np.asarray(fit, dtype=bool).reshape(-1, 1, 1, 1), grid)
    shown = scn.search.layouts is not None  # the layout goes into the JSON where the file asks for layouts
    acc_arr = np.array([[acc[qi, vi][0] if acc[qi, vi][0] is not None else np.nan for vi in range(len(kvs))]
                        for qi in range(len(quants))]).reshape(1, len(quants), len(kvs), 1)
    acc_arr = np.broadcast_to(acc_arr, grid)
    ok = (mean["fits"] > 0) & np.isfinite(mean["tpot_s"]) & (tp <= h.max_devices) & lay_ok
    ok &= np.broadcast_to(np.array([a is not None for a in acts]).reshape(1, -1, 1, 1), grid)
    ctx_need = scn.traffic.prompt_len.quantile(99.0) + int(round(scn.traffic.gen_cap() * variant.gen_scale))
    ctx_ok = ctx_need <= m.max_context
    fits_any = bool(ok.any()) and ctx_ok
    ok &= ctx_ok
    slo_vals = {}
    lam = sub["poisson_rate"]  # requests/s one replica takes under Poisson arrivals within every SLO
    slo_ok = lam > 0
    for metric, bound, q in scn.slo.bounds():
        si = next(i for i, s in enumerate(sets) if s[1] == q)
        slo_vals[(metric, q)] = sub["poisson_" + metric][..., si]  # at that rate (at rate 0 where none)
    acc_ok = np.ones(grid, dtype=bool)
    if scn.min_accuracy is not None:
        acc_ok = ~(acc_arr < scn.min_accuracy)  # unknown accuracy (NaN) is not rejected; flagged instead
    good = ok & slo_ok & acc_ok

    G_mean = sets[0][3]
    rate = lam
    eff_rate = rate * variant.throughput_scale
    need, replicas = fleet.replicas(rps, scn.headroom, eff_rate, scn.redundancy)
    util = fleet.utilization(rps, replicas, eff_rate)
    price = _price(scn, h, variant)
    with np.errstate(all="ignore"):  # rows that do not run give NaN; they are never chosen
        p_full = mean["energy_j"] * rate  # W of one replica at full load
        p_idle = dev * h.idle_power_w
        kwh = fleet.monthly_kwh(fleet.average_it_power_w(replicas, util, p_full, p_idle, dev,
                                                         scn.host_power_w_per_device), scn.pue)
        usd = replicas * dev * HOURS_PER_MONTH * price["usd_per_device_hour"] + (
            scn.electricity_usd_per_kwh * variant.price_scale * kwh if price["owned"] else 0.0)
        per_1k = usd / (rps * SECONDS_PER_MONTH) * 1000.0
    base = {"model": m.name, "hardware": h.name, "efficiency": eff_label, "profile": eff_label}
    if not good.any():
        return {**base, "status": _why_not(scn, ok, fits_any, ctx_ok, ctx_need, m, slo_vals, acc_arr, slo_ok)}
    lat_key = mean["poisson_latency_s"]
    acc_key = np.where(np.isnan(acc_arr), -1.0, acc_arr)
    idx = np.flatnonzero(good.ravel())
    order = np.lexsort((lat_key.ravel()[idx], (dev * replicas).ravel()[idx], -acc_key.ravel()[idx],
                        usd.ravel()[idx]))
    b = np.unravel_index(idx[order[0]], grid)
    di, qi, vi, ci = (int(x) for x in b)
    pick = lambda a: float(np.asarray(a)[b])  # noqa: E731
    flops = sum(pick(mean[k]) for k in ("flops_linear", "flops_attention", "flops_selection"))
    nbytes = sum(pick(mean[k]) for k in ("bytes_weights", "bytes_kv", "bytes_activations", "bytes_selection"))
    n_rep = int(pick(replicas))
    a, a_src = acc[qi, vi]
    monthly_usd = pick(usd)
    options = []  # the cheapest configuration per (quantization, KV dtype): the Pareto plot's points
    for oq in range(len(quants)):
        for ov in range(len(kvs)):
            g = good[:, oq, ov, :]
            if g.any():
                j = int(np.flatnonzero(g.ravel())[np.argmin(per_1k[:, oq, ov, :].ravel()[g.ravel()])])
                od, oc = np.unravel_index(j, g.shape)
                options.append({"quantization": quants[oq], "kv_dtype": kvs[ov], "devices": int(D[od]),
                                **({"layout": lays[od].as_dict()} if shown else {}),
                                "concurrency": int(C[oc]), "usd_per_1k_requests": float(per_1k[od, oq, ov, oc]),
                                "accuracy": acc[oq, ov][0]})
    return {
        **base, "status": "ok",
        "config": {"devices": int(D[di]), **({"layout": lays[di].as_dict()} if shown else {}),
                   "weight_dtype": QUANTIZATIONS[quants[qi]][0], "act_dtype": acts[qi],
                   "kv_dtype": kvs[vi], "quantization": quants[qi], "concurrency": int(C[ci]),
                   "prompt_len": int(sets[0][2]), "gen_len": int(G_mean)},
        "per_replica": {"throughput_tok_s": pick(rate) * G_mean, "tpot_s": pick(mean["poisson_tpot_s"]),
                        "ttft_s": pick(mean["poisson_ttft_s"]), "latency_s": pick(mean["poisson_latency_s"]),
                        "requests_per_s": pick(rate), "max_running": int(min(C[ci], _max_running(scn))),
                        "full_load_throughput_tok_s": pick(mean["throughput_tok_s"]),
                        "energy_j_per_request": pick(mean["energy_j"]),
                        "power_w_full_load": pick(p_full), "bottleneck": BOTTLENECKS[int(pick(mean["bottleneck"]))],
                        "flops_per_request": flops, "bytes_per_request": nbytes,
                        "memory_bytes_per_device": pick(mean["total_bytes"]),
                        "capacity_bytes_per_device": pick(mean["capacity_bytes"])},
        "slo": [{"metric": mt, "percentile": q, "max": bound, "value": float(slo_vals[(mt, q)][b]),
                 "ok": bool(slo_vals[(mt, q)][b] <= bound)} for mt, bound, q in scn.slo.bounds()],
        "fleet": _fleet(scn, h, price, n_rep, int(pick(need)), int(D[di]), rps, pick(util), pick(kwh), monthly_usd,
                        pick(mean["poisson_latency_s"]), variant),
        "accuracy": a, "accuracy_source": a_src, "options": options,
        "peak_flops_per_device": h.peak_flops(acts[qi]), "bandwidth_bytes_per_device": h.mem_bandwidth_gbps * 1e9,
    }


def _max_running(scn) -> int:
    from planner.engine_profiles import load_engine

    return load_engine(getattr(scn, "engine", None)).max_running


def _price(scn, h, variant: Variant) -> dict:
    """The device-hour price used, with where it comes from. A scenario price is all-in
    (rental, marked as an override); else the catalog's rental price; a device with no rental
    price is owned: purchase over its lifetime, plus electricity."""
    if h.name in scn.prices:
        return {"usd_per_device_hour": scn.prices[h.name] * variant.price_scale, "owned": False,
                "source": "scenario file (override)", "date": None, "override": True}
    owned = h.price_per_hour_usd is None
    key = "purchase_price_usd" if owned else "price_per_hour_usd"
    return {"usd_per_device_hour": h.hourly_usd * variant.price_scale, "owned": owned,
            "source": h.sources.get(key, "not given"), "date": h.purchase_price_date if owned else h.price_date,
            "override": False}


def _fleet(scn, h, price, n_rep, n_need, devices, rps, util, kwh, monthly_usd, latency_s, variant) -> dict:
    """The chosen configuration's fleet: replicas (N+k), power, dollars, rent versus buy."""
    n_dev = n_rep * devices
    peak_w = fleet.peak_it_power_w(n_dev, h.max_power_w, scn.host_power_w_per_device)
    rent = h.price_per_hour_usd if h.name not in scn.prices else scn.prices[h.name]
    rvb = fleet.rent_vs_buy(n_dev, None if rent is None else rent * variant.price_scale,
                            None if h.purchase_price_usd is None else h.purchase_price_usd * variant.price_scale,
                            h.lifetime_years, kwh, scn.electricity_usd_per_kwh * variant.price_scale,
                            scn.horizon_months)
    return {"replicas": n_rep, "replicas_needed": n_need, "spare_replicas": n_rep - n_need, "devices": n_dev,
            "in_flight": rps * latency_s, "utilization": util,
            "price_per_device_hour": price["usd_per_device_hour"], "owned": price["owned"],
            "price_source": price["source"], "price_date": price["date"], "price_override": price["override"],
            "monthly_device_hours": n_dev * HOURS_PER_MONTH, "monthly_usd": monthly_usd, "monthly_kwh": kwh,
            "peak_it_kw": peak_w / 1000.0, "peak_facility_kw": peak_w * scn.pue / 1000.0,
            "average_facility_kw": kwh / HOURS_PER_MONTH, "horizon_usd": monthly_usd * scn.horizon_months,
            "usd_per_1k_requests": monthly_usd / (rps * SECONDS_PER_MONTH) * 1000.0, "rent_vs_buy": rvb}


def _why_not(scn, ok, fits_any, ctx_ok, ctx_need, m, slo_vals, acc_arr, slo_ok) -> str:
    if not ctx_ok:
        return f"p99 prompt + generation cap = {ctx_need} tokens exceeds the context ({m.max_context})"
    if not fits_any:
        return "does not fit in memory with any searched devices / dtypes / concurrency"
    parts = []
    for (metric, q), val in slo_vals.items():
        bound = next(b for mt, b, qq in scn.slo.bounds() if mt == metric and qq == q)
        best = float(np.nanmin(np.where(ok, val, np.nan))) if ok.any() else float("nan")
        if not best <= bound:
            parts.append(f"best p{q:g} {metric} {best:.3g} > {bound:g}")
    if not parts and scn.min_accuracy is not None:
        best = float(np.nanmax(np.where(ok & slo_ok, acc_arr, np.nan))) if (ok & slo_ok).any() else float("nan")
        if not best >= scn.min_accuracy:
            return f"below the accuracy floor: best {best:.3f} < {scn.min_accuracy:g}"
    if not parts:
        parts.append("no single configuration meets every SLO at once")
    return "no configuration meets the SLOs: " + "; ".join(parts)
