"""The open loop: Poisson arrivals at a request rate, the mean-field model of a
continuous-batching engine under them (``planner estimate --rate``, the capacity
report's sizing through planner.replica_rate). The closed loop and the steady state are
in planner.cost.serving; the discrete-event simulator (planner.cost.simulate) is the
reference the tests check this against."""

from __future__ import annotations

import numpy as np

from planner.cost.context import Ctx
from planner.cost.steps import step_time

FIXED_POINT_ITERATIONS = 40


def poisson(x: Ctx, rate, P, G, budget, host_s, max_running=np.inf) -> dict:
    """Mean-field open loop: Poisson arrivals at ``rate`` requests/s (arrays over rows).

    Steps are of two kinds: ``carrying`` steps, with ``m`` new prompts (``m = max(1,
    rate t_c)``) besides the decodes, taking ``t_c``, and decode-only steps taking
    ``t_d``. Prompts arrive at ``rate``, so ``rate / m`` carrying steps run per second,
    busy for a share ``rho = rate t_c / m`` of the time; the mean step is
    ``tau = 1 / (rate/m + (1 - rho)/t_d)`` and ``d = rate (G-1) tau`` decodes are in flight
    (Little's law): a fixed point, iterated. TTFT = half a step (arrival during a step) +
    the M/D/1 wait of the carrying lane ``rho / (2 (1 - rho)) t_c`` + the carrying step.
    Requests beyond the running limit wait for a slot (M/G/c, :func:`planner.cost.running
    .slot_wait`): its mean wait is added to TTFT. Above capacity (no fixed point, the step
    budget or the running limit exceeded) the queue grows without bound: ``unbounded`` is True and the latencies are +inf, never a
    number."""
    from planner.cost.running import slot_wait

    lam = np.asarray(rate, dtype=float)
    P = np.asarray(P, dtype=float)
    G = np.maximum(np.asarray(G, dtype=float), 1.0)
    B = np.asarray(budget, dtype=float)
    ctx = P + 1.0 + 0.5 * (G - 1.0)

    def carry(d, m, x=x, P=P, ctx=ctx):
        return step_time(x, d, m * P, d + m, ctx, 0.5 * (P + 1.0), host_s)

    def dec(d, x=x, ctx=ctx):
        return step_time(x, d, 0.0, np.maximum(d, 1.0), ctx, 0.0, host_s)

    t_d0 = dec(0.0) * np.ones_like(lam)
    t_c = carry(0.0, 1.0) * np.ones_like(lam)
    tau = t_d0
    # The fixed point, on the rows still moving: a row whose state (tau, t_c) came back
    # unchanged, bit for bit, stays there for the remaining iterations, so it leaves the
    # active set (planner.cost.row_subset; same numbers as iterating every row to the end).
    from planner.cost.row_subset import n_rows, take_rows

    n = np.size(tau)
    subset = x.xp.name == "vector" and np.ndim(tau) == 1 and n_rows(x) == n
    if subset:
        host_a = np.broadcast_to(np.asarray(host_s, dtype=float), (n,))
        idx = np.arange(n)
        cols = [np.broadcast_to(a, (n,)) for a in (lam, G, P, ctx)]
        tau, t_c = tau.copy(), t_c.copy()
    xa, lam_a, G_a, P_a, ctx_a, host_x = x, lam, G, P, ctx, host_s
    tau_a, t_c_a = tau, t_c
    for _ in range(FIXED_POINT_ITERATIONS):
        d = lam_a * (G_a - 1.0) * tau_a
        m = np.maximum(1.0, lam_a * t_c_a)
        t_c_new = step_time(xa, d, m * P_a, d + m, ctx_a, 0.5 * (P_a + 1.0), host_x)
        t_d = step_time(xa, d, 0.0, np.maximum(d, 1.0), ctx_a, 0.0, host_x)
        busy = lam_a * t_c_new / m
        tau_new = np.where(busy < 1.0, 1.0 / (lam_a / m + np.maximum(1.0 - busy, 0.0) / t_d), t_c_new)
        tau_new = np.where(np.isfinite(tau_new), tau_new, np.inf)
        if not subset:
            tau_a, t_c_a = tau_new, t_c_new
            continue
        moving = (tau_new != tau_a) | (t_c_new != t_c_a)
        tau[idx], t_c[idx] = tau_new, t_c_new
        if not moving.any():
            break
        if moving.sum() < 0.75 * idx.size:  # compact to the moving rows
            idx, keep = idx[moving], np.flatnonzero(moving)
            xa = take_rows(x, idx)
            lam_a, G_a, P_a, ctx_a = (c[idx] for c in cols)
            host_x = host_a[idx] if np.ndim(host_s) else host_s
            tau_a, t_c_a = tau_new[keep], t_c_new[keep]
        else:
            tau_a, t_c_a = tau_new, t_c_new
    if not subset:
        tau, t_c = tau_a, t_c_a
    d = lam * (G - 1.0) * tau
    m = np.maximum(1.0, lam * t_c)
    t_carry, t_dec = carry(d, m), dec(d)
    busy = lam * t_carry / m
    rho = lam * t_c / m
    unbounded = (~np.isfinite(tau) | (busy >= 1.0) | (np.abs(busy - rho) > 1e-3) | (m * P + d > B)
                 | (d + m > max_running))
    wait = t_c * rho / (2.0 * np.maximum(1.0 - rho, 1e-9))
    own = np.maximum(1.0, P / np.maximum(B - d, 1.0)) * t_c
    # the wait for a running slot (planner.cost.running.slot_wait, M/G/c): a request holds
    # one from admission (its prefill-lane wait) to its last token, at the step of a full
    # running set (requests wait only when it is full; a cap far above the mean set, more
    # than 8 Poisson deviations, is never reached: the step there is that of the deviation)
    reach = d + m + 8.0 * np.sqrt(np.maximum(d + m, 0.0)) + 8.0
    n_full = np.minimum(np.asarray(max_running, dtype=float), np.where(np.isfinite(reach), reach, 0.0))
    t_full = dec(np.maximum(n_full, np.where(np.isfinite(d), d, 0.0)))
    with np.errstate(all="ignore"):
        tau_full = tau * np.where(t_dec > 0, t_full / t_dec, 1.0)
    p_slot, slot_tail = slot_wait(lam, wait + own + (G - 1.0) * tau_full, max_running)
    unbounded = unbounded | ~np.isfinite(slot_tail)
    slot = np.where(p_slot > 0.0, p_slot * slot_tail, 0.0)
    inf = np.full_like(tau, np.inf)
    finite = np.isfinite(d)
    d_fin = np.where(finite, d, 0.0)
    dn = np.maximum(1.0, np.sqrt(d_fin))  # one Poisson standard deviation of the batch
    ttft = np.where(unbounded, inf, 0.5 * tau + wait + own + slot)
    tpot = np.where(unbounded, inf, tau)
    return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": ttft + (G - 1.0) * tpot,
            "throughput_req_s": np.where(unbounded, np.nan, lam), "unbounded": unbounded,
            # for percentiles (planner.replica_rate): the mean step, the carrying lane's load
            # and mean M/D/1 wait, the two kinds of step and how many carrying steps a second
            "step_s": tau, "rho": rho, "wait_s": np.where(unbounded, inf, wait),
            # the slot queue: the probability of waiting for a running slot and the mean wait of those who do
            "slot_wait_p": np.where(unbounded, 1.0, p_slot), "slot_wait_tail_s": np.where(unbounded, inf, slot_tail),
            "carry_step_s": t_carry, "decode_step_s": t_dec, "carrying_per_s": lam / m,
            # the requests decoding (Little's law) and the decode step's marginal cost per running
            # request (KV read + per-sequence work), a secant over one Poisson standard deviation
            "decoding": d, "decode_step_per_seq_s": (dec(d_fin + dn) - np.where(finite, t_dec, t_d0)) / dn}
