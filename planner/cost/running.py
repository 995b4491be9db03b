"""The requests a serving engine runs at once: the one rule every serving model takes
its running set from (README "The running set").

At most the engine's ``max_running`` (max_num_seqs; in the capacity report also the
searched concurrency ``C``), and at most what the engine's KV pool holds
(:func:`planner.cost.footprint.kv_running_limit`: the pool of
:func:`planner.cost.footprint.kv_pool_bytes`, the engine's documented memory fraction of
the device or of what the weights and activations leave, over one request's KV at
``P + r G`` tokens, ``r`` the engine's ``kv_reserve_output``: 1 where it reserves the
whole length on admission, 1/2, the mean occupancy, where it allocates on demand and
preempts). The KV columns are an engine profile's ``kv_columns``. A negative
``kv_reserve`` means no KV cap (the steady state, the static-batch rows): the engine's
limit alone.

Used by the closed loop (planner.cost.serving) and the open loop
(planner.cost.open_loop, which also takes its wait for a running slot from
:func:`slot_wait`), both through the ``kv_reserve`` column that
planner.cost.engine_columns.serving_columns sets, the discrete-event
simulator's runs (planner.cost.serving_api.simulate_estimate) and the capacity report's
Poisson sizing (planner.sizing), so that the analytic models, the simulator and the
sizing admit the same requests.
"""

from __future__ import annotations

import numpy as np

from planner.cost.footprint import kv_cache_bytes_per_device, kv_running_limit, memory_footprint


def running_limit(x, max_running, kv_reserve, k, P, G, share, kv_fraction=-1.0, kv_of_free=0.0):
    """Sequences running at once per row of the engine context ``x``: ``min(max_running,
    k x kv_running_limit(x, k, P, G, share, kv_reserve, kv_fraction, kv_of_free))`` where
    ``kv_reserve >= 0``, else ``max_running`` (numbers or arrays, broadcast; the KV
    arguments are an engine profile's ``kv_columns``). Both count sequences, as an engine's
    max_num_seqs does: the KV pool holds ``kv_running_limit`` requests of ``k`` samples
    each, ``k`` sequences a request (requests of 1 sample: the same number).
    :func:`requests_running` turns it into requests."""
    max_running = np.asarray(max_running)  # the caller's dtype (float32 in the search) is kept
    reserve = np.asarray(kv_reserve)
    if not np.any(reserve >= 0.0):
        return max_running
    kv = kv_running_limit(x, k, P, G, share, np.maximum(reserve, 0.0), kv_fraction, kv_of_free) * k
    return np.where(reserve >= 0.0, np.minimum(max_running, kv), max_running)


def requests_running(max_running, width):
    """Requests of ``width`` w sequences that run at once under a running limit of
    ``max_running`` sequences: ``floor(max_running / w)``, one at least (a request is
    admitted when all its w sequences fit, as planner.cost.simulate admits them; one runs
    alone however wide); ``max_running`` itself at w = 1."""
    w = np.asarray(width, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(w > 1.0, np.maximum(np.floor(max_running / np.maximum(w, 1.0)), 1.0), max_running)


def serves_one(x, k, P, G, share):
    """Whether one request at its full length ``P + G`` fits beside the weights, the
    runtime reserve and one request's activations (an engine refuses to start, or never
    finishes such a request, otherwise: vLLM checks max_model_len against the KV cache at
    start-up). The memory verdict of a configuration whose running set the engine caps."""
    weights, _, acts, reserve, _, capacity = memory_footprint(x, 1.0, k, P, G, share, 1.0)
    return weights + reserve + acts + kv_cache_bytes_per_device(x, 1.0, k, P, G, share) <= capacity


def slot_wait(rate, service_s, slots, service_cv2=0.0):
    """Waiting for a running slot when the running set is capped at ``slots``: an M/G/c
    queue, ``c = slots`` servers, each request holding one for ``service_s`` (its time
    from admission to its last token), offered load ``a = rate x service_s``.

    Returns (probability of waiting, mean wait of those who wait, s). The probability is
    Erlang's C formula, ``C = c B / (c - a (1 - B))`` with Erlang's loss formula ``B =
    poisson_pmf(c; a) / poisson_cdf(c; a)``; the conditional wait is the M/M/c one,
    ``service_s / (c - a)``, scaled by ``(1 + cv^2) / 2`` for the service time's squared
    coefficient of variation ``cv^2`` (the Lee-Longton approximation of M/G/c: 1/2 for
    the fixed lengths of a benchmark). Its tail is taken exponential (the heavy-traffic
    form), so the ``q`` quantile of the wait is ``mean_if_wait x ln(C / (1 - q))`` when
    ``C > 1 - q``, else 0. ``a >= c``: every request waits, for ever (+inf)."""
    from scipy.special import gammaincc, gammaln

    a = np.asarray(rate, dtype=float) * np.asarray(service_s, dtype=float)
    slots = np.asarray(slots, dtype=float)
    unlimited = ~np.isfinite(slots)  # no running limit: nobody waits
    c = np.maximum(np.floor(np.where(unlimited, 1.0, slots)), 1.0)
    with np.errstate(all="ignore"):
        cdf = gammaincc(c + 1.0, a)  # P(Poisson(a) <= c)
        pmf = np.exp(c * np.log(np.maximum(a, 1e-300)) - a - gammaln(c + 1.0))
        loss = np.where(a > 0, np.clip(pmf / np.maximum(cdf, 1e-300), 0.0, 1.0), 0.0)
        p_wait = np.clip(c * loss / (c - a * (1.0 - loss)), 0.0, 1.0)
        mean_if_wait = np.asarray(service_s, dtype=float) / (c - a) * 0.5 * (1.0 + service_cv2)
    stable = (a < c) & np.isfinite(a)
    p_wait = np.where(unlimited, 0.0, np.where(stable, p_wait, 1.0))
    return p_wait, np.where(unlimited, 0.0, np.where(stable, mean_if_wait, np.inf))
