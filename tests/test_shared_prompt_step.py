"""The step that carries a prompt in a closed loop whose requests are not in step
(planner.cost.closed_loop.shared_prompt_step): it also carries the prompts the other requests
sent meanwhile. Checked against the discrete-event simulator with spread, jittered
arrivals (the oracle: it schedules every request and times every step), and for its
limits (one request in flight: today's lone prompt; more requests never a shorter step)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.cost.serving import effective_budget, shared_prompt_step
from planner.cost.waves import smeared_waves
from planner.cost.simulate import simulate
from planner.cost.steps import StepTable, step_time
from tests.test_serving import ctx

KINDS = ((True, True), (False, True), (True, False))  # (chunked, mixed): vLLM, TensorRT-LLM, SGLang
MODELS = ("llama-3.1-8b", "qwen3-32b", "qwen3-30b-a3b")
HOST_S = 1e-3


def _case(model, tp, C, P, G, kind, budget):
    chunked, mixed = KINDS[kind]
    x = ctx(MODELS[model], tp=tp)
    B = int(effective_budget(budget, P, C, chunked))
    shared, lone, _ = (float(v[0]) for v in shared_prompt_step(x, C, P, G, B, mixed, HOST_S, chunked))
    return x, B, chunked, mixed, shared, lone


def _simulated_prompt_step(x, C, P, G, B, chunked, mixed, shared, jitter_steps=2.0):
    """Mean time of the step that completed each prompt, and mean wait before it, past the
    first four waves, in a closed loop started spread over one cycle whose replacements
    come after a random delay of ``jitter_steps`` decode steps (so that requests which
    shared a step part again)."""
    t_dec = float(step_time(x, C, 0.0, C, P + 1.0 + 0.5 * G, 0.0, HOST_S)[0])
    tab = StepTable(x, max(B, C) + 1, HOST_S)
    n = max(40 * C, 400)
    s = simulate(tab, prompt_len=P, gen_len=G, token_budget=B, max_running=4096, chunked=chunked, mixed=mixed,
                 concurrency=C, n_requests=n, spread_s=(G - 1) * t_dec + shared, jitter_s=jitter_steps * t_dec)
    late = slice(4 * C, None)
    return float(np.mean(s["prompt_step"][late])), float(np.mean((s["ttft"] - s["prompt_step"])[late]))


def _fits_idealization(C, P, G, B, shared, t_dec):
    """No queueing for a step: the prompts of a step fit in it, and the prompt-carrying
    steps take at most 30% of the time."""
    g = 1.0 + (C - 1.0) / G
    return g * P <= B - C and (C / g) * shared <= 0.3 * ((G - 1) * t_dec + shared)


def test_shared_step_agrees_with_simulator_on_a_grid():
    """A randomized grid over models, TP, concurrency, lengths, budgets and the three
    scheduler kinds: the analytic shared step agrees with the simulator's mean prompt step
    within 5% over the grid and at the typical point, and closer than the lone prompt's
    step where the others' prompts matter."""
    rng = np.random.default_rng(11)
    ratios, lone_ratios, many = [], [], []
    while len(ratios) < 16:
        C, P, G = int(2 ** rng.uniform(2, 8)), int(2 ** rng.uniform(7, 12)), int(2 ** rng.uniform(4, 9))
        args = (int(rng.integers(3)), int(2 ** rng.integers(0, 3)), C, P, G, int(rng.integers(3)),
                int(2 ** rng.integers(12, 15)))
        x, B, chunked, mixed, shared, lone = _case(*args)
        t_dec = float(step_time(x, C, 0.0, C, P + 1.0 + 0.5 * G, 0.0, HOST_S)[0])
        if not _fits_idealization(C, P, G, B, shared, t_dec):
            continue
        sim, _ = _simulated_prompt_step(x, C, P, G, B, chunked, mixed, shared)
        ratios.append(shared / sim)
        lone_ratios.append(lone / sim)
        many.append(C / G > 0.1)
    r, rl, many = np.array(ratios), np.array(lone_ratios), np.array(many)
    assert abs(r.mean() - 1.0) < 0.05, r
    assert np.median(np.abs(r - 1.0)) < 0.05, r
    assert np.all(np.abs(r - 1.0) < 0.15), r
    assert many.sum() >= 3 and np.mean(np.abs(r[many] - 1.0)) < np.mean(np.abs(rl[many] - 1.0)), (r, rl)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2), st.sampled_from([1, 2, 4]), st.integers(8, 160), st.integers(128, 2048),
       st.integers(64, 512), st.integers(0, 2), st.sampled_from([4096, 8192, 16384]))
def test_shared_step_near_the_simulator_anywhere(model, tp, C, P, G, kind, budget):
    """Any point of the idealization's domain within 15%. Replacements come 8 decode
    steps after on average here: the requests that finished in one step come back close
    together, and with a delay of 2 steps those whose prompts shared a step apart from the
    decodes (no mixed batches) stay grouped, so the simulator's prompt steps gather more
    prompts than the independent arrivals the analytic count takes (up to 17% more: C = 63,
    P = 128, G = 142, 4,096 tokens; 1% at a delay of 32 steps). At least 64 tokens out, so
    the delay keeps most requests in flight."""
    x, B, chunked, mixed, shared, lone = _case(model, tp, C, P, G, kind, budget)
    t_dec = float(step_time(x, C, 0.0, C, P + 1.0 + 0.5 * G, 0.0, HOST_S)[0])
    if not _fits_idealization(C, P, G, B, shared, t_dec):
        return
    sim, _ = _simulated_prompt_step(x, C, P, G, B, chunked, mixed, shared, jitter_steps=8.0)
    assert abs(shared / sim - 1.0) < 0.15, (shared, lone, sim)  # as the grid test's farthest point


@pytest.mark.xfail(strict=True, reason="known gap: the simulator's prompt steps carry more prompts than "
                   "the analytic count (28% longer step) at this point")
def test_shared_step_gap_found_by_exploration():
    """A point the property above drew with fresh examples (HYPOTHESIS_PROFILE=explore): vLLM
    (chunked, mixed), Qwen3-32B on one device, 14 in flight, 1,015 tokens in, 172 out,
    4,096-token budget. The analytic shared prompt step is 115 ms against the simulator's
    160 ms (-28%): requests that finished together come back together and their prompts share
    steps more than independent arrivals do. Held here until the count models that grouping."""
    x, B, chunked, mixed, shared, lone = _case(1, 1, 14, 1015, 172, 0, 4096)
    t_dec = float(step_time(x, 14, 0.0, 14, 1015 + 1.0 + 0.5 * 172, 0.0, HOST_S)[0])
    assert _fits_idealization(14, 1015, 172, B, shared, t_dec)
    sim, _ = _simulated_prompt_step(x, 14, 1015, 172, B, chunked, mixed, shared, jitter_steps=8.0)
    assert abs(shared / sim - 1.0) < 0.15, (shared, lone, sim)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2), st.sampled_from([1, 2, 8]), st.integers(16, 8192), st.integers(16, 4096),
       st.integers(0, 2), st.sampled_from([2048, 8192, 16384]))
def test_one_request_is_todays_lone_prompt_and_more_never_shorten_the_step(model, tp, P, G, kind, budget):
    """Prompts of 16 tokens or more (a one-token prompt is a decode) and outputs of 16 or
    more (with a few, every step is a prompt step: queueing, the closed loop's groups)."""
    chunked, mixed = KINDS[kind]
    x = ctx(MODELS[model], tp=tp)
    C = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0])
    B = effective_budget(budget, P, C, chunked)
    shared, lone, prompts = shared_prompt_step(x, C, P, G, B, mixed, HOST_S, chunked)
    assert shared[0] == lone[0] and prompts[0] == 1.0  # C = 1: no one else sends a prompt
    # while the others' prompts fit in the step beside the decodes (beyond, prompts queue
    # for steps: the closed loop's groups, not this term), more requests never shorten it
    room = B - np.where(mixed, C - prompts, 0.0)
    fits = prompts * P <= np.where(chunked, room, np.floor(room / P) * P)
    assert np.all(np.diff(shared)[fits[1:]] >= -1e-12 * shared[1:][fits[1:]]), shared
    # the closed loop's spread-arrival TTFT (wave_sync 0) with the term is today's at C = 1
    steady = {"ttft_s": 0.02 + 0.0 * C}
    closed = {"tpot_s": 0.01 + 0.0 * C, "first_share": 0.1 + 0.0 * C, "ttft_steady_s": 0.05 + 0.0 * C,
              "ttft_first_wave_s": 0.05 + 0.0 * C, "wait_s": 0.0 * C, "latency_s": 1.0 + 0.0 * C,
              "throughput_req_s": 1.0 + 0.0 * C}
    with_term = smeared_waves(closed, steady, HOST_S, 0.0, 0.0, C, G, shared - lone)["ttft_s"]
    today = smeared_waves(closed, steady, HOST_S, 0.0, 0.0, C, G)["ttft_s"]
    assert with_term[0] == today[0]
