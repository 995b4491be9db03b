"""How many requests per second one replica can take under Poisson arrivals and keep
its SLOs: the per-replica rate the capacity report sizes fleets with (issue 10 item 3).

For every serving configuration (model, device, devices per replica, dtypes, cap ``C`` on
the requests running at once, the engine's max_num_seqs) :func:`max_rates` finds the
highest Poisson arrival rate ``lambda*`` at which the open-loop scheduler model
(planner.cost.open_loop.poisson, the one ``planner estimate --rate`` runs) stays bounded,
keeps at most ``C`` requests running, and meets every SLO bound at its percentile. The
search is a bisection on ``log lambda``, vectorized over all configurations and length
sets: each of its ``BISECTION_STEPS`` iterations is one array evaluation, no loop over
configurations. The fleet is then ``ceil(rps x (1 + headroom) / lambda*) + spares``
(planner.fleet.replicas).

The model gives means, at the traffic's mean lengths (column 0 of the length sets): they
set the load (the step time ``tau``, the step an arrival lands in, its own prefill
``own``). A bound at percentile ``q`` is checked for a
request of that percentile's lengths ``(P_q, G_q)`` (the set of that percentile) in that
traffic:

* TTFT: the request arrives at a uniform phase of the step it lands in (the open loop's
  length-biased step, 0 when the engine is idle: ``q x landed`` rather than half of it;
  every prompt waiting at a step's start rides on the next one, so there is no prefill
  queue beyond it), then its own prefill, ``own x max(1, P_q / P_mean)`` (linear in its
  tokens: exact for compute-bound prefill chunks, an upper bound when the decodes riding
  on the step dominate); ``TTFT_q = q landed + S_q + own_q``, ``S_q`` the quantile of the wait for a running
  slot where the running set is capped (the engine's max_running, the searched ``C`` and
  the free KV memory: planner.cost.running): Erlang C's probability of waiting ``p_s``
  and an exponential tail, ``S_q = E[S | S > 0] ln(p_s / (1 - q))`` when ``p_s > 1 - q``
  (planner.cost.running.slot_wait; adding two quantiles is conservative);
* TPOT: the mean step a request decodes in (``tau`` with its own sequences added to the
  batch, planner.cost.open_loop.poisson's ``tpot_s``) plus ``z_q`` (the normal quantile) standard deviations of
  the mean step over the request's own life, ``W = (G_q - 1) tau`` (planner.replica_rate
  .tpot_variance), a linear response to two sources of swing. (a) The arrivals during
  its life, ``A ~ Poisson(lambda W)``: each puts one m-th of a carrying step among its
  steps, ``c = (t_carry - t_decode) / (m (G_q - 1))`` per arrival. (b) The batch: the
  requests decoding, ``N``, are near M/D/infinity, ``N ~ Poisson(nbar)``, ``nbar = lambda
  D``, ``D = (G - 1) tau``; each adds ``beta`` to the step (the decode step's marginal
  cost per running request, KV read + per-sequence work: poisson()'s
  ``decode_step_per_seq_s``). Without feedback the autocovariance of N is triangular,
  ``Cov(N(0), N(s)) = nbar (1 - s/D)+`` (an arrival is counted for exactly D), so the
  mean of N over a window D has variance ``(2/D) int_0^D nbar (1 - s/D)^2 ds = 2 nbar/3``,
  and ``Cov(A, mean N) = lambda int_0^D (D - x)/D dx = nbar / 2``. But the step grows
  with N, so requests live longer and N grows more: linearizing ``dN/dt = lambda -
  N / ((G-1) tau(N))`` gives an Ornstein-Uhlenbeck process relaxing at ``kappa = (1 -
  L) / D``, loop gain ``L = lambda D dtau/dN``, stationary variance ``nbar / (1 - L)``;
  its window mean has variance ``nbar / (1 - L) f(kappa W)`` with ``f(x) = 2 (x - 1 +
  e^-x) / x^2`` (f(1) = 0.74 against the exact 2/3 of M/D/infinity) and covariance with
  A ``lambda W f / 2``. Both sources are stretched by ``g = tau / t_decode = 1 / (1 -
  (lambda/m)(t_carry - t_decode))`` (a longer step lets more arrive in it) and
  ``dtau/dN = g beta``: ``Var = g^2 (c^2 lambda W + beta^2 nbar f / (1 - L) + c beta f
  lambda W)``, ``TPOT_q = TPOT + z_q sqrt(Var)``; ``L >= 1`` (no stable batch) is +inf.
  Against the simulator (tests/test_capacity_poisson.py) the p90 comes out within
  about 15% either way (the request's own longer context is not counted; the running
  cap, which truncates the swing, neither: conservative near it);
* end-to-end: ``TTFT_q + (G_q - 1) TPOT``.

Bisection assumes the SLO metrics grow with the rate (queues only lengthen); a
configuration that misses an SLO even at a vanishing rate gets ``lambda* = 0``. The
discrete-event simulator (planner.cost.simulate) is the oracle the tests check this
against (tests/test_capacity_poisson.py).
"""

from __future__ import annotations

import numpy as np

BISECTION_STEPS = 10  # over 4 decades: the rate to within a factor 10**(4 / 2**10) = 1.009, below the model's error
RATE_DECADES = 4.0  # the bracket's lower end: the upper one / 10**4


def set_metrics(x, lam, P, G, Q, engine_cols: dict, max_running, pipe: dict | None = None) -> dict:
    """Per (configuration, length set): TTFT, TPOT and end-to-end latency at the set's
    percentile (the means on the mean set, column 0), at Poisson rate ``lam`` per
    configuration (see the module docstring); +inf where the queue is unbounded. ``x`` holds
    one row per configuration (its mean lengths); ``P``, ``G``, ``Q``: (n, n_sets)."""
    lam = np.asarray(lam, dtype=float)
    res = {k: np.asarray(v, dtype=float).reshape(-1, 1)
           for k, v in poisson_rows(x, np.asarray(lam, dtype=float), P[:, 0], G[:, 0], engine_cols,
                                    np.asarray(max_running, dtype=float), pipe).items()}
    qf = np.where(Q > 0, Q / 100.0, 0.5)  # the mean set: half the landed step, the mean slot wait
    landed = res["landed_step_s"]
    p_slot, slot_tail = res["slot_wait_p"], res["slot_wait_tail_s"]
    with np.errstate(all="ignore"):
        slot = np.where(p_slot > 0.0, p_slot * slot_tail, 0.0)
        own_q = res["own_s"] * np.maximum(1.0, P / P[:, :1])
        s_q = np.where(p_slot > 1.0 - qf, slot_tail * np.log(p_slot / (1.0 - qf)), 0.0)
        ttft = qf * landed + np.where(Q > 0, s_q, slot) + own_q
        z = np.where(Q > 0, _normal_quantile(qf), 0.0)
        # the mean a request sees (planner.cost.open_loop.poisson: the step with its own sequences)
        seen = res["tpot_s"]
        tpot = seen + np.maximum(z, 0.0) * np.sqrt(tpot_variance(res, lam, G))
        out = {"ttft_s": ttft, "tpot_s": tpot, "latency_s": ttft + (np.maximum(G, 1.0) - 1.0) * seen}
    bad = np.broadcast_to(res["unbounded"] > 0, P.shape)
    return {k: np.where(bad, np.inf, v) for k, v in out.items()}


def tpot_variance(res: dict, lam, G) -> np.ndarray:
    """The variance of one request's TPOT (s^2) at each set's generated length ``G``
    (n, n_sets), from the open-loop columns ``res`` (n, 1) at rate ``lam``: the linear
    response of its mean step to the arrivals during its life and to the batch's swing
    (the module docstring derives it)."""
    lam = np.asarray(lam, dtype=float).reshape(-1, 1)
    tau, t_d, t_c = res["step_s"], res["decode_step_s"], res["carry_step_s"]
    m = np.maximum(lam / np.maximum(res["carrying_per_s"], 1e-300), 1.0)  # prompts per carrying step
    steps = np.maximum(G, 2.0) - 1.0  # the request's decode steps, s_q
    steps_mean = np.maximum(G[:, :1], 2.0) - 1.0
    arrivals = lam * steps * tau  # expected arrivals during its life, lambda W
    nbar = res["decoding"]  # requests decoding, lambda D
    c = np.maximum(t_c - t_d, 0.0) / (m * steps)  # TPOT per arrival (one m-th of a carrying step)
    beta = np.maximum(res["decode_step_per_seq_s"], 0.0)  # step time per running request
    stretch = tau / t_d  # g = 1 / (1 - (lambda/m)(t_c - t_d)): a longer step lets more arrive
    loop = lam * steps_mean * beta * stretch  # lambda D x dtau/dN: the batch's own feedback
    kw = np.maximum((1.0 - loop) * steps / steps_mean, 1e-6)  # kappa W: window over relaxation time
    f = 2.0 * (kw + np.expm1(-kw)) / (kw * kw)  # window-mean factor of an Ornstein-Uhlenbeck process
    var = stretch ** 2 * (c * c * arrivals + beta * beta * nbar * f / np.maximum(1.0 - loop, 1e-300)
                          + c * beta * f * arrivals)
    return np.where(loop < 1.0, var, np.inf)


def _normal_quantile(q):
    """The standard normal quantile of each entry of ``q`` (computed once per distinct
    value: the length sets' few percentiles, not per configuration)."""
    from statistics import NormalDist

    values, inverse = np.unique(np.asarray(q, dtype=float), return_inverse=True)
    z = np.array([NormalDist().inv_cdf(min(max(float(v), 1e-12), 1 - 1e-12)) for v in values])
    return z[inverse].reshape(np.shape(q))


def poisson_rows(x, rate, P, G, engine_cols: dict, max_running, pipe: dict | None = None) -> dict:
    """The open-loop model on every row of the engine context ``x`` (the serving columns
    of planner.cost.engine_columns.serving_columns give the engine's budget, chunking and host time;
    a ``token_budget`` array on ``x`` gives each row's device budget instead, a
    ``host_step_s`` array each row's device host time;
    ``pipe``: per-row pipeline stages and sends, planner.cost.open_loop.poisson's ``pp``,
    ``send_lat_s``, ``send_s_per_token``)."""
    from planner.cost.open_loop import poisson
    from planner.cost.serving import effective_budget

    per_row = getattr(x, "token_budget", engine_cols["token_budget"])  # each row's device budget where set
    budget = effective_budget(np.asarray(per_row, dtype=float), P, 1.0, bool(engine_cols["chunked"]),
                              attn_dp=np.asarray(x.attn_dp), dp_rank_budget=engine_cols.get("dp_rank_budget", 0))
    host_s = np.asarray(getattr(x, "host_step_s", engine_cols["host_step_s"]), dtype=float)
    return poisson(x, rate, P, G, budget, host_s, max_running, **(pipe or {}))


def max_rates(x, P, G, Q, bounds, engine_cols: dict, max_running, rate_hi, pipe: dict | None = None) -> np.ndarray:
    """The highest Poisson rate (requests/s) per configuration meeting every bound.

    ``x`` has one row per configuration (at its mean lengths); ``P``, ``G`` and ``Q`` (the
    set's percentile; 0 for the mean set, column 0, which only has to stay bounded) have
    shape (n_configurations, n_sets). ``bounds``: (metric, max, percentile) triples.
    ``rate_hi`` (n_configurations,): an upper bracket (e.g. the replica's throughput at
    full load); 0 where a configuration misses a bound at ``rate_hi / 10**RATE_DECADES``."""
    n, s = np.shape(P)
    hi = hi0 = np.log(np.maximum(np.asarray(rate_hi, dtype=float), 1e-12))
    lo = hi - RATE_DECADES * np.log(10.0)

    cap = np.broadcast_to(np.asarray(max_running, dtype=float), (n,))

    def meets(log_rate, x=x, P=P, G=G, Q=Q, cap=cap, pipe=pipe):
        m = set_metrics(x, np.exp(log_rate), P, G, Q, engine_cols, cap, pipe)
        ok = np.isfinite(m["tpot_s"]).all(axis=1)
        for metric, limit, q in bounds:
            ok &= np.where(Q == q, m[metric] <= limit, True).all(axis=1)
        return ok

    feasible = meets(lo)
    # the feasible configurations are bisected (planner.cost.row_subset evaluates a row as the
    # whole context does); the bracket's top is checked only where every step held: the
    # metrics grow with the rate, so a configuration that missed a bound below the top misses
    # it there too (the top is mostly above capacity, the slowest rows of the fixed point)
    act = np.flatnonzero(feasible)
    lo_a, hi_a = lo[act], hi[act]
    held = np.ones(act.size, dtype=bool)
    top_ok = np.zeros(n, dtype=bool)
    if act.size:
        from planner.cost.row_subset import take_rows

        def rows(i):
            return dict(x=take_rows(x, i), P=P[i], G=G[i], Q=Q[i], cap=cap[i],
                        pipe=None if pipe is None else {k: np.asarray(v)[i] for k, v in pipe.items()})

        sub = rows(act)
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo_a + hi_a)
            good = meets(mid, **sub)
            held &= good
            lo_a = np.where(good, mid, lo_a)
            hi_a = np.where(good, hi_a, mid)
        top = act[held]
        if top.size:
            top_ok[top] = meets(hi[top], **rows(top))
    lo = lo.copy()
    lo[act] = lo_a
    best = np.where(top_ok, hi0, lo)
    return np.where(feasible, np.exp(best), 0.0)
