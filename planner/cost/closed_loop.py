"""The closed loop at concurrency ``C`` as ``vllm bench serve --max-concurrency``,
genai-perf and AIPerf run it (how the measured data was taken): the mean-field scheduler
algebra of planner.cost.serving's ``closed`` arrival pattern, vectorized over
configurations. All requests start together and a finished request is replaced at once:
:func:`closed_loop` with the requests in step (their groups return together),
:func:`shared_prompt_step` with their arrivals spread over the steps (the two
idealizations planner.cost.waves.smeared_waves weighs), and :func:`disaggregated` with
prefill and decode on workers of their own. Step times are
:func:`planner.cost.steps.step_time`, the same function the discrete-event simulator
(planner.cost.simulate) uses; tests check the two agree.

Closed loop, mixed batches (vLLM V1, TensorRT-LLM; derivation in the README):

* first wave: ``C`` prompts arrive at t=0 and are prefilled ``room = B - C/2`` tokens per
  step (about half the wave is already decoding); request i completes its prompt in step
  ``ceil((i+1) P / room)``, so the wave's mean TTFT is ``t_mix1 * max(1, a (C+1)/2 + 1/2)``
  with ``a = P / room``;
* later waves: a request finishes ``G - 1`` steps after its prompt completed, so the
  groups that completed together in the first wave return together: ``g`` requests whose
  prompts fill one step (``g P = B - (C - g)``), ``K = C / g`` groups; each later request
  waits one step carrying its group (``max(1, 1/g)`` steps when a prompt exceeds a step);
  its ``G - 1`` decode steps include the other ``K - 1`` groups' prefill steps, so
  ``TPOT = ((K-1) t_mix + (G-K) t_dec) / (G-1)``; C is rarely a multiple of g, so the
  last group holds the remaining ``r < g`` requests and its step fewer prompts (means
  weighted by requests); when ``K > G`` prefill is the bottleneck and every step is a
  mixed one: with chunks, only the ``d = (G-1) room / P`` requests past their prompt
  decode (Little's law over a cycle of ``C P / room`` steps, ``room = B - d``), TPOT is
  that step and TTFT the cycle less the ``G - 1`` decode steps; whole prompts wait the
  ``K - G`` steps of the other groups;
* the benchmark's mean is over ``n`` requests (``REQUESTS_PER_CONCURRENCY x C``), the first
  ``C`` of which are the first wave.

Without mixed batches (SGLang's default) prefill steps carry no decodes: the decodes
wait, so each group's prefill step adds to every other request's decode time.
"""

from __future__ import annotations

import numpy as np

from planner.cost.closed_network import response_s
from planner.cost.context import Ctx
from planner.cost.passes import shared_prompt_shave
from planner.cost.running import requests_running
from planner.cost.steps import step_time

# genai-perf / AIPerf convention in NVIDIA's published benchmark scripts: request count =
# 10 x concurrency (e.g. --request-count $((concurrency*10))); the mean is over all of them
REQUESTS_PER_CONCURRENCY = 10

EXACT_TERMS = 8  # the first terms of a sum of ceilings are summed exactly, the rest in the mean


def _ceil_mean(a, C):
    """Mean over i = 1..C of ceil(i a): the first EXACT_TERMS terms exactly, the rest as
    i a + 1/2 (their fractional parts spread evenly)."""
    total = np.zeros(np.broadcast(a, C).shape)
    for i in range(1, EXACT_TERMS + 1):
        total = total + np.where(C >= i, np.ceil(i * a - 1e-9), 0.0)
    lo = EXACT_TERMS + 1.0
    n = np.maximum(C - EXACT_TERMS, 0.0)
    total = total + a * n * (lo + C) * 0.5 + 0.5 * n
    return total / C


def closed_loop(x: Ctx, C, P, G, budget, mixed, host_s, max_running=np.inf,
                n_requests=None, chunked=True, width=1.0) -> dict:
    """Mean TTFT, TPOT and end-to-end latency (s) of a closed loop at concurrency ``C``
    with fixed prompt ``P`` and output ``G`` tokens (arrays over configurations).

    ``width`` w: each request is w sequences sharing its prompt (a request's samples with
    a shared prefill, planner.cost.simulate.simulate's ``width``): a prompt of ``P`` tokens
    a request, ``w`` decodes a step a request; ``max_running`` counts sequences, so
    ``max_running / w`` requests run at once; a group of ``g`` returning prompts fills a
    step beside the others' decodes, ``g P + (C - g) w = B``. ``throughput_req_s`` counts
    requests. w = 1 is the model above."""
    w = np.maximum(np.asarray(width, dtype=float), 1.0)
    C_all = np.maximum(np.asarray(C, dtype=float), 1.0)
    C = np.minimum(C_all, requests_running(max_running, w))
    P = np.asarray(P, dtype=float)
    G = np.maximum(np.asarray(G, dtype=float), 1.0)
    B = np.asarray(budget, dtype=float)
    mixed = np.asarray(mixed, dtype=bool)
    chunked = np.asarray(chunked, dtype=bool)
    N = C_all * REQUESTS_PER_CONCURRENCY if n_requests is None else np.asarray(n_requests, dtype=float)
    # a shared prompt read once a step where the engine's kernel does (planner.cost.passes.shared_prompt_shave)
    shave = shared_prompt_shave(x, P, w, C)
    dec_ctx = P + 1.0 + 0.5 * (G - 1.0) - shave
    Gm1 = np.maximum(G - 1.0, 1.0)

    def T(d, p, logits, ctx):
        return step_time(x, d, p, logits, ctx, 0.5 * (P + 1.0), host_s)

    # first wave: C prompts at t=0, prefilled `room` tokens per step (whole prompts only
    # without chunking); without mixed batches every wave is the first wave
    d1 = np.where(mixed, 0.5 * C * w, 0.0)
    room1 = np.maximum(B - d1, 1.0)
    per_step1 = np.where(chunked, room1, np.maximum(np.floor(room1 / P), 1.0) * P)
    p1 = np.minimum(per_step1, C * P)
    k1 = np.ceil(C * P / per_step1 - 1e-9)  # prefill steps of the wave
    t1 = T(d1, p1, d1 + p1 / P, P + 1.0 + 0.5 * k1 - shave)
    steps1 = _ceil_mean(P / per_step1, C)
    ttft1 = t1 * steps1
    t_dec = T(C * w, 0.0, C * w, dec_ctx)
    # non-mixed: the decodes wait for the whole wave's prefill (its last step partial)
    rem1 = C * P - (k1 - 1.0) * per_step1
    wave_pf = (k1 - 1.0) * t1 + T(d1, rem1, d1 + rem1 / P, P + 1.0 + 0.5 * k1)
    tpot_sync = (wave_pf - ttft1 + (G - 1.0) * t_dec) / Gm1
    # later waves (mixed): groups of g requests return together and fill one step
    g = np.where(chunked, (B - C * w) / np.maximum(P - w, 1.0), np.floor(room1 / P))
    g = np.clip(g, 1e-9, C)
    K = C / g
    d_mix = (C - np.maximum(g, 1.0)) * w
    room2 = np.maximum(B - d_mix, 1.0)
    p_mix = np.minimum(np.maximum(g, 1.0) * P, room2)
    t_mix = T(d_mix, p_mix, d_mix + p_mix / P, dec_ctx)
    # a prompt longer than a step: full steps, then the remainder
    n_full = np.ceil(P / room2 - 1e-9) - 1.0
    t_rem = T(d_mix, P - n_full * room2, d_mix + 1.0, dec_ctx)
    # C is rarely a multiple of g: floor(K) full groups and a last one of r < g requests,
    # whose step carries fewer prompts (request-weighted means below)
    whole = g >= 1.0
    Kf = np.where(whole, np.floor(K + 1e-9), K)
    r = np.where(whole, np.maximum(C - Kf * g, 0.0), 0.0)
    d_r = (C - r) * w
    p_r = np.minimum(np.maximum(r, 1.0) * P, np.maximum(B - d_r, 1.0))
    t_r = T(d_r, p_r, d_r + p_r / P, dec_ctx)
    has_r = r > 1e-9
    alone = np.where(whole, (Kf * g * t_mix + r * t_r) / C, n_full * t_mix + t_rem)  # starts at a step boundary
    # when prefill is busy (u = share of steps carrying prefill near 1) prompts queue back
    # to back across step boundaries: a prompt touches P/room + 1 steps on average
    u = np.clip(K / Gm1, 0.0, 1.0)
    steps_pf = u * (P / room2 + 1.0) * t_mix + (1.0 - u) * alone
    # a request's G - 1 decode steps include the other groups' prefill steps; a prompt
    # longer than a step (g < 1) spans 1/g steps of its own, all before its first token,
    # so the others' are K - 1/g = (C - 1)/g (none at C = 1), not K - 1
    own = np.where(whole, 1.0, 1.0 / g)
    n_oth = np.where(whole, (Kf * g * (Kf - 1.0 + has_r) + r * Kf) / C, K - own)
    t_oth = np.where(whole, (Kf * g * ((Kf - 1.0) * t_mix + has_r * t_r) + r * Kf * t_mix) / C, (K - own) * t_mix)
    others = np.minimum(K - own, G - 1.0)
    tpot_mix = np.where(K <= G, (t_oth + (G - 1.0 - n_oth) * t_dec) / Gm1,
                        (others * t_mix + (G - 1.0 - others) * t_dec) / Gm1)
    bound = np.maximum(K - G, 0.0) * t_mix  # prefill-bound: the wait for the other groups
    ttft2 = np.where(mixed, steps_pf + bound, ttft1)
    # prefill-bound with chunks (K > G): every step is mixed, and only the requests past
    # their prompt decode: (G - 1) room / P of them (Little's law over a cycle of
    # C P / room steps), w sequences each, room = B - d, so room = B / (1 + w (G - 1) / P);
    # a request waits the cycle less its G - 1 decode steps
    pb = mixed & chunked & (K > G)
    if np.any(pb):
        room_pb = B / (1.0 + w * (G - 1.0) / P)
        d_pb = B - room_pb
        t_pb = T(d_pb, room_pb, d_pb + room_pb / P, dec_ctx)
        K_pb = np.maximum(C * P / room_pb, G)
        ttft2 = np.where(pb, (K_pb - G + 1.0) * t_pb, ttft2)
        tpot_mix = np.where(pb, t_pb, tpot_mix)
    tpot = np.where(G > 1.0, np.where(mixed, tpot_mix, tpot_sync), 0.0)
    first = C / np.maximum(N, C)  # the first wave's share of the benchmark's requests
    ttft = first * ttft1 + (1.0 - first) * ttft2
    e2e = ttft + (G - 1.0) * tpot
    # requests beyond the running limit wait for a slot (Little's law)
    wait = (C_all - C) * e2e / C
    ttft = ttft + wait
    # the steps a wave's prompts span: its groups (mixed) or its prefill steps (apart)
    wave_steps = np.where(mixed, np.maximum(K, 1.0), np.maximum(k1, 1.0))
    return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": e2e + wait, "throughput_req_s": C / e2e,
            "ttft_first_wave_s": ttft1, "ttft_steady_s": ttft2, "first_share": first, "wait_s": wait,
            "wave_steps": wave_steps}


SHARED_ROUNDS = 3  # rounds of the fixed point between the shared step and the steps' size bias


def shared_prompt_step(x: Ctx, C, P, G, budget, mixed, host_s, chunked=True, interval=1.0, width=1.0):
    """The step that carries a request's prompt when the closed loop's requests are NOT in
    step (their first tokens spread over the steps, ``wave_sync`` 0), and the step a lone
    prompt would take; returns the (shared, lone) step times (s) and ``g``, the prompts the
    shared step would take (it takes fewer where they do not fit in the budget).

    In a closed loop of ``C`` requests with ``G`` output tokens, a request's cycle is its
    prefill step and its ``G - 1`` decode steps (``n = G`` steps with mixed batches; ``n =
    G - 1 + C/g`` without, where the ``C/g`` prompt steps run apart), so the other ``C - 1``
    requests' prompts arrive at ``(C - 1) / n`` per step on average (Little's law). The step
    that takes a request's prompt takes, beside it, the prompts that arrived during the step
    in progress when it came: a step picked by an arrival is picked in proportion to its
    length, so the others number ``(C - 1) / n x E[T^2] / E[T]^2`` over the steps' time
    distribution (a share ``q = C / (g n)`` of the steps carries ``g`` prompts, the rest
    decode only), ``g = 1 + others`` (a fixed point, ``SHARED_ROUNDS`` rounds; ``g = 1`` at
    ``C = 1``). That step carries ``g`` prompts beside the ``C - g`` decodes of the requests
    past their prompts (none without mixed batches: the prefill step runs alone), within
    the token budget (``B - decodes`` prompt tokens; whole prompts only without chunked
    prefill; at least the request's own prompt, which the steady state charges in one
    step). The lone step is the one prompt beside ``C - 1`` decodes that the steady state's
    TTFT charges, so ``shared - lone`` is the term planner.cost.waves.smeared_waves adds. An
    idealization without queueing: where the prompt steps fill much of the time, prompts
    that wait for a step gather more others (the closed loop's groups, ``wave_sync`` 1).
    A scheduler that polls for requests every ``interval`` decode steps (N;
    planner.cost.waves.recv_wait_steps) takes the prompts of a whole window of N steps at
    once: the others number N times as many. ``width`` w: ``C`` requests of w sequences
    sharing a prompt (:func:`closed_loop`'s): w decodes a request past its prompt.
    Checked against the discrete-event simulator with spread, jittered arrivals
    (:func:`planner.cost.simulate.simulate`, ``spread_s`` and ``jitter_s``:
    ``tests/test_shared_prompt_step.py``)."""
    C = np.maximum(np.asarray(C, dtype=float), 1.0)
    P = np.maximum(np.asarray(P, dtype=float), 1.0)
    G = np.maximum(np.asarray(G, dtype=float), 1.0)
    B = np.asarray(budget, dtype=float)
    mixed = np.asarray(mixed, dtype=bool)
    chunked = np.asarray(chunked, dtype=bool)
    N = np.maximum(np.asarray(interval, dtype=float), 1.0)
    w = np.maximum(np.asarray(width, dtype=float), 1.0)
    # the prompts a poll takes: the request's own and the others' of the window, at most all C
    gather = lambda n, b: np.where(N > 1.0, np.minimum(1.0 + (C - 1.0) / n * b * N, C),  # noqa: E731
                                   1.0 + (C - 1.0) / n * b)
    dec_ctx = P + 1.0 + 0.5 * (G - 1.0) - shared_prompt_shave(x, P, w, C)
    pre_ctx = 0.5 * (P + 1.0)
    t_dec = step_time(x, C * w, 0.0, C * w, dec_ctx, 0.0, host_s)
    bias = np.ones_like(C * P)
    for _ in range(SHARED_ROUNDS):
        n_cyc = np.where(mixed, G, np.maximum(G - 1.0, 1.0))  # a first guess of the steps per cycle
        g = gather(n_cyc, bias)
        k = C / g  # prompt-carrying steps per cycle
        n_cyc = np.where(mixed, np.maximum(G, k), G - 1.0 + k)
        g = gather(n_cyc, bias)
        d = np.where(mixed, np.maximum(C - g, 0.0) * w, 0.0)
        room = np.maximum(B - d, 1.0)
        cap = np.where(chunked, room, np.floor(room / P) * P)
        p = np.minimum(g * P, np.maximum(cap, P))
        shared = step_time(x, d, p, d + p / P, dec_ctx, pre_ctx, host_s)
        q = np.clip(C / g / n_cyc, 0.0, 1.0)  # share of the steps that carry prompts
        mean = (1.0 - q) * t_dec + q * shared
        bias = ((1.0 - q) * t_dec * t_dec + q * shared * shared) / (mean * mean)
    d1 = np.where(mixed, (C - 1.0) * w, 0.0)
    lone = step_time(x, d1, P, d1 + 1.0, dec_ctx, pre_ctx, host_s)
    return shared, lone, g


def disaggregated(x_pre: Ctx, x_dec: Ctx, C, P, G, budget, host_s, prefill_workers, decode_workers,
                  transfer_s, n_requests=None) -> dict:
    """Disaggregated prefill / decode in a closed loop at concurrency ``C``: ``X`` prefill
    workers (context ``x_pre``) run prefill-only steps, ``Y`` decode workers (``x_dec``)
    run decode-only steps, the KV cache crosses in ``transfer_s``.

    Prefill side, per worker ``C/X`` prompts a wave: the first wave waits behind earlier
    prompts as in :func:`closed_loop` (``ceil((i+1) P / B)`` steps); later requests
    return in the groups that completed together, ``g = min(B/P, C/X)`` prompts a step,
    wait one step (``ceil(P/B)`` when a prompt exceeds a step) plus their queue at the
    worker, a closed loop of ``C/X`` clients (:func:`planner.cost.closed_network.response_s`:
    no wait at one client, Little's law when the worker's prefill work per cycle exceeds
    the cycle, the mean-value-analysis queue between). Decode side: pure
    decode steps of ``C/Y`` sequences, no prefill interference: TPOT = that step."""
    C = np.maximum(np.asarray(C, dtype=float), 1.0)
    P = np.asarray(P, dtype=float)
    G = np.maximum(np.asarray(G, dtype=float), 1.0)
    B = np.asarray(budget, dtype=float)
    X, Y = np.asarray(prefill_workers, dtype=float), np.asarray(decode_workers, dtype=float)
    N = C * REQUESTS_PER_CONCURRENCY if n_requests is None else np.asarray(n_requests, dtype=float)
    Cp, Cd = C / X, C / Y
    pre_ctx = 0.5 * (P + 1.0)

    def T_pre(p):
        return step_time(x_pre, 0.0, p, np.maximum(p / P, 1.0), 0.0, pre_ctx, host_s)

    t_full = T_pre(np.minimum(B, Cp * P))
    ttft1 = t_full * _ceil_mean(P / B, Cp)
    g = np.minimum(B / P, Cp)
    n_full = np.ceil(P / B - 1e-9) - 1.0
    ttft2 = np.where(g >= 1.0, T_pre(np.floor(g) * P), n_full * T_pre(B) + T_pre(P - n_full * B))
    tpot = step_time(x_dec, Cd, 0.0, Cd, P + 1.0 + 0.5 * (G - 1.0), 0.0, host_s)
    busy = np.ceil(Cp * P / B - 1e-9) * T_pre(np.minimum(B, Cp * P))  # a worker's prefill per cycle
    # later prompts queue at their prefill worker: a closed loop of C/X clients, service
    # busy/(C/X) per prompt ahead, the rest of the cycle (transfer, decode) a delay
    # (planner.cost.closed_network: approximate mean-value analysis; saturated, Little's law)
    ttft2 = response_s(ttft2, busy / Cp, transfer_s + (G - 1.0) * tpot, Cp)
    ttft = (C * ttft1 + np.maximum(N - C, 0.0) * ttft2) / np.maximum(N, C) + transfer_s
    e2e = ttft + (G - 1.0) * tpot
    return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": e2e, "throughput_req_s": C / e2e}
