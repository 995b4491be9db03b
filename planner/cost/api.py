"""Friendly entry points over the vectorized engine: one configuration in, a dict out."""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.cost.efficiency import Efficiency
from planner.cost.engine import BOTTLENECKS, INPUT_COLUMNS, INPUT_DEFAULTS, evaluate
from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable
from planner.dtypes import check_dtype
from planner.errors import InputError


def validate_config(model, hardware, *, devices: int, batch: int, concurrency: int, prompt_len: int,
                    gen_len: int, samples: int, weight_dtype: str, act_dtype: str, kv_dtype: str,
                    kv_budget: int) -> dict[str, Any]:
    """Check one configuration's values; InputError names the field and the value."""
    for field, value, lo in (("devices", devices, 1), ("batch", batch, 1), ("concurrency", concurrency, 0),
                             ("prompt_len", prompt_len, 1), ("gen_len", gen_len, 1), ("samples", samples, 1),
                             ("kv_budget", kv_budget, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lo:
            raise InputError(f"must be an integer >= {lo}", field=field.replace("_", "-"), value=value)
    w = check_dtype(weight_dtype, "weight-dtype")
    a = check_dtype(act_dtype, "act-dtype")
    kv = check_dtype(kv_dtype, "kv-dtype")
    if not hardware.has_dtype(a):
        raise InputError(f"device '{hardware.name}' has no {a} compute (it has: {', '.join(hardware.peak_tflops)})",
                         field="act-dtype", value=a)
    if devices > hardware.max_devices:
        raise InputError(f"device '{hardware.name}' allows at most {hardware.max_devices} in one tensor-parallel group",
                         field="devices", value=devices)
    return {"weight_dtype": w, "act_dtype": a, "kv_dtype": kv}


def columns(n: int, **values) -> dict[str, np.ndarray]:
    """Broadcast scalars / arrays into the engine's input columns (dtype names -> codes)."""
    cols = {}
    for key in INPUT_COLUMNS:
        v = values[key] if key in values or key not in INPUT_DEFAULTS else INPUT_DEFAULTS[key]
        if key.endswith("_dtype"):
            v = np.vectorize(DTYPE_CODE.__getitem__, otypes=[np.int64])(np.asarray(v)) if np.ndim(v) else DTYPE_CODE[v]
        cols[key] = np.broadcast_to(np.asarray(v), (n,))
    return cols


def serving_columns(engine, arrival: str = "steady", rate: float = 0.0) -> dict[str, Any]:
    """The engine's serving columns for one configuration: an engine profile
    (planner.engine_profiles; None: the generic one), an arrival pattern of
    planner.cost.serving.ARRIVALS and a Poisson rate (requests/s, > 0 for ``poisson``)."""
    from planner.cost.serving import ARRIVAL_CODE, ARRIVALS

    if arrival not in ARRIVAL_CODE:
        raise InputError(f"unknown arrival pattern (choose from {', '.join(ARRIVALS)})", field="arrival", value=arrival)
    if arrival == "poisson" and not (isinstance(rate, (int, float)) and np.isfinite(rate) and rate > 0):
        raise InputError("must be a request rate > 0 (requests/s)", field="rate", value=rate)
    if engine is None:
        from planner.engine_profiles import load_engine

        engine = load_engine(None)
    return {"arrival": ARRIVAL_CODE[arrival], "rate": float(rate or 0.0), "token_budget": engine.token_budget,
            "max_running": engine.max_running, "chunked": int(engine.chunked_prefill),
            "mixed": int(engine.mixed_batches), "host_step_s": engine.host_step_s}


def estimate(model, hardware, *, devices: int = 1, batch: int = 1, concurrency: int = 0, prompt_len: int,
             gen_len: int, samples: int = 1, weight_dtype: str = "bf16", act_dtype: str = "bf16",
             kv_dtype: str = "bf16", kv_budget: int = 0, prefix_sharing: bool = True,
             efficiency: Efficiency | None = None, engine=None, arrival: str = "steady",
             rate: float = 0.0, pp: int = 1) -> dict[str, Any]:
    """Estimate one configuration. Returns a JSON-ready dict (seconds, bytes, joules, USD).

    ``decode_s`` is the sum of ``gen_len`` decode steps at contexts prompt_len .. prompt_len
    + gen_len - 1 (with gen_len = 1: one step at context prompt_len). Serving (concurrency
    > 0, or a Poisson ``rate``) follows the ``engine`` profile's scheduler and the
    ``arrival`` pattern (planner.cost.serving); ``unbounded`` says a rate above capacity.
    """
    if arrival == "poisson" and concurrency == 0:
        concurrency = 1  # serving mode; the in-flight count follows from the rate
    if pp > 1:  # pipeline stages: cost one microbatch on the TP group, then the pipeline
        from planner.cost.layout import pipeline
        from planner.dtypes import bytes_per_value

        if arrival == "poisson":
            raise InputError("pipeline parallelism is costed for closed-loop, steady or static runs",
                             field="pp", value=pp)
        in_flight = concurrency if concurrency > 0 else batch
        micro = -(-in_flight // pp)
        r = estimate(model, hardware, devices=devices, batch=micro if concurrency <= 0 else batch,
                     concurrency=micro if concurrency > 0 else 0, prompt_len=prompt_len, gen_len=gen_len,
                     samples=samples, weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype,
                     kv_budget=kv_budget, prefix_sharing=prefix_sharing, efficiency=efficiency, engine=engine,
                     arrival=arrival, rate=rate)
        out = pipeline(r, pp=pp, in_flight=in_flight, micro=micro, hardware=hardware, hidden=model.hidden_size,
                       act_bytes=bytes_per_value(r["config"]["act_dtype"]), prompt_len=prompt_len)
        out["config"] = {**r["config"], "batch": batch, "concurrency": concurrency, "pp": pp}
        return out
    serve = serving_columns(engine, arrival, rate)
    dt = validate_config(model, hardware, devices=devices, batch=batch, concurrency=concurrency,
                         prompt_len=prompt_len, gen_len=gen_len, samples=samples, weight_dtype=weight_dtype,
                         act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=kv_budget)
    mt = ModelTable.build([model])
    ht = HardwareTable.build([hardware], [efficiency])
    cols = columns(1, model=0, hardware=0, devices=devices, batch=batch, concurrency=concurrency,
                   prompt_len=prompt_len, gen_len=gen_len, samples=samples, kv_budget=kv_budget,
                   prefix_sharing=prefix_sharing, **dt, **serve)
    r = {k: (v[0].item() if isinstance(v, np.ndarray) else v) for k, v in evaluate(cols, mt, ht).items()}
    return to_report(r, model, hardware, ht.efficiency_sources[0], dict(
        devices=devices, batch=batch, concurrency=concurrency, prompt_len=prompt_len, gen_len=gen_len,
        samples=samples, kv_budget=kv_budget, prefix_sharing=prefix_sharing, **dt,
        engine=engine.name if engine is not None else "generic", arrival=arrival, rate=rate))


def simulate_estimate(model, hardware, *, devices: int = 1, concurrency: int = 1, prompt_len: int,
                      gen_len: int, weight_dtype: str = "bf16", act_dtype: str = "bf16", kv_dtype: str = "bf16",
                      efficiency: Efficiency | None = None, engine=None, arrival: str = "closed",
                      rate: float = 0.0, n_requests: int | None = None, slo_ttft_s: float | None = None,
                      slo_tpot_s: float | None = None, seed: int = 0) -> dict[str, Any]:
    """Run the discrete-event simulator (planner.cost.simulate) on one configuration:
    per-request TTFT / TPOT / end-to-end distributions, throughput, goodput, SLO
    attainment. ``n_requests`` defaults to the benchmark convention (10 x concurrency for
    a closed loop, at least 1,000 for Poisson arrivals)."""
    from planner.cost.context import Ctx
    from planner.cost.serving import REQUESTS_PER_CONCURRENCY
    from planner.cost.simulate import simulate_config, summarize

    dt = validate_config(model, hardware, devices=devices, batch=1, concurrency=concurrency,
                         prompt_len=prompt_len, gen_len=gen_len, samples=1, weight_dtype=weight_dtype,
                         act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=0)
    serve = serving_columns(engine, arrival, rate)
    if engine is None:
        from planner.engine_profiles import load_engine

        engine = load_engine(None)
    if n_requests is None:
        n_requests = max(concurrency, 1) * REQUESTS_PER_CONCURRENCY if arrival != "poisson" else 1000
    if not isinstance(n_requests, int) or n_requests < 1:
        raise InputError("must be an integer >= 1", field="requests", value=n_requests)
    mt = ModelTable.build([model])
    ht = HardwareTable.build([hardware], [efficiency])
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=max(concurrency, 1),
                   prompt_len=prompt_len, gen_len=gen_len, samples=1, kv_budget=0, prefix_sharing=False,
                   **dt, **serve)
    x = Ctx(cols, mt, ht)
    sim = simulate_config(x, engine=engine, prompt_len=prompt_len, gen_len=gen_len, arrival=arrival,
                          concurrency=concurrency, rate=rate, n_requests=n_requests, seed=seed)
    out = summarize(sim, gen_len, slo_ttft_s, slo_tpot_s)
    out["engine"] = engine.name
    out["arrival"] = arrival
    return out


def disaggregated_estimate(model, hardware, *, prefill_workers: int, decode_workers: int, prefill_devices: int,
                           decode_devices: int, concurrency: int, prompt_len: int, gen_len: int,
                           weight_dtype: str = "bf16", act_dtype: str = "bf16", kv_dtype: str = "bf16",
                           efficiency: Efficiency | None = None, engine=None) -> dict[str, Any]:
    """Disaggregated prefill / decode (planner.cost.serving.disaggregated) in a closed loop
    at ``concurrency``: the decode side's estimate (work, memory per decode device) with
    TTFT, TPOT, latency and throughput of the whole deployment, dollars per request for
    all its devices, and the KV transfer time."""
    from planner.cost.context import Ctx
    from planner.cost.layout import kv_transfer_s
    from planner.cost.serving import disaggregated, effective_budget

    for field, v in (("prefill-workers", prefill_workers), ("decode-workers", decode_workers),
                     ("prefill-devices", prefill_devices), ("decode-devices", decode_devices),
                     ("concurrency", concurrency)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise InputError("must be an integer >= 1 for disaggregated serving", field=field, value=v)
    if engine is None:
        from planner.engine_profiles import load_engine

        engine = load_engine(None)
    per_decode = -(-concurrency // decode_workers)
    base = estimate(model, hardware, devices=decode_devices, concurrency=per_decode, prompt_len=prompt_len,
                    gen_len=gen_len, weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype,
                    efficiency=efficiency, engine=engine)
    validate_config(model, hardware, devices=prefill_devices, batch=1, concurrency=concurrency,
                    prompt_len=prompt_len, gen_len=gen_len, samples=1, weight_dtype=weight_dtype,
                    act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=0)
    mt = ModelTable.build([model])
    ht = HardwareTable.build([hardware], [efficiency])
    dt = base["config"]

    def ctx(tp):
        cols = columns(1, model=0, hardware=0, devices=tp, batch=1, concurrency=1, prompt_len=prompt_len,
                       gen_len=gen_len, samples=1, kv_budget=0, prefix_sharing=False,
                       weight_dtype=dt["weight_dtype"], act_dtype=dt["act_dtype"], kv_dtype=dt["kv_dtype"])
        return Ctx(cols, mt, ht)

    x_pre, x_dec = ctx(prefill_devices), ctx(decode_devices)
    kv_per_token = float(np.asarray(x_pre.kvb * x_pre.M["layers"]).ravel()[0])
    total = prefill_workers * prefill_devices + decode_workers * decode_devices
    transfer = kv_transfer_s(kv_per_token, prompt_len, hardware, total, min(prefill_devices, decode_devices))
    budget = effective_budget(engine.token_budget, prompt_len, 0, engine.chunked_prefill)
    d = {k: float(np.asarray(v).ravel()[0]) for k, v in disaggregated(
        x_pre, x_dec, concurrency, prompt_len, gen_len, budget, engine.host_step_s, prefill_workers,
        decode_workers, transfer).items()}
    out = dict(base)
    out.update(ttft_s=d["ttft_s"], tpot_s=d["tpot_s"], latency_s=d["latency_s"],
               throughput_tok_s=d["throughput_req_s"] * gen_len,
               cost_usd=total * hardware.hourly_usd / 3600.0 / d["throughput_req_s"],
               device_seconds=total / d["throughput_req_s"])
    out["mode"] = "serving, disaggregated prefill/decode (closed loop)"
    out["config"] = {**base["config"], "concurrency": concurrency, "arrival": "closed"}
    out["disaggregated"] = {"prefill_workers": prefill_workers, "prefill_devices": prefill_devices,
                            "decode_workers": decode_workers, "decode_devices": decode_devices,
                            "devices": total, "kv_transfer_s": transfer}
    return out


def to_report(r: dict, model, hardware, efficiency_source: str, config: dict) -> dict[str, Any]:
    """Shape one engine row into the documented ``planner estimate --json`` object."""
    flops = {"linear": r["flops_linear"], "attention": r["flops_attention"], "sparse_selection": r["flops_selection"]}
    flops["total"] = sum(flops.values())
    nbytes = {"weights": r["bytes_weights"], "kv_cache": r["bytes_kv"], "activations": r["bytes_activations"],
              "sparse_selection": r["bytes_selection"]}
    nbytes["total"] = sum(nbytes.values())
    kin_c, kin_m = r["kinetics_compute_flops"], r["kinetics_memory_bytes"]
    from planner.cost.engine import KINETICS_INTENSITY

    return {
        "model": model.name,
        "hardware": hardware.name,
        "config": config,
        "mode": ("static batch" if config.get("concurrency", 0) <= 0 else
                 {"closed": "serving, closed loop", "poisson": "serving, Poisson arrivals"}.get(
                     config.get("arrival", "steady"), "serving")),
        "unbounded": bool(r.get("unbounded", False)),
        "efficiency": efficiency_source,
        "ttft_s": r["ttft_s"],
        "tpot_s": r["tpot_s"],
        "latency_s": r["latency_s"],
        "prefill_s": r["prefill_s"],
        "decode_s": r["decode_s"],
        "throughput_tok_s": r["throughput_tok_s"],
        "energy_j": r["energy_j"],
        "cost_usd": r["cost_usd"],
        "device_seconds": r["device_seconds"],
        "bottleneck": BOTTLENECKS[int(r["bottleneck"])],
        "time_by_bound_s": {"compute": r["t_compute"], "memory": r["t_memory"],
                            "interconnect": r["t_interconnect"], "overhead": r["t_overhead"]},
        "memory": {
            "weights_bytes": r["weights_bytes"],
            "kv_cache_bytes": r["kv_cache_bytes"],
            "activations_bytes": r["activations_bytes"],
            "reserve_bytes": r["reserve_bytes"],
            "total_bytes": r["total_bytes"],
            "capacity_bytes": r["capacity_bytes"],
            "fits": bool(r["fits"]),
        },
        "flops": flops,
        "bytes": nbytes,
        "kinetics": {
            "compute_flops": kin_c,
            "memory_bytes": kin_m,
            "intensity": KINETICS_INTENSITY,
            "eflops": r["kinetics_eflops"],
            "b200_seconds": r["kinetics_eflops"] / 4.5e15,
        },
    }
