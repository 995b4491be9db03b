"""A discrete-event, iteration-level simulator of a continuous-batching engine with
chunked prefill: the reference the analytic scheduler model (planner.cost.serving) is
checked against, and what ``planner estimate --simulate`` shows.

Written on numpy rather than a process-based library (SimPy): an engine advances in
steps, not in independent processes, and most steps are decode-only stretches whose
times are one array expression, so a step loop in Python would waste the time.

The scheduler (vLLM V1 / Sarathi-Serve order, facts from planner.engine_profiles):

1. admit waiting requests while fewer than ``max_running`` are in flight (FIFO);
2. a step carries every running decode (one token each) and fills the rest of the
   ``token_budget`` with prefill chunks taken first-come first-served; without
   ``chunked_prefill`` only whole prompts that fit are taken (a prompt longer than the
   budget is chunked anyway when the step is otherwise empty); without ``mixed_batches``
   a step with prefill work carries prefill only and the decodes wait (SGLang);
3. a request whose prompt completes emits its first token at the end of that step
   (TTFT) and then decodes ``gen_len - 1`` more tokens, one per step it is in; when it
   finishes, a closed loop replaces it at once (or after a random delay, ``jitter_s``),
   an open loop draws Poisson arrivals.

Steps with no prefill work are simulated as one stretch up to the next event (a
request finishing or arriving), their contexts growing by one token per step. Metrics
follow the benchmarks (vllm bench serve, genai-perf): TTFT = first token - arrival,
TPOT = (finish - first token) / (gen_len - 1), end-to-end = finish - arrival.
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

from planner.cost.simulate_balance import AdpBalancer
from planner.cost.steps import StepTable


def take_prefill(prefill: deque, room: int, prompt_len: int, chunked: bool, decodes: int
                 ) -> tuple[int, float, list[int]]:
    """One step's prefill work, taken in arrival order from ``prefill`` (entries
    ``[request, prompt tokens done]``) into ``room`` tokens of the budget: a prompt is cut
    into chunks when ``chunked``, else it waits for a step it fits in whole (unless the step
    is otherwise empty). Returns (prefill tokens, the sum of their causal contexts, the
    requests whose prompt completes); progress is written back and the completed entries
    leave the queue. The context of tokens a+1..a+take is sum (a + j) = (2a + take + 1) take / 2."""
    p, ctx_sum, completed = 0, 0.0, []
    for item in prefill:
        free = room - p
        if free <= 0:
            break
        rem = prompt_len - item[1]
        if not chunked and rem > free and (p > 0 or decodes > 0):
            break
        take = min(rem, free)
        a = item[1]
        ctx_sum += (2.0 * a + take + 1.0) * take * 0.5
        item[1] = a + take
        p += take
        if item[1] == prompt_len:
            completed.append(item[0])
    for _ in completed:
        prefill.popleft()
    return p, ctx_sum, completed


def initial_arrivals(arrive: np.ndarray, arrival: str, concurrency: int, rate: float | None,
                     rng: np.random.Generator, spread_s: float = 0.0) -> int:
    """Write the arrival times known at the start into ``arrive`` (one slot per request,
    ``inf`` for those not yet sent) and return how many are set. Poisson arrivals at
    ``rate``: every request, exponential gaps of mean 1 / rate (the first one gap after
    t = 0). A closed loop: its first wave, ``min(concurrency, n)`` requests at t = 0, or
    evenly spread over ``spread_s`` (request i at i x spread_s / wave); the rest are
    sent as requests finish (the simulators' own replacement rule)."""
    n = len(arrive)
    if arrival == "poisson":
        arrive[:] = np.cumsum(rng.exponential(1.0 / float(rate), n))
        return n
    wave = min(int(concurrency), n)
    arrive[:wave] = np.arange(wave) * (float(spread_s) / wave) if wave else 0.0
    return wave


def simulate(table: StepTable, *, prompt_len: int, gen_len: int, token_budget: int, max_running: int,
             chunked: bool, mixed: bool, arrival: str = "closed", concurrency: int = 1,
             rate: float | None = None, n_requests: int = 1000, seed: int = 0,
             spread_s: float = 0.0, jitter_s: float = 0.0, range_ratio: float = 1.0, attn_dp: int = 1,
             balance_iters: int = 0, width: int = 1) -> dict[str, np.ndarray]:
    """Simulate ``n_requests`` requests; returns per-request arrays (s): arrival, first
    token and finish times, TTFT, TPOT, end-to-end latency and the time of the step that
    completed the prompt (``prompt_step``); plus ``steps`` and ``balance_hold_iters``, the
    mean iterations a prompt was held by the attention-DP balancer (0 without one).

    Closed loop only: ``spread_s`` > 0 spreads the first ``concurrency`` arrivals evenly
    over that time instead of starting them all at t=0; ``jitter_s`` > 0 sends each
    replacement an exponentially distributed time (that mean) after the request it
    replaces finishes, instead of at once (a client's and the server's time between two
    requests: HTTP, tokenization), so that requests which shared a step do not stay in
    step (the ``wave_sync`` 0 idealization of planner.cost.waves.smeared_waves).
    ``range_ratio`` < 1 draws each request's output length uniformly from the whole
    numbers in ``[int(r G), G]`` (at least 1), as InferenceMAX's benchmark client does
    (planner.harness.HARNESS_RANGE_RATIO; prompts keep ``prompt_len``: the spread of
    the outputs is what moves requests out of step, planner.cost.waves.in_step_share).
    ``attn_dp`` > 1 ranks with ``balance_iters`` > 0: TensorRT-LLM's attention-DP balancer
    (planner.cost.simulate_balance): each request is routed to a rank, and an iteration
    runs the waiting prompts only when the balancer releases them; its decode stretches
    stop where it would.

    ``width`` w > 1: each request is w sequences sharing one prompt (parallel sampling, a
    request's k samples, as vLLM runs ``n = k``: the prompt prefilled once, then w decodes
    a step, all w finishing together; vllm pull 10980): the prompt's tokens are taken once,
    the request decodes w tokens a step, and the running limit counts sequences (a request
    is admitted when its w fit beside those running; one at least when none run). Times
    are per request; the decode attention still reads each sequence's whole context."""
    P, G, N, B = int(prompt_len), int(gen_len), int(n_requests), int(token_budget)
    w = max(int(width), 1)
    limit = max(int(np.ceil(max_running)), w) if np.isfinite(max_running) else max_running  # one request at least
    arrive = np.full(N, np.inf)  # a closed loop's later requests: set when they are sent
    first = np.full(N, np.nan)
    finish = np.full(N, np.nan)
    last_step = np.full(N, np.nan)  # the step that completed each prompt (s)
    waiting: deque = deque()
    rng = np.random.default_rng(seed)
    if range_ratio < 1.0:  # per-request output lengths (rng's first draws: reproducible per seed)
        gen = rng.integers(max(int(G * range_ratio), 1), G + 1, size=N)
    else:
        gen = np.full(N, G, dtype=np.int64)
    gen_of = gen.tolist()  # per request, read per event as Python ints
    spawned = initial_arrivals(arrive, arrival, concurrency, rate, rng, spread_s)
    pending = [(float(arrive[i]), i) for i in range(spawned)]  # future arrivals, a heap (sorted: one already)
    prefill: deque = deque()      # [request, prompt tokens done]
    D = 0                         # decode steps taken so far (every decoder advances in each)
    n_dec, sum_join = 0, 0        # decoders in flight and the sum of the D at which they joined
    finish_at: dict[int, list] = {}  # decode step count -> [requests finishing then, the sum of the D they joined at]
    heap: list[int] = []
    t, done, steps = 0.0, 0, 0
    bal = AdpBalancer(attn_dp, balance_iters, N) if attn_dp > 1 and balance_iters > 0 else None
    # a shared prompt read once a step where the engine's kernel does: alone / among other requests
    shave_alone, shave_many = table.prompt_shave(P, w) if w > 1 else (0.0, 0.0)

    def finish_group(ids, when):
        nonlocal done, spawned
        finish[ids] = when
        done += len(ids)
        if bal is not None:
            bal.finished(ids)
        if jitter_s > 0.0:  # one draw per replacement, in finishing order
            for _ in ids:
                if spawned < N:  # a closed loop replaces the request (a Poisson run has spawned all)
                    arrive[spawned] = when + rng.exponential(jitter_s)
                    heapq.heappush(pending, (float(arrive[spawned]), spawned))
                    spawned += 1
            return
        k = min(len(ids), N - spawned)  # replaced at once (a Poisson run has spawned all: k = 0)
        if k > 0:
            arrive[spawned:spawned + k] = when
            when = float(when)
            for i in range(spawned, spawned + k):
                heapq.heappush(pending, (when, i))
            spawned += k

    def join(ids):
        nonlocal n_dec, sum_join
        if bal is not None:
            bal.prompts_done(ids)
            bal.joined(ids)  # a one-token request leaves at once (finish_group)
        done_now = [i for i in ids if gen_of[i] == 1]
        if done_now:
            finish_group(done_now, t)
        for i in ids:
            g = gen_of[i]
            if g == 1:
                continue
            key = D + g - 1
            group = finish_at.get(key)
            if group is None:
                group = finish_at[key] = [[], 0]
                heapq.heappush(heap, key)
            group[0].append(i)
            group[1] += D * w
            n_dec += w
            sum_join += D * w

    def advance_to(counter):
        nonlocal n_dec, sum_join
        group = finish_at.pop(counter, None)
        if group is None:
            return
        heapq.heappop(heap)
        ids, joined_sum = group
        n_dec -= len(ids) * w
        sum_join -= joined_sum
        finish_group(ids, t)

    while done < N:
        while pending and pending[0][0] <= t:
            waiting.append(heapq.heappop(pending)[1])
        if bal is None:
            while waiting and (len(prefill) + 1) * w + n_dec <= limit:
                prefill.append([waiting.popleft(), 0])
            release = True
        else:
            fetched = []
            while waiting and (len(prefill) + len(fetched) + 1) * w + n_dec <= limit:
                fetched.append(waiting.popleft())
            bal.assign(fetched)
            prefill.extend([i, 0] for i in fetched)
            release = bal.check()  # this iteration's rule
        d = n_dec if mixed else 0
        p, ctx_sum, completed = take_prefill(prefill, B - d, P, chunked, d) if release else (0, 0.0, [])
        if p:
            mean_ctx = P + 1.0 + D - sum_join / n_dec - shave_many if n_dec else 0.0
            dt = table.time(d, p, d + len(completed), mean_ctx, ctx_sum / p)
            t += dt
            steps += 1
            first[completed] = t
            last_step[completed] = dt
            if d:
                D += 1
                advance_to(D)
            join(completed)
        elif n_dec:
            k = heap[0] - D
            if bal is not None:
                k = int(min(k, bal.quiet_steps()))
            horizon = pending[0][0] - t if pending else np.inf
            shave = shave_alone if n_dec == w and not prefill else shave_many
            k, dt = table.decode_stretch(n_dec, P + 1.0 + D - sum_join / n_dec - shave, k, horizon)
            if bal is not None:
                bal.skip(k)
            t += dt
            steps += k
            D += k
            advance_to(D)
        else:
            t = max(t, pending[0][0])
    ttft = first - arrive
    tpot = (finish - first) / np.maximum(gen - 1, 1)
    return {"arrival": arrive, "first": first, "finish": finish, "ttft": ttft, "tpot": tpot,
            "e2e": finish - arrive, "prompt_step": last_step, "steps": steps,
            "balance_hold_iters": bal.held_iters / max(bal.routed, 1) if bal is not None else 0.0, "width": w}


def summarize(sim: dict, gen_len: int, slo_ttft_s: float | None = None, slo_tpot_s: float | None = None) -> dict:
    """Mean, p50, p90, p99 of TTFT, TPOT and end-to-end latency; throughput over the run
    (requests and output tokens per second, first arrival to last finish; a request of
    :func:`simulate`'s ``width`` w emits w x ``gen_len`` tokens); SLO attainment
    (share of requests within both SLOs given) and goodput (requests/s within them,
    DistServe's definition)."""
    out: dict = {}
    for key in ("ttft", "tpot", "e2e"):
        v = sim[key]
        out[key] = {"mean_s": float(np.mean(v)), "p50_s": float(np.percentile(v, 50)),
                    "p90_s": float(np.percentile(v, 90)), "p99_s": float(np.percentile(v, 99))}
    span = float(np.max(sim["finish"]) - np.min(sim["arrival"]))
    n = len(sim["finish"])
    out["throughput_req_s"] = n / span if span > 0 else float("inf")
    out["throughput_tok_s"] = out["throughput_req_s"] * gen_len * int(sim.get("width", 1))
    ok = np.ones(n, dtype=bool)
    if slo_ttft_s is not None:
        ok &= sim["ttft"] <= slo_ttft_s
    if slo_tpot_s is not None:
        ok &= sim["tpot"] <= slo_tpot_s
    out["slo_attainment"] = float(ok.mean())
    out["goodput_req_s"] = out["throughput_req_s"] * out["slo_attainment"]
    out["requests"] = n
    out["steps"] = int(sim["steps"])
    out["balance_hold_iters"] = float(sim.get("balance_hold_iters", 0.0))
    return out


def simulate_config(x, *, engine, prompt_len: int, gen_len: int, arrival: str, concurrency: int,
                    rate: float, n_requests: int, seed: int = 0, range_ratio: float = 1.0, width: int = 1) -> dict:
    """Simulate one configuration (row 0 of the engine context ``x``) under an engine
    profile (planner.engine_profiles.EngineProfile); ``range_ratio`` and ``width``:
    :func:`simulate`'s (``concurrency`` and ``rate`` count requests of ``width`` sequences)."""
    from planner.cost.serving import effective_budget

    budget = int(effective_budget(engine.token_budget, prompt_len, concurrency * width, engine.chunked_prefill,
                                  attn_dp=float(np.asarray(x.attn_dp).ravel()[0]),
                                  dp_rank_budget=float(engine.dp_rank_budget)))
    table = StepTable(x, max(budget, int(concurrency) * int(width), engine.max_running if arrival == "poisson" else 0) + 1,
                      engine.host_step_s, prompt_len)
    return simulate(table, prompt_len=prompt_len, gen_len=gen_len, token_budget=budget,
                    max_running=engine.max_running, chunked=engine.chunked_prefill, mixed=engine.mixed_batches,
                    arrival=arrival, concurrency=concurrency, rate=rate, n_requests=n_requests, seed=seed,
                    range_ratio=range_ratio, attn_dp=int(np.asarray(x.attn_dp).ravel()[0]),
                    balance_iters=int(engine.adp_balance_timeout_iters), width=width)
