"""Continuous batching with chunked prefill, as the engines schedule it: the analytic
(mean-field) scheduler model, vectorized over configurations.

Three arrival patterns (``ARRIVALS``):

* ``steady``: today's steady state: every step carries the decodes of ``C`` requests at
  uniformly mixed ages plus ``C / G`` prompts; TTFT is a step carrying one prompt plus
  half a step (:func:`serving_steady`, moved here from planner.cost.engine);
* ``closed``: a closed loop at concurrency ``C`` as ``vllm bench serve --max-concurrency``,
  genai-perf and AIPerf run it (how the measured data was taken): all requests start
  together, a finished request is replaced at once (planner.cost.closed_loop);
* ``poisson``: an open loop, Poisson arrivals at ``rate`` requests/s
  (:func:`planner.cost.open_loop.poisson`).

Scheduler facts come from an engine profile (planner.engine_profiles): the token budget
``B`` per step shared by decodes and prefill chunks, whether prefill chunks ride on decode
steps (``mixed``), the host time per step. Step times are :func:`planner.cost.steps.step_time`,
the same function the discrete-event simulator (planner.cost.simulate) uses; tests check
the two agree.
The closed loop's algebra (the benchmark's waves, the shared prompt step, disaggregated
workers) lives in planner.cost.closed_loop; this module holds the steady state, the
worker's token budget and the dispatch of a row to its arrival pattern (:func:`serving_into`).
"""

from __future__ import annotations

import numpy as np

from planner.cost.adp_balance import balance_wait_s
from planner.cost.closed_loop import REQUESTS_PER_CONCURRENCY, closed_loop, disaggregated, shared_prompt_step
from planner.cost.context import Ctx
from planner.cost.expert_parallel import prompt_rank_excess_s, step_budget
from planner.cost.footprint import memory_footprint, rehold
from planner.cost.interconnect import allreduce_s
from planner.cost.open_loop import poisson
from planner.cost.dense import dense_kernels
from planner.cost.passes import assemble, attention_coeffs, prompt_read_once
from planner.cost.recurrent import recurrent_bytes, recurrent_flops
from planner.cost.roofline import launch_overhead_s, roofline_s, scaled
from planner.cost.running import requests_running, running_limit
from planner.cost.steps import step_time
from planner.cost.sums import sum_min
from planner.cost.waves import in_step_share, recv_wait_steps, request_overhead_s, smeared_waves

# closed_loop, disaggregated, shared_prompt_step and REQUESTS_PER_CONCURRENCY live in
# planner.cost.closed_loop; callers written before the split import them from here
__all__ = ["ARRIVALS", "ARRIVAL_CODE", "default_arrival", "serving_pattern", "REQUESTS_PER_CONCURRENCY", "closed_loop", "disaggregated",
           "effective_budget", "released_step_excess_s", "serving_into", "serving_steady", "serving_step", "shared_prompt_step"]

ARRIVALS = ("steady", "closed", "poisson")
ARRIVAL_CODE = {name: i for i, name in enumerate(ARRIVALS)}


def default_arrival(engine, concurrency: int) -> str:
    """The arrival pattern of a prediction that names none (estimate, a check file's estimate,
    the Python API): a named engine's requests in flight run as the closed loop at that
    concurrency, as the benchmarks run them (``vllm bench serve --max-concurrency``,
    genai-perf, AIPerf) and as every fitted path's measured error was measured
    (planner.fidelity); the generic engine (``engine`` None or named generic: the cost
    engine without a scheduler's host time, measured as the steady state it is) and a
    static batch (no requests in flight), the steady state."""
    named = engine is not None and getattr(engine, "name", "generic") != "generic"
    return "closed" if named and concurrency > 0 else "steady"


def serving_pattern(engine, arrival, rate, concurrency: int, batch: int, closed: bool = False):
    """The arrival pattern of a prediction and its requests in flight: a ``rate`` is Poisson
    arrivals (another pattern named with it is an InputError); none named, the closed loop
    where ``closed`` (the simulator's and the SLOs' default) or a named engine has requests in
    flight, else the steady state (:func:`default_arrival`); a closed loop with none in
    flight takes the batch as its concurrency. Returns (arrival, concurrency)."""
    if rate is not None:
        if arrival not in (None, "poisson"):
            from planner.errors import InputError

            raise InputError("a --rate needs Poisson arrivals", field="arrival", value=arrival)
        arrival = "poisson"
    elif arrival is None:
        arrival = "closed" if closed else default_arrival(engine, concurrency)
    if arrival == "closed" and concurrency < 1:
        concurrency = batch  # a closed loop needs requests in flight: the batch is the concurrency
    return arrival, concurrency


def effective_budget(token_budget, prompt_len, concurrency, chunked, attn_dp=None, dp_rank_budget=0):
    """Tokens per step of the worker. With ``attn_dp`` (attention-DP ranks) the engine's
    ``token_budget`` is first made the worker's (planner.cost.expert_parallel.step_budget:
    ``attn_dp`` budgets where the engine schedules each rank, ``dp_rank_budget``).
    Without chunked prefill a whole prompt must fit in a step next to
    the decodes; a deployment that runs such prompts at all is configured for that
    (TensorRT-LLM requires max_num_tokens >= the prompt), so the budget is at least
    ``P + C`` (assumption, docs/cost-model.md "Serving")."""
    if attn_dp is not None:
        token_budget = step_budget(token_budget, attn_dp, dp_rank_budget)
    need = np.asarray(prompt_len, dtype=float) + np.asarray(concurrency, dtype=float)
    return np.where(np.asarray(chunked, dtype=bool), token_budget, np.maximum(token_budget, need))


def serving_step(x: Ctx, S, n_req_per_step_prompts, share_req, P, G, prefill_tokens):
    """One steady-state continuous-batching step: S decoding sequences at uniformly mixed
    ages (contexts P..P+G-1) plus ``prefill_tokens`` prompt tokens riding on the step."""
    xp, M = x.xp, x.model
    n_tok = S + prefill_tokens
    t_lin, lin_c, lin_m, F_lin, Bw, Ba = dense_kernels(x, n_tok, 1.0, S + prefill_tokens / xp.maximum(P, 1.0))
    read = prompt_read_once(x, share_req < S, share_req, S, P)  # share_req: the requests where they share
    f_g, f_s, f_u, g_g, g_s, g_u, g0_share, g0_sel = attention_coeffs(x, S, xp.where_flags(read, share_req, S), read)
    sum_c, sum_g, sum_s = x.decode_sums(P, G)
    mean_g, mean_s, mean_c = sum_g / G, sum_s / G, sum_c / G
    F_dec = f_g * mean_g + f_s * mean_s + f_u * mean_c
    B_dec = g_g * mean_g + g_s * mean_s + g_u * mean_c + P * (g0_share + g0_sel)
    # prefill attention of the riding prompt tokens (average causal context P/2)
    ctx_pre = M["global_layers"] * (P + 1.0) * 0.5 + M["sliding_layers"] * sum_min(1.0, P + 1.0, M["window"], xp) / xp.maximum(P, 1.0)
    F_pre = prefill_tokens / x.attn_dp * M["attn_pre"] * ctx_pre / x.devices
    B_pre = 2.0 * prefill_tokens / x.attn_dp * x.kv_bytes_per_token_layer * M["kv_layers"] / x.kv_shard
    # linear-attention layers (planner.cost.recurrent): state traffic per decode, FLOPs per token
    F_dec, B_dec = F_dec + recurrent_flops(x, S), B_dec + recurrent_bytes(x, S)
    F_pre = F_pre + recurrent_flops(x, prefill_tokens)
    L = M["layers"]
    ta_c = (F_dec + F_pre + L * x.attn_offset_flops) * x.s_per_attn_flop
    ta_m = (B_dec + L * x.hw["mem_offset_bytes"]) * x.s_per_kv_byte + B_pre * x.s_per_byte
    t_att, att_c, att_m = roofline_s(x, ta_c, ta_m)
    t_comm = allreduce_s(x, n_tok, 1.0)
    t_ovh = launch_overhead_s(x, 1.0)
    total = t_lin + t_att + t_comm + t_ovh
    return scaled(x, {
        "time": total, "F_lin": F_lin, "F_att": F_dec - f_u * mean_c + F_pre, "F_sel": f_u * mean_c,
        "B_w": Bw, "B_a": Ba, "B_kv": B_dec - g_u * mean_c + B_pre, "B_sel": g_u * mean_c,
        "t_compute": lin_c + att_c, "t_memory": lin_m + att_m, "t_comm": t_comm, "t_ovh": t_ovh,
    })


def serving_steady(out, x, C, k, P, G, share):
    """Continuous batching in steady state at concurrency C (requests in flight; README "How the
    cost model works", *Steady*): each step decodes ``S = C k`` sequences and prefills the ``C / G``
    requests that replace the finished ones (Little's law); TPOT = that step's time (s), TTFT = a step
    carrying one whole prompt + half a step, latency = TTFT + (G - 1) TPOT, throughput S / TPOT."""
    xp = x.xp
    C1 = xp.maximum(C, 1.0)
    S = C1 * k
    n_req = xp.where(share, C1, S)
    per_prompt = xp.where(share, 1.0, k)
    step = serving_step(x, S, C1, n_req, P, G, C1 / xp.maximum(G, 1.0) * per_prompt * P)
    # TTFT: the step that carries one whole new prompt, plus on average half a step of waiting
    first = serving_step(x, S, C1, n_req, P, G, per_prompt * P)
    if x.layout_beyond_tp:  # attention data parallel: the new prompt is one rank's (planner.cost.expert_parallel)
        first["time"] = first["time"] + prompt_rank_excess_s(x, per_prompt * P, P) * x.hw["time_scale"]
    tpot = step["time"]
    ttft = first["time"] + 0.5 * tpot
    latency = ttft + (G - 1.0) * tpot
    # one request's share: G steps of the device group, shared by the C requests in flight
    dec = {key: v * G for key, v in step.items()}
    zero = xp.zeros_like(tpot)
    pre = {key: zero for key in ("F_lin", "F_att", "B_w", "B_kv", "B_a", "t_compute", "t_memory", "t_comm", "t_ovh")}
    pre["time"] = first["time"]
    mem = memory_footprint(x, C1, k, P, G, share, C1 / xp.maximum(G, 1.0) * per_prompt * P + S)
    res = assemble(x, C1, G * tpot, pre, dec, latency, ttft, tpot, S / tpot, mem)
    res["decode_s"] = G * tpot
    res["_hold_s"] = G * tpot / C1  # a request's share of the group's wall time (serving_into re-prices it)
    out["_serving"] = res


def serving_into(out, x: Ctx, C, k, P, G, share):
    """Serving rows (concurrency > 0): the steady state for every row, then the closed
    loop or the Poisson model where the ``arrival`` column asks for it (TTFT, TPOT,
    latency and throughput replaced; the work per request and the memory stay the steady
    state's, and dollars, energy and device time follow the pattern's wall time per
    request, planner.cost.footprint.rehold). ``k`` samples of a request are ``k`` sequences in flight;
    where they share their prompt (``share``, prefix sharing) the timing models run a request as
    one prompt and ``k`` decodes (their ``width``: one prefill, as vLLM's parallel sampling runs
    it), else as ``k`` requests of their own; ``max_running`` counts sequences."""
    serving_steady(out, x, C, k, P, G, share)
    cols = getattr(x, "cols", {})
    arrival = np.asarray(cols.get("arrival", 0))
    res = out["_serving"]
    hold = res.pop("_hold_s")
    if not np.any(arrival):  # the steady state (and the API's scalar path) is never unbounded
        res["unbounded"] = np.zeros(np.shape(C), dtype=bool) if x.xp.name == "vector" else False
        return
    get = lambda key: np.asarray(cols[key], dtype=x.dt)  # noqa: E731
    chunked = get("chunked") > 0
    host, mixed, max_run = get("host_step_s"), get("mixed") > 0, get("max_running")
    # the requests the free KV memory holds at once (the engine's reservation), where given
    reserve = np.asarray(cols.get("kv_reserve", -1.0), dtype=x.dt)
    max_run = running_limit(x, max_run, reserve, k, P, G, share, np.asarray(cols.get("kv_fraction", -1.0)),
                            np.asarray(cols.get("kv_of_free", 0.0)))
    S = np.maximum(C, 1.0) * k  # sequences in flight
    # the timing models' requests: a shared prompt's k samples are one prompt of width k,
    # unshared ones k prompts of width 1 (U of them in flight, at k / w x the rate)
    w = np.where(share, k, 1.0)
    U = S / w
    budget = effective_budget(get("token_budget"), P, S, chunked, attn_dp=np.asarray(x.attn_dp),
                              dp_rank_budget=np.asarray(cols.get("dp_rank_budget", 0), dtype=x.dt))
    closed = closed_loop(x, U, P, G, budget, mixed, host, max_run, chunked=chunked, width=w)
    rate = np.where(arrival == ARRIVAL_CODE["poisson"], get("rate"), 1.0) * (k / w)
    open_ = poisson(x, rate, P, G, budget, host, max_run, width=w)
    pick = arrival == ARRIVAL_CODE["closed"]
    pois = arrival == ARRIVAL_CODE["poisson"]
    # an attention-DP balancer holds a prompt that arrives alone (planner.cost.adp_balance.balance_wait_s):
    # a closed loop's spread-out later prompts, S per cycle of G + 1 steps and the TTFT's, timed at
    # the loop's TPOT; Poisson arrivals, timed at the decode step (nothing else runs while they
    # are held), then run together in the step that releases them (released_step_excess_s)
    tau = np.asarray(cols.get("adp_balance_iters", 0), dtype=x.dt)
    tpot_c = np.maximum(closed["tpot_s"], 1e-30)
    extra, balance = 0.0, 0.0
    interval = np.maximum(np.asarray(cols.get("recv_interval", 1), dtype=x.dt), 1.0)  # requests polled every N steps
    if np.any(pick):
        balance = balance_wait_s(x.attn_dp, tau, U / (G + 1.0 + res["ttft_s"] / tpot_c), tpot_c, U)[0]
        shared, lone, _ = shared_prompt_step(x, np.minimum(U, requests_running(max_run, w)), P, G, budget, mixed,
                                             host, chunked, interval, width=w)
        extra = shared - lone
    # the benchmark's length spread keeps later waves from staying in step (in_step_share)
    sync = get("wave_sync") * in_step_share(np.asarray(cols.get("range_ratio", 1.0), dtype=x.dt), G,
                                            closed["wave_steps"])
    per_kernel = np.asarray(cols.get("request_overhead_s_per_kernel", 0.0), dtype=x.dt)
    overhead = request_overhead_s(get("request_overhead_s"), per_kernel, x.kernels_per_pass)
    closed = smeared_waves(closed, res, host, sync, overhead, U, G, extra, balance,
                           recv_wait_steps(interval) * tpot_c)
    if np.any(pois):
        with np.errstate(all="ignore"):
            t_dec = open_["decode_step_s"]
            held, others, held_share = balance_wait_s(x.attn_dp, tau, rate * t_dec, t_dec, None,
                                                      generating=rate * (G - 1.0) * open_["tpot_s"])
            held = held + held_share * released_step_excess_s(x, open_, others, P, G, budget, host) \
                + recv_wait_steps(interval) * open_["tpot_s"]
        open_ = {**open_, "ttft_s": open_["ttft_s"] + held, "latency_s": open_["latency_s"] + held}
        # the requests in flight that run (Little's law; one waiting for a slot does no work)
        running = np.minimum(rate * open_["latency_s"], requests_running(max_run, w)) * (w / k)
        hold = poisson_work_into(res, x, pois & ~open_["unbounded"], running, hold, k, P, G, share)
    for key in ("ttft_s", "tpot_s", "latency_s"):
        res[key] = np.where(pick, closed[key], np.where(pois, open_[key], res[key]))
    # both loops count their requests of w sequences (U in flight; k / w x the rate)
    seq_s = np.where(pick, closed["throughput_req_s"], open_["throughput_req_s"]) * w
    res["throughput_tok_s"] = np.where(pick | pois, seq_s * G, res["throughput_tok_s"])
    res["unbounded"] = pois & open_["unbounded"]
    with np.errstate(divide="ignore", invalid="ignore"):
        held = k / (np.where(pick, closed["throughput_req_s"], rate) * w)
    # the steady state's own rows (and unbounded ones) keep their hold: rehold gives back their figures
    hold_s = np.where((pick | pois) & ~res["unbounded"], held, hold)
    res["energy_j"], res["cost_usd"] = rehold(x, x.group_devices, hold_s, res["energy_j"], hold)
    if "device_seconds" in res:  # the search's columns have none
        res["device_seconds"] = x.group_devices * hold_s


TIMING_KEYS = ("ttft_s", "tpot_s", "latency_s", "throughput_tok_s", "unbounded")


def poisson_work_into(res: dict, x: Ctx, rows, in_flight, hold, k, P, G, share):
    """The work, memory and wall-time share of a request under Poisson arrivals (``rows``):
    the steady state's at the requests the open loop holds in flight on average, Little's
    law ``L = rate x latency`` (requests of ``k`` sequences; at least one), not at the one
    request the command was given: weights streamed once per step are shared by the batch
    the stream keeps. Every key of ``res`` but the timings (:data:`TIMING_KEYS`) is
    replaced on those rows; returns the wall-time share ``hold`` with theirs."""
    if not np.any(rows):
        return hold
    with np.errstate(all="ignore"):
        C = np.where(rows, np.maximum(np.nan_to_num(in_flight, nan=1.0, posinf=1.0), 1.0), 1.0)
    tmp: dict = {}
    serving_steady(tmp, x, C, k, P, G, share)
    alt = tmp["_serving"]
    for key in res:
        if key not in TIMING_KEYS and key in alt:
            res[key] = np.where(rows, alt[key], res[key])
    return np.where(rows, alt["_hold_s"], hold)


def released_step_excess_s(x: Ctx, open_: dict, others, P, G, budget, host_s):
    """Poisson arrivals held by an attention-DP balancer run in the step that releases the
    window's prompts, ``1 + others`` of them beside the ``decoding`` requests (within the
    room the budget leaves): its time beyond the open loop's own carrying step (``own_s``),
    for the held share (planner.cost.adp_balance.balance_wait_s)."""
    if not np.any(np.asarray(others) > 0.0):
        return 0.0
    d = open_["decoding"]
    P = np.asarray(P, dtype=float)
    p = np.minimum((1.0 + others) * P, np.maximum(np.asarray(budget, dtype=float) - d, P))
    rel = step_time(x, d, p, d + p / P, P + 1.0 + 0.5 * (np.asarray(G, dtype=float) - 1.0), 0.5 * (P + 1.0), host_s)
    return np.where(np.asarray(others) > 0.0, np.maximum(rel - open_["own_s"], 0.0), 0.0)
