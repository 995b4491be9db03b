"""k samples of a request sharing their prompt, as one "wide" request: one prefill of the
prompt, then k decodes a step (vLLM's parallel sampling, ``n = k``). The discrete-event
simulator (planner.cost.simulate.simulate, ``width``) is the oracle for the analytic
closed loop and open loop (``width``), and a single request is checked against the step
times summed by hand. Also: a running limit counts sequences, and the estimate command runs
shared samples as wide requests in the analytic model and in ``--simulate`` alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.cli import main
from planner.cost.open_loop import poisson
from planner.cost.running import requests_running
from planner.cost.serving import closed_loop, effective_budget
from planner.cost.simulate import simulate, summarize
from planner.cost.steps import StepTable

from test_serving import ctx


def _ctx_reading(cascade, min_prompt=0.0, min_seqs=0.0):
    """qwen3-8b-like test context (tests/test_serving.ctx's) with the engine's shared-prompt reads."""
    from planner.catalog import load_hardware, load_model
    from planner.cost.api import columns
    from planner.cost.context import Ctx
    from planner.cost.tables import HardwareTable, ModelTable

    cols = columns(1, model=0, hardware=0, devices=1, batch=1, concurrency=1, prompt_len=1024, gen_len=256,
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype="bf16", act_dtype="bf16",
                   kv_dtype="bf16", cascade=cascade, cascade_min_prompt=min_prompt, cascade_min_seqs=min_seqs)
    return Ctx(cols, ModelTable.build([load_model("llama-3.1-8b")]), HardwareTable.build([load_hardware("h100-sxm")], [None]))


@pytest.mark.parametrize("rule, once", [((2.0,), True), ((0.0,), False), ((1.0, 256.0, 8.0), True),
                                        ((1.0, 256.0, 16.0), False), ((1.0, 2048.0, 8.0), False)])
def test_one_wide_request_is_one_prefill_then_k_decodes_a_step(rule, once):
    """Brute force: a lone request of k = 8 samples takes one step carrying its P prompt tokens
    (one logit row), then G - 1 steps of k decodes at contexts P + 1 .. P + G - 1, each step
    reading the prompt once for the k sequences (P + k j tokens, k x (P / k + j)) where the
    engine's kernel does -- every request's samples (2), or one request alone with enough
    sequences and prompt (1: vLLM's 8 and 256) -- else k x (P + j)."""
    tab = StepTable(_ctx_reading(*rule), 9000, 1e-3)
    P, G, k = 1024, 64, 8
    s = simulate(tab, prompt_len=P, gen_len=G, token_budget=8192, max_running=4096, chunked=True, mixed=True,
                 concurrency=1, n_requests=1, width=k)
    assert s["ttft"][0] == pytest.approx(tab.time(0, P, 1, 0.0, (P + 1) / 2), rel=1e-12)
    ctx0 = P / k if once else P
    by_hand = np.mean([tab.time(k, 0, k, ctx0 + j, 0.0) for j in range(1, G)])
    assert s["tpot"][0] == pytest.approx(by_hand, rel=1e-9)
    assert summarize(s, G)["throughput_tok_s"] == pytest.approx(k * G / s["e2e"][0], rel=1e-9)


def test_analytic_closed_loop_of_wide_requests_agrees_with_simulator():
    """The randomized grid of tests/test_serving.py (models, TP, lengths, budgets, the three
    scheduler kinds) with 2 to 16 samples a request sharing the prompt: the mean-field
    closed loop's mean TTFT and TPOT agree with the simulator's within 5% on the grid's mean
    and typical point, 25% everywhere (measured: grid means 1.005 and 1.000, worst 1.18)."""
    rng = np.random.default_rng(11)
    ratios = []
    for _ in range(32):
        model = ("llama-3.1-8b", "qwen3-32b", "qwen3-30b-a3b")[rng.integers(3)]
        tp = int(2 ** rng.integers(0, 3))
        w = int(2 ** rng.integers(1, 5))
        C, P, G = int(2 ** rng.uniform(0, 6)), int(2 ** rng.uniform(7, 13)), int(2 ** rng.uniform(5, 11))
        chunked, mixed = ((True, True), (False, True), (True, False))[rng.integers(3)]
        x = ctx(model, tp=tp)
        B = int(effective_budget(int(2 ** rng.integers(11, 15)), P, C * w, chunked))
        tab = StepTable(x, max(B, C * w) + 1, 1e-3)
        s = simulate(tab, prompt_len=P, gen_len=G, token_budget=B, max_running=4096, chunked=chunked,
                     mixed=mixed, concurrency=C, n_requests=10 * C, width=w)
        a = closed_loop(x, C, P, G, B, mixed, 1e-3, chunked=chunked, width=w)
        ratios.append((a["ttft_s"][0] / np.mean(s["ttft"]), a["tpot_s"][0] / np.mean(s["tpot"])))
    r = np.array(ratios)
    assert np.all(np.abs(r.mean(axis=0) - 1.0) < 0.05), r.mean(axis=0)
    assert np.all(np.median(np.abs(r - 1.0), axis=0) < 0.05)
    assert np.all(np.abs(r - 1.0) < 0.25), r


@pytest.mark.parametrize("w, rates", [(1, (2.0, 10.0)), (4, (0.5, 2.5, 7.5)), (8, (1.25, 3.75))])
def test_open_loop_of_wide_requests_agrees_with_simulator(w, rates):
    """Poisson arrivals of requests of w samples below capacity: mean TPOT within 3% and
    TTFT within 5% of the simulator's (the TPOT a request sees counts its own w sequences
    in its step: without them it came out 3-6% short at w = 4-8, 0.7% at w = 1)."""
    x = ctx()
    tab = StepTable(x, 9000, 1e-3)
    for rate in rates:
        a = poisson(x, rate, 1024, 256, 8192, 1e-3, max_running=4096, width=w)
        s = simulate(tab, prompt_len=1024, gen_len=256, token_budget=8192, max_running=4096, chunked=True,
                     mixed=True, arrival="poisson", rate=rate, n_requests=3000, width=w)
        assert not a["unbounded"][0]
        assert a["tpot_s"][0] == pytest.approx(np.mean(s["tpot"]), rel=0.03)
        assert a["ttft_s"][0] == pytest.approx(np.mean(s["ttft"]), rel=0.05)
    # above capacity both say the queue grows without bound
    rate = 100.0 / w
    assert poisson(x, rate, 1024, 256, 8192, 1e-3, max_running=4096, width=w)["unbounded"][0]
    s = simulate(tab, prompt_len=1024, gen_len=256, token_budget=8192, max_running=4096, chunked=True,
                 mixed=True, arrival="poisson", rate=rate, n_requests=2000, width=w)
    assert np.mean(s["ttft"][-500:]) > 5 * np.mean(s["ttft"][:500])


@pytest.mark.parametrize("C, limit, w", [(4, 8, 4), (6, 8, 4), (8, 20, 4), (3, 16, 8)])
def test_a_running_limit_counts_sequences(C, limit, w):
    """An engine's max_num_seqs counts sequences: requests of w samples run floor(limit / w)
    at a time, the rest wait for a slot; the analytic wait (Little's law) agrees with the
    simulator's within 10% on TTFT, 5% on TPOT and end-to-end latency."""
    assert requests_running(limit, w) == limit // w
    x = ctx()
    tab = StepTable(x, 9000, 1e-3)
    s = simulate(tab, prompt_len=1024, gen_len=128, token_budget=8192, max_running=limit, chunked=True, mixed=True,
                 concurrency=C, n_requests=10 * C, width=w)
    a = closed_loop(x, C, 1024, 128, 8192, True, 1e-3, max_running=limit, width=w)
    assert a["ttft_s"][0] == pytest.approx(np.mean(s["ttft"]), rel=0.10)
    assert a["tpot_s"][0] == pytest.approx(np.mean(s["tpot"]), rel=0.05)
    assert a["latency_s"][0] == pytest.approx(np.mean(s["e2e"]), rel=0.05)


def _run(capsys, *extra):
    argv = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h200", "--engine", "vllm", "--samples", "4",
            "--simulate", "--json", *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("load", [["--arrival", "closed", "--concurrency", "8"], ["--rate", "2"]])
def test_estimate_runs_shared_samples_as_one_prefill(capsys, load):
    """With prefix sharing (the default) a request of 4 samples is one prefill in the analytic
    model and the simulator alike: both put TTFT below the unshared run's (4 prompts a
    request), the tokens a second are 4 x G x the requests a second, and the JSON says
    which of the two ran."""
    shared, apart = _run(capsys, *load), _run(capsys, *load, "--no-prefix-sharing")
    assert shared["simulation"]["shared_prompt"] is True and apart["simulation"]["shared_prompt"] is False
    for r in (shared, apart):
        sim = r["simulation"]
        assert sim["sequences_per_request"] == 4
        assert sim["throughput_tok_s"] == pytest.approx(sim["throughput_req_s"] * 4 * 256, rel=1e-9)
    assert shared["ttft_s"] < apart["ttft_s"]
    assert shared["simulation"]["ttft"]["mean_s"] < apart["simulation"]["ttft"]["mean_s"]
    # the tokens a second the loop serves at the same load are at least the unshared run's
    if "--concurrency" in load:
        assert shared["throughput_tok_s"] > apart["throughput_tok_s"]
        assert shared["simulation"]["throughput_tok_s"] > apart["simulation"]["throughput_tok_s"]


@pytest.mark.parametrize("C", [1, 4])
def test_timing_models_follow_the_engines_prompt_read(C):
    """vLLM's rule (a prefix common to the whole step, 8+ sequences, 256+ tokens) in the timing
    models: one request of 8 samples alone reads its prompt once a step, so its TPOT is below the
    per-sequence read's (no cascade kernel); four requests read per sequence, the same TPOT as
    without a cascade kernel. The analytic closed loop agrees with the simulator either way."""
    P, G, w = 1024, 128, 8
    out = {}
    for name, rule in (("vllm", (1.0, 256.0, 8.0)), ("none", (0.0,))):
        x = _ctx_reading(*rule)
        a = closed_loop(x, C, P, G, 8192, True, 1e-3, width=w)
        s = simulate(StepTable(x, 9000, 1e-3), prompt_len=P, gen_len=G, token_budget=8192, max_running=4096,
                     chunked=True, mixed=True, concurrency=C, n_requests=10 * C, width=w)
        assert a["tpot_s"][0] == pytest.approx(np.mean(s["tpot"]), rel=0.02)
        out[name] = a["tpot_s"][0]
    if C == 1:
        assert out["vllm"] < 0.99 * out["none"]
    else:
        assert out["vllm"] == pytest.approx(out["none"], rel=1e-12)
