"""Fleet sizing for a capacity scenario: the best serving configuration per candidate.

For every candidate (model x device) the search grid is devices per replica (tensor
parallel, or the device layouts of ``search.layouts``: expert parallel and attention data
parallel, costed as ``planner estimate --ep --dp`` costs them) x quantization x KV dtype x
``C``, the most requests a replica runs at once (the engine's max_num_seqs). A replica
runs at most ``C``, the engine's max_running and what its free KV memory holds
(planner.cost.running, the one rule of the closed loop, the replay and the simulator):
more are capped, not refused; a configuration serves where one request at its full
length fits beside the weights. Each row is costed by the engine in serving mode with
that running set in flight (continuous batching; a closed loop under the scenario's
``engine:``, else the steady state) at the traffic's mean lengths and at each SLO
percentile's lengths, in one vectorized engine call: the full-load throughput.

Sizing (per row) is from Poisson arrivals (issue 10, item 3): the replica's rate ``r``
is the highest Poisson arrival rate at which the open-loop scheduler model stays bounded
within the running set and meets every SLO at its percentile, the wait for a running
slot included (:mod:`planner.replica_rate`, vectorized over all rows). The fleet
arithmetic and the choice of the best row are :mod:`planner.sizing_choice`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from planner.errors import InputError
from planner.quantization import QUANTIZATIONS, act_dtype_for

@dataclass(frozen=True)
class Variant:
    """A perturbation of the scenario (the sensitivity table)."""

    label: str = "base"
    gen_scale: float = 1.0
    traffic_scale: float = 1.0
    price_scale: float = 1.0
    throughput_scale: float = 1.0


def candidate_accuracy(model_name: str, task: Optional[str], weight_dtype: str, act_dtype: str, kv_dtype: str,
                       gen_cap: int, profiles: Optional[dict] = None) -> tuple[Optional[float], str]:
    """Accuracy of one sample from the accuracy model, or (None, why) without a profile.
    ``profiles``: a dict remembering the profile found per (model, task) (the lookup
    lists the profile folders: once per plan, not per dtype)."""
    if task is None:
        return None, "no task given"
    try:
        from planner import accuracy

        key = (model_name, task)
        if profiles is None or key not in profiles:
            try:
                found = accuracy.find_profile(model_name, task)
            except InputError as exc:
                found = exc
            if profiles is not None:
                profiles[key] = found
        else:
            found = profiles[key]
        if isinstance(found, InputError):
            raise found
        a = accuracy.predict(found, "single", 1, gen_cap, weight_dtype=weight_dtype, act_dtype=act_dtype,
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
    """The scenario's engine profile (the generic one without ``engine:``), as the first
    device with serving parameters runs it, and those parameters: the engine facts every
    device shares (chunking, KV memory rule); what differs by device (token budget, running
    limit, host time, wave sync, request overhead) is per row (:func:`_device_serving`,
    planner.engine_profiles.device_columns)."""
    from planner.engine_profiles import load_engine

    prof = load_engine(getattr(scn, "engine", None))
    for c in choices or ():
        if c.parameters is not None:
            return c.engine, c.parameters
    return prof, None


def _serving(scn, engine=None) -> dict:
    """The engine columns of the full-load grid: with an ``engine:`` the replicas are
    costed as a closed loop under that engine's scheduler (planner.cost.serving), else the
    steady state. Where the traffic draws its generation lengths (``range_ratio:``) the
    closed loop takes that ratio's ``range_ratio`` column, the share of later waves that
    stays in step (planner.cost.waves.in_step_share), as ``planner estimate --range-ratio``
    and the replay of a measured run set it."""
    if getattr(scn, "engine", None) is None:
        return {}
    from planner.cost.engine_columns import serving_columns

    cols = serving_columns(engine or _engine(scn)[0], "closed")
    r = scn.traffic.gen_len.range_ratio
    if r is not None and r != 1.0:
        cols["range_ratio"] = r
    return cols


def _device_serving(choices, engine) -> dict[str, np.ndarray]:
    """Per device (the order of ``choices``, one planner.serving_profile.ServingChoice a
    device): the serving columns its own profile sets, fitted, carried or none
    (planner.cost.api.profile_columns: host time per step and per running request, wave sync,
    request overhead), arrays to index by the grid's hardware column, so that one device's fit
    never reaches another device's rows."""
    from planner.cost.api import profile_columns

    per = [profile_columns(c.parameters, c.engine or engine) for c in choices]
    return {k: np.array([p[k] for p in per]) for k in per[0]} if per else {}


def plan(scn, models, hardware, variant: Variant = Variant(), efficiencies=None,
         grids: Optional[dict] = None) -> dict[str, Any]:
    """Size a fleet for every candidate. Returns a JSON-ready dict.

    The engine grid and the per-replica Poisson rates depend on the variant only through
    its generation-length scale (traffic, prices and the throughput factor act on the
    fleet arithmetic after them): pass the same ``grids`` dict to several calls on one
    scenario and each distinct ``gen_scale`` is costed once (the accuracy per generation
    cap, likewise)."""
    from planner.cost.roofline import BOTTLENECKS
    from planner.sizing_choice import pick_candidate

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
    profiles: dict = {} if grids is None else grids.setdefault("profiles", {})
    for mi, m in enumerate(models):
        cache: dict = {} if grids is None else grids.setdefault(("accuracy", id(m), gen_cap), {})
        for hi, h in enumerate(hardware):
            acc = {}
            for qi, q in enumerate(quants):
                for vi, v in enumerate(kvs):
                    key = (QUANTIZATIONS[q][0], acts[hi][qi] or "bf16", v)
                    if key not in cache:
                        cache[key] = candidate_accuracy(m.name, scn.task, *key, gen_cap, profiles)
                    acc[qi, vi] = cache[key]
            sub = {k: v[mi, hi] for k, v in R.items()}  # (D, Q, V, C, S)
            cands.append(pick_candidate(scn, m, h, sub, D, quants, kvs, C, sets, acc, acts[hi], rps, variant,
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
    choices = [c for _, _, c in efficiencies]
    engine, _ = _engine(scn, choices)
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
                   **_serving(scn, engine))
    # the engine as it configures itself on each device (its defaults by GPU class; from the
    # scenario's profile: a serving choice's engine is already one device's)
    from planner.engine_profiles import device_columns, load_engine

    on_device = {k: v[ih] for k, v in device_columns(load_engine(getattr(scn, "engine", None)), hardware).items()}
    if getattr(scn, "engine", None) is not None:
        cols.update(on_device)
        cols.update({k: v[ih] for k, v in _device_serving(choices, engine).items()})
    mt, ht = ModelTable.build(models), HardwareTable.build(hardware, effs)
    PP = np.where(lay_fit[im, idv], np.array([x.pp for x in lays], dtype=float)[idv], 1.0)
    pipe = _pipeline_columns(cols, PP, mt, hardware) if np.any(PP > 1.0) else None
    running = _running_set(cols, mt, ht, engine, PP, on_device["max_running"])
    # the replica is costed at the running set it holds; with pp stages, one of its pp
    # microbatches on the tensor-parallel group, turned into the pipeline below
    cols["concurrency"] = np.ceil(running["running"] / PP)
    out = evaluate(cols, mt, ht, threads=1)
    if pipe is not None:
        out = _pipelined_full_load(out, cols, PP, running["running"], pipe)
    R = {k: np.asarray(v, dtype=float).reshape(shape) for k, v in out.items()}
    R.update({k: v.reshape(shape) for k, v in running.items()})
    R.update(_poisson(scn, cols, mt, ht, shape, sets, R, engine, pipe, on_device["token_budget"]))
    return sets, D, quants, kvs, C, acts, R, (lays, lay_fit)


def _pipeline_columns(cols, PP, mt, hardware) -> dict:
    """Per grid row, the open loop's pipeline arguments (planner.cost.open_loop.poisson):
    stages and one stage-to-stage send as latency + seconds per token (the device's link
    at the spec's efficiency, the model's hidden size in the activation dtype: planner.cost
    .layout.send_coefficients); infinite where a device has no link."""
    from planner.cost.layout import send_coefficients
    from planner.cost.tables import BYTES_BY_CODE

    hw = np.asarray(cols["hardware"])
    per_hw = np.array([send_coefficients(h, 1.0, 1.0) for h in hardware], dtype=float)  # per byte of one token
    scale = mt.cols["hidden"][np.asarray(cols["model"])] * BYTES_BY_CODE[np.asarray(cols["act_dtype"])]
    return {"pp": PP, "send_lat_s": per_hw[hw, 0], "send_s_per_token": per_hw[hw, 1] * scale}


def _pipelined_full_load(out, cols, PP, running, pipe) -> dict:
    """The full-load rows of pipeline layouts: the engine's row of one microbatch
    (``ceil(running / pp)`` requests on the tensor-parallel group, the whole model) turned
    into ``pp`` stages by planner.cost.layout.pipeline_rows, the formulas ``planner
    estimate --pp`` and ``recommend`` use (the other rows as they are)."""
    from planner.cost.layout import microbatches, pipeline_rows
    from planner.cost.ops import VECTOR

    micro = np.asarray(cols["concurrency"], dtype=float)
    piped = PP > 1.0
    hops = PP - 1.0
    with np.errstate(all="ignore"):
        dec = np.where(piped, hops * (pipe["send_lat_s"] + micro * pipe["send_s_per_token"]), 0.0)
        pre = np.where(piped, hops * (pipe["send_lat_s"] + micro * np.asarray(cols["prompt_len"], dtype=float)
                                      * pipe["send_s_per_token"]), 0.0)
        n_mb = microbatches(VECTOR, PP, np.asarray(running, dtype=float), np.maximum(micro, 1.0))
        rows = pipeline_rows(VECTOR, out, PP, n_mb, dec, pre)
    res = dict(out)
    for key, v in rows.items():
        res[key] = np.where(piped, v, out[key]) if key in out else v
    return res


def _running_set(cols, mt, ht, engine, PP=1.0, max_running=None) -> dict:
    """Per grid row: the requests the replica runs at once, ``running`` (the searched
    ``C``, the engine's max_running and what the free KV memory holds: planner.cost
    .running, the one rule of the closed loop, the replay and the simulator), the memory
    verdict ``serves`` (one request at its full length fits beside the weights: more are
    capped, not refused)."""
    from planner.cost.engine_columns import serving_columns
    from planner.cost.context import Ctx
    from planner.cost.running import running_limit, serves_one

    x = Ctx(cols, mt, ht)
    kv = serving_columns(engine, "poisson", rate=1.0)
    reserve, fraction, of_free = kv["kv_reserve"], kv["kv_fraction"], kv["kv_of_free"]
    P, G = (np.asarray(cols[k], dtype=float) for k in ("prompt_len", "gen_len"))
    share = np.asarray(cols["prefix_sharing"], dtype=bool)
    limit = float(engine.max_running) if max_running is None else np.asarray(max_running, dtype=float)
    C = np.minimum(np.asarray(cols["concurrency"], dtype=float), limit)
    with np.errstate(all="ignore"):
        n = running_limit(x, C, reserve, 1.0, P, G, share, fraction, of_free)
        serves = serves_one(x, 1.0, P, G, share)
        if np.any(np.asarray(PP) > 1.0):  # pipeline stages: 1/pp of the weights and KV per device
            from planner.cost.layout import pipeline_memory

            kv_pp, serves_pp = pipeline_memory(x, PP, 1.0, P, G, share, reserve, fraction, of_free)
            n = np.where(PP > 1.0, np.minimum(C, kv_pp), n)
            serves = np.where(PP > 1.0, serves_pp, serves)
        return {"running": n, "serves": serves.astype(float)}


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


def _poisson(scn, cols, mt, ht, shape, sets, R, engine, pipe=None, token_budget=None) -> dict:
    """Per serving configuration (all axes but the length sets): the highest Poisson rate
    that keeps every SLO (planner.replica_rate.max_rates, with the running set of
    :func:`_running_set` at the mean lengths), and the metrics at that rate:
    ``poisson_<metric>`` at each set's percentile (the means on the mean set)."""
    from planner.cost.engine_columns import serving_columns
    from planner.cost.context import Ctx
    from planner.replica_rate import max_rates, set_metrics

    eng = serving_columns(engine, "poisson", rate=1.0)  # the open loop's engine facts (its rate is searched)
    nS = shape[-1]
    G_all = np.asarray(cols["gen_len"], dtype=float).reshape(-1, nS)
    full = R["throughput_tok_s"][..., 0].ravel() / G_all[:, 0]  # requests/s at full load, the running set in flight
    # only configurations whose memory holds a request are searched (the rest never serve)
    keep = np.flatnonzero((R["serves"][..., 0].ravel() > 0) & np.isfinite(full) & (full > 0))
    mean_rows = {k: np.asarray(v).reshape(-1, nS)[keep, 0] for k, v in cols.items()}
    x = Ctx(mean_rows, mt, ht)  # the mean lengths' rows
    if token_budget is not None:  # each row's device budget (planner.engine_profiles.device_columns),
        # held by the context so that a subset of its rows keeps it (planner.cost.row_subset)
        x.token_budget = np.asarray(token_budget, dtype=float).reshape(-1, nS)[keep, 0]
    if np.ndim(cols.get("host_step_s", 0.0)):  # each row's device host time (:func:`_device_serving`)
        x.host_step_s = np.asarray(cols["host_step_s"], dtype=float).reshape(-1, nS)[keep, 0]
    P = np.asarray(cols["prompt_len"], dtype=float).reshape(-1, nS)[keep]
    G = G_all[keep]
    Q = np.broadcast_to(np.array([s[1] for s in sets], dtype=float), P.shape)
    cap = R["running"][..., 0].ravel()[keep]  # the running set at the mean lengths (all the pp microbatches)
    rows_pipe = None if pipe is None else {k: np.asarray(v).reshape(-1, nS)[keep, 0] for k, v in pipe.items()}
    lam = max_rates(x, P, G, Q, scn.slo.bounds(), eng, cap, 2.0 * full[keep], rows_pipe)
    m = set_metrics(x, lam, P, G, Q, eng, cap, rows_pipe)
    out = {}
    for k, v in m.items():
        full_v = np.full((G_all.shape[0], nS), np.inf)
        full_v[keep] = v
        out["poisson_" + k] = full_v.reshape(shape)
    rate = np.zeros(G_all.shape[0])
    rate[keep] = lam
    out["poisson_rate"] = rate.reshape(shape[:-1])
    return out
