"""Trace lengths with a problem effect (issue 12 item 3): the variance components are
recovered from a synthetic log, the short-budget/many-samples case is no longer more
optimistic than a long single sample, and the problem effect only moves what it should."""

import json

import numpy as np
import pytest

from planner.accuracy import budget as B
from planner.accuracy import evallog as EL
from planner.accuracy import fit as F
from planner.accuracy import load_profile, predict
from planner.accuracy.lengths import fit_length_components, variance_components
from planner.accuracy.profile import Profile, TaskProfile


def _synthetic_log(path, n_problems, n_samples, s_problem, s_sample, slope=-1.0, seed=0):
    """Per-sample log drawn from ln T = ln 6000 + slope (p - 0.5) + v_i + e_ij (no cap)."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_problems):
        p = rng.beta(1.0, 1.0)
        v = rng.normal(0.0, s_problem)
        for _ in range(n_samples):
            t = float(np.exp(np.log(6000.0) + slope * (p - 0.5) + v + rng.normal(0.0, s_sample)))
            lines.append(json.dumps({"problem": f"p{i}", "correct": bool(rng.random() < p), "tokens": round(t)}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("s_problem,s_sample", [(0.4, 0.3), (0.15, 0.5), (0.0, 0.4)])
def test_fit_recovers_known_variance_components(tmp_path, s_problem, s_sample):
    log = _synthetic_log(tmp_path / "log.jsonl", 300, 16, s_problem, s_sample, seed=int(s_problem * 100))
    data = EL.read_eval_log(log)
    tr = F.fit_trace_length(data)
    comp = fit_length_components(data, tr["difficulty_slope"])
    true_share = s_problem ** 2 / (s_problem ** 2 + s_sample ** 2)
    assert comp["sigma_sample"] == pytest.approx(s_sample, abs=0.02)
    # the slope is fitted on each problem's observed pass@1 (16 samples), not the true p:
    # the slope's noise leaves a little problem-level variance behind
    assert comp["sigma_problem"] == pytest.approx(s_problem, abs=0.08)
    assert comp["problem_share"] == pytest.approx(true_share, abs=0.07)


def test_anova_matches_balanced_closed_form():
    """Balanced layout: s_b^2 = (MSB - MSW) / n, checked against a direct computation."""
    rng = np.random.default_rng(3)
    groups = [rng.normal(rng.normal(0, 1.0), 0.5, size=8) for _ in range(40)]
    arr = np.array(groups)
    msw = arr.var(axis=1, ddof=1).mean()
    msb = 8 * arr.mean(axis=1).var(ddof=1)
    got = variance_components(groups)
    assert got["sigma_sample"] ** 2 == pytest.approx(msw, rel=1e-12)
    assert got["sigma_problem"] ** 2 == pytest.approx((msb - msw) / 8, rel=1e-12)
    assert variance_components(groups[:2]) is None          # too few problems


def test_cli_fit_writes_problem_share(tmp_path, capsys):
    from planner.cli import main

    log = _synthetic_log(tmp_path / "log.jsonl", 80, 12, 0.4, 0.3, seed=5)
    out = tmp_path / "prof.yaml"
    assert main(["fit", str(log), "--model", "m", "--task", "t", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.45 < summary["trace_length"]["problem_share"] < 0.85     # truth 0.64
    assert 0.45 < load_profile(str(out)).trace.problem_share < 0.85


def test_deepseek_r1_short_budget_majority_below_long_single_sample():
    """Issue 12: majority of 16 at 2,048 tokens must come out below one sample at 8,192
    (it was 0.969 vs 0.929 with independent trace lengths)."""
    prof = "deepseek-r1/math500"
    long_single = float(predict(prof, "single", 1, 8192))
    for strat in ("majority", "pass@k", "best-of-k", "verify"):
        assert float(predict(prof, strat, 16, 2048)) < long_single, strat


def _with_share(name, share):
    spec = load_profile(name).spec
    data = spec.model_dump()
    data["trace_length"]["problem_share"] = share
    return Profile(spec=TaskProfile.model_validate(data), path="<test>")


@pytest.mark.parametrize("strat", ["pass@k", "majority", "best-of-k", "verify"])
def test_problem_effect_lowers_short_budget_and_keeps_reference(strat):
    """With traces that share a problem effect, k samples under a short budget are
    truncated together: accuracy falls as the share grows. At the reference budget the
    truncation ratio is 1 for every problem, whatever the share, so nothing moves."""
    shares = (0.0, 0.3, 0.69, 0.9)
    profs = [_with_share("qwen3-8b/aime24", s) for s in shares]
    short = [float(predict(p, strat, 16, 8192)) for p in profs]
    assert all(a > b for a, b in zip(short, short[1:])), short
    ref = [float(predict(p, strat, 16)) for p in profs]
    assert max(ref) - min(ref) < 1e-6      # (single-precision tables)


def test_single_sample_barely_moves_with_the_share():
    """E_v F(L | v) = F(L): one sample's finishing share is the marginal log-normal, so
    single-sample accuracy changes only through the ratio to the reference budget."""
    a = float(predict(_with_share("deepseek-r1/math500", 0.0), "single", 1, 2048))
    b = float(predict(_with_share("deepseek-r1/math500", 0.69), "single", 1, 2048))
    assert abs(a - b) < 0.005


def test_effect_nodes_integrate_a_normal():
    tl = B.TraceLength(10000.0, 0.5, problem_share=0.69)
    v, h = tl.effect_nodes()
    assert h.sum() == pytest.approx(1.0)
    assert (h * v ** 2).sum() == pytest.approx(0.69 * 0.25, rel=1e-12)
    assert tl.sigma_problem ** 2 + tl.sigma_sample ** 2 == pytest.approx(0.25)
    # E_v Phi((c - v) / s_sample) = Phi(c / sigma): the marginal finishing share
    from planner.accuracy import special

    c = np.log(8000.0 / 10000.0)
    got = (h * special.ndtr((c - v) / tl.sigma_sample)).sum()
    assert got == pytest.approx(float(special.ndtr(c / 0.5)), abs=4e-3)   # 6-node rule: 2.7e-3


def test_problem_share_out_of_range_is_refused():
    from planner.accuracy.profile import profile_from_dict
    from planner.errors import InputError

    data = load_profile("deepseek-r1/math500").spec.model_dump()
    data["trace_length"]["problem_share"] = 1.0
    with pytest.raises(InputError, match="problem_share"):
        profile_from_dict(data, "x.yaml")


def _kinetics():
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "kinetics-qwen3-8b-aime24-lengths.json"
    d = json.loads(path.read_text())
    p = np.array([q["pass_at_1"] for q in d["problems"]])
    return p, np.array([q["tokens"] for q in d["problems"]], float)


def test_kinetics_traces_give_the_shipped_problem_share():
    """The shipped 0.69 (and sds 0.414 / 0.277) come out of `planner fit`'s own path on the
    Kinetics Qwen3-8B AIME24 traces (30 problems x 32 samples)."""
    from planner.accuracy.evallog import EvalData

    p, T = _kinetics()
    data = EvalData(problems=[f"q{i}" for i in range(len(p))], n=np.full(len(p), 32),
                    correct=np.rint(p * 32).astype(int), fmt="sample",
                    tokens={f"q{i}": [(float(t), None) for t in row] for i, row in enumerate(T)})
    tr = F.fit_trace_length(data)
    comp = fit_length_components(data, tr["difficulty_slope"])
    assert comp["problem_share"] == pytest.approx(B.DEFAULT_PROBLEM_SHARE, abs=0.005)
    assert comp["sigma_sample"] == pytest.approx(0.277, abs=0.001)
    assert comp["sigma_problem"] == pytest.approx(0.412, abs=0.003)
    assert load_profile("qwen3-8b/aime24").trace.problem_share == B.DEFAULT_PROBLEM_SHARE


def test_kinetics_traces_at_least_one_of_k_finishes():
    """Outside check on a statistic the fit did not use: the share of problems where at
    least one of k samples finishes within L tokens (unbiased from the 32 traces per
    problem). Independent lengths overstate it by up to 45 points (k = 16, L = 6K: 0.74 vs
    0.29); with the problem effect the mean error over L in {6K, 8K, 12K, 16K}, k in
    {1, 4, 16} is under 5 points."""
    from math import comb

    from planner.accuracy import special

    p, T = _kinetics()
    tl = load_profile("qwen3-8b/aime24").spec.trace_length
    errs = {}
    for share in (0.0, B.DEFAULT_PROBLEM_SHARE):
        tr = B.TraceLength(tl.median_tokens, tl.sigma, tl.difficulty_slope, p_mean=float(p.mean()),
                           problem_share=share)
        v, h = tr.effect_nodes()
        s = tr.sigma_sample if share > 0 else tr.sigma
        e = []
        for L in (6000, 8192, 12000, 16384):
            F_ = special.ndtr((np.log(L) - tr.log_median(p)[:, None] - v) / s)
            for k in (1, 4, 16):
                observed = np.mean([1 - comb(int((row > L).sum()), k) / comb(32, k) for row in T])
                predicted = float(np.mean((1 - (1 - F_) ** k) @ h))
                e.append(abs(predicted - observed))
        errs[share] = np.array(e)
    assert errs[B.DEFAULT_PROBLEM_SHARE].mean() < 0.05
    assert errs[0.0].max() > 0.4
    assert errs[B.DEFAULT_PROBLEM_SHARE].mean() < errs[0.0].mean() / 3
