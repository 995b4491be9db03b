"""How many requests per second one replica can take under Poisson arrivals and keep
its SLOs: the per-replica rate the capacity report sizes fleets with (issue 10 item 3).

For every serving configuration (model, device, devices per replica, dtypes, cap ``C`` on
the requests running at once, the engine's max_num_seqs) :func:`max_rates` finds the
highest Poisson arrival rate ``lambda*`` at which the open-loop scheduler model
(planner.cost.serving.poisson, the one ``planner estimate --rate`` runs) stays bounded,
keeps at most ``C`` requests running, and meets every SLO bound at its percentile. The
search is a bisection on ``log lambda``, vectorized over all configurations and length
sets: each of its ``BISECTION_STEPS`` iterations is one array evaluation, no loop over
configurations. The fleet is then ``ceil(rps x (1 + headroom) / lambda*) + spares``
(planner.fleet.replicas).

The model gives means, at the traffic's mean lengths (column 0 of the length sets): they
set the load (the step time ``tau``, the prefill lane's utilization ``rho`` and its mean
wait ``E[W]``, its own prefill ``own``). A bound at percentile ``q`` is checked for a
request of that percentile's lengths ``(P_q, G_q)`` (the set of that percentile) in that
traffic:

* TTFT: the request arrives at a uniform phase of the running step (``q x tau`` rather
  than half a step), then waits in the prefill lane. That wait is 0 with probability
  ``1 - rho`` and otherwise exponential with mean ``E[W] / rho`` (the M/M/1 form, and the
  heavy-traffic limit of any M/G/1 queue: Kingman 1961), so its ``q``-quantile is
  ``W_q = E[W] / rho x ln(rho / (1 - q))`` when ``rho > 1 - q``, else 0; then its own
  prefill, ``own x max(1, P_q / P_mean)`` (linear in its tokens: exact for compute-bound
  prefill chunks, an upper bound when the decodes riding on the step dominate);
  ``TTFT_q = q tau + W_q + own_q``;
* TPOT: the mean step ``tau`` plus the spread of the carrying steps a request decodes
  through: it lives through ``n = (G_q - 1) tau x`` (carrying steps per second) of them,
  a Poisson count, so its ``q``-quantile is about ``n + z_q sqrt(n)`` and TPOT_q =
  ``tau + z_q sqrt(n) (t_carry - t_decode) / (G_q - 1)`` (z_q the normal quantile). The
  spread of the batch size under fluctuating load is not counted: against the simulator
  the p90 TPOT comes out 10-15% low (its own longer context adds a little attention,
  not counted either);
* end-to-end: ``TTFT_q + (G_q - 1) tau``.

Bisection assumes the SLO metrics grow with the rate (queues only lengthen); a
configuration that misses an SLO even at a vanishing rate gets ``lambda* = 0``. The
discrete-event simulator (planner.cost.simulate) is the oracle the tests check this
against (tests/test_capacity_poisson.py).
"""

from __future__ import annotations

import numpy as np

BISECTION_STEPS = 10  # over 4 decades: the rate to within a factor 10**(4 / 2**10) = 1.009, below the model's error
RATE_DECADES = 4.0  # the bracket's lower end: the upper one / 10**4


def set_metrics(x, lam, P, G, Q, engine_cols: dict, max_running) -> dict:
    """Per (configuration, length set): TTFT, TPOT and end-to-end latency at the set's
    percentile (the means on the mean set, column 0), at Poisson rate ``lam`` per
    configuration (see the module docstring); +inf where the queue is unbounded. ``x`` holds
    one row per configuration (its mean lengths); ``P``, ``G``, ``Q``: (n, n_sets)."""
    res = {k: np.asarray(v, dtype=float).reshape(-1, 1)
           for k, v in poisson_rows(x, np.asarray(lam, dtype=float), P[:, 0], G[:, 0], engine_cols,
                                    np.asarray(max_running, dtype=float)).items()}
    qf = np.where(Q > 0, Q / 100.0, 0.5)  # the mean set: half a step, the mean wait
    rho, wait, tau = res["rho"], res["wait_s"], res["step_s"]
    with np.errstate(all="ignore"):
        own = res["ttft_s"] - 0.5 * tau - wait
        own_q = own * np.maximum(1.0, P / P[:, :1])
        w_q = np.where(rho > 1.0 - qf, wait / np.maximum(rho, 1e-300) * np.log(np.maximum(rho, 1e-300) / (1.0 - qf)),
                       0.0)
        ttft = qf * tau + np.where(Q > 0, w_q, wait) + own_q
        steps = np.maximum(G, 2.0) - 1.0
        n_carry = steps * tau * res["carrying_per_s"]  # carrying steps a request decodes through
        z = np.where(Q > 0, _normal_quantile(qf), 0.0)
        extra_s = np.maximum(res["carry_step_s"] - res["decode_step_s"], 0.0)  # a carrying step over a decode one
        tpot = tau + np.maximum(z, 0.0) * np.sqrt(n_carry) * extra_s / steps
        out = {"ttft_s": ttft, "tpot_s": tpot, "latency_s": ttft + (np.maximum(G, 1.0) - 1.0) * tau}
    bad = np.broadcast_to(res["unbounded"] > 0, P.shape)
    return {k: np.where(bad, np.inf, v) for k, v in out.items()}


def _normal_quantile(q):
    """The standard normal quantile of each entry of ``q`` (computed once per distinct
    value: the length sets' few percentiles, not per configuration)."""
    from statistics import NormalDist

    values, inverse = np.unique(np.asarray(q, dtype=float), return_inverse=True)
    z = np.array([NormalDist().inv_cdf(min(max(float(v), 1e-12), 1 - 1e-12)) for v in values])
    return z[inverse].reshape(np.shape(q))


def poisson_rows(x, rate, P, G, engine_cols: dict, max_running) -> dict:
    """The open-loop model on every row of the engine context ``x`` (the serving columns
    of planner.cost.api.serving_columns give the engine's budget, chunking and host time)."""
    from planner.cost.serving import effective_budget, poisson

    budget = effective_budget(float(engine_cols["token_budget"]), P, 1.0, bool(engine_cols["chunked"]))
    return poisson(x, rate, P, G, budget, float(engine_cols["host_step_s"]), max_running)


def max_rates(x, P, G, Q, bounds, engine_cols: dict, max_running, rate_hi) -> np.ndarray:
    """The highest Poisson rate (requests/s) per configuration meeting every bound.

    ``x`` has one row per configuration (at its mean lengths); ``P``, ``G`` and ``Q`` (the
    set's percentile; 0 for the mean set, column 0, which only has to stay bounded) have
    shape (n_configurations, n_sets). ``bounds``: (metric, max, percentile) triples.
    ``rate_hi`` (n_configurations,): an upper bracket (e.g. the replica's throughput at
    full load); 0 where a configuration misses a bound at ``rate_hi / 10**RATE_DECADES``."""
    n, s = np.shape(P)
    hi = hi0 = np.log(np.maximum(np.asarray(rate_hi, dtype=float), 1e-12))
    lo = hi - RATE_DECADES * np.log(10.0)

    def meets(log_rate):
        m = set_metrics(x, np.exp(log_rate), P, G, Q, engine_cols, max_running)
        ok = np.isfinite(m["tpot_s"]).all(axis=1)
        for metric, limit, q in bounds:
            ok &= np.where(Q == q, m[metric] <= limit, True).all(axis=1)
        return ok

    feasible = meets(lo)
    top_ok = meets(hi)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        good = meets(mid)
        lo = np.where(good, mid, lo)
        hi = np.where(good, hi, mid)
    best = np.where(top_ok, hi0, lo)
    return np.where(feasible, np.exp(best), 0.0)
