"""Serving as engines do: engine profiles, the continuous-batching simulator, the analytic
scheduler model (checked against the simulator), arrival patterns and bad input."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from planner.catalog import load_hardware, load_model
from planner.cli import main
from planner.cost.api import columns, estimate
from planner.cost.serving_api import simulate_estimate
from planner.cost.context import Ctx
from planner.cost.open_loop import poisson
from planner.cost.serving import closed_loop, effective_budget
from planner.cost.simulate import simulate
from planner.cost.steps import StepTable, step_time
from planner.cost.tables import HardwareTable, ModelTable
from planner.engine_profiles import EngineProfile, engine_names, load_engine
from planner.errors import InputError

ENGINES = ("vllm", "sglang", "trtllm", "generic")


def ctx(model="llama-3.1-8b", hw="h100-sxm", tp=1, w="bf16"):
    mt = ModelTable.build([load_model(model)])
    ht = HardwareTable.build([load_hardware(hw)], [None])
    cols = columns(1, model=0, hardware=0, devices=tp, batch=1, concurrency=1, prompt_len=1024, gen_len=256,
                   samples=1, kv_budget=0, prefix_sharing=False, weight_dtype=w, act_dtype=w, kv_dtype="bf16")
    return Ctx(cols, mt, ht)


# -- engine profiles ---------------------------------------------------------------------

def test_engine_profiles_ship_with_sources():
    assert set(ENGINES) <= set(engine_names())
    for name in ENGINES:
        e = load_engine(name)
        assert isinstance(e, EngineProfile) and e.name == name
        assert e.unsourced_fields() == []
        for field in ("token_budget", "max_running", "host_step_us", "kv_block_tokens", "chunked_prefill",
                      "mixed_batches", "prefix_caching", "cascade_attention", "cuda_graph_max_batch"):
            assert field in e.sources, (name, field)
    # documented defaults (engines/*.yaml sources)
    assert load_engine("vllm").token_budget == 8192 and load_engine("vllm").kv_block_tokens == 16
    assert load_engine("trtllm").kv_block_tokens == 32 and not load_engine("trtllm").chunked_prefill
    assert not load_engine("sglang").mixed_batches


def test_unknown_engine_is_an_input_error():
    with pytest.raises(InputError) as err:
        load_engine("tgi")
    assert err.value.field == "engine" and err.value.value == "tgi"


# -- step times ------------------------------------------------------------------------

def test_step_table_matches_vectorized_step_time():
    rng = np.random.default_rng(0)
    for model in ("llama-3.1-8b", "gemma-2-9b", "qwen3-30b-a3b"):
        x = ctx(model, tp=2)
        tab = StepTable(x, 9000, 1e-3)
        for _ in range(20):
            d, p = int(rng.integers(0, 300)), int(rng.integers(0, 8000))
            c_dec, c_pre = float(rng.uniform(10, 9000)), float(rng.uniform(1, 4000))
            ref = float(step_time(x, d, p, d + 1, c_dec, c_pre, 1e-3)[0])
            assert tab.time(d, p, d + 1, c_dec, c_pre) == pytest.approx(ref, rel=1e-12)
            assert float(tab.times(d, p, d + 1, c_dec, c_pre)) == pytest.approx(ref, rel=1e-12)


def test_decode_stretch_equals_step_by_step_sum():
    x = ctx("gemma-2-9b")  # sliding-window layers: the step time bends at the window
    tab = StepTable(x, 9000, 5e-4)
    for d, c0, k in ((1, 100.0, 50), (64, 3000.0, 3000), (200, 4090.0, 10)):
        brute = sum(tab.time(d, 0, d, c0 + s, 0.0) for s in range(k))
        n, total = tab.decode_stretch(d, c0, k)
        assert n == k and total == pytest.approx(brute, rel=1e-9)
        # a horizon stops after the step during which it passes
        n, part = tab.decode_stretch(d, c0, k, horizon=0.5 * brute)
        assert part >= 0.5 * brute and part - tab.time(d, 0, d, c0 + n - 1, 0.0) < 0.5 * brute


# -- the simulator ---------------------------------------------------------------------

def test_single_request_matches_brute_force():
    """One request at a time: TTFT is one prefill step, TPOT the mean of its decode steps
    at contexts P+1 .. P+G-1, each timed on its own (brute force)."""
    x = ctx()
    P, G, host = 1000, 64, 2e-4
    tab = StepTable(x, 9000, host)
    s = simulate(tab, prompt_len=P, gen_len=G, token_budget=8192, max_running=64, chunked=True, mixed=True,
                 concurrency=1, n_requests=3)
    ttft = float(step_time(x, 0, P, 1, 0.0, (P + 1) / 2, host)[0])
    tpot = np.mean([float(step_time(x, 1, 0, 1, P + 1.0 + i, 0.0, host)[0]) for i in range(G - 1)])
    assert np.allclose(s["ttft"], ttft, rtol=1e-9)
    assert np.allclose(s["tpot"], tpot, rtol=1e-9)
    assert np.allclose(np.diff(s["arrival"]), ttft + (G - 1) * tpot, rtol=1e-9)  # closed loop: back to back


def test_chunked_prefill_splits_a_long_prompt():
    x = ctx()
    tab = StepTable(x, 9000, 0.0)
    s = simulate(tab, prompt_len=5000, gen_len=8, token_budget=2048, max_running=8, chunked=True, mixed=True,
                 concurrency=1, n_requests=1)
    chunks = [(0, 2048), (2048, 4096), (4096, 5000)]
    ref = sum(float(step_time(x, 0, b - a, 1, 0.0, (a + b + 1) / 2, 0.0)[0]) for a, b in chunks)
    assert s["ttft"][0] == pytest.approx(ref, rel=1e-9)


def test_ttft_grows_with_concurrency_closed_loop():
    m, h = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    ttft = [estimate(m, h, concurrency=c, prompt_len=2048, gen_len=256, engine=load_engine("vllm"),
                     arrival="closed")["ttft_s"] for c in (1, 4, 16, 64, 256)]
    assert all(b > a for a, b in zip(ttft, ttft[1:])), ttft
    sims = [simulate_estimate(m, h, concurrency=c, prompt_len=2048, gen_len=256, engine=load_engine("vllm"),
                              arrival="closed")["ttft"]["mean_s"] for c in (1, 4, 16, 64, 256)]
    assert all(b > a for a, b in zip(sims, sims[1:])), sims


def test_simulator_speed_10k_requests():
    x = ctx()
    tab = StepTable(x, 9000, 1e-3)
    start = time.perf_counter()
    s = simulate(tab, prompt_len=1024, gen_len=256, token_budget=8192, max_running=1024, chunked=True,
                 mixed=True, arrival="poisson", rate=10.0, n_requests=10_000)
    elapsed = time.perf_counter() - start
    assert np.isfinite(s["ttft"]).all() and len(s["ttft"]) == 10_000
    assert elapsed < 3.0  # under 1 s on an idle core; slack for a shared CI machine


# -- the analytic model against the simulator -------------------------------------------

def test_analytic_closed_loop_agrees_with_simulator():
    """Randomized grid over models, TP, concurrency, lengths, token budgets (2048-16384),
    and the three scheduler kinds (chunked+mixed as vLLM, whole prompts as TensorRT-LLM,
    prefill apart as SGLang): the mean-field model's mean TTFT and TPOT agree with the
    discrete-event simulator's."""
    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(32):
        model = ("llama-3.1-8b", "qwen3-32b", "qwen3-30b-a3b")[rng.integers(3)]
        tp = int(2 ** rng.integers(0, 3))
        C, P, G = int(2 ** rng.uniform(0, 8)), int(2 ** rng.uniform(7, 13)), int(2 ** rng.uniform(5, 11))
        chunked, mixed = ((True, True), (False, True), (True, False))[rng.integers(3)]
        budget = int(2 ** rng.integers(11, 15))
        x = ctx(model, tp=tp)
        B = int(effective_budget(budget, P, C, chunked))
        tab = StepTable(x, max(B, C) + 1, 1e-3)
        s = simulate(tab, prompt_len=P, gen_len=G, token_budget=B, max_running=4096, chunked=chunked, mixed=mixed,
                     concurrency=C, n_requests=10 * C)
        a = closed_loop(x, C, P, G, B, mixed, 1e-3, chunked=chunked)
        ratios.append((a["ttft_s"][0] / np.mean(s["ttft"]), a["tpot_s"][0] / np.mean(s["tpot"])))
    r = np.array(ratios)
    assert np.all(np.abs(r.mean(axis=0) - 1.0) < 0.05), r.mean(axis=0)       # the grid's mean agrees within 5%
    assert np.all(np.median(np.abs(r - 1.0), axis=0) < 0.05)                 # so does the typical point
    assert np.all(np.abs(r - 1.0) < 0.25), r                                 # and no point is far off


def test_poisson_below_capacity_agrees_and_above_is_unbounded():
    x = ctx()
    tab = StepTable(x, 9000, 1e-3)
    for rate in (2.0, 10.0):
        a = poisson(x, rate, 1024, 256, 8192, 1e-3)
        s = simulate(tab, prompt_len=1024, gen_len=256, token_budget=8192, max_running=4096, chunked=True,
                     mixed=True, arrival="poisson", rate=rate, n_requests=5000)
        assert not a["unbounded"][0]
        assert a["tpot_s"][0] == pytest.approx(np.mean(s["tpot"]), rel=0.05)
        assert a["ttft_s"][0] == pytest.approx(np.mean(s["ttft"]), rel=0.10)
    a = poisson(x, 60.0, 1024, 256, 8192, 1e-3)
    assert a["unbounded"][0] and np.isinf(a["ttft_s"][0]) and np.isinf(a["tpot_s"][0])
    # the simulator agrees that the queue grows: later requests wait ever longer
    s = simulate(tab, prompt_len=1024, gen_len=256, token_budget=8192, max_running=4096, chunked=True,
                 mixed=True, arrival="poisson", rate=60.0, n_requests=3000)
    assert np.mean(s["ttft"][-1000:]) > 5 * np.mean(s["ttft"][:1000])


def test_unbounded_is_reported_not_a_number(capsys):
    assert main(["estimate", "--model", "llama-3.1-8b", "--prompt-len", "1024", "--gen-len", "256",
                 "--engine", "vllm", "--rate", "500", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["unbounded"] is True and r["ttft_s"] is None and r["tpot_s"] is None


def test_steady_state_is_still_the_default():
    m, h = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    a = estimate(m, h, concurrency=16, prompt_len=1024, gen_len=256)
    b = estimate(m, h, concurrency=16, prompt_len=1024, gen_len=256, engine=load_engine("vllm"), arrival="steady")
    assert a["ttft_s"] == b["ttft_s"] and a["tpot_s"] == b["tpot_s"] and not a["unbounded"]


def test_simulate_cli_reports_percentiles_and_goodput(capsys):
    assert main(["estimate", "--model", "llama-3.1-8b", "--prompt-len", "1024", "--gen-len", "128",
                 "--concurrency", "32", "--engine", "sglang", "--simulate", "--slo-ttft-s", "0.3",
                 "--slo-tpot-s", "0.05", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    sim = r["simulation"]
    assert sim["requests"] == 320 and sim["engine"] == "sglang"
    for key in ("ttft", "tpot", "e2e"):
        q = sim[key]
        assert q["p50_s"] <= q["p90_s"] <= q["p99_s"]
    assert 0.0 <= sim["slo_attainment"] <= 1.0
    assert sim["goodput_req_s"] == pytest.approx(sim["throughput_req_s"] * sim["slo_attainment"])


# -- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv, field", [
    (["--engine", "tgi"], "'engine'"),
    (["--rate", "0"], "'rate'"),
    (["--rate", "-3"], "'rate'"),
    (["--arrival", "bursty"], "'arrival'"),
    (["--ep", "3", "--model", "qwen3-30b-a3b", "--devices", "4"], "'ep'"),
    (["--ep", "2", "--model", "llama-3.1-8b"], "'ep'"),
    (["--dp", "2", "--devices", "4", "--num-devices", "4"], "'num-devices'"),
    (["--pp", "0"], "'pp'"),
    # found by flag fuzzing (S5b): a layout degree or a simulated request count beyond the
    # physical bounds (planner/bounds.py) escaped as OverflowError / numpy ValueError
    (["--dp", "9" * 401, "--model", "deepseek-v3", "--devices", "8"], "'dp'"),
    (["--pp", str(2**63)], "'pp'"),
    (["--simulate", "--requests", str(2**63)], "'requests'"),
    (["--rate", "1", "--simulate", "--requests", "9" * 401], "'requests'"),
    (["--simulate", "--requests", "0"], "'requests'"),
])
def test_bad_serving_input_exits_2_naming_the_field(argv, field, capsys):
    assert main(["estimate", "--concurrency", "4"] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and "\n" not in err and "Traceback" not in err


def test_capacity_scenario_engine_field(tmp_path):
    import yaml

    from planner.capacity import load_scenario
    from planner.sizing import _serving

    from pathlib import Path

    base = yaml.safe_load(open(Path(__file__).resolve().parent.parent / "examples" / "capacity.yaml"))
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump({**base, "engine": "trtllm"}))
    bad.write_text(yaml.safe_dump({**base, "engine": "tgi"}))
    scn, _, _ = load_scenario(str(good))
    cols = _serving(scn)
    assert cols["arrival"] == 1 and cols["chunked"] == 0  # closed loop, TensorRT-LLM's whole prompts
    with pytest.raises(InputError) as err:
        load_scenario(str(bad))
    assert err.value.field == "engine" and err.value.value == "tgi" and str(bad) in str(err.value)


def test_pipeline_bubble_and_gain():
    """Pipeline stages: one request in flight leaves pp-1 stages idle (the bubble: no
    more throughput, pp x the dollars per request); with at least pp microbatches the
    stages work at once (more throughput than the tensor-parallel group alone), and each
    device holds 1/pp of the weights."""
    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    kw = dict(devices=2, prompt_len=1024, gen_len=256, weight_dtype="fp8", act_dtype="fp8",
              engine=load_engine("vllm"), arrival="closed")
    one = estimate(m, h, concurrency=1, **kw)
    one_pp = estimate(m, h, concurrency=1, pp=4, **kw)
    assert one_pp["pipeline"]["bubble"] == pytest.approx(0.75)
    assert one_pp["throughput_tok_s"] <= one["throughput_tok_s"]
    assert one_pp["tpot_s"] >= one["tpot_s"]
    assert one_pp["cost_usd"] == pytest.approx(4 * one["cost_usd"], rel=1e-9)
    base = estimate(m, h, concurrency=32, **kw)
    piped = estimate(m, h, concurrency=32, pp=2, **kw)
    assert piped["pipeline"]["bubble"] == 0.0
    assert piped["throughput_tok_s"] > base["throughput_tok_s"]
    assert piped["memory"]["weights_bytes"] == pytest.approx(base["memory"]["weights_bytes"] / 2)


def test_disaggregated_prefill_decode():
    """Separate prefill and decode workers: decode steps carry no prefill, so TPOT is a
    pure decode step (brute force: the step timed on its own) of the C/Y sequences that
    are decoding, those past their prefill and hand-off (Little's law: C/Y times the share
    of a request's cycle spent decoding, planner.cost.disagg.handed_off), and falls with
    more decode workers; TTFT falls with more prefill workers (the KV transfer:
    tests/test_disagg_kv_transfer.py)."""
    from planner.cost.serving_api import disaggregated_estimate

    m, h = load_model("llama-3.1-70b"), load_hardware("h100-sxm")
    # 32 in flight: what one TP2 decode worker's free memory holds at full length (about 50;
    # beyond it the rest wait for a decode slot, tests/test_disagg_handoff.py)
    kw = dict(prefill_devices=2, decode_devices=2, concurrency=32, prompt_len=4096, gen_len=512,
              weight_dtype="fp8", act_dtype="fp8", engine=load_engine("trtllm"))
    base = disaggregated_estimate(m, h, prefill_workers=1, decode_workers=1, **kw)
    more_dec = disaggregated_estimate(m, h, prefill_workers=1, decode_workers=2, **kw)
    more_pre = disaggregated_estimate(m, h, prefill_workers=2, decode_workers=1, **kw)
    assert more_dec["tpot_s"] < base["tpot_s"] and more_pre["ttft_s"] < base["ttft_s"]
    x = ctx("llama-3.1-70b", tp=2, w="fp8")
    decoding = 511 * base["tpot_s"]
    n = 32 * decoding / (base["ttft_s"] + decoding)
    assert 16 < n < 32
    ref = float(step_time(x, n, 0, n, 4096 + 1 + 255.5, 0.0, load_engine("trtllm").host_step_s)[0])
    assert base["tpot_s"] == pytest.approx(ref, rel=2e-3)
    assert base["disaggregated"]["devices"] == 4


def test_disaggregated_needs_both_sides(capsys):
    assert main(["estimate", "--concurrency", "8", "--prefill-workers", "2"]) == 2
    assert "'decode-workers'" in capsys.readouterr().err


def test_running_limit_queues_the_rest():
    """More requests than the engine runs at once: the rest wait for a slot (Little's law
    in the analytic model), as the simulator's admission queue does."""
    x = ctx()
    tab = StepTable(x, 9000, 1e-3)
    for C, R in ((64, 16), (40, 8)):
        s = simulate(tab, prompt_len=1024, gen_len=256, token_budget=8192, max_running=R, chunked=True,
                     mixed=True, concurrency=C, n_requests=10 * C)
        a = closed_loop(x, C, 1024, 256, 8192, True, 1e-3, max_running=R)
        assert a["ttft_s"][0] == pytest.approx(np.mean(s["ttft"]), rel=0.10)
        assert a["tpot_s"][0] == pytest.approx(np.mean(s["tpot"]), rel=0.05)
        free = closed_loop(x, C, 1024, 256, 8192, True, 1e-3)
        assert a["ttft_s"][0] > free["ttft_s"][0]


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

if given is not None:
    _TABLE = {}

    @settings(max_examples=40, deadline=None)
    @given(C=st.integers(1, 40), P=st.integers(1, 3000), G=st.integers(1, 300), B=st.sampled_from([512, 2048, 8192]),
           kind=st.sampled_from([(True, True), (False, True), (True, False)]), poisson_rate=st.sampled_from([0.0, 3.0]))
    def test_simulator_invariants(C, P, G, B, kind, poisson_rate):
        """Causality and work conservation for any workload: arrival <= first token <=
        finish; every request gets its G tokens; no step is shorter than a lone decode."""
        if "x" not in _TABLE:
            _TABLE["x"] = StepTable(ctx(), 9000, 0.0)
        tab = _TABLE["x"]
        chunked, mixed = kind
        budget = int(effective_budget(B, P, C, chunked))
        arrival = "poisson" if poisson_rate else "closed"
        s = simulate(tab, prompt_len=P, gen_len=G, token_budget=budget, max_running=64, chunked=chunked,
                     mixed=mixed, arrival=arrival, concurrency=C, rate=poisson_rate or None, n_requests=3 * C)
        assert np.all(s["arrival"] <= s["first"]) and np.all(s["first"] <= s["finish"])
        assert np.all(np.isfinite(s["e2e"]))
        lone = tab.time(1, 0, 1, P + 1.0, 0.0)
        if G > 1:
            assert np.all(s["tpot"] >= lone * (1 - 1e-9))
        assert np.all(s["ttft"] >= tab.time(0, min(P, budget), 1, 0.0, 0.5 * (min(P, budget) + 1)) * (1 - 1e-9)
                      - 1e-12) or not chunked


def test_checks_file_engine_field(tmp_path, capsys):
    good = tmp_path / "checks.yaml"
    good.write_text("checks:\n  - name: closed\n    estimate: {model: llama-3.1-8b, hardware: h100-sxm, concurrency: 32,"
                    " engine: vllm, arrival: closed}\n    assert: ['ttft_s <= 5']\n")
    assert main(["check", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("engine: vllm", "engine: tgi"))
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'checks.closed.estimate.engine'" in err and "'tgi'" in err  # as every field of a check
