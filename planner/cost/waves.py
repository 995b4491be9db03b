"""How a closed-loop benchmark's later waves lose step: the share of them that can stay in
step under the benchmark client's length spread (:func:`in_step_share`), and the TTFT and
TPOT between the two idealizations, waves in step and arrivals spread over the steps
(:func:`smeared_waves`), and the wait a scheduler polling for requests every few iterations
(:func:`recv_wait_steps`) adds (an attention-DP balancer's: planner.cost.adp_balance).
planner.cost.serving computes both idealizations and calls these.
"""

from __future__ import annotations

import numpy as np


def in_step_share(range_ratio, G, wave_steps):
    """The share of a closed loop's later waves that can stay in step when the benchmark
    draws each request's output length uniformly from ``[r G, G]`` (``r``: its random
    range ratio; 1 = fixed lengths, the data's README; InferenceMAX's sweeps use 0.8:
    planner.harness.HARNESS_RANGE_RATIO).

    A group of the closed loop is the requests whose prompts completed in one step; with
    fixed lengths they all finish ``G - 1`` steps later and return together, so the
    groups (or, without mixed batches, the whole wave) persist. With lengths drawn per
    request, a group's members finish spread over ``(1 - r)(G - 1)`` steps, and drawn
    afresh every cycle, the spread does not realign. Once it reaches the ``K`` steps a
    wave's prompts span (``wave_steps``: its groups with mixed batches, its prefill steps
    without), the returning prompts interleave over the steps and meet no wave: the
    steady state's arrivals (``wave_sync`` 0). Between, the share in step falls
    linearly: ``max(0, 1 - (1 - r)(G - 1) / K)``; 1 at ``r = 1``, where the fitted
    ``wave_sync`` alone sets it."""
    r = np.clip(np.asarray(range_ratio, dtype=float), 0.0, 1.0)
    spread = (1.0 - r) * np.maximum(np.asarray(G, dtype=float) - 1.0, 0.0)
    return np.clip(1.0 - spread / np.maximum(np.asarray(wave_steps, dtype=float), 1.0), 0.0, 1.0)


def recv_wait_steps(interval):
    """Mean iterations a prompt that arrives spread in time waits, beyond the half step the
    steady state charges, because the scheduler polls for new requests only every
    ``interval`` decode iterations (SGLang ``--scheduler-recv-interval`` N; 1, the default,
    polls every iteration).

    The rule (SGLang ``scheduler_recv_skipper.SchedulerRecvSkipper.handle``): before each
    iteration a counter adds the weight of the last batch's forward mode, 1 for a decode
    (and a speculative verify), 1,000 for an extend (prefill) or mixed batch, and requests
    are received only when it reaches ``N`` (then reset): in a run of decode iterations
    every ``N``-th iteration receives, and the iteration after a prefill receives at once.
    A prompt arriving at a uniformly drawn time within a window of ``N`` decode iterations
    waits ``N / 2`` iterations on average for the window's end, where polling every
    iteration waits ``1 / 2``: ``(N - 1) / 2`` more. The first wave meets an idle server,
    which polls at once. Arrays or numbers in, float array out; 0 at ``N <= 1``."""
    n = np.maximum(np.asarray(interval, dtype=float), 1.0)
    return 0.5 * (n - 1.0)


def request_overhead_s(overhead_s, per_kernel_s, kernels):
    """A request's time outside the GPU steps before its first token (s), added once to TTFT:
    a constant ``overhead_s`` (HTTP, tokenization, admission, the first detokenization) plus
    ``per_kernel_s`` times the kernels of one forward pass of the model (``kernels``:
    planner.cost.context.kernels_per_pass), the part that grows with the model's depth. Both
    are a serving profile's fitted parameters (planner.serving_params: ``request_overhead_s``,
    ``request_overhead_s_per_kernel``; docs/serving-experiments.md, Round 20); the second is
    one value for every engine and device. Charged on the request's own path only, not as
    time of the steps the other requests share: a form that charged it to every step
    carrying a prompt did not fit (Round 20). Arrays or numbers in."""
    return overhead_s + per_kernel_s * kernels


def smeared_waves(closed: dict, steady: dict, host_s, wave_sync, overhead_s, S, G, shared_s=0.0,
                  balance_s=0.0, recv_s=0.0) -> dict:
    """A closed-loop benchmark between its two idealizations. Its first wave is in step by
    construction (the benchmark starts all C requests at once: planner.cost.closed_loop.closed_loop's
    first wave, its share of the requests counted as the benchmark counts them); later
    waves keep in step only as far as the requests' first tokens do: ``wave_sync`` s = 1
    keeps them in step (the groups of planner.cost.closed_loop.closed_loop), s = 0 spreads their arrivals
    over the steps (the steady state's TTFT, plus the host time per step, plus
    ``shared_s``: the step carrying the prompt also carries the others' prompts that
    arrived meanwhile, planner.cost.closed_loop.shared_prompt_step's shared less lone step; and
    ``balance_s``, the wait of a prompt that arrives alone for an attention-DP balancer,
    planner.cost.adp_balance.adp_balance_wait_steps: prompts in step arrive together and meet none). Every later
    prompt, in step or not, also waits ``recv_s`` for a scheduler that polls for requests
    only every few iterations (:func:`recv_wait_steps`; the first wave meets an idle one). So
    TTFT = f x first wave + (1 - f) x (s x later groups + (1 - s) x steady + recv),
    plus the wait for a running slot and the request's time outside the GPU steps
    (``overhead_s``: HTTP, tokenization). TPOT is the closed loop's whatever the
    synchrony: over its G - 1 decode steps a request lives through the prefill of the
    other C - 1 requests' prompts either way, grouped in a few steps or spread over many
    (leave-one-model-out chose it over mixing TPOT with the steady state's as well).
    Throughput follows from Little's law in a closed loop: S requests in flight / latency.
    s = 1 and no overhead (the column defaults) give planner.cost.closed_loop.closed_loop exactly. The
    parameters are fitted on measured runs (planner.serving_params)."""
    s = wave_sync
    tpot = closed["tpot_s"]
    f = closed["first_share"]
    later = s * closed["ttft_steady_s"] + (1.0 - s) * (steady["ttft_s"] + host_s + shared_s + balance_s) + recv_s
    ttft = f * closed["ttft_first_wave_s"] + (1.0 - f) * later + closed["wait_s"] + overhead_s
    latency = ttft + (G - 1.0) * tpot
    exact = (s == 1.0) & (overhead_s == 0.0) & (np.asarray(recv_s) == 0.0)  # s = 1: no spread arrivals for a balancer
    return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": np.where(exact, closed["latency_s"], latency),
            "throughput_req_s": np.where(exact, closed["throughput_req_s"], S / latency)}
