"""The open loop: Poisson arrivals at a request rate, the mean-field model of a
continuous-batching engine under them (``planner estimate --rate``, the capacity
report's sizing through planner.replica_rate). The closed loop and the steady state are
in planner.cost.serving; the discrete-event simulators (planner.cost.simulate, and
planner.cost.simulate_pipeline with pipeline stages) are the reference the tests check
this against."""

from __future__ import annotations

import numpy as np

from planner.cost.context import Ctx
from planner.cost.passes import shared_prompt_shave
from planner.cost.steps import step_time

# The fixed point (tau, t_c) is solved to this relative change per evaluation of the map
# (Steffensen: two evaluations, then Aitken's extrapolation, per round; planner's earlier
# plain iteration took 40 evaluations and left the slow rows short of the point).
FIXED_POINT_RTOL = 1e-9
FIXED_POINT_ROUNDS = 12  # rounds of two evaluations at most (a row still moving then is left as it is)
# Aitken's step is at most (r / (1 - r)) times the last step, r the ratio of the last two
# steps; a ratio above this is treated as not contracting (a plain step instead)
AITKEN_MAX_RATIO = 0.99


def pipeline_steps(x: Ctx, P, ctx, host_s, pp=1.0, send_lat_s=0.0, send_s_per_token=0.0):
    """The two kinds of step of the open loop with ``pp`` pipeline stages (pp = 1: one
    engine): ``carry(d, k)`` (``d`` decodes in flight, ``k`` new prompts on the slowest
    group) and ``dec(d)``. The running set is split into ``pp`` groups, one microbatch
    each in the pipeline (planner.cost.simulate_pipeline states the rule): a group's step
    crosses every stage, ``pp`` stage times of 1/pp of the whole-model step of its batch
    each (the same step times as planner.cost.layout's pipeline and ``estimate --pp``),
    plus ``pp - 1`` sends of its tokens' hidden states; a round of the pp groups lasts as
    long as its slowest group (:func:`prompts_on_slowest_group`), beside its ``d / pp``
    decodes."""
    pp = np.asarray(pp, dtype=float)
    hops = pp - 1.0

    def sends(tokens):  # none with one stage (whatever the link, even none: an infinite send)
        with np.errstate(invalid="ignore"):
            return np.where(hops > 0.0, hops * (send_lat_s + tokens * send_s_per_token), 0.0)

    def carry(d, k):
        dg = d / pp
        return step_time(x, dg, k * P, dg + k, ctx, 0.5 * (P + 1.0), host_s) + sends(dg + k * P)

    def dec(d):
        dg = d / pp
        return step_time(x, dg, 0.0, np.maximum(dg, 1.0), ctx, 0.0, host_s) + sends(dg)

    return carry, dec


POISSON_EXACT_MEAN = 20.0  # below: the expected maximum summed exactly; above: the normal approximation
_POISSON_TERMS = 96  # P(N > 95) for a mean of 20 is below 1e-30


def poisson_cdf_table(mu, terms: int):
    """``P(Pois(mu) <= k)`` for ``k = 0..terms - 1`` on a new last axis (``mu`` > 0, arrays):
    the log pmf ``-mu + k log mu - log k!`` summed term by term, capped at 1. The one Poisson
    CDF of the cost engine (:func:`expected_max_poisson`, planner.cost.adp_balance)."""
    from math import lgamma

    m = np.asarray(mu, dtype=float)[..., None]
    k = np.arange(terms, dtype=float)
    logpmf = -m + k * np.log(m) - np.array([lgamma(v + 1.0) for v in k])
    return np.minimum(np.cumsum(np.exp(logpmf), axis=-1), 1.0)


def expected_max_poisson(mu, n, own=False):
    """E[max of ``n`` independent Poisson(``mu``)] (arrays): ``sum_k (1 - F(k)^n)``, exact
    for ``mu <= POISSON_EXACT_MEAN``, else ``mu + sqrt(mu) e_n`` with ``e_n`` the expected
    maximum of n standard normals (Blom's ``Phi^-1((n - 0.375) / (n + 0.25))``). ``own``:
    one of the n holds one more (a request's own group), ``sum_k (1 - F(k-1) F(k)^(n-1))``
    (1 + the above, an upper bound, in the normal range)."""
    from statistics import NormalDist

    mu, n = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(n, dtype=float))
    out = np.array(mu, dtype=float, copy=True) + (1.0 if own else 0.0)
    many = n > 1.0
    small = many & (mu <= POISSON_EXACT_MEAN) & (mu > 0.0)
    if small.any():
        nn = n[small][:, None]
        cdf = poisson_cdf_table(mu[small], _POISSON_TERMS)
        if own:
            before = np.concatenate([np.zeros_like(cdf[:, :1]), cdf[:, :-1]], axis=1)
            out[small] = np.sum(1.0 - before * cdf ** (nn - 1.0), axis=1)
        else:
            out[small] = np.sum(1.0 - cdf ** nn, axis=1)
    big = many & (mu > POISSON_EXACT_MEAN) & np.isfinite(mu)
    if big.any():
        vals, inv = np.unique(n[big], return_inverse=True)
        e = np.array([NormalDist().inv_cdf((v - 0.375) / (v + 0.25)) for v in vals])[inv]
        out[big] = mu[big] + np.sqrt(mu[big]) * e + (1.0 if own else 0.0)
    return out


def prompts_on_slowest_group(z, pp):
    """The new prompts on the slowest group of a round that carries any, when ``z`` arrive
    on average during the round before (Poisson) and go ``pp`` ways: each group takes the
    arrivals of its turn, 1/pp of the round (its share Poisson(z/pp), independent), and the
    round waits for the group with the most, ``E[max] / P(any arrived)``; pp = 1: the
    step's mean ``z / (1 - exp(-z))``."""
    z = np.asarray(z, dtype=float)
    pp = np.asarray(pp, dtype=float)
    with np.errstate(all="ignore"):
        return np.maximum(expected_max_poisson(z / pp, pp) / _any(z), 1.0)


def _any(z):
    """P(N >= 1) for N ~ Poisson(z), never 0 (its limit z for tiny z is used as z / z = 1)."""
    return np.where(z > 1e-8, -np.expm1(-np.where(z > 1e-8, z, 1.0)), np.maximum(z, 1e-300))


def prompts_per_carrying_step(z):
    """Mean prompts on a step that carries any, when ``z`` arrive on average during the
    step before (Poisson): ``E[N | N >= 1] = z / (1 - exp(-z))`` (1 as z -> 0, z when large)."""
    z = np.asarray(z, dtype=float)
    with np.errstate(all="ignore"):
        return np.where(z > 1e-8, z / -np.expm1(-np.where(z > 1e-8, z, 1.0)), 1.0 + 0.5 * z)


def over_budget(z, P, d, k, pp, budget):
    """Work in flight beyond what the steps hold. Where a whole prompt fits beside a group's
    decodes, a carrying step must take its ``k`` prompts (the model's carrying step): ``k P
    + d / pp`` over the ``budget``. Where it does not (a prompt longer than the room, which
    only chunked prefill runs), every prompt is chunked over the steps anyway, and the
    steps keep up while the prompt tokens arriving per step and the decodes fit:
    ``(z P + d) / pp`` over the budget (``z`` prompts a step; checked against the
    simulator with prompts longer than the budget, tests/test_engine_device_tiers.py)."""
    fits = P + d / pp <= budget
    return np.where(fits, k * P + d / pp > budget, (z * P + d) / pp > budget)


def solve_fixed_point(x: Ctx, lam, P, G, ctx, host_s, budget, running, pp=1.0, send_lat_s=0.0,
                      send_s_per_token=0.0, width=1.0):
    """The open loop's fixed point ``(tau, t_c)`` on every row (see :func:`poisson`): the
    map ``F`` (decodes in flight ``d = lam (G-1) tau`` by Little's law, ``m`` prompts per
    carrying step and ``k`` on its slowest group from ``z = lam tau`` arrivals a step,
    ``t_c = carry(d, k)``, ``tau = 1 / (lam/m + (1 - lam t_c / m) / dec(d))``) is monotone:
    a longer step holds more decodes and prompts, which lengthen the step. From the lone
    request's steps (below the point) plain iteration climbs to
    the least fixed point, linearly; Steffensen's method (two evaluations of ``F``, then
    Aitken's delta-squared extrapolation of each component where the two steps contract,
    ``x2 - (x2 - x1)^2 / ((x2 - x1) - (x1 - x0))``) converges quadratically near it.
    Where more arrivals a step pack more prompts into each carrying step (``m``), ``F``
    can fall as ``tau`` grows and the iterates alternate around the point: the
    extrapolation takes a ratio of successive steps of either sign, ``|r| <
    AITKEN_MAX_RATIO`` (with positive ratios only, such a row was still 1e-5 away after
    FIXED_POINT_ROUNDS, tests/test_report_speed.py). A
    row stops when an evaluation moves it by at most FIXED_POINT_RTOL (relative), when
    its step is infinite, or, on the way up (iterates below the point), when its work in
    flight passes what the steps hold (the slowest group's prompts and decodes over the
    token ``budget``, or ``d + m`` over the ``running`` limit): it is above capacity, and
    :func:`poisson`'s checks say so. ``width`` w: w decodes a request (:func:`poisson`). Rows are
    compacted as they stop (planner.cost.row_subset: the same numbers as the full
    context). Returns ``(tau, t_c)``."""
    from planner.cost.row_subset import n_rows, take_rows

    carry0, dec0 = pipeline_steps(x, P, ctx, host_s, pp, send_lat_s, send_s_per_token)
    tau = dec0(0.0) * np.ones_like(lam)
    t_c = carry0(0.0, 1.0) * np.ones_like(lam)
    n = np.size(tau)
    subset = x.xp.name == "vector" and np.ndim(tau) == 1 and n_rows(x) == n
    names = ("lam", "P", "G", "ctx", "host", "pp", "lat", "spt", "budget", "running", "w")
    vals = (lam, P, G, ctx, host_s, pp, send_lat_s, send_s_per_token, budget, running, width)
    if not subset:
        c = dict(zip(names, vals))
        return _rounds(x, c, tau, t_c, None)
    cols = {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for k, v in zip(names, vals)}
    tau, t_c = np.array(tau, dtype=float), np.array(t_c, dtype=float)
    return _rounds(x, cols, tau, t_c, take_rows)


def _rounds(x, c, tau, t_c, take_rows):
    """Steffensen rounds on the active rows; ``take_rows`` None: every row throughout."""
    idx = np.arange(np.size(tau)) if take_rows else None
    xa, ca = x, c
    s0 = (tau, t_c)

    def F(xa, ca, s):
        carry, dec = pipeline_steps(xa, ca["P"], ca["ctx"], ca["host"], ca["pp"], ca["lat"], ca["spt"])
        lam = ca["lam"]
        d = lam * (ca["G"] - 1.0) * s[0] * ca["w"]
        m = prompts_per_carrying_step(lam * s[0])
        t_c_new = carry(d, prompts_on_slowest_group(lam * s[0], ca["pp"]))
        busy = lam * t_c_new / m
        with np.errstate(all="ignore"):
            tau_new = np.where(busy < 1.0, 1.0 / (lam / m + np.maximum(1.0 - busy, 0.0) / dec(d)), t_c_new)
        return np.where(np.isfinite(tau_new), tau_new, np.inf), t_c_new

    def close(a, b):
        with np.errstate(all="ignore"):
            return (np.abs(a[0] - b[0]) <= FIXED_POINT_RTOL * np.abs(b[0])) & (
                np.abs(a[1] - b[1]) <= FIXED_POINT_RTOL * np.abs(b[1]))

    for _ in range(FIXED_POINT_ROUNDS):
        s1 = F(xa, ca, s0)
        s2 = F(xa, ca, s1)
        with np.errstate(all="ignore"):
            stop = close(s1, s0) | close(s2, s1) | ~np.isfinite(s2[0])
            # on the way up (a lower bound of the point), work in flight beyond what the
            # steps hold: :func:`poisson`'s budget and running-limit checks
            z = ca["lam"] * s2[0]
            d = z * (ca["G"] - 1.0) * ca["w"]
            over = (over_budget(z, ca["P"], d, prompts_on_slowest_group(z, ca["pp"]), ca["pp"], ca["budget"])
                    | (d + prompts_per_carrying_step(z) * ca["w"] > ca["running"]))
            stop |= over & (s2[0] >= s1[0])
            nxt = []
            for a0, a1, a2 in zip(s0, s1, s2):
                d1, d2 = a1 - a0, a2 - a1
                r = np.where(d1 != 0.0, d2 / np.where(d1 != 0.0, d1, 1.0), 0.0)
                ok = (r != 0.0) & (np.abs(r) < AITKEN_MAX_RATIO) & np.isfinite(a2)
                nxt.append(np.where(ok, a2 + d2 * r / np.where(ok, 1.0 - r, 1.0), a2))
        if take_rows is None:
            s0 = tuple(np.where(stop, a, b) for a, b in zip(s2, nxt))
            if np.all(stop):
                break
            continue
        tau[idx], t_c[idx] = (np.where(stop, a, b) for a, b in zip(s2, nxt))
        if stop.all():
            break
        keep = np.flatnonzero(~stop)
        idx = idx[keep]
        xa = take_rows(x, idx)
        ca = {k: v[idx] for k, v in c.items()}
        s0 = (nxt[0][keep], nxt[1][keep])
    return (tau, t_c) if take_rows else s0


def poisson(x: Ctx, rate, P, G, budget, host_s, max_running=np.inf, pp=1, send_lat_s=0.0,
            send_s_per_token=0.0, width=1.0) -> dict:
    """Mean-field open loop: Poisson arrivals at ``rate`` requests/s (arrays over rows).

    Steps are of two kinds: ``carrying`` steps, with ``m`` new prompts (``m = max(1,
    rate t_c)``) besides the decodes, taking ``t_c``, and decode-only steps taking
    ``t_d``. Prompts arrive at ``rate``, so ``rate / m`` carrying steps run per second,
    busy for a share ``rho = rate t_c / m`` of the time; the mean step is
    ``tau = 1 / (rate/m + (1 - rho)/t_d)`` and ``d = rate (G-1) tau`` decodes are in flight
    (Little's law): a fixed point (:func:`solve_fixed_point`). TPOT is the mean step a
    request decodes in: Poisson arrivals see the time average (PASTA), so beside the ``d``
    others it finds its own sequences, ``tau x t_d(d + w pp) / t_d(d)`` (w = 1: one; the
    mean step alone came out 0.7% short of the simulator at 1 to 10 requests/s, 3-6% with 4-8
    samples a request). TTFT = the rest of the step
    the request arrives in, then the carrying step that takes its prompt (every prompt
    waiting at a step's start rides on it, up to the budget: no queue beyond the step):
    an arrival lands in a step with probability proportional to its length, so the rest
    is half the length-biased step ``rho t_c + (1 - rho) t_d``, and none when the engine
    is idle (no request in flight, probability ``exp(-(d + rate own))``, Poisson numbers
    in flight); a prompt longer than the room beside the decodes takes ``P / (B - d)``
    carrying steps. Requests beyond the running limit wait for a slot (M/G/c, :func:`planner.cost.running
    .slot_wait`): its mean wait is added to TTFT. Above capacity (no fixed point, the step
    budget or the running limit exceeded) the queue grows without bound: ``unbounded`` is True and the latencies are +inf, never a
    number.

    With ``pp`` pipeline stages (:func:`pipeline_steps`) a "step" is a round of the pp
    groups: every request advances one token a round, the token ``budget`` holds per
    group, ``max_running`` in all; one stage-to-stage send of ``n`` tokens takes
    ``send_lat_s + n send_s_per_token``.

    ``width`` w: each request is w sequences sharing its prompt (planner.cost.simulate
    .simulate's ``width``): one prompt of ``P`` tokens a request, ``d = rate (G-1) tau w``
    decodes in flight, ``max_running`` counting sequences (``max_running / w`` requests
    hold slots); ``throughput_req_s`` counts requests, ``decoding`` sequences."""
    from planner.cost.running import requests_running, slot_wait

    lam = np.asarray(rate, dtype=float)
    P = np.asarray(P, dtype=float)
    G = np.maximum(np.asarray(G, dtype=float), 1.0)
    B = np.asarray(budget, dtype=float)
    pp_f = np.asarray(pp, dtype=float)
    w = np.maximum(np.asarray(width, dtype=float), 1.0)
    # a shared prompt read once a step where the engine's kernel does for requests among others
    # (planner.cost.passes.shared_prompt_shave at two requests: a cascade that needs one alone, vLLM's, is off)
    ctx = P + 1.0 + 0.5 * (G - 1.0) - shared_prompt_shave(x, P, w, 2.0)
    carry, dec = pipeline_steps(x, P, ctx, host_s, pp_f, send_lat_s, send_s_per_token)
    t_d0 = dec(0.0) * np.ones_like(lam)
    tau, t_c = solve_fixed_point(x, lam, P, G, ctx, host_s, B, max_running, pp_f, send_lat_s, send_s_per_token, w)
    d = lam * (G - 1.0) * tau * w
    m = prompts_per_carrying_step(lam * tau)
    k = prompts_on_slowest_group(lam * tau, pp_f)
    t_carry, t_dec = carry(d, k), dec(d)
    busy = lam * t_carry / m
    rho = lam * t_c / m
    # per group: its share of the decodes and the new prompts of a carrying round (pp = 1: the engine's)
    unbounded = (~np.isfinite(tau) | (busy >= 1.0) | (np.abs(busy - rho) > 1e-3)
                 | over_budget(lam * tau, P, d, k, pp_f, B) | (d + m * w > max_running))
    with np.errstate(all="ignore"):
        # the step an arrival lands in (length-biased), then its own carrying step: itself and
        # the others that arrived in the same step (Poisson, size-biased: 1 + rate x that step
        # on its group; the round waits for the group with the most), at most the room beside
        # the decodes; prompts beyond the room are chunked over the next steps, FIFO: it waits
        # for the half of its group's others that came before it
        step_in = np.where(busy < 1.0, busy * t_carry + (1.0 - busy) * t_dec, t_carry)
        k_own = expected_max_poisson(lam * step_in / pp_f, pp_f, own=True)
        room = np.maximum(B - d / pp_f, 1.0)
        ahead = 0.5 * (np.minimum(1.0 + lam * step_in / pp_f, k_own) - 1.0)  # FIFO: half its group's others
        own = np.maximum(1.0, (1.0 + ahead) * P / room) * carry(d, np.minimum(k_own, room / P))
        engaged = -np.expm1(-np.maximum(d / w + lam * own, 0.0))  # P(some request in flight)
        landed = engaged * step_in
    wait = np.where(np.isfinite(landed), 0.5 * landed, np.inf)  # the rest of the step it lands in
    # the wait for a running slot (planner.cost.running.slot_wait, M/G/c): a request holds
    # one from admission (its prefill-lane wait) to its last token, at the step of a full
    # running set (requests wait only when it is full; a cap far above the mean set, more
    # than 8 Poisson deviations, is never reached: the step there is that of the deviation)
    n_req = d / w + m  # requests holding slots
    reach = w * (n_req + 8.0 * np.sqrt(np.maximum(n_req, 0.0)) + 8.0)
    n_full = np.minimum(np.asarray(max_running, dtype=float), np.where(np.isfinite(reach), reach, 0.0))
    t_full = dec(np.maximum(n_full, np.where(np.isfinite(d), d, 0.0)))
    with np.errstate(all="ignore"):
        tau_full = tau * np.where(t_dec > 0, t_full / t_dec, 1.0)
    p_slot, slot_tail = slot_wait(lam, wait + own + (G - 1.0) * tau_full, requests_running(max_running, w))
    unbounded = unbounded | ~np.isfinite(slot_tail)
    slot = np.where(p_slot > 0.0, p_slot * slot_tail, 0.0)
    inf = np.full_like(tau, np.inf)
    finite = np.isfinite(d)
    d_fin = np.where(finite, d, 0.0)
    dn = np.maximum(1.0, np.sqrt(d_fin))  # one Poisson standard deviation of the batch
    ttft = np.where(unbounded, inf, wait + own + slot)
    # a request's TPOT is the step it decodes in: beside the d others its group's share of
    # (Poisson arrivals see time averages), its own w sequences; so its group holds d / pp + w
    with np.errstate(all="ignore"):
        seen = tau * np.where(t_dec > 0, dec(d_fin + w * pp_f) / t_dec, 1.0)
    tpot = np.where(unbounded, inf, seen)
    return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": ttft + (G - 1.0) * tpot,
            "throughput_req_s": np.where(unbounded, np.nan, lam), "unbounded": unbounded,
            # for percentiles (planner.replica_rate): the mean step, the carrying steps' share of
            # the time, the step an arrival lands in (length-biased, 0 when idle) and the mean
            # rest of it, the request's own prefill, the two kinds of step and how many carrying
            # steps a second
            "step_s": tau, "rho": rho, "landed_step_s": np.where(unbounded, inf, landed),
            "wait_s": np.where(unbounded, inf, wait), "own_s": np.where(unbounded, inf, own),
            # the slot queue: the probability of waiting for a running slot and the mean wait of those who do
            "slot_wait_p": np.where(unbounded, 1.0, p_slot), "slot_wait_tail_s": np.where(unbounded, inf, slot_tail),
            "carry_step_s": t_carry, "decode_step_s": t_dec, "carrying_per_s": lam / m,
            # the requests decoding (Little's law) and the decode step's marginal cost per running
            # request (KV read + per-sequence work), a secant over one Poisson standard deviation
            "decoding": d, "decode_step_per_seq_s": (dec(d_fin + dn) - np.where(finite, t_dec, t_d0)) / dn}
