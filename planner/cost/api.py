"""Friendly entry points over the engine: one configuration in, a dict out.

:func:`estimate` runs the engine's functions on Python floats (the scalar namespace of
:mod:`planner.cost.ops`, tens of microseconds per call) with the model and hardware
tables built once per (model, hardware, efficiency) and kept in a small cache.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Optional, Union

import numpy as np

from planner.bounds import check_count, check_range_ratio
from planner.cost.config_check import validate_config
from planner.cost.defaults import ESTIMATE_DEFAULTS
from planner.cost.efficiency import Efficiency
from planner.cost.engine_columns import generic_engine as _generic_engine, serving_columns
from planner.cost.engine import ATTENTION_COLUMNS, INPUT_COLUMNS, INPUT_DEFAULTS, evaluate, evaluate_one
from planner.cost.estimate_json import to_report
from planner.cost.serving import default_arrival
from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable
from planner.errors import InputError

D = ESTIMATE_DEFAULTS


def columns(n: int, **values) -> dict[str, np.ndarray]:
    """Broadcast scalars / arrays into the engine's input columns (dtype names -> codes)."""
    cols = {}
    for key in INPUT_COLUMNS:
        v = values[key] if key in values or key not in INPUT_DEFAULTS else INPUT_DEFAULTS[key]
        if key.endswith("_dtype"):
            v = np.vectorize(DTYPE_CODE.__getitem__, otypes=[np.int64])(np.asarray(v)) if np.ndim(v) else DTYPE_CODE[v]
        cols[key] = np.broadcast_to(np.asarray(v), (n,))
    return cols


_BY_NAME: dict = {}


def _resolve(kind: str, ref):
    """A spec from a spec object, a catalog name or a YAML path. Names are remembered
    per process (and $PLANNER_PATH); paths are re-read when the file changes."""
    if not isinstance(ref, str):
        return ref
    key = (kind, ref, os.environ.get("PLANNER_PATH", ""))
    spec = _BY_NAME.get(key)
    if spec is not None:
        return spec
    from planner import catalog

    spec = catalog.load_model(ref) if kind == "models" else catalog.load_hardware(ref)
    if not catalog.looks_like_path(ref):
        _BY_NAME[key] = spec
    return spec


def resolve_model(model):
    """A Model spec from a spec, a catalog name or a YAML path."""
    return _resolve("models", model)


def resolve_hardware(hardware):
    """A Hardware spec from a spec, a catalog name or a YAML path."""
    return _resolve("hardware", hardware)


_TABLES: "OrderedDict[tuple, tuple]" = OrderedDict()
_TABLES_MAX = 64


def tables_for(model, hardware, efficiency: Optional[Efficiency]) -> tuple[ModelTable, HardwareTable]:
    """The one-row model and hardware tables, built once per (model, hardware,
    efficiency) objects (specs are frozen; the cache keeps them alive, so ids stay
    theirs) and kept for the last 64 combinations."""
    key = (id(model), id(hardware), id(efficiency))
    hit = _TABLES.get(key)
    if hit is not None and hit[0] is model and hit[1] is hardware and hit[2] is efficiency:
        _TABLES.move_to_end(key)
        return hit[3], hit[4]
    mt = ModelTable.build([model])
    ht = HardwareTable.build([hardware], [efficiency])
    _TABLES[key] = (model, hardware, efficiency, mt, ht)
    while len(_TABLES) > _TABLES_MAX:
        _TABLES.popitem(last=False)
    return mt, ht


def estimate(model: Union[str, Any], hardware: Union[str, Any], *, devices: int = D["devices"],
             batch: int = D["batch"], concurrency: int = D["concurrency"], prompt_len: int = D["prompt_len"],
             gen_len: int = D["gen_len"], samples: int = D["samples"], weight_dtype: str = D["weight_dtype"],
             act_dtype: str = D["act_dtype"], kv_dtype: str = D["kv_dtype"], kv_budget: int = D["kv_budget"],
             prefix_sharing: bool = D["prefix_sharing"], efficiency: Optional[Efficiency] = None,
             engine=None, arrival: Optional[str] = None, rate: float = 0.0, pp: int = 1, ep: int = 1,
             dp: int = 1, serving: Optional[dict] = None, spec_tokens: int = 0,
             range_ratio: float = 1.0) -> dict[str, Any]:
    """Estimate one configuration. Returns a JSON-ready dict (seconds, bytes, joules, USD):
    the documented ``planner estimate --json`` object.

    ``model`` / ``hardware``: a spec, a catalog name or a YAML path. ``decode_s`` is the
    sum of ``gen_len`` decode steps at contexts prompt_len .. prompt_len + gen_len - 1
    (with gen_len = 1: one step at context prompt_len). Serving (concurrency > 0, or a
    Poisson ``rate``) follows the ``engine`` profile's scheduler (planner.engine_profiles;
    None: the generic one) and the ``arrival`` pattern (planner.cost.serving; None: a named
    engine's requests in flight as the closed loop, else the steady state:
    planner.cost.serving.default_arrival);
    ``unbounded`` says a rate above capacity. ``pp`` > 1 costs pipeline stages
    (planner.cost.layout); ``ep`` > 1 spreads whole experts over ``ep`` groups and
    ``dp`` > 1 runs attention data parallel over ``dp`` groups of ``devices`` devices, the
    experts over all ``devices x dp`` (planner.cost.expert_parallel). ``serving``: the
    fitted parameters of a serving profile (planner.serving_profile: ``step_host_s``
    replaces the engine's host time, ``wave_sync`` and ``request_overhead_s`` shape the
    closed loop); pass its efficiency as ``efficiency``. ``spec_tokens`` > 0: speculative
    decoding with that many MTP drafts per step at the engine profile's ``spec_acceptance``
    (planner.cost.spec_decode; the scheduler model's steps: closed or Poisson arrivals, one
    pipeline stage). ``range_ratio`` r < 1: the
    benchmark client draws each request's lengths from ``[int(r L), L]`` with ``L`` =
    ``prompt_len`` / ``gen_len`` (planner.cost.spread): serving only (a static batch
    runs its fixed lengths). Bad values raise InputError.

    The steady state and static batches run on Python floats (the scalar fast path);
    closed-loop and Poisson rows through the vectorized engine on one row."""
    if arrival is None:
        arrival = "poisson" if rate else default_arrival(engine, concurrency)
    kw = dict(devices=devices, batch=batch, concurrency=concurrency, prompt_len=prompt_len, gen_len=gen_len,
              samples=samples, weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype,
              kv_budget=kv_budget, prefix_sharing=prefix_sharing, efficiency=efficiency, engine=engine,
              arrival=arrival, rate=rate, pp=pp, ep=ep, dp=dp, serving=serving, spec_tokens=spec_tokens)
    if range_ratio != 1.0:
        return _spread(model, hardware, range_ratio, **kw)
    return _configured(model, hardware, **kw)


def _configured(model, hardware, *, devices, batch, concurrency, prompt_len, gen_len, samples, weight_dtype,
                act_dtype, kv_dtype, kv_budget, prefix_sharing, efficiency, engine, arrival, rate, pp, ep, dp,
                serving, spec_tokens, in_step_ratio: Optional[float] = None) -> dict[str, Any]:
    """:func:`estimate` at fixed lengths: the one path from a configuration to the engine
    (specs resolved, the engine profile as it configures itself on the device, the layout
    and speculative decoding checked, a serving profile's fitted values applied).
    ``in_step_ratio``: the closed loop's ``range_ratio`` column (:func:`_spread`), None
    for fixed lengths."""
    model = resolve_model(model)
    hardware = resolve_hardware(hardware)
    if engine is not None:  # as the engine configures itself on this device (its defaults by GPU class)
        engine = engine.on_device(hardware)
    if arrival == "poisson" and concurrency == 0:
        concurrency = 1  # serving mode; the in-flight count follows from the rate
    if pp != 1 or ep != 1 or dp != 1:  # whole, in range, fitting the model (pp: 0 is no layout either)
        from planner.cost.layout import check_layout

        check_layout(model, tp=devices, pp=pp, ep=ep, dp=dp)
    layout = {"ep": ep, "attn_dp": dp} if ep != 1 or dp != 1 else {}
    if spec_tokens:
        check_count("spec_tokens", spec_tokens, 0)
        if arrival == "steady" and not serving or pp > 1:
            raise InputError("speculative decoding is costed in the scheduler model: closed or poisson arrivals, "
                             "one pipeline stage", field="spec-tokens", value=spec_tokens)
        layout = {**layout, "spec_tokens": spec_tokens,
                  "spec_accept": (engine if engine is not None else _generic_engine()).spec_acceptance}
    if pp > 1:
        return _pipelined(model, hardware, devices=devices, batch=batch, concurrency=concurrency,
                          prompt_len=prompt_len, gen_len=gen_len, samples=samples, weight_dtype=weight_dtype,
                          act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget,
                          prefix_sharing=prefix_sharing, efficiency=efficiency, engine=engine, arrival=arrival,
                          rate=rate, pp=pp, ep=ep, dp=dp, serving=serving)
    serve = _fitted(serving_columns(engine, arrival, rate), serving, engine)
    if in_step_ratio is not None:
        serve["range_ratio"] = in_step_ratio
    return _estimate_group(model, hardware, serve, devices=devices, batch=batch, concurrency=concurrency,
                           prompt_len=prompt_len, gen_len=gen_len, samples=samples, weight_dtype=weight_dtype,
                           act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget,
                           prefix_sharing=prefix_sharing, efficiency=efficiency, engine=engine, arrival=arrival,
                           rate=rate, layout=layout, serving=serving)


def _spread(model, hardware, range_ratio, *, prompt_len, gen_len, concurrency, arrival, pp, **kw) -> dict[str, Any]:
    """:func:`estimate` with lengths drawn per request from ``[int(r L), L]``: the serving
    models at the mean lengths (planner.cost.spread.spread_lengths; a mean-field model's work and
    memory per request are its mean request's), and under the closed loop the
    ``range_ratio`` column, the share of later waves that stays in step
    (planner.cost.waves.in_step_share, as the replay of a measured run applies it).
    The report's ``config`` keeps the flag's lengths ``L`` and adds the means."""
    from planner.cost.spread import spread_lengths

    r = check_range_ratio(range_ratio)
    P = check_count("prompt_len", prompt_len, 1)
    G = check_count("gen_len", gen_len, 1)
    if concurrency <= 0 and arrival != "poisson":
        raise InputError("lengths drawn per request need serving (--concurrency or --rate); a static batch runs "
                         "fixed lengths", field="range-ratio", value=range_ratio)
    if pp > 1 and arrival == "closed":
        raise InputError("a closed loop over pipeline stages runs fixed lengths (give --range-ratio 1, or "
                         "--arrival steady / --rate)", field="range-ratio", value=range_ratio)
    Pm, Gm = spread_lengths(P, G, r)
    out = _configured(model, hardware, prompt_len=Pm, gen_len=Gm, concurrency=concurrency, arrival=arrival, pp=pp,
                      in_step_ratio=r if arrival == "closed" else None, **kw)
    out["config"] = {**out["config"], "prompt_len": P, "gen_len": G, "range_ratio": r, "mean_prompt_len": Pm,
                     "mean_gen_len": Gm}
    return out


# the serving columns a serving profile's parameters set (planner.serving_params name -> engine column)
PROFILE_COLUMNS = {"step_host_s": "host_step_s", "step_host_s_per_request": "host_request_s",
                   "wave_sync": "wave_sync", "request_overhead_s": "request_overhead_s",
                   "request_overhead_s_per_kernel": "request_overhead_s_per_kernel"}


def profile_columns(parameters: Optional[dict], engine=None) -> dict[str, float]:
    """The serving columns a device's serving profile sets (:data:`PROFILE_COLUMNS`): its fitted
    host time per step and per running request, wave sync and request overhead (its constant and
    its part per kernel of one forward pass). A parameter the profile lacks (a profile written
    before it existed, or ``parameters`` None: no profile) takes the engine profile's documented
    host times (``engine``; None: the generic engine) and the engine's input defaults for the
    rest. The one mapping :func:`estimate` and the capacity plan's per-device columns
    (planner.sizing) both read."""
    engine = engine if engine is not None else _generic_engine()
    base = {**INPUT_DEFAULTS, "host_step_s": engine.host_step_s, "host_request_s": engine.host_request_s}
    p = parameters or {}
    return {col: float(p[k]) if k in p else float(base[col]) for k, col in PROFILE_COLUMNS.items()}


def _fitted(serve: dict, serving: Optional[dict], engine=None) -> dict:
    """The serving columns with a serving profile's fitted values in place
    (:func:`profile_columns`), when one is given."""
    if serving:
        serve.update(profile_columns(serving, engine))
    return serve


def _estimate_group(model, hardware, serve: dict, *, devices, batch, concurrency, prompt_len, gen_len, samples,
                    weight_dtype, act_dtype, kv_dtype, kv_budget, prefix_sharing, efficiency, engine, arrival, rate,
                    layout, serving) -> dict[str, Any]:
    """One tensor-parallel group (with its ep / attn_dp ``layout``) under the serving
    columns ``serve`` (:func:`serving_columns`, fitted values applied)."""
    dt = validate_config(model, hardware, devices=devices, batch=batch, concurrency=concurrency,
                         prompt_len=prompt_len, gen_len=gen_len, samples=samples, weight_dtype=weight_dtype,
                         act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget)
    mt, ht = tables_for(model, hardware, efficiency)
    row = {"model": 0, "hardware": 0, "devices": devices, "batch": batch, "concurrency": concurrency,
           "prompt_len": prompt_len, "gen_len": gen_len, "samples": samples, "kv_budget": kv_budget,
           "prefix_sharing": prefix_sharing, "weight_dtype": DTYPE_CODE[dt["weight_dtype"]],
           "act_dtype": DTYPE_CODE[dt["act_dtype"]], "kv_dtype": DTYPE_CODE[dt["kv_dtype"]], **layout}
    if arrival == "steady" and not serving:
        r = evaluate_one({**row, **{k: serve[k] for k in ATTENTION_COLUMNS}}, mt, ht)
    else:
        cols = {key: np.full(1, v) for key, v in {**INPUT_DEFAULTS, **row, **serve}.items()}
        r = {k: (v[0].item() if isinstance(v, np.ndarray) else v) for k, v in evaluate(cols, mt, ht).items()}
    return to_report(r, model, hardware, ht.efficiency_sources[0], dict(
        devices=devices, batch=batch, concurrency=concurrency, prompt_len=prompt_len, gen_len=gen_len,
        samples=samples, kv_budget=kv_budget, prefix_sharing=prefix_sharing, **dt,
        engine=engine.name if engine is not None else "generic", arrival=arrival, rate=rate, **layout))


def _pipelined(model, hardware, *, batch, concurrency, pp, arrival, **kw) -> dict[str, Any]:
    """Pipeline stages: one microbatch costed on the tensor-parallel group, then the
    pipeline (planner.cost.layout.pipeline: bubble and stage hand-offs)."""
    from planner.cost.layout import pipeline
    from planner.dtypes import BITS

    if arrival == "poisson":
        return _pipelined_poisson(model, hardware, batch=batch, concurrency=concurrency, pp=pp, **kw)
    in_flight = concurrency if concurrency > 0 else batch
    micro = -(-in_flight // pp)
    if arrival == "closed":
        r = _closed_microbatch(model, hardware, batch=batch, micro=micro, in_flight=in_flight, pp=pp, **kw)
    else:
        r = estimate(model, hardware, batch=micro if concurrency <= 0 else batch,
                     concurrency=micro if concurrency > 0 else 0, arrival=arrival, **kw)
    out = pipeline(r, pp=pp, in_flight=in_flight, micro=micro, hardware=hardware, hidden=model.hidden_size,
                   act_bytes=BITS[r["config"]["act_dtype"]] / 8.0, prompt_len=kw["prompt_len"])
    out["config"] = {**r["config"], "batch": batch, "concurrency": concurrency, "pp": pp}
    return out


def _closed_microbatch(model, hardware, *, batch, micro, in_flight, pp, engine, serving, rate, **kw) -> dict:
    """One microbatch of a pipeline under the closed loop: ``micro`` clients on the
    tensor-parallel group, its running set the engine's max_running capped by its share
    ``1 / n_mb`` of what the KV memory of a STAGE holds (planner.cost.layout.pipeline_memory:
    a device holds 1/pp of the weights and of each request's KV), not what the whole
    model's weights on one group would leave (which a model split for size does not fit)."""
    from planner.cost.context import Ctx
    from planner.cost.layout import microbatch_running

    layout = {"ep": kw["ep"], "attn_dp": kw["dp"]} if kw["ep"] != 1 or kw["dp"] != 1 else {}
    serve = _fitted(serving_columns(engine, "closed", rate), serving, engine)
    dt = validate_config(model, hardware, devices=kw["devices"], batch=batch, concurrency=micro,
                         prompt_len=kw["prompt_len"], gen_len=kw["gen_len"], samples=kw["samples"],
                         weight_dtype=kw["weight_dtype"], act_dtype=kw["act_dtype"], kv_dtype=kw["kv_dtype"],
                         kv_budget=kw["kv_budget"])
    mt, ht = tables_for(model, hardware, kw["efficiency"])
    P, G, k = float(kw["prompt_len"]), float(kw["gen_len"]), float(kw["samples"])
    x = Ctx(columns(1, model=0, hardware=0, devices=kw["devices"], batch=1, concurrency=1, prompt_len=P, gen_len=G,
                    samples=k, kv_budget=kw["kv_budget"], prefix_sharing=kw["prefix_sharing"],
                    host_request_s=serve["host_request_s"], **dt, **layout),
            mt, ht)
    n_mb = min(pp, -(-in_flight // micro))
    with np.errstate(all="ignore"):
        running = microbatch_running(x, float(pp), float(n_mb), float(serve["max_running"]), k, P, G,
                                     bool(kw["prefix_sharing"]), serve["kv_reserve"], serve["kv_fraction"],
                                     serve["kv_of_free"])
    serve.update(max_running=int(np.asarray(running).ravel()[0]), kv_reserve=-1.0)  # the stage's cap, applied
    return _estimate_group(model, hardware, serve, batch=batch, concurrency=micro, engine=engine, arrival="closed",
                           rate=rate, layout=layout, serving=serving,
                           **{key: kw[key] for key in ("devices", "prompt_len", "gen_len", "samples", "weight_dtype",
                                                       "act_dtype", "kv_dtype", "kv_budget", "prefix_sharing",
                                                       "efficiency")})


def _pipelined_poisson(model, hardware, *, batch, concurrency, pp, rate, engine, serving, **kw) -> dict[str, Any]:
    """Pipeline stages under Poisson arrivals at ``rate``: work and memory are the steady
    state's at the requests the stream keeps in flight, ``rate x latency`` rounded to whole
    requests (Little's law, as with one stage; at least one, at most the running set; the
    given ``concurrency`` where the queue is unbounded), energy and dollars those of a request holding the stages
    for 1 / ``rate`` (planner.cost.footprint.rehold); TTFT, TPOT, latency, throughput and ``unbounded``
    are the open loop's with ``pp`` stages (planner.cost.open_loop.poisson, the rule the
    capacity report sizes pipeline replicas with, planner.sizing): the running set is the
    engine's max_running capped by what the KV memory of a stage holds
    (planner.cost.layout.pipeline_memory), one stage-to-stage send is
    planner.cost.layout.send_coefficients of the model's hidden states."""
    from planner.cost.context import Ctx
    from planner.cost.footprint import rehold
    from planner.cost.layout import microbatch_running, send_coefficients
    from planner.cost.open_loop import poisson
    from planner.cost.serving import effective_budget
    from planner.dtypes import BITS

    serve = _fitted(serving_columns(engine, "poisson", rate), serving, engine)  # checks the rate
    out = _pipelined(model, hardware, batch=batch, concurrency=concurrency, pp=pp, arrival="steady", rate=0.0,
                     engine=engine, serving=serving, **kw)
    cf = out["config"]
    P, G, k = float(kw["prompt_len"]), float(kw["gen_len"]), float(kw["samples"])
    layout = {"ep": kw["ep"], "attn_dp": kw["dp"]} if kw["ep"] != 1 or kw["dp"] != 1 else {}
    mt, ht = tables_for(model, hardware, kw["efficiency"])
    x = Ctx(columns(1, model=0, hardware=0, devices=kw["devices"], batch=1, concurrency=1, prompt_len=P, gen_len=G,
                    samples=k, kv_budget=kw["kv_budget"], prefix_sharing=kw["prefix_sharing"],
                    weight_dtype=cf["weight_dtype"], act_dtype=cf["act_dtype"], kv_dtype=cf["kv_dtype"],
                    host_request_s=serve["host_request_s"], **{c: serve[c] for c in ATTENTION_COLUMNS}, **layout),
            mt, ht)
    host_s = serve["host_step_s"]
    with np.errstate(all="ignore"):
        running = microbatch_running(x, float(pp), 1.0, float(serve["max_running"]), k, P, G,
                                     bool(kw["prefix_sharing"]), serve["kv_reserve"], serve["kv_fraction"],
                                     serve["kv_of_free"])  # sequences
        lat_s, per_token_s = send_coefficients(hardware, model.hidden_size, BITS[cf["act_dtype"]] / 8.0)
        budget = effective_budget(serve["token_budget"], P, max(concurrency, 1) * k, serve["chunked"],
                                  attn_dp=float(kw["dp"]), dp_rank_budget=serve["dp_rank_budget"])
        w = k if kw["prefix_sharing"] else 1.0  # shared: one prompt of width k (as serving_into); else k prompts
        o = {key: np.asarray(v).ravel()[0].item() for key, v in poisson(
            x, rate * k / w, P, G, budget, host_s, running, pp, lat_s, per_token_s, width=w).items()}
    if not o["unbounded"]:  # the work and memory at the requests the stream keeps in flight, rate x latency
        # (Little's law, as one stage: planner.cost.serving.poisson_work_into), whole requests for the microbatches,
        # those running: a request waiting for a slot does no work (the running set counts k sequences a request)
        cap = float(np.asarray(running).ravel()[0]) / k
        in_flight = max(int(round(min(rate * o["latency_s"], cap))), 1)
        out = _pipelined(model, hardware, batch=1, concurrency=in_flight, pp=pp, arrival="steady", rate=0.0,
                         engine=engine, serving=serving, **kw)
    out.update(ttft_s=o["ttft_s"], tpot_s=o["tpot_s"], latency_s=o["latency_s"],
               throughput_tok_s=o["throughput_req_s"] * w * G, unbounded=bool(o["unbounded"]),
               mode="serving, Poisson arrivals")
    if not o["unbounded"]:  # a request holds the stages for 1 / the rate (planner.cost.footprint.rehold)
        n = float(np.asarray(x.group_devices).ravel()[0]) * pp
        energy, usd = rehold(x, n, 1.0 / rate, out["energy_j"], out["device_seconds"] / n)
        out.update(energy_j=float(np.asarray(energy).ravel()[0]), cost_usd=float(np.asarray(usd).ravel()[0]),
                   device_seconds=n / rate)
    out["config"] = {**cf, "arrival": "poisson", "rate": rate}
    out["pipeline"] = {**out["pipeline"], "max_running": float(np.asarray(running).ravel()[0])}
    return out
