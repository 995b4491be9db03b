"""Capacity sizing from Poisson arrivals (planner.replica_rate): the per-replica rate the
report sizes fleets with is checked against the discrete-event simulator (the oracle: it
queues real requests), a tighter SLO never needs fewer devices (monotone), and the
report names the serving profile each device used."""

from __future__ import annotations

import math

import pytest

from planner.capacity import CapacityScenario, resolve
from planner.cost.serving_api import simulate_estimate
from planner.engine_profiles import load_engine
from planner.serving_profile import resolve_serving
from planner.sizing import plan


def _scenario(ttft, tpot, *, engine="vllm", model="llama-3.1-8b", hw="h100-sxm", rps=20.0, percentile=90,
              concurrency=(256,), prompt_len=1024, gen_len=256, quantization="bf16", **extra):
    return CapacityScenario.model_validate({
        "traffic": {"requests_per_s": rps, "prompt_len": prompt_len, "gen_len": gen_len},
        "slo": {"percentile": percentile, "ttft_s": ttft, "tpot_s": tpot}, "models": [model], "hardware": [hw],
        "engine": engine, "headroom": 0, "redundancy": 0,
        "search": {"devices": [1], "quantizations": [quantization], "kv_dtypes": ["bf16"],
                   "concurrency": list(concurrency)},
        **extra})


def _simulate(scn, rate, prompt_len=1024, gen_len=256, weight_dtype="bf16", act_dtype="bf16", n_requests=3000):
    models, hws = resolve(scn)
    ch = resolve_serving(hws[0], load_engine(scn.engine))
    s = simulate_estimate(models[0], hws[0], devices=1, concurrency=0, prompt_len=prompt_len, gen_len=gen_len,
                          weight_dtype=weight_dtype, act_dtype=act_dtype, engine=ch.engine, efficiency=ch.efficiency, arrival="poisson",
                          rate=rate, n_requests=n_requests)
    return s["ttft"]["p90_s"], s["tpot"]["p90_s"]


@pytest.mark.parametrize("ttft, tpot", [(0.3, 0.05), (2.0, 0.03), (0.2, 0.02)])
def test_rate_per_replica_agrees_with_the_simulator(ttft, tpot):
    """At the rate found, the simulated p90 TTFT and TPOT are within 20% of the SLOs (the
    model's TPOT percentile counts the carrying steps and the batch's swing; its TTFT tail
    is conservative); 30% above it the simulator misses an SLO: the rate is not far below
    what the replica can take."""
    scn = _scenario(ttft, tpot)
    c = plan(scn, *resolve(scn))["candidates"][0]
    assert c["status"] == "ok"
    lam = c["per_replica"]["requests_per_s"]
    assert lam > 0 and "h100-sxm.vllm.yaml" in c["profile"]
    t, p = _simulate(scn, lam)
    assert t <= 1.2 * ttft and p <= 1.2 * tpot
    t, p = _simulate(scn, 1.3 * lam)
    assert t > ttft or p > tpot


def test_batch_swing_tpot_tail_agrees_with_the_simulator():
    """Short prompts, long generations, near the running cap: the step time is mostly the
    per-request KV read, so the p90 TPOT is set by the swing of the batch size (not by the
    carrying steps). At the rate found the model's p90 TPOT is within 15% of the
    simulator's."""
    scn = _scenario(5.0, 0.014, prompt_len=128, gen_len=512)
    c = plan(scn, *resolve(scn))["candidates"][0]
    assert c["status"] == "ok"
    lam = c["per_replica"]["requests_per_s"]
    model_p90 = next(s["value"] for s in c["slo"] if s["metric"] == "tpot_s")
    _, sim_p90 = _simulate(scn, lam, prompt_len=128, gen_len=512)
    assert abs(sim_p90 / model_p90 - 1.0) <= 0.15


def test_fleet_follows_the_rate():
    scn = _scenario(0.5, 0.05, rps=40.0, headroom=0.25, redundancy=1)
    c = plan(scn, *resolve(scn))["candidates"][0]
    lam = c["per_replica"]["requests_per_s"]
    need = math.ceil(40.0 * 1.25 / lam - 1e-9)
    assert c["fleet"]["replicas_needed"] == need and c["fleet"]["replicas"] == need + 1


@pytest.mark.parametrize("engine", ["vllm", "sglang", None])
def test_a_tighter_slo_never_needs_fewer_devices(engine):
    """Monotone: tightening TTFT or TPOT (or raising the percentile) never shrinks the fleet
    nor raises the per-replica rate."""
    kw = dict(engine=engine, rps=30.0, concurrency=(16, 64, 256))
    prev = None
    for ttft, tpot in [(5.0, 0.2), (1.0, 0.05), (0.5, 0.04), (0.3, 0.03), (0.2, 0.025)]:
        scn = _scenario(ttft, tpot, **kw)
        c = plan(scn, *resolve(scn))["candidates"][0]
        devices = c["fleet"]["devices"] if c["status"] == "ok" else math.inf
        if prev is not None:
            assert devices >= prev
        prev = devices
    loose = plan(s := _scenario(0.5, 0.04, percentile=50, **kw), *resolve(s))["candidates"][0]
    tight = plan(s := _scenario(0.5, 0.04, percentile=99, **kw), *resolve(s))["candidates"][0]
    assert tight["status"] != "ok" or tight["fleet"]["devices"] >= loose["fleet"]["devices"]


def test_report_names_the_profile_used(tmp_path):
    import yaml

    from planner.report import blocks, build

    f = tmp_path / "scn.yaml"
    f.write_text(yaml.safe_dump({"traffic": {"requests_per_s": 5, "prompt_len": 1024, "gen_len": 256},
                                 "slo": {"ttft_s": 1.0}, "models": ["llama-3.1-8b"], "engine": "trtllm",
                                 "hardware": ["h200", "b200"], "search": {"quantizations": ["bf16"]}}))
    data = build(str(f))
    used = {c["hardware"]: c["profile"] for c in data["plan"]["candidates"]}
    assert "calibration/serving/h200.trtllm.yaml" in used["h200"]
    assert used["b200"].startswith("datasheet + carried trtllm parameters")
    content = blocks(data)
    i = content.index(("h2", "Profiles used"))
    text = " ".join(content[i + 1][1])
    assert "h200.trtllm.yaml" in text and "datasheet + carried trtllm" in text


def test_kv_cap_sizes_the_replica_as_the_simulator_queues_it():
    """Llama-3.1-70B fp8 on one H200 under TensorRT-LLM (it reserves a request's whole
    length): the free KV memory holds far fewer than the 256 requests searched, so the
    running set is the KV cap (planner.cost.running, the closed loop's and the replay's
    rule) and the rate is set by the wait for a running slot (TTFT). Against the
    discrete-event simulator (the oracle: it admits requests one by one while the cap
    has room) at the rate found, the p90 TTFT and TPOT are within 20% of the SLOs; 30%
    above it the simulator misses the TTFT SLO (queueing for slots)."""
    kw = dict(engine="trtllm", model="llama-3.1-70b", hw="h200", quantization="fp8", prompt_len=1024,
              gen_len=2048)
    scn = _scenario(10.0, 0.1, **kw)
    c = plan(scn, *resolve(scn))["candidates"][0]
    assert c["status"] == "ok"
    running = c["per_replica"]["max_running"]
    assert 8 <= running < 128  # the KV cap binds
    lam = c["per_replica"]["requests_per_s"]
    # the running set nearly full: Little's law, requests in a slot ~ rate x time in one
    assert lam * c["per_replica"]["latency_s"] > 0.6 * running
    sim = dict(prompt_len=1024, gen_len=2048, weight_dtype="fp8", act_dtype="fp8", n_requests=2000)
    t, p = _simulate(scn, lam, **sim)
    assert t <= 1.2 * 10.0 and p <= 1.2 * 0.1
    t, p = _simulate(scn, 1.3 * lam, **sim)
    assert t > 10.0


def test_slot_wait_is_erlang_c():
    """The probability of waiting for one of c running slots (planner.cost.running
    .slot_wait) against Erlang's C formula summed term by term in exact arithmetic."""
    from fractions import Fraction
    from math import factorial

    from planner.cost.running import slot_wait

    for c, a in ((1, 0.5), (4, 3.0), (16, 12.5), (60, 55.0), (200, 150.0)):
        af = Fraction(a)
        last = af ** c / factorial(c) * Fraction(c) / (c - af)
        exact = float(last / (sum(af ** k / factorial(k) for k in range(c)) + last))
        p, tail = slot_wait(a, 1.0, c)
        assert abs(float(p) - exact) < 1e-9 * max(exact, 1e-3)
        assert abs(float(tail) - 0.5 / (c - a)) < 1e-12  # M/D/c: half the M/M/c wait
    p, tail = slot_wait(5.0, 1.0, 5)
    assert p == 1.0 and tail == float("inf")  # offered load at the slots: unbounded
    p, tail = slot_wait(5.0, 1.0, float("inf"))
    assert p == 0.0 and tail == 0.0  # no running limit: nobody waits
