"""One-configuration entry points for the serving models beyond the analytic mean:
the discrete-event simulator (:func:`simulate_estimate`, `planner estimate --simulate`)
and disaggregated prefill / decode (:func:`disaggregated_estimate`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.bounds import check_count
from planner.cost.api import columns, estimate, resolve_hardware
from planner.cost.engine_columns import serving_columns
from planner.cost.config_check import validate_config
from planner.cost.efficiency import Efficiency
from planner.cost.tables import HardwareTable, ModelTable
from planner.errors import InputError
from planner.units import SECONDS_PER_HOUR


def simulate_estimate(model, hardware, *, devices: int = 1, concurrency: int = 1, prompt_len: int,
                      gen_len: int, weight_dtype: str = "bf16", act_dtype: str = "bf16", kv_dtype: str = "bf16",
                      efficiency: Efficiency | None = None, engine=None, arrival: str = "closed",
                      rate: float = 0.0, n_requests: int | None = None, slo_ttft_s: float | None = None,
                      slo_tpot_s: float | None = None, seed: int = 0, pp: int = 1, ep: int = 1,
                      dp: int = 1, range_ratio: float = 1.0, samples: int = 1,
                      prefix_sharing: bool = True) -> dict[str, Any]:
    """Run the discrete-event simulator (planner.cost.simulate) on one configuration:
    per-request TTFT / TPOT / end-to-end distributions, throughput, goodput, SLO
    attainment. ``n_requests`` defaults to the benchmark convention (10 x concurrency for
    a closed loop, at least 1,000 for Poisson arrivals). ``pp`` > 1: the pipeline
    simulator (planner.cost.simulate_pipeline) on ``devices``-wide stages, the running set
    capped as ``estimate(pp=)`` caps it (planner.cost.layout.pipeline_memory). ``ep`` > 1
    (expert parallelism) and ``dp`` > 1 (attention data parallelism over ``dp`` groups of
    ``devices``) change only what each step costs: the StepTable is built from the
    engine context with those ``ep`` / ``attn_dp`` columns (planner.cost.expert_parallel),
    the running set is capped by the KV memory of that layout, and the scheduler is the
    worker's one scheduler, as in the analytic model. ``range_ratio`` r < 1: the
    benchmark's lengths drawn per request from ``[int(r L), L]``: the simulator draws each
    output length (planner.cost.simulate.simulate), prompts are the mean prompt and the
    KV cap and token throughput the mean request's (planner.cost.spread.spread_lengths, as
    ``estimate(range_ratio=)``); one stage only. ``samples`` k > 1: a request's k samples are k
    sequences. With ``prefix_sharing`` they share the prompt as the analytic closed and open
    loops then run them: each simulated request is one prompt and k decodes (the ``width`` of
    planner.cost.simulate.simulate and of the pipeline simulator), the running set counting
    sequences, its KV cap that of requests of k shared samples. Without sharing each sample
    is a request of its own: k x the
    requests in flight (``concurrency``, ``n_requests``) or k x the ``rate``; the request rates
    (``throughput_req_s``, ``goodput_req_s``) and ``requests`` are then per request. Either
    way ``sequences_per_request`` says k and ``shared_prompt`` which of the two ran."""
    k = check_count("samples", samples, 1)
    wide = k > 1 and bool(prefix_sharing)
    if k > 1 and not wide:
        from planner.bounds import MAX_RATE_PER_S

        if rate and rate * k > MAX_RATE_PER_S:
            raise InputError(f"with --samples {k} the simulator would draw {rate * k:g} sequences/s, above the "
                             f"{MAX_RATE_PER_S:g} a second it takes (planner.bounds)", field="rate", value=rate)
        out = simulate_estimate(model, hardware, devices=devices, concurrency=concurrency * k, prompt_len=prompt_len,
                                gen_len=gen_len, weight_dtype=weight_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype,
                                efficiency=efficiency, engine=engine, arrival=arrival, rate=rate * k,
                                n_requests=None if n_requests is None else n_requests * k, slo_ttft_s=slo_ttft_s,
                                slo_tpot_s=slo_tpot_s, seed=seed, pp=pp, ep=ep, dp=dp, range_ratio=range_ratio)
        out.update(sequences_per_request=k, requests=out["requests"] // k, shared_prompt=False,
                   **{key: out[key] / k for key in ("throughput_req_s", "goodput_req_s")})
        return out
    width = k if wide else 1
    from planner.cost.context import Ctx
    from planner.cost.layout import check_layout
    from planner.cost.closed_loop import REQUESTS_PER_CONCURRENCY
    from planner.cost.simulate import simulate_config, summarize

    G_drawn = gen_len  # the simulator's longest output (its draws span [int(r G), G])
    if range_ratio != 1.0:
        from planner.bounds import check_range_ratio
        from planner.cost.spread import spread_lengths

        check_range_ratio(range_ratio)
        if pp > 1:
            raise InputError("the pipeline simulator runs fixed lengths", field="range-ratio", value=range_ratio)
        prompt_len, gen_len = spread_lengths(prompt_len, gen_len, range_ratio)
    dt = validate_config(model, hardware, devices=devices, batch=1, concurrency=concurrency,
                         prompt_len=prompt_len, gen_len=gen_len, samples=1, weight_dtype=weight_dtype,
                         act_dtype=act_dtype, kv_dtype=kv_dtype, kv_budget=0)
    check_layout(model, tp=devices, pp=pp, ep=ep, dp=dp)
    if engine is not None:  # as the engine configures itself on this device (its defaults by GPU class)
        engine = engine.on_device(resolve_hardware(hardware))
    serve = serving_columns(engine, arrival, rate)
    if engine is None:
        from planner.engine_profiles import load_engine

        engine = load_engine(None)
    if n_requests is None:
        n_requests = max(concurrency, 1) * REQUESTS_PER_CONCURRENCY if arrival != "poisson" else 1000
    else:
        n_requests = check_count("requests", n_requests, 1)
    mt = ModelTable.build([model])
    ht = HardwareTable.build([hardware], [efficiency])
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=max(concurrency, 1),
                   prompt_len=prompt_len, gen_len=gen_len, samples=1, kv_budget=0, prefix_sharing=False,
                   ep=ep, attn_dp=dp, **dt, **serve)
    x = Ctx(cols, mt, ht)
    if pp > 1:
        out = _simulate_pipeline(x, model, hardware, engine, serve, pp=pp, prompt_len=prompt_len, gen_len=gen_len,
                                 act_dtype=dt["act_dtype"], arrival=arrival, concurrency=concurrency, rate=rate,
                                 n_requests=n_requests, seed=seed, slo=(slo_ttft_s, slo_tpot_s), width=width)
        out.update(ep=ep, dp=dp)
        if wide:
            out.update(sequences_per_request=k, shared_prompt=True)
        return out
    if "kv_reserve" in serve:  # the running set the free KV memory holds, as the analytic models
        from planner.cost.running import running_limit

        one = np.ones(1, dtype=x.dt)
        cap = running_limit(x, engine.max_running, serve["kv_reserve"], width * one, prompt_len * one,
                            gen_len * one, np.full(1, width > 1), serve["kv_fraction"], serve["kv_of_free"])
        engine = engine.model_copy(update={"max_running": int(np.min(cap))})
    sim = simulate_config(x, engine=engine, prompt_len=prompt_len, gen_len=G_drawn, arrival=arrival,
                          concurrency=concurrency, rate=rate, n_requests=n_requests, seed=seed,
                          range_ratio=range_ratio, width=width)
    out = summarize(sim, gen_len, slo_ttft_s, slo_tpot_s)
    out.update(engine=engine.name, arrival=arrival, ep=ep, dp=dp)
    if wide:
        out.update(sequences_per_request=k, shared_prompt=True)
    return out


def _simulate_pipeline(x, model, hardware, engine, serve, *, pp, prompt_len, gen_len, act_dtype, arrival,
                       concurrency, rate, n_requests, seed, slo, width=1) -> dict[str, Any]:
    """:func:`simulate_estimate` with ``pp`` stages: the engine's budget and host time, the
    running set min(max_running, what a stage's KV memory holds), in sequences (requests of
    ``width`` shared samples x ``width``), the link's sends."""
    from planner.cost.layout import microbatch_running, send_coefficients
    from planner.cost.serving import effective_budget
    from planner.cost.simulate import summarize
    from planner.cost.simulate_pipeline import simulate_pipeline
    from planner.cost.steps import StepTable
    from planner.dtypes import BITS

    one = np.ones(1, dtype=x.dt)
    with np.errstate(all="ignore"):
        running = int(np.min(microbatch_running(x, float(pp), 1.0, float(engine.max_running), width * one,
                                                prompt_len * one, gen_len * one, np.full(1, width > 1),
                                                serve["kv_reserve"], serve["kv_fraction"], serve["kv_of_free"])))
    budget = int(effective_budget(engine.token_budget, prompt_len, max(concurrency, 1) * width, engine.chunked_prefill,
                                  attn_dp=float(np.asarray(x.attn_dp).ravel()[0]),
                                  dp_rank_budget=float(engine.dp_rank_budget)))
    lat_s, per_token_s = send_coefficients(hardware, model.hidden_size, BITS[act_dtype] / 8.0)
    table = StepTable(x, max(budget, int(concurrency) * width, running if arrival == "poisson" else 0) + 1,
                      engine.host_step_s)
    sim = simulate_pipeline(table, pp=pp, send_lat_s=lat_s, send_s_per_token=per_token_s, prompt_len=prompt_len,
                            gen_len=gen_len, token_budget=budget, max_running=running,
                            chunked=engine.chunked_prefill, mixed=engine.mixed_batches, arrival=arrival,
                            concurrency=concurrency, rate=rate, n_requests=n_requests, seed=seed, width=width)
    out = summarize(sim, gen_len, *slo)
    out.update(engine=engine.name, arrival=arrival, pp=pp, max_running=running)
    return out


def disaggregated_estimate(model, hardware, *, prefill_workers: int, decode_workers: int, prefill_devices: int,
                           decode_devices: int, concurrency: int, prompt_len: int, gen_len: int,
                           weight_dtype: str = "bf16", act_dtype: str = "bf16", kv_dtype: str = "bf16",
                           efficiency: Efficiency | None = None, engine=None) -> dict[str, Any]:
    """Disaggregated prefill / decode (planner.cost.closed_loop.disaggregated) in a closed loop
    at ``concurrency``: the decode side's estimate (work, memory per decode device) with
    TTFT, TPOT, latency and throughput of the whole deployment, dollars per request for
    all its devices, and the KV transfer time."""
    from planner.cost.context import Ctx
    from planner.cost.disagg import handed_off, kv_transfer_rows_s
    from planner.cost.serving import effective_budget

    for field, v in (("prefill-workers", prefill_workers), ("decode-workers", decode_workers),
                     ("prefill-devices", prefill_devices), ("decode-devices", decode_devices),
                     ("concurrency", concurrency)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise InputError("must be an integer >= 1 for disaggregated serving", field=field, value=v)
    if engine is None:
        from planner.engine_profiles import load_engine

        engine = load_engine(None)
    engine = engine.on_device(resolve_hardware(hardware))  # its defaults by GPU class
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
                       weight_dtype=dt["weight_dtype"], act_dtype=dt["act_dtype"], kv_dtype=dt["kv_dtype"],
                       host_request_s=engine.host_request_s)
        return Ctx(cols, mt, ht)

    x_pre, x_dec = ctx(prefill_devices), ctx(decode_devices)
    # the prompt's KV (attending layers) and its linear-attention state (one formula for both paths)
    total = prefill_workers * prefill_devices + decode_workers * decode_devices
    transfer = float(np.asarray(kv_transfer_rows_s(x_pre, x_dec, float(prompt_len), float(total))).ravel()[0])
    budget = effective_budget(engine.token_budget, prompt_len, 0, engine.chunked_prefill,
                              attn_dp=np.asarray(x_pre.attn_dp), dp_rank_budget=float(engine.dp_rank_budget))
    # the prefill queue, the transfer, and the decode side's admission and running set (planner.cost.disagg)
    d = {k: float(np.asarray(v).ravel()[0]) for k, v in handed_off(
        x_pre, x_dec, concurrency, prompt_len, gen_len, budget, engine.host_step_s, prefill_workers,
        decode_workers, transfer, engine.max_running).items()}
    if d["running"] < concurrency:  # the decode workers hold fewer: show one worker at its running set
        base = estimate(model, hardware, devices=decode_devices, concurrency=max(int(d["running"] // decode_workers), 1),
                        prompt_len=prompt_len, gen_len=gen_len, weight_dtype=weight_dtype, act_dtype=act_dtype,
                        kv_dtype=kv_dtype, efficiency=efficiency, engine=engine)
    out = dict(base)
    out.update(ttft_s=d["ttft_s"], tpot_s=d["tpot_s"], latency_s=d["latency_s"],
               throughput_tok_s=d["throughput_req_s"] * gen_len,
               cost_usd=total * hardware.hourly_usd / SECONDS_PER_HOUR / d["throughput_req_s"],
               device_seconds=total / d["throughput_req_s"])
    out["mode"] = "serving, disaggregated prefill/decode (closed loop)"
    out["config"] = {**base["config"], "concurrency": concurrency, "arrival": "closed"}
    out["disaggregated"] = {"prefill_workers": prefill_workers, "prefill_devices": prefill_devices,
                            "decode_workers": decode_workers, "decode_devices": decode_devices,
                            "devices": total, "kv_transfer_s": transfer, "decode_wait_s": d["decode_wait_s"],
                            "admission_s": d["admission_s"], "decode_running": d["running"]}
    return out
