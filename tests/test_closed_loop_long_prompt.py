"""TPOT of a closed loop whose prompts are longer than the engine's token budget
(planner.cost.closed_loop.closed_loop): a prompt then spans several chunked-prefill steps, all of
them before its own first token, so they are in its TTFT, and its decode steps share only
the OTHER requests' chunks. That is the case of vLLM on an A100, L40S or L4 (a 2,048-token
budget: engines/vllm.yaml device tiers) with the 4K-8K prompts of published sweeps
(tests/data/published-nvidia-other.csv), and of any 8K prompt on a Hopper part.

Oracle: the discrete-event simulator (planner.cost.simulate), which schedules every request
and times every step with the same step costs. Before round 16 the closed form counted a
request's own earlier chunks as other requests' prefill inside its decode: at one request in
flight, a Qwen3-14B 8K prompt on an A100 took TPOT 27.8 ms against the simulator's 21.4 ms
(docs/serving-experiments.md, "Round 16 (S5)")."""

from __future__ import annotations

import numpy as np
import pytest

from planner.cost.serving import closed_loop, effective_budget
from planner.cost.simulate import simulate
from planner.cost.steps import StepTable
from tests.test_serving import ctx

HOST_S = 1e-4
BUDGET = 2048  # vLLM's default max_num_batched_tokens below 70 GiB and on A100 (engines/vllm.yaml)


@pytest.mark.parametrize("C, P, tol", [(1, 4096, 0.02), (1, 8192, 0.02), (2, 8192, 0.03), (4, 8192, 0.07)])
def test_tpot_of_prompts_longer_than_the_budget_agrees_with_the_simulator(C, P, tol):
    x = ctx("qwen3-14b", hw="a100-sxm-80gb")
    G = 128
    B = int(effective_budget(BUDGET, P, C, True))
    closed = closed_loop(x, np.array([C], float), np.array([P], float), np.array([G], float), np.array([B], float),
                         np.array([True]), HOST_S)
    tab = StepTable(x, max(B, C) + 1, HOST_S)
    s = simulate(tab, prompt_len=P, gen_len=G, token_budget=B, max_running=4096, chunked=True, mixed=True,
                 concurrency=C, n_requests=20 * C)
    sim_tpot = float(np.mean(s["tpot"][4 * C:]))
    assert float(closed["tpot_s"][0]) == pytest.approx(sim_tpot, rel=tol), (float(closed["tpot_s"][0]), sim_tpot)


def test_one_request_in_flight_decodes_at_the_pure_decode_step():
    """At one request in flight nothing rides its decode steps: the TPOT of an 8K prompt is
    the decode step at its context, whatever the budget (no prompt-length term beyond the
    KV it reads)."""
    x = ctx("qwen3-14b", hw="a100-sxm-80gb")
    G = 128
    one = lambda P, B: float(closed_loop(x, np.array([1.0]), np.array([P], float), np.array([G], float),  # noqa: E731
                                         np.array([float(B)]), np.array([True]), HOST_S)["tpot_s"][0])
    assert one(8192, 2048) == pytest.approx(one(8192, 16384), rel=1e-6)
