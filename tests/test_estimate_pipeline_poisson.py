"""``planner estimate --pp N --rate R`` (and ``--simulate``): pipeline stages under Poisson
arrivals. The capacity report is the outside oracle for the analytic figures (a pp replica
re-costs through the scalar API to the TTFT and TPOT the report sized it with), the
pipeline simulator for the open loop (within the bounds of the randomized grid of
tests/test_pipeline_open_loop.py), and above capacity the estimate says unbounded (exit 0,
as with one stage); bad input stays one line, exit 2."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from planner.cost.api import resolve_hardware, resolve_model
from planner.cli import main
from planner.cost.api import estimate
from planner.cost.serving_api import simulate_estimate
from planner.engine_profiles import load_engine


def _capacity(**kw):
    """The highest rate estimate(pp=) keeps bounded (bisection on log rate, brute force)."""
    lo, hi = math.log(1e-2), math.log(1e4)
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        if estimate(arrival="poisson", rate=math.exp(mid), **kw)["unbounded"]:
            hi = mid
        else:
            lo = mid
    return math.exp(lo)


def test_pipeline_replica_recosts_to_the_capacity_report(piped_plan):
    """The rows the capacity report sizes with pp stages: estimate(pp=, rate=) at the
    rate the report gives a replica returns the report's mean TTFT and TPOT (1e-6)."""
    ok = [c for c in piped_plan["candidates"] if c["status"] == "ok"]
    assert ok
    for c in ok:
        cf, pr, lay = c["config"], c["per_replica"], c["config"]["layout"]
        assert lay["pp"] > 1
        capped = load_engine(None).model_copy(update={"max_running": cf["concurrency"]})
        est = estimate(c["model"], c["hardware"], devices=lay["tp"], pp=lay["pp"], arrival="poisson",
                       rate=pr["requests_per_s"], engine=capped, prompt_len=cf["prompt_len"],
                       gen_len=cf["gen_len"], weight_dtype=cf["weight_dtype"], act_dtype=cf["act_dtype"],
                       kv_dtype=cf["kv_dtype"])
        assert not est["unbounded"] and est["mode"] == "serving, Poisson arrivals"
        assert est["ttft_s"] == pytest.approx(pr["ttft_s"], rel=1e-6)
        assert est["tpot_s"] == pytest.approx(pr["tpot_s"], rel=1e-6)
        assert est["throughput_tok_s"] == pytest.approx(pr["requests_per_s"] * cf["gen_len"], rel=1e-12)


@pytest.fixture(scope="module")
def piped_plan():
    from tests.test_capacity_layouts import _plan, _scn

    return _plan(_scn([{"tp": 1, "pp": 2}, {"tp": 2, "pp": 2}, {"tp": 1, "pp": 4}], models=("qwen3-32b",),
                      max_devices=4))


@pytest.mark.parametrize("model,tp,pp,P,G,share", [
    ("qwen3-8b", 1, 2, 1024, 256, 0.5), ("llama-3.1-8b", 1, 4, 512, 128, 0.3), ("qwen3-32b", 2, 2, 2048, 64, 0.7)])
def test_estimate_agrees_with_the_pipeline_simulator(model, tp, pp, P, G, share):
    """Below capacity the estimate's mean TTFT and TPOT are the pipeline simulator's
    (``--simulate``) within the randomized grid's per-point bound (25%; the grid's mean
    within 5%: tests/test_pipeline_open_loop.py)."""
    kw = dict(model=model, hardware="h100-sxm", devices=tp, pp=pp, prompt_len=P, gen_len=G)
    rate = share * _capacity(**kw)
    a = estimate(arrival="poisson", rate=rate, **kw)
    s = simulate_estimate(model=resolve_model(model),
                          hardware=resolve_hardware("h100-sxm"), devices=tp, concurrency=0,
                          prompt_len=P, gen_len=G, arrival="poisson", rate=rate, n_requests=1500, pp=pp, seed=1)
    assert s["pp"] == pp and a["pipeline"]["max_running"] == s["max_running"]
    assert a["ttft_s"] == pytest.approx(s["ttft"]["mean_s"], rel=0.25)
    assert a["tpot_s"] == pytest.approx(s["tpot"]["mean_s"], rel=0.25)


def test_above_capacity_is_unbounded_exit_0(capsys):
    kw = dict(model="qwen3-8b", hardware="h100-sxm", pp=2, prompt_len=1024, gen_len=256)
    cap = _capacity(**kw)
    over = estimate(arrival="poisson", rate=2.0 * cap, **kw)
    assert over["unbounded"] and np.isinf(over["ttft_s"]) and np.isinf(over["tpot_s"])
    assert not estimate(arrival="poisson", rate=0.5 * cap, **kw)["unbounded"]
    assert main(["estimate", "--pp", "2", "--rate", f"{2.0 * cap:.6g}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unbounded"] is True
    # more stages hold more requests of this memory-bound decode: the capacity grows
    assert _capacity(**{**kw, "pp": 4}) > cap


@pytest.mark.parametrize("argv,field", [
    (["--pp", "2", "--rate", "-1"], "rate"), (["--pp", "2", "--rate", "0", "--simulate"], "rate"),
    (["--pp", "2", "--rate", "3", "--arrival", "closed"], "arrival")])
def test_bad_input_is_one_line_exit_2(argv, field, capsys):
    assert main(["estimate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"'{field}'" in err


def test_cli_simulates_pipeline_stages(capsys):
    """``--simulate --pp`` runs the pipeline simulator (the JSON says so) for Poisson and
    closed arrivals."""
    base = ["estimate", "--prompt-len", "512", "--gen-len", "32", "--requests", "200", "--json"]
    assert main([*base, "--pp", "2", "--rate", "5", "--simulate"]) == 0
    sim = json.loads(capsys.readouterr().out)["simulation"]
    assert sim["pp"] == 2 and sim["requests"] == 200 and sim["tpot"]["mean_s"] > 0
    assert main([*base, "--pp", "2", "--concurrency", "8", "--arrival", "closed", "--simulate"]) == 0
    assert json.loads(capsys.readouterr().out)["simulation"]["pp"] == 2


@pytest.mark.parametrize("model, tp, pp, c", [("llama-3.1-405b", 8, 2, 32), ("llama-3.1-70b", 2, 2, 64)])
def test_closed_loop_pipeline_takes_the_stages_memory(model, tp, pp, c):
    """A model split into stages because it does not fit one group (405B bf16 on 8 H100s:
    810 GB of weights, 640 GB of memory) runs the closed loop on the KV memory a STAGE
    leaves (1/pp of the weights per device), as the pipeline simulator does: its running
    set and its TTFT stay within a small factor of the simulator's (once they were 80x
    apart: the microbatch's running set was costed with the whole model on one group)."""
    vllm = load_engine("vllm")
    kw = dict(devices=tp, pp=pp, concurrency=c, prompt_len=1024, gen_len=256, engine=vllm)
    m, h = resolve_model(model), resolve_hardware("h100-sxm")
    a = estimate(m, h, arrival="closed", **kw)
    s = simulate_estimate(m, h, arrival="closed", n_requests=40 * c, seed=0, **kw)
    assert a["memory"]["fits"]
    assert 1 / 3 < a["ttft_s"] / s["ttft"]["mean_s"] < 3
    assert 0.6 < a["tpot_s"] / s["tpot"]["mean_s"] < 1.4
