"""TensorRT-LLM's attention-DP balancer (``attention_dp_config.enable_balance``): the wait
of a prompt that arrives alone until every rank holds one or the timeout passes
(:func:`adp_balance_wait_steps`), the prompts released with it (:func:`adp_released_others`),
the share of Poisson arrivals it can hold (:func:`adp_busy_share`), and the wait in seconds
planner.cost.serving adds (:func:`balance_wait_s`). The discrete-event counterpart is
planner.cost.simulate_balance.
"""

from __future__ import annotations

import numpy as np

from planner.cost.open_loop import poisson_cdf_table

# midpoints of the quadrature over one balance window (the integrands are smooth; 64 points
# keep the mean wait within 0.1% of a fine grid for 1-64 ranks, tests/test_adp_balance.py)
BALANCE_POINTS = 64


def adp_balance_wait_steps(attn_dp, arrivals_per_step, timeout_iters):
    """Mean iterations a prompt waits for TensorRT-LLM's attention-DP balancer
    (``attention_dp_config.enable_balance``; PyExecutor ``_balance_adp_requests``) when
    prompts arrive spread over the steps, as a closed loop's later requests do.

    The rule (the engine's source): every iteration the ``a`` ranks all-gather their
    scheduled context and generation counts; context requests are released when every
    rank has one (and a free slot); otherwise none runs and a counter shared by the ranks
    advances, releasing whatever waits once it reaches ``timeout_iters`` (then reset), or
    at once when some rank has no generation request. The counter runs whether or not a
    prompt waits, so a window ends at ``T = min(tau, T_cover)``, ``T_cover`` the first time
    every rank holds a new prompt.

    With prompts arriving at ``z`` per step, each on a rank drawn uniformly (a finished
    request's rank takes its client's next prompt), each rank's arrivals are a Poisson
    stream of rate ``z / a``, ``P(T_cover > t) = 1 - (1 - e^{-zt/a})^a``. A window's prompts
    wait ``int_0^T N(t) dt`` in all and number ``N(T)``; by the renewal-reward theorem the
    mean wait is ``E[int_0^T N dt] / E[N(T)]`` with ``E[N(T)] = z E[T]`` (optional stopping)
    and ``E[N(t); T > t] = z t (1 - (1 - e^{-zt/a})^{a-1})`` (independent ranks: the
    covered event's share of the count is ``a m (1 - e^{-m})^{a-1}``, ``m = zt/a``):

        W = int_0^tau t [1 - (1 - e^{-zt/a})^{a-1}] dt / int_0^tau [1 - (1 - e^{-zt/a})^a] dt

    ``tau / 2`` when prompts are rare (the free-running counter), 0 at ``a = 1`` (one rank
    always holds every prompt) and where they are dense; monotone in ``tau``. The engine
    counts whole iterations: a prompt is first seen at an iteration's check, so it waits
    half an iteration less than the continuous clock (``W - 1/2``, at least 0; the half
    step before that check is the steady state's own). Midpoint
    quadrature over :data:`BALANCE_POINTS` points, vectorized; a discrete-iteration
    simulation of the rule agrees (tests/test_adp_balance.py). Arrays or numbers in,
    float array out; 0 where ``timeout_iters`` is 0 (balance off) or ``attn_dp`` 1.

    Open-loop (Poisson) arrivals take the same form: the engine routes a new request to the
    rank with the fewest active requests (``_balance_requests_across_ranks``), but between
    two arrivals requests finish, and a finish makes the held prompt's rank the least
    loaded again, so a window's prompts fall on the ranks about as uniformly drawn ones do
    (the simulator, planner.cost.simulate_balance, which routes as the engine does, holds
    them that long: tests/test_serving_balance.py)."""
    a, tau, num, den, _ = _window(attn_dp, arrivals_per_step, timeout_iters)
    w = num / np.maximum(den, 1e-30)
    return np.where((tau > 0.0) & (a > 1.0), np.maximum(w - 0.5, 0.0), 0.0)


def adp_released_others(attn_dp, arrivals_per_step, timeout_iters):
    """The other prompts released in the same iteration as a held prompt: the window's
    (:func:`adp_balance_wait_steps`) other arrivals, ``z E[T^2] / E[T]`` (an arrival picks a
    window in proportion to its length; Poisson arrivals), ``E[T] = int_0^tau P(T > t) dt``,
    ``E[T^2] = 2 int_0^tau t P(T > t) dt``: ``z tau`` when the timeout ends every window,
    fewer where the ranks are covered first. The step that runs them all is the held
    prompt's step (planner.cost.serving.released_step_excess_s: Poisson arrivals; a closed
    loop keeps its shared step, docs/serving-experiments.md Round 15 (S2b)). 0 where no balancer."""
    a, tau, _, den, first = _window(attn_dp, arrivals_per_step, timeout_iters)
    z = np.asarray(arrivals_per_step, dtype=float)
    others = z * 2.0 * first / np.maximum(den, 1e-30)
    return np.where((tau > 0.0) & (a > 1.0), others, 0.0)


def _window(attn_dp, arrivals_per_step, timeout_iters):
    """The balance window's quadrature (:func:`adp_balance_wait_steps`): ``a``, ``tau`` and the
    means over the window's points ``t`` of ``t (1 - (1 - e^{-zt/a})^{a-1})`` (the wait's
    numerator), ``P(T > t)`` and ``t P(T > t)``."""
    a = np.maximum(np.asarray(attn_dp, dtype=float), 1.0)
    z = np.maximum(np.asarray(arrivals_per_step, dtype=float), 1e-30)
    tau = np.maximum(np.asarray(timeout_iters, dtype=float), 0.0)
    a, z, tau = np.broadcast_arrays(a, z, tau)
    u = (np.arange(BALANCE_POINTS) + 0.5) / BALANCE_POINTS
    t = tau[..., None] * u  # the window's time points (iterations)
    empty = np.exp(-z[..., None] * t / a[..., None])  # P(a rank holds no new prompt by t)
    covered_rest = (1.0 - empty) ** (a[..., None] - 1.0)
    uncovered_rest = 1.0 - covered_rest  # P(not every other rank has one by t)
    uncovered = 1.0 - covered_rest * (1.0 - empty)
    return a, tau, np.mean(t * uncovered_rest, axis=-1), np.mean(uncovered, axis=-1), np.mean(t * uncovered, axis=-1)


POISSON_TERMS = 256  # terms of the Poisson CDF below: exact for k < 256 (attention-DP ranks)


def poisson_cdf(mu, k):
    """``P(Pois(mu) <= k)`` for whole ``k`` (arrays, broadcast; 0 where ``k`` < 0), from
    planner.cost.open_loop.poisson_cdf_table over ``j = 0..POISSON_TERMS - 1``."""
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-300)
    k = np.asarray(k, dtype=float)
    mu, k = np.broadcast_arrays(mu, k)
    table = poisson_cdf_table(mu, POISSON_TERMS)
    idx = np.clip(k, 0, POISSON_TERMS - 1).astype(np.int64)
    return np.where(k < 0.0, 0.0, np.take_along_axis(table, idx[..., None], axis=-1)[..., 0])


def adp_busy_share(attn_dp, generating):
    """The share of a Poisson stream's prompts that find every attention-DP rank holding a
    generation request, those the balancer can hold (a prompt routed to a rank without one
    is released at once): ``P(Pois(n) >= a)``, ``n`` the generation requests in flight
    (``rate x (G - 1) x TPOT``, an M/G/infinity count) kept even over the ``a`` ranks by the
    engine's fewest-active routing."""
    a = np.maximum(np.asarray(attn_dp, dtype=float), 1.0)
    return 1.0 - poisson_cdf(generating, a - 1.0)


def balance_wait_s(attn_dp, timeout_iters, arrivals_per_step, step_s, in_flight, generating=None):
    """The wait of a prompt that arrives alone for an attention-DP balancer (s) and the other
    prompts released with it: :func:`adp_balance_wait_steps` iterations of ``step_s``,
    prompts arriving at ``arrivals_per_step``, and :func:`adp_released_others`. Only where a
    rank runs at least two requests (``in_flight / a >= 2``): a rank whose only request
    finished holds no generation request, and the balancer then releases at once
    (PyExecutor ``_balance_adp_requests``). 0 where the engine has no balancer
    (``timeout_iters`` 0) or ``a = 1``. Disaggregated prefill workers hold no generation
    requests, so they never wait (planner.cost.disagg does not call this); the
    discrete-event simulator holds prompts the same way (planner.cost.simulate_balance).
    Open-loop arrivals (``generating`` given, the generation requests in flight, in place of
    ``in_flight``): only the share :func:`adp_busy_share` that finds every rank generating
    waits (the released others are those of a held prompt). Returns (wait_s, others, held share)."""
    load = in_flight if generating is None else generating
    shape = np.broadcast(np.asarray(load), np.asarray(step_s), np.asarray(timeout_iters)).shape
    tau = np.broadcast_to(np.asarray(timeout_iters, dtype=float), shape)
    a = np.broadcast_to(np.asarray(attn_dp, dtype=float), shape)
    with np.errstate(all="ignore"):
        busy = np.broadcast_to(load, shape) / np.maximum(a, 1.0) >= 2.0 if generating is None \
            else np.broadcast_to(np.isfinite(load), shape)
        on = (tau > 0) & (a > 1.0) & busy & np.isfinite(np.broadcast_to(step_s, shape))
    if not np.any(on):
        return 0.0, 0.0, 0.0
    steps, others, held = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    z = np.broadcast_to(arrivals_per_step, shape)[on]
    held[on] = 1.0 if generating is None else adp_busy_share(a[on], np.broadcast_to(generating, shape)[on])
    steps[on] = held[on] * adp_balance_wait_steps(a[on], z, tau[on])
    others[on] = adp_released_others(a[on], z, tau[on])
    return steps * np.where(on, step_s, 0.0), others, held
