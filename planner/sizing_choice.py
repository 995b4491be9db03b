"""One candidate's (model x device) best serving configuration and its fleet, from the
sizing grid of planner.sizing (full-load costing and Poisson rate per configuration).

``replicas = ceil(rps * (1 + headroom) / r) + redundancy`` (``r`` the replica's Poisson
rate, scaled by the variant's throughput factor); utilization = rps / (replicas * r).
Requests in flight (Little's law) = rps * mean latency at ``r``. Monthly dollars =
replicas * devices * hours * price per device-hour (+ electricity for owned devices: the
price is then the purchase over its lifetime); monthly kWh = replicas * (u * full-load
power + (1 - u) * idle power) * hours, full-load power = energy per request at the
running set * ``r``. The best row is the cheapest that meets every SLO and the accuracy
floor (ties: higher accuracy, fewer devices, lower latency, then the smallest ``C``).
"""

from __future__ import annotations

import numpy as np

from planner import fleet
from planner.quantization import QUANTIZATIONS
from planner.units import HOURS_PER_MONTH, SECONDS_PER_MONTH


def pick_candidate(scn, m, h, sub, D, quants, kvs, C, sets, acc, acts, rps, variant, eff_label, BOTTLENECKS,
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
    ok = (mean["serves"] > 0) & np.isfinite(mean["tpot_s"]) & (tp <= h.max_devices) & lay_ok
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
                        "requests_per_s": pick(rate), "max_running": int(pick(mean["running"])),
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


def _price(scn, h, variant) -> dict:
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
