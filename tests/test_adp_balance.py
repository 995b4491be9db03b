"""TensorRT-LLM's attention-DP balancer (``attention_dp_config.enable_balance``,
``timeout_iters``): the closed form of planner.cost.adp_balance.adp_balance_wait_steps against a
brute-force simulation of the engine's rule (PyExecutor ``_balance_adp_requests``: every
iteration the ranks compare counts; context requests run when every rank holds one, else a
shared counter advances and releases them at the timeout), its limits, and what it does to
the closed loop and to the measured rows (engines/trtllm.yaml ``adp_balance_timeout_iters``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planner.cost.api import estimate
from planner.cost.adp_balance import adp_balance_wait_steps
from planner.engine_profiles import load_engine

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "serving-measured-hopper-dev.csv"


def _simulated_wait(ranks: int, arrivals_per_step: float, timeout: int, iters: int = 60_000, seed: int = 0) -> float:
    """Mean iterations a prompt waits under the balancer's rule, iteration by iteration:
    Poisson arrivals each step, each to a uniformly drawn rank; all ranks hold one -> run
    (counter reset); else counter + 1, run everything waiting once it reaches ``timeout``.
    (Every rank keeps generation requests: the rule's early release never fires.)"""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(arrivals_per_step, iters)
    pending: list[list[int]] = [[] for _ in range(ranks)]
    counter, waits = 0, []
    for it, k in enumerate(counts):
        for r in rng.integers(0, ranks, k):
            pending[r].append(it)
        if all(pending):
            counter, release = 0, True
        else:
            counter += 1
            release = counter >= timeout
            counter = 0 if release else counter
        if release:
            for q in pending:
                waits.extend(it - t0 for t0 in q)
                q.clear()
    return float(np.mean(waits))


@pytest.mark.parametrize("ranks,z,timeout", [(8, 0.03, 60), (8, 0.12, 60), (8, 0.5, 60), (8, 2.0, 60),
                                             (4, 0.2, 60), (16, 0.5, 60), (2, 0.05, 20), (8, 0.12, 10)])
def test_closed_form_matches_a_simulation_of_the_engines_rule(ranks, z, timeout):
    sim = _simulated_wait(ranks, z, timeout)
    model = float(adp_balance_wait_steps(ranks, z, timeout))
    assert model == pytest.approx(sim, rel=0.06, abs=0.5)


def _closed_loop_wait(ranks: int, clients: int, G: int, r: float, timeout: int, iters: int, seed: int = 1) -> float:
    """A closed loop of ``clients`` on ``ranks`` attention-DP ranks, iteration by iteration:
    each running request decodes a token an iteration; a finished request's client sends
    its next prompt at once to the same rank (the emptiest: TensorRT-LLM's ADP request
    assignment), its output length drawn from ``[r G, G]`` (the benchmark's spread); the
    balancer's rule, including the early release when a rank holds no generation request.
    Returns the mean iterations a prompt is held (after a warm-up)."""
    rng = np.random.default_rng(seed)
    rank = np.arange(clients) % ranks
    lo = int(r * G)
    remaining = np.ceil(rng.integers(lo, G + 1, clients) * rng.random(clients))  # ages spread
    pending, since = np.zeros(clients, bool), np.zeros(clients)
    counter, waits = 0, []
    for it in range(iters):
        running = ~pending
        remaining[running] -= 1
        done = running & (remaining <= 0)
        pending[done], since[done] = True, it
        has_ctx = np.bincount(rank[pending], minlength=ranks) > 0
        has_gen = np.bincount(rank[~pending], minlength=ranks) > 0
        if has_ctx.all():
            counter, release = 0, True
        else:
            counter += 1
            release = counter >= timeout or not has_gen.all()
            counter = 0 if release else counter
        if release and pending.any():
            idx = np.flatnonzero(pending)
            if it > iters // 5:
                waits.extend(it - since[idx])
            pending[idx] = False
            remaining[idx] = rng.integers(lo, G + 1, idx.size)
    return float(np.mean(waits))


@pytest.mark.parametrize("clients,G,within", [(128, 1024, 0.06), (256, 1024, 0.06), (16, 1024, 0.12),
                                              (1024, 1024, 0.06)])
def test_a_closed_loop_of_ranks_waits_what_the_closed_form_says(clients, G, within):
    """The arrival rate the serving model gives the closed form (``S / (G + 1 + TTFT / TPOT)``
    prompts a step, here with the simulated wait as the TTFT) against a closed loop whose
    arrivals come from its own finishing requests, not a Poisson stream; at 2 clients a rank
    the early release (a rank run dry of generation requests) makes the loop wait less."""
    sim = _closed_loop_wait(8, clients, G, 0.8, 60, iters=15_000)
    mean_g = 0.5 * (int(0.8 * G) + G)
    model = float(adp_balance_wait_steps(8, clients / (mean_g + 1.0 + sim), 60))
    assert model == pytest.approx(sim, rel=within)
    assert model >= sim - 0.5  # the early release only shortens the loop's wait


def test_limits_and_monotone_in_the_timeout():
    # rare prompts: the free-running counter, (tau - 1) / 2 whole iterations
    assert float(adp_balance_wait_steps(8, 1e-6, 60)) == pytest.approx(29.5, abs=0.05)
    # one rank always holds every prompt; no timeout is no balancer
    assert float(adp_balance_wait_steps(1, 0.1, 60)) == 0.0
    assert float(adp_balance_wait_steps(8, 0.1, 0)) == 0.0
    # dense prompts fill every rank at once
    assert float(adp_balance_wait_steps(8, 200.0, 60)) < 0.1
    taus = np.arange(0, 121, 5)
    w = adp_balance_wait_steps(8, 0.3, taus)
    assert np.all(np.diff(w) >= -1e-12)
    # more prompts a step never wait longer; more ranks to fill never wait less
    zs = np.geomspace(1e-3, 50, 40)
    assert np.all(np.diff(adp_balance_wait_steps(8, zs, 60)) <= 1e-9)
    assert np.all(np.diff(adp_balance_wait_steps(np.array([2, 4, 8, 16, 32, 64]), 0.5, 60)) >= -1e-9)


def _dsr1(engine, dp, C, **kw):
    return estimate("deepseek-r1", "h200", devices=1 if dp > 1 else 8, dp=dp, ep=8, concurrency=C, prompt_len=8192,
                    gen_len=1024, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8", engine=engine,
                    arrival="closed", range_ratio=0.8,
                    serving={"step_host_s": 0.0, "wave_sync": 0.0, "request_overhead_s": 0.0}, **kw)


def test_the_closed_loop_waits_only_where_the_engine_balances_attention_dp():
    on = load_engine("trtllm")
    off = on.model_copy(update={"adp_balance_timeout_iters": 0})
    a, b = _dsr1(on, 8, 128), _dsr1(off, 8, 128)
    assert a["tpot_s"] == b["tpot_s"]  # a wait before the prompt; the decode steps are the same
    added = a["ttft_s"] - b["ttft_s"]
    # at most the timeout's 60 iterations of the loop's step, at least a few of them
    assert 3.0 * a["tpot_s"] < added < 60.0 * a["tpot_s"]
    # tensor parallelism (one rank) and one request per rank (its finish empties the rank
    # of generation requests: released at once) do not wait
    assert _dsr1(on, 1, 128)["ttft_s"] == _dsr1(off, 1, 128)["ttft_s"]
    assert _dsr1(on, 8, 8)["ttft_s"] == _dsr1(off, 8, 8)["ttft_s"]


@pytest.mark.skipif(not DEV.exists(), reason="the shared dev file is not here")
def test_measured_attention_dp_rows_move_toward_their_measurement_and_nothing_else_moves():
    """The 9 aggregated TensorRT-LLM DeepSeek-R1 attention-DP rows of the dev file measure
    3.0-12.2 s TTFT; the balancer's wait raises each prediction and none passes its
    measurement (the wait is at most the 60 iterations); every other row is unchanged."""
    from planner.measured import read_measured
    from planner.replay import Prepared
    from planner.serving_profile import load_serving

    runs = read_measured(str(DEV))
    params = load_serving(None)
    prep = Prepared(runs)
    with_wait = prep.run(params)
    prep.cols["adp_balance_iters"] = np.zeros_like(prep.cols["adp_balance_iters"])
    without = prep.run(params)
    moved = np.flatnonzero(with_wait.ttft_s != without.ttft_s)
    assert moved.size == 9
    assert set(runs.engine[moved]) == {"trtllm"} and set(runs.mode[moved]) == {"agg"}
    assert np.all(runs.dp[moved] > 1)
    meas = runs.measured_ttft_s[moved]
    assert np.all(with_wait.ttft_s[moved] > without.ttft_s[moved])
    assert np.all(with_wait.ttft_s[moved] < meas)
    np.testing.assert_array_equal(with_wait.tpot_s, without.tpot_s)


def test_poisson_arrivals_wait_too_and_only_with_requests_to_spare_on_every_rank():
    on = load_engine("trtllm")
    off = on.model_copy(update={"adp_balance_timeout_iters": 0})
    kw = dict(devices=1, dp=8, ep=8, prompt_len=1024, gen_len=1024, weight_dtype="fp8", act_dtype="fp8",
              kv_dtype="fp8", arrival="poisson")
    busy_on = estimate("deepseek-r1", "h200", engine=on, rate=4.0, **kw)
    busy_off = estimate("deepseek-r1", "h200", engine=off, rate=4.0, **kw)
    assert busy_on["tpot_s"] == busy_off["tpot_s"]
    held = busy_on["ttft_s"] - busy_off["ttft_s"]
    assert 3.0 * busy_on["tpot_s"] < held < 60.0 * busy_on["tpot_s"]
    # so few in flight (0.54 generating over 8 ranks) that a prompt nearly always finds a rank
    # without a generation request and is released at once: P(Pois(0.54) >= 8) ~ 1e-7 of them wait
    idle_on = estimate("deepseek-r1", "h200", engine=on, rate=0.05, **kw)
    idle_off = estimate("deepseek-r1", "h200", engine=off, rate=0.05, **kw)
    assert 0.0 <= idle_on["ttft_s"] - idle_off["ttft_s"] < 0.01 * 60.0 * idle_on["tpot_s"]
