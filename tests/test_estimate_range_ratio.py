"""`planner estimate --range-ratio R` (issue 10, arrival patterns as users measure them):
sglang bench_serving's ``--random-range-ratio R`` (vLLM's benchmark_serving.py before
``vllm bench serve``, InferenceMAX's copy of it at 0.8) draws each request's lengths from
the whole numbers in [int(R L), L].

Oracles: the discrete-event simulator (planner.cost.simulate), which draws every request's
output length and times every step; the mean of the uniform draw computed by brute force;
the output of today's command (R = 1 must not change a byte)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cli import main
from planner.cost.api import estimate
from planner.cost.serving_api import simulate_estimate
from planner.bounds import check_range_ratio
from planner.cost.spread import spread_lengths
from planner.engine_profiles import load_engine
from planner.errors import InputError

H100 = "h100-sxm"
# the three scheduler kinds: chunked+mixed (vLLM), whole prompts (TensorRT-LLM), prefill apart (SGLang)
KINDS = ((True, True), (False, True), (True, False))


def _grid(n=24, seed=7):
    """The randomized grid of tests/test_serving.py's analytic-vs-simulator test."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        model = ("llama-3.1-8b", "qwen3-32b", "qwen3-30b-a3b")[rng.integers(3)]
        tp = int(2 ** rng.integers(0, 3))
        C, P, G = int(2 ** rng.uniform(0, 8)), int(2 ** rng.uniform(7, 13)), int(2 ** rng.uniform(5, 11))
        chunked, mixed = KINDS[rng.integers(3)]
        budget = int(2 ** rng.integers(11, 15))
        yield model, tp, C, P, G, chunked, mixed, budget


def _ratios(R):
    """Analytic closed loop (estimate) over simulated means (simulate_estimate), TTFT and
    TPOT, each point under its own engine profile (1 ms host time per step)."""
    base = load_engine("generic")
    h = load_hardware(H100)
    out = []
    for model, tp, C, P, G, chunked, mixed, budget in _grid():
        eng = base.model_copy(update=dict(token_budget=budget, chunked_prefill=chunked, mixed_batches=mixed,
                                          host_step_us=1000.0, max_running=4096, device_tiers=[]))
        m = load_model(model)
        kw = dict(devices=tp, concurrency=C, prompt_len=P, gen_len=G, engine=eng, arrival="closed", range_ratio=R)
        a = estimate(m, h, **kw)
        s = simulate_estimate(m, h, **kw)
        out.append((a["ttft_s"] / s["ttft"]["mean_s"], a["tpot_s"] / s["tpot"]["mean_s"]))
    return np.array(out)


@pytest.fixture(scope="module")
def spread_ratios():
    return _ratios(0.8)


def test_agreement_with_the_simulator_at_range_ratio_08(spread_ratios):
    """R = 0.8 (InferenceMAX's) on the R = 1 test's randomized grid, plumbing end to end
    (estimate and simulate_estimate with range_ratio=). Measured today (24 points): TPOT
    mean ratio 0.974, median |error| 1.6%, worst 28% (0.72); TTFT mean ratio 1.12, median
    |error| 10%, worst 37%. At R = 1 the same grid gives 1.004 / 0.2% / 4% and
    1.024 / 1.4% / 12%. A regression guard at those figures, not the target (the test
    below states the target and fails today). Where they part, and why (both in the
    serving model, planner.cost.waves, not in the lengths costed):

    * TTFT, analytic higher: a spread closed loop's later prompts are costed as the
      steady state's arrivals, which wait for the step under way; the simulator's
      replacements arrive as the finishing step ends (no client gap) and wait for none.
      It shows where the prompt's own step is short: small prompts, one request in flight.
    * TPOT, analytic lower where prefill runs apart from decode (SGLang's kind) or whole
      prompts fill a step: the prompts come back one by one, and each separate prefill
      step stalls every decode (its host time, its weight read), where the analytic
      closed loop keeps TPOT the in-step loop's "whatever the synchrony"."""
    ttft, tpot = spread_ratios[:, 0], spread_ratios[:, 1]
    assert abs(tpot.mean() - 1.0) < 0.05 and np.median(np.abs(tpot - 1.0)) < 0.05, tpot
    assert np.all((tpot > 0.68) & (tpot < 1.10)), tpot
    assert 1.0 <= ttft.mean() < 1.16 and np.median(np.abs(ttft - 1.0)) < 0.12, ttft
    assert np.all((ttft > 0.85) & (ttft < 1.42)), ttft


@pytest.mark.xfail(strict=True, reason="at R = 0.8 the analytic spread closed loop and the simulator part by "
                                       "up to 37% (TTFT) and 28% (TPOT): see the test above")
def test_within_the_r1_tolerance_at_range_ratio_08(spread_ratios):
    """The target: the R = 1 test's tolerance (grid mean and median point within 5%,
    every point within 25%) for TTFT and TPOT alike."""
    assert np.all(np.abs(spread_ratios.mean(axis=0) - 1.0) < 0.05)
    assert np.all(np.median(np.abs(spread_ratios - 1.0), axis=0) < 0.05)
    assert np.all(np.abs(spread_ratios - 1.0) < 0.25)


@settings(max_examples=80, deadline=None)
@given(L=st.integers(1, 100_000), r=st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
def test_spread_lengths_are_the_mean_of_the_draw(L, r):
    """The lengths costed are the mean of the whole numbers in [int(r L), L] (brute force
    over the draw's support; r = 0: [0, L], sglang's default), rounded, at least one
    token; L itself at r = 1; never above L. (Where int(r L) is 0 the benchmarks part:
    sglang draws prompts from 1; the rule keeps 0.)"""
    lo = int(np.floor(L * r + 1e-9))
    support = np.arange(lo, L + 1)
    p, g = spread_lengths(L, L, r)
    assert p == g == max(int(np.round(support.mean())), 1)
    assert p <= L and spread_lengths(L, L, 1.0) == (L, L)


def test_spread_lengths_cost_less_work_than_the_longest():
    """Drawn lengths below L: the mean request reads and computes less than the fixed-L
    one, and the header says what was drawn."""
    m, h = load_model("llama-3.1-8b"), load_hardware(H100)
    kw = dict(concurrency=32, prompt_len=1024, gen_len=1024, engine=load_engine("vllm"), arrival="closed")
    fixed, spread = estimate(m, h, **kw), estimate(m, h, range_ratio=0.8, **kw)
    assert spread["energy_j"] < fixed["energy_j"] and spread["latency_s"] < fixed["latency_s"]
    c = spread["config"]
    assert (c["prompt_len"], c["gen_len"], c["range_ratio"]) == (1024, 1024, 0.8)
    assert (c["mean_prompt_len"], c["mean_gen_len"]) == (922, 922)  # (int(819.2) + 1024) / 2 = 921.5


def _run(capsys, args):
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("args", [
    ["estimate", "--model", "llama-3.1-8b"],
    ["estimate", "--model", "llama-3.1-8b", "--concurrency", "32", "--json"],
    ["estimate", "--model", "llama-3.1-8b", "--concurrency", "16", "--engine", "vllm", "--arrival", "closed",
     "--prompt-len", "512", "--gen-len", "128", "--simulate"],
    ["estimate", "--model", "llama-3.1-8b", "--engine", "sglang", "--rate", "2", "--gen-len", "128", "--json"],
])
@pytest.mark.parametrize("one", ["1", "1.0"])
def test_range_ratio_one_is_todays_output_byte_for_byte(capsys, args, one):
    base = _run(capsys, args)
    assert base[0] == 0
    assert _run(capsys, args + ["--range-ratio", one]) == base


def test_cli_range_ratio_closed_loop_and_simulator(capsys):
    rc, out, _ = _run(capsys, ["estimate", "--model", "llama-3.1-8b", "--concurrency", "16", "--engine", "vllm",
                               "--arrival", "closed", "--prompt-len", "1024", "--gen-len", "256",
                               "--range-ratio", "0.8", "--simulate", "--json"])
    assert rc == 0
    r = json.loads(out)
    assert r["config"]["range_ratio"] == 0.8 and r["config"]["mean_gen_len"] == 230
    assert r["simulation"]["requests"] == 160
    # the simulated tokens per second are the mean request's
    sim = r["simulation"]
    assert sim["throughput_tok_s"] == pytest.approx(sim["throughput_req_s"] * 230)


def test_cli_range_ratio_open_loop_uses_the_mean_lengths(capsys):
    """Poisson arrivals at the mean lengths: the same figures as fixed mean lengths."""
    args = ["estimate", "--model", "llama-3.1-8b", "--engine", "vllm", "--rate", "3", "--json"]
    rc, out, _ = _run(capsys, args + ["--prompt-len", "1024", "--gen-len", "1024", "--range-ratio", "0.8"])
    rc2, out2, _ = _run(capsys, args + ["--prompt-len", "922", "--gen-len", "922"])
    assert rc == rc2 == 0
    a, b = json.loads(out), json.loads(out2)
    assert (a["ttft_s"], a["tpot_s"], a["throughput_tok_s"]) == (b["ttft_s"], b["tpot_s"], b["throughput_tok_s"])


@pytest.mark.parametrize("value", ["-0.01", "-0.5", "1.5", "abc", "nan", "inf", ""])
def test_bad_range_ratio_is_one_line_exit_2(capsys, value):
    rc, out, err = _run(capsys, ["estimate", "--model", "llama-3.1-8b", "--concurrency", "8",
                                 "--range-ratio", value])
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "range-ratio" in err and repr(value) in err, err


@pytest.mark.parametrize("extra", [
    [],                                                                       # a static batch
    ["--concurrency", "8", "--pp", "2", "--arrival", "closed"],               # closed pipeline
    ["--concurrency", "8", "--prefill-workers", "1", "--decode-workers", "1"],  # disaggregated
])
def test_range_ratio_where_not_modelled_is_refused(capsys, extra):
    rc, out, err = _run(capsys, ["estimate", "--model", "llama-3.1-8b", "--range-ratio", "0.8", *extra])
    assert rc == 2 and err.count("\n") == 1 and "range-ratio" in err, err


@pytest.mark.parametrize("value", [-0.01, -1, 1.01, float("nan"), True, "0.8", None])
def test_check_range_ratio_refuses(value):
    with pytest.raises(InputError) as exc:
        check_range_ratio(value, field="range_ratio", file="f.yaml")
    assert "f.yaml" in str(exc.value) and "range_ratio" in str(exc.value)


# -- the files: checks (estimate:) and capacity (traffic:) -------------------------------

def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


CHECK = """checks:
  - name: spread
    estimate: {{model: llama-3.1-8b, hardware: h100-sxm, concurrency: 16, engine: vllm, arrival: closed,
               prompt_len: 1024, gen_len: 1024{extra}}}
    assert: ["tpot_s < 1"]
    track: [tpot_s, latency_s]
"""


def test_checks_file_range_ratio_is_the_flag(tmp_path, capsys):
    """A checks file's ``range_ratio:`` costs what ``--range-ratio`` costs: its baseline
    snapshot holds the flag's figures."""
    from planner.catalog import read_yaml

    f = _write(tmp_path, "c.yaml", CHECK.format(extra=", range_ratio: 0.8"))
    base = str(tmp_path / "b.yaml")
    assert main(["check", f, "--baseline", base, "--update-baseline"]) == 0
    capsys.readouterr()
    rc, out, _ = _run(capsys, ["estimate", "--model", "llama-3.1-8b", "--concurrency", "16", "--engine", "vllm",
                               "--arrival", "closed", "--prompt-len", "1024", "--gen-len", "1024",
                               "--range-ratio", "0.8", "--json"])
    r = json.loads(out)
    snap = str(read_yaml(base))
    assert f"{r['latency_s']:.6g}"[:5] in snap, (snap, r["latency_s"])


@pytest.mark.parametrize("value", ["-0.5", "1.5", "abc", "true"])
def test_checks_file_bad_range_ratio(tmp_path, capsys, value):
    f = _write(tmp_path, "c.yaml", CHECK.format(extra=f", range_ratio: {value}"))
    rc, out, err = _run(capsys, ["check", f])
    assert rc == 2 and err.count("\n") == 1
    assert "c.yaml" in err and "checks.spread.estimate.range_ratio" in err and value in err.lower(), err


def test_capacity_traffic_range_ratio_is_the_uniform_draw():
    """``traffic.range_ratio`` on fixed lengths: the sizing's mean and percentile lengths
    are the uniform draw's over [int(r L), L] (brute force)."""
    from planner.capacity import Traffic

    t = Traffic.model_validate({"requests_per_s": 1, "prompt_len": 1000, "gen_len": 300, "range_ratio": 0.5})
    for ln, L in ((t.prompt_len, 1000), (t.gen_len, 300)):
        draw = np.arange(int(L * 0.5), L + 1)
        assert ln.mean_len() == int(np.round(draw.mean()))
        for q in (50.0, 90.0, 99.0):
            assert ln.quantile(q) == int(np.percentile(draw, q, method="inverted_cdf"))
    fixed = Traffic.model_validate({"requests_per_s": 1, "prompt_len": 1000, "gen_len": 300})
    assert (fixed.prompt_len.mean_len(), fixed.prompt_len.quantile(99.0)) == (1000, 1000)
    one = Traffic.model_validate({"requests_per_s": 1, "prompt_len": 1000, "gen_len": 300, "range_ratio": 1})
    assert one.prompt_len.describe() == fixed.prompt_len.describe() == "1000 (fixed)"


CAP = """name: spread
traffic: {{requests_per_s: 5, prompt_len: {p}, gen_len: 256{extra}}}
slo: {{ttft_s: 2.0}}
models: [qwen3-8b]
hardware: [h100-sxm]
"""


@pytest.mark.parametrize("p,extra,field", [
    ("1024", ", range_ratio: -0.5", "traffic.range_ratio"),
    ("1024", ", range_ratio: x", "traffic.range_ratio"),
    ("{fixed: 1024, range_ratio: 2}", "", "traffic.prompt_len.range_ratio"),
    ("{p50: 600, p90: 1500}", ", range_ratio: 0.8", "traffic"),
    ("{p50: 600, range_ratio: 0.8}", "", "traffic.prompt_len"),
])
def test_capacity_bad_range_ratio(tmp_path, capsys, p, extra, field):
    f = _write(tmp_path, "cap.yaml", CAP.format(p=p, extra=extra))
    rc, out, err = _run(capsys, ["report", f, "-o", str(tmp_path / "r.md")])
    assert rc == 2 and err.count("\n") == 1 and "cap.yaml" in err and f"'{field}'" in err, err


@pytest.mark.parametrize("arrival,extra", [("closed", {"concurrency": 16}), ("poisson", {"rate": 2.0})])
def test_drawn_lengths_keep_the_mtp_drafts(arrival, extra):
    """Lengths drawn per request and speculative decoding together: the drafts are costed
    (fewer steps per token: a lower TPOT than without) and, under Poisson arrivals, give
    what fixed mean lengths with the drafts give (round 13 dropped ``spec_tokens`` on the
    drawn-length path)."""
    m, h = load_model("llama-3.1-8b"), load_hardware(H100)
    kw = dict(prompt_len=1024, gen_len=1024, engine=load_engine("vllm"), arrival=arrival, **extra)
    plain = estimate(m, h, range_ratio=0.8, **kw)
    drafts = estimate(m, h, range_ratio=0.8, spec_tokens=2, **kw)
    assert drafts["config"]["spec_tokens"] == 2 and drafts["tpot_s"] < plain["tpot_s"]
    if arrival == "poisson":  # no in-step column: the fixed mean lengths' figures exactly
        fixed = estimate(m, h, spec_tokens=2, **{**kw, "prompt_len": 922, "gen_len": 922})
        assert (drafts["ttft_s"], drafts["tpot_s"]) == (fixed["ttft_s"], fixed["tpot_s"])
        with pytest.raises(InputError, match="spec-tokens"):  # pipeline stages: refused as at fixed lengths
            estimate(m, h, range_ratio=0.8, spec_tokens=2, pp=2, **kw)


def test_range_ratio_zero_is_one_domain_everywhere(tmp_path, capsys):
    """sglang bench_serving's default ``--random-range-ratio 0`` (lengths from [0, L]) is
    one value every reader takes (planner.bounds.check_range_ratio: 0 <= r <= 1): the
    flag, a checks file, a capacity scenario and a measured CSV's column; the flag costs
    the draw's mean, L / 2 (brute force over [0, L])."""
    from planner.capacity import Traffic
    from planner.measured import read_measured

    assert check_range_ratio(0) == 0.0
    rc, out, err = _run(capsys, ["estimate", "--model", "llama-3.1-8b", "--concurrency", "16", "--engine", "vllm",
                                 "--arrival", "closed", "--prompt-len", "1000", "--gen-len", "301",
                                 "--range-ratio", "0", "--json"])
    assert rc == 0, err
    c = json.loads(out)["config"]
    assert (c["mean_prompt_len"], c["mean_gen_len"]) == (int(np.round(np.arange(0, 1001).mean())),
                                                         int(np.round(np.arange(0, 302).mean())))
    f = _write(tmp_path, "c.yaml", CHECK.format(extra=", range_ratio: 0"))
    assert main(["check", f, "--baseline", str(tmp_path / "b.yaml"), "--update-baseline"]) == 0
    t = Traffic.model_validate({"requests_per_s": 1, "prompt_len": 1000, "gen_len": 300, "range_ratio": 0})
    assert t.prompt_len.mean_len() == 500 and t.prompt_len.quantile(99.0) <= 1000
    header = ("model_path,system,backend,precision,mode,isl,osl,batch_size,tp_size,silicon_ttft_ms,"
              "silicon_tpot_ms,random_range_ratio")
    csv = tmp_path / "m.csv"
    csv.write_text(header + "\nmeta-llama/Llama-3.1-8B-Instruct,h100_sxm,vllm,bf16,agg,1024,256,8,1,40,8,0\n")
    assert list(read_measured(csv).range_ratio) == [0.0]


@pytest.mark.parametrize("r, device, engine", [(0.5, "h200", "sglang"), (0.8, "h200", "sglang"),
                                               (1.0, "h200", "sglang"), (0.8, "b200", "vllm"),
                                               (0.8, "h100-sxm", "trtllm")])
def test_capacity_full_load_grid_is_the_estimate(tmp_path, r, device, engine):
    """The capacity report's full-load grid under an ``engine:`` is the closed loop that
    ``planner estimate --arrival closed --range-ratio r`` costs, its ``range_ratio`` column
    (the share of waves in step) included: row for row the same TTFT and TPOT (round 13's
    grid kept the waves of fixed lengths: TTFT 42% above the estimate at r = 0.5 here), for a
    fitted pair and for one whose parameters are carried from the fitted devices (b200), the
    serving profile's columns read by both through one mapping (planner.cost.api.profile_columns)."""
    import yaml

    from planner.capacity import load_scenario
    from planner.sizing import Variant, _grid, resolve_efficiencies

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({
        "name": "t", "traffic": {"requests_per_s": 5, "prompt_len": 1024, "gen_len": 1024, "range_ratio": r},
        "slo": {"ttft_s": 2.0}, "models": ["qwen3-8b"], "hardware": [device], "engine": engine,
        "search": {"max_devices": 1, "quantizations": ["bf16"], "kv_dtypes": ["bf16"], "concurrency": [4, 16]}}))
    scn, models, hws = load_scenario(str(p))
    effs = resolve_efficiencies(scn, hws)
    sets, _, _, _, C, _, R, _ = _grid(scn, models, hws, Variant(), effs)
    eff, _, choice = effs[0]
    assert choice.path == ("carried" if device == "b200" else "fitted")
    for ic, c in enumerate(C):
        e = estimate(models[0], hws[0], concurrency=int(c), prompt_len=1024, gen_len=1024, range_ratio=r,
                     arrival="closed", engine=choice.engine, serving=choice.parameters, efficiency=eff)
        row = (0, 0, 0, 0, 0, ic, 0)  # model, device, layout, quantization, KV dtype, C, the mean lengths
        assert R["running"][row] == c
        assert (R["ttft_s"][row], R["tpot_s"][row]) == pytest.approx((e["ttft_s"], e["tpot_s"]), rel=1e-9)
