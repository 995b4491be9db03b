"""What a request costs under each arrival pattern, and what k samples of it load.

Oracles: (1) the books must balance: the devices a request holds for its share of the
time, times the tokens served per second, is the devices times its tokens
(``device_seconds x throughput = devices x G x k``), whatever the pattern, the samples,
the pipeline stages; under Poisson arrivals the share is 1 / the rate (idle time rented
too), so dollars are the hourly price over the rate and energy lies between idle and
maximum power over that time. (2) The discrete-event simulator (planner.cost.simulate),
run on the k x C sequences that k samples of C requests are, is the reference for the
closed loop's throughput and TPOT with samples. (3) k samples of a request at rate r load
the engine as k x r single-sample requests do (each sample is a sequence with its prompt,
no prefix sharing).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from planner.cli import main
from planner.cost.api import estimate, resolve_hardware, resolve_model
from planner.engine_profiles import load_engine

SECONDS_PER_HOUR = 3600.0  # a unit, not the module's constant: the oracle is the datasheet price


def _est(**kw):
    base = dict(prompt_len=1024, gen_len=256, weight_dtype="fp8", act_dtype="fp8", kv_dtype="fp8",
                engine=load_engine("vllm"), prefix_sharing=False)
    base.update(kw)
    return estimate(resolve_model(base.pop("model", "llama-3.1-8b")), resolve_hardware(base.pop("hardware", "h200")),
                    **base)


@settings(max_examples=25, deadline=None)
@given(pattern=st.sampled_from(["closed", "steady", "poisson", "static"]), samples=st.integers(1, 4),
       pp=st.sampled_from([1, 2]), devices=st.sampled_from([1, 2]), load=st.integers(1, 48))
def test_device_time_times_throughput_is_the_tokens_served(pattern, samples, pp, devices, load):
    kw = dict(model="llama-3.1-70b", samples=samples, pp=pp, devices=devices)
    if pattern == "static":
        r = _est(batch=load, **kw)
    elif pattern == "poisson":
        r = _est(arrival="poisson", rate=load / 16.0, **kw)
    else:
        r = _est(arrival=pattern, concurrency=load, **kw)
    if r["unbounded"] or not r["memory"]["fits"]:
        return
    tokens = 256 * samples
    assert r["device_seconds"] * r["throughput_tok_s"] == pytest.approx(devices * pp * tokens, rel=2e-3)


@pytest.mark.parametrize("rate", [0.25, 2.0])
@pytest.mark.parametrize("pp", [1, 2])
def test_a_poisson_request_rents_the_devices_for_one_over_the_rate(rate, pp):
    hw = resolve_hardware("h200")
    r = _est(model="llama-3.1-70b", devices=2, pp=pp, arrival="poisson", rate=rate)
    assert not r["unbounded"]
    n = 2 * pp
    assert r["device_seconds"] == pytest.approx(n / rate)
    hold_s = 1.0 / rate
    assert r["cost_usd"] == pytest.approx(n * hw.hourly_usd * hold_s / SECONDS_PER_HOUR, rel=1e-9)
    assert n * hw.idle_power_w * hold_s <= r["energy_j"] <= n * hw.max_power_w * hold_s * (1 + 1e-9)


def test_a_request_costs_less_at_a_higher_rate_until_the_engine_saturates():
    costs = [_est(arrival="poisson", rate=r)["cost_usd"] for r in (0.5, 2.0, 8.0)]
    assert costs[0] > costs[1] > costs[2]


@pytest.mark.parametrize("samples, concurrency", [(4, 8), (2, 16)])
def test_closed_loop_with_samples_matches_the_simulator(capsys, samples, concurrency):
    """The simulator runs k x C sequences (``--simulate``); the analytic closed loop's
    throughput and TPOT agree within 5% (the bound issue 10 sets the two), and its
    request rate is the sequences' over k."""
    assert main(["estimate", "--model", "llama-3.1-8b", "--hardware", "h200", "--engine", "vllm", "--arrival",
                 "closed", "--concurrency", str(concurrency), "--samples", str(samples), "--no-prefix-sharing",
                 "--simulate", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    sim = r["simulation"]
    assert sim["sequences_per_request"] == samples
    assert r["throughput_tok_s"] == pytest.approx(sim["throughput_tok_s"], rel=0.05)
    assert r["tpot_s"] == pytest.approx(sim["tpot"]["mean_s"], rel=0.05)
    assert sim["throughput_req_s"] * 256 * samples == pytest.approx(sim["throughput_tok_s"], rel=1e-6)


def test_k_samples_at_a_rate_load_the_engine_as_k_times_the_rate():
    one = _est(arrival="poisson", rate=8.0, samples=1)
    four = _est(arrival="poisson", rate=2.0, samples=4)
    assert four["tpot_s"] == pytest.approx(one["tpot_s"], rel=1e-9)
    assert four["throughput_tok_s"] == pytest.approx(one["throughput_tok_s"], rel=1e-9)
    # the same sequences served: a request of four samples holds the device four times as long
    assert four["device_seconds"] == pytest.approx(4.0 * one["device_seconds"])


@pytest.mark.parametrize("rate", [2.0, 6.0])
def test_poisson_work_is_shared_by_the_requests_little_law_keeps_in_flight(rate):
    """Under Poisson arrivals the weights a step streams are shared by the L = rate x latency
    requests in flight (Little's law), as in a steady state of any concurrency: weight bytes
    per request x requests in flight is the same per-step stream over G steps."""
    r = _est(arrival="poisson", rate=rate)
    steady = _est(arrival="steady", concurrency=8)
    in_flight = rate * r["latency_s"]
    assert in_flight > 1.5
    assert r["bytes"]["weights"] * in_flight == pytest.approx(steady["bytes"]["weights"] * 8, rel=1e-6)
    # a busier stream costs less energy per request: the weights are shared by more requests
    assert _est(arrival="poisson", rate=rate * 2)["energy_j"] < r["energy_j"]


def test_a_simulated_sequence_rate_beyond_the_bound_names_the_rate_given(capsys):
    assert main(["estimate", "--model", "llama-3.1-8b", "--hardware", "h200", "--engine", "vllm", "--rate", "1e7",
                 "--samples", "4", "--no-prefix-sharing", "--simulate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "field 'rate', value 10000000.0" in err and "--samples 4" in err


def _pattern(pattern, load):
    if pattern == "static":
        return {"batch": load}
    if pattern == "poisson":
        return {"arrival": "poisson", "rate": load / 16.0}
    return {"arrival": pattern, "concurrency": load}


@settings(max_examples=20, deadline=None)
@given(pattern=st.sampled_from(["closed", "steady", "poisson", "static"]), load=st.integers(1, 32),
       share=st.booleans())
def test_a_requests_linear_work_does_not_depend_on_how_requests_arrive(pattern, load, share):
    """The FLOPs of a request's GEMMs are its tokens times the weights, whatever the batch
    its steps run in; with a shared prompt (``prefix_sharing``) the prompt is prefilled once
    for its k samples, so the work is linear in k with a slope (one sample's decode) below
    one whole single-sample request. Under Poisson arrivals the sharing was dropped (the flag
    shadowed by the attention-DP balancer's share): 74 TFLOP a request of 4 samples instead
    of the other patterns' 31."""
    def linear(k, **kw):
        return _est(samples=k, prefix_sharing=share, **kw)["flops"]["linear"]

    ref = {k: linear(k, arrival="steady", concurrency=8) for k in (1, 2, 3)}
    got = {k: linear(k, **_pattern(pattern, load)) for k in (1, 2, 3)}
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-9)
    step = got[2] - got[1]
    assert got[3] - got[2] == pytest.approx(step, rel=1e-9)
    if share:
        assert step < 0.5 * got[1]  # 1,024 prompt tokens against 256 generated: the decode is the smaller part
    else:
        assert step == pytest.approx(got[1], rel=1e-9)


@pytest.mark.parametrize("rate", [4.0, 12.0])
def test_pipelined_poisson_work_is_that_of_the_requests_in_flight(rate):
    """Pipeline stages under Poisson arrivals: a request's work and memory are those of the
    pipelined steady state at the whole requests the stream keeps in flight (Little's law,
    rate x latency), as with one stage, not those of the one request the command was given
    (whose weight stream, shared by nobody, made the energy an upper bound at max power)."""
    r = _est(model="llama-3.1-70b", devices=2, pp=2, arrival="poisson", rate=rate)
    assert not r["unbounded"]
    in_flight = round(rate * r["latency_s"])
    assert in_flight >= 4
    steady = _est(model="llama-3.1-70b", devices=2, pp=2, arrival="steady", concurrency=in_flight)
    for kind in ("weights", "kv_cache"):
        assert r["bytes"][kind] == pytest.approx(steady["bytes"][kind], rel=1e-9)
    alone = _est(model="llama-3.1-70b", devices=2, pp=2, arrival="steady", concurrency=1)
    assert r["bytes"]["weights"] < alone["bytes"]["weights"] / 2  # the stream's weights are shared
