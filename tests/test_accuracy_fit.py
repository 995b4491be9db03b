"""Fitting profiles from eval logs: recovery of known parameters, the required held-out
acceptance test (pass@1000 from 100 samples per problem), JSONL reader errors, and the
`planner fit` / `planner accuracy` commands through planner.cli.main."""

import json
import math

import numpy as np
import pytest

from planner.accuracy import beta_fits as BF
from planner.accuracy import evallog as EL
from planner.accuracy import fit as F
from planner.accuracy import load_profile, predict
from planner.accuracy.difficulty import beta_pass_at_k
from planner.cli import main
from planner.errors import InputError

SYNTH = str(__import__("pathlib").Path(__file__).resolve().parent.parent / "examples" / "eval_synthetic.jsonl")


def _write_counts(path, n, c):
    path.write_text("".join(json.dumps({"problem": f"q{i}", "n": int(a), "correct": int(b)}) + "\n"
                            for i, (a, b) in enumerate(zip(n, c))))
    return path


# ------------------------------------------------------------------ acceptance test
@pytest.mark.parametrize("a,b,seed", [(0.6, 1.4, 0), (0.3, 0.7, 1)])
def test_fit_predicts_pass_at_1000_from_100_samples(tmp_path, a, b, seed):
    """Required acceptance test: 500 problems x 100 samples drawn from a known Beta; the
    fitted profile predicts pass@1000 within 2 points of the truth (the true Beta's closed
    form). Over 5 seeds the largest error for these two Betas is 1.3 points."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, 500)
    c = rng.binomial(100, p)
    log = _write_counts(tmp_path / "log.jsonl", np.full(500, 100), c)
    res = F.fit_eval_log(log, "m", "t", difficulty="beta")
    truth = float(beta_pass_at_k(a, b, 1000))
    prof = res.profile
    pred = float(prof.difficulty.build().pass_at_k(1000))
    assert abs(pred - truth) < 0.02
    # the profile's predict() agrees with the closed form (quadrature error < 5e-4)
    assert float(predict(prof, "pass@k", 1000)) == pytest.approx(pred, abs=5e-4)


def test_fitted_parameters_recovered(tmp_path):
    # beta-binomial MLE: with 500 problems x 100 samples the standard errors of a and b
    # are ~5%; allow 15%
    rng = np.random.default_rng(3)
    a, b = 0.6, 1.4
    p = rng.beta(a, b, 500)
    c = rng.binomial(100, p)
    fit = BF.fit_beta(np.full(500, 100), c)
    assert fit["a"] == pytest.approx(a, rel=0.15) and fit["b"] == pytest.approx(b, rel=0.15)
    fixed = BF.fit_beta(np.full(500, 100), c, mean=c.mean() / 100)
    assert fixed["a"] / (fixed["a"] + fixed["b"]) == pytest.approx(c.mean() / 100, abs=1e-9)


def test_mixture_chosen_for_bimodal_difficulty(tmp_path):
    rng = np.random.default_rng(4)
    hard = rng.beta(0.5, 30.0, 150)
    easy = rng.beta(12.0, 2.0, 350)
    p = np.concatenate([hard, easy])
    c = rng.binomial(50, p)
    log = _write_counts(tmp_path / "mix.jsonl", np.full(500, 50), c)
    res = F.fit_eval_log(log, "m", "t")
    # held-out samples reject the single Beta (the grid prior or the mixture is kept)
    cv = res.summary()["cv_heldout_loglik"]
    assert res.chosen != "beta" and cv["beta"] < max(cv.values()) - 10
    w = sorted(comp["weight"] for comp in res.mixture["components"])
    assert w[0] == pytest.approx(0.3, abs=0.05)
    assert F.bic(res.mixture, 500) < F.bic(res.beta, 500)
    # a unimodal Beta keeps the single Beta
    c2 = rng.binomial(50, rng.beta(2.0, 3.0, 500))
    res2 = F.fit_eval_log(_write_counts(tmp_path / "uni.jsonl", np.full(500, 50), c2), "m", "t")
    assert res2.chosen == "beta"


def test_synthetic_log_recovers_trace_votes_and_reward():
    # benchmarks/make_synthetic_eval.py: median 6000 at p = 0.6, slope -1.0, sigma 0.5, cap
    # 16384; top wrong answer 40% of wrong answers; logistic reward shift 1.5
    res = F.fit_eval_log(SYNTH, "synthetic", "synth")
    tl = res.trace
    assert tl["sigma"] == pytest.approx(0.5, abs=0.08)
    assert tl["difficulty_slope"] == pytest.approx(-1.0, abs=0.35)
    assert math.log(tl["median_tokens"]) == pytest.approx(math.log(6000) - 1.0 * (res.data.pass_at_1 - 0.6), abs=0.15)
    assert tl["truncated_fraction"] > 0.02
    assert res.wrong_share["majority_top_wrong_share"] == pytest.approx(0.4, abs=0.1)
    # true within-problem AUC of a logistic shift of 1.5: P(X + 1.5 > Y), X, Y ~ Logistic(0, 1)
    rng = np.random.default_rng(0)
    auc = np.mean(rng.logistic(1.5, 1, 400_000) > rng.logistic(0, 1, 400_000))
    assert res.reward["reward_auc"] == pytest.approx(auc, abs=0.06)
    assert res.profile.pass_at_1 == pytest.approx(res.data.pass_at_1, abs=1e-5)
    rows = res.heldout["rows"]
    assert rows[-1]["k"] == 16 and abs(rows[-1]["error"]) < 0.05


def test_per_problem_and_per_sample_formats_agree(tmp_path):
    data = EL.read_eval_log(SYNTH)
    log = _write_counts(tmp_path / "counts.jsonl", data.n, data.correct)
    d2 = EL.read_eval_log(log)
    assert d2.fmt == "problem" and d2.pass_at_1 == pytest.approx(data.pass_at_1)
    assert BF.fit_beta(d2.n, d2.correct)["a"] == pytest.approx(BF.fit_beta(data.n, data.correct)["a"])


# ------------------------------------------------------------------ reader errors
@pytest.mark.parametrize("lines,line_no,field,fragment", [
    ([], None, None, "empty eval log"),
    (['{"problem": "a", "correct": true}', '{"problem": "b", "correct": tru'], 2, None, "malformed JSON"),
    (['{"problem": "a", "n": 4, "correct": 5}'], 1, "correct", "exceeds n"),
    (['{"problem": "a", "n": 0, "correct": 0}'], 1, "n", "must be > 0"),
    (['{"problem": "a", "n": -3, "correct": 0}'], 1, "n", "must be > 0"),
    (['{"correct": true}'], 1, "problem", "required field is missing"),
    (['{"problem": "a"}'], 1, "correct", "required field is missing"),
    (['{"problem": "a", "correct": true}', '{"problem": "b", "n": 3, "correct": 1}'], 2, "n", "mixed formats"),
    (['{"problem": "a", "n": 3, "correct": 1}', '{"problem": "b", "correct": true}'], 2, "n", "mixed formats"),
    (['{"problem": "a", "correct": "yes"}'], 1, "correct", "true/false"),
    (['{"problem": "a", "correct": true, "tokens": -5}'], 1, "tokens", "positive"),
    (['[1, 2]'], 1, None, "JSON object"),
    (['{"problem": "a", "n": 3, "correct": 1}', '{"problem": "a", "n": 3, "correct": 2}'], 2, "problem", "twice"),
])
def test_reader_errors(tmp_path, lines, line_no, field, fragment):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(x + "\n" for x in lines))
    with pytest.raises(InputError) as e:
        EL.read_eval_log(path)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg and str(path) in msg
    if line_no is not None:
        assert f"{path}:{line_no}" in msg
    assert e.value.field == field


def test_blank_lines_are_skipped_and_missing_file(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('\n{"problem": 1, "correct": 1}\n\n{"problem": 1, "correct": 0}\n')
    d = EL.read_eval_log(path)
    assert d.n.tolist() == [2] and d.correct.tolist() == [1]
    with pytest.raises(InputError, match="file not found"):
        EL.read_eval_log(tmp_path / "none.jsonl")


# ------------------------------------------------------------------ CLI
def test_cli_fit_writes_profile_and_accuracy_reads_it(tmp_path, capsys):
    out = tmp_path / "prof.yaml"
    assert main(["fit", SYNTH, "--model", "not-in-catalog", "--task", "synth", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["problems"] == 60 and summary["samples"] == 960 and summary["profile"] == str(out)
    prof = load_profile(str(out))
    assert prof.model == "not-in-catalog" and prof.spec.fit["problems"] == 60
    assert not list(tmp_path.glob(".prof.yaml.*"))          # atomic write left no temporary file
    assert main(["accuracy", "--profile", str(out), "--strategy", "pass@k", "--samples", "8", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["accuracy"] == pytest.approx(float(predict(prof, "pass@k", 8)))
    assert res["samples"] == 8 and res["strategy"] == "pass@k" and res["gen_len"] == prof.spec.reference_gen_len
    assert main(["fit", SYNTH, "--model", "m", "--task", "t"]) == 0     # table output
    assert "held-out" in capsys.readouterr().out


def test_cli_accuracy_by_model_and_task(capsys):
    assert main(["accuracy", "--model", "qwen3-8b", "--task", "aime24", "--strategy", "majority", "--samples", "16",
                 "--gen-len", "16384", "--kv-budget", "1024", "--weight-dtype", "int4", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["accuracy"] == pytest.approx(float(predict(load_profile("qwen3-8b/aime24"), "majority", 16, 16384,
                                                          kv_budget=1024, weight_dtype="int4")))
    assert res["kv_budget"] == 1024 and res["weight_dtype"] == "int4" and res["task"] == "aime24"
    assert main(["accuracy", "-m", "qwen3-8b", "-t", "aime24"]) == 0
    assert "predicted accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["accuracy", "--model", "qwen3-8b", "--task", "aime99"],
    ["accuracy", "--model", "nobody", "--task", "aime24"],
    ["accuracy", "--model", "qwen3-8b", "--task", "aime24", "--strategy", "magic"],
    ["accuracy", "--model", "qwen3-8b", "--task", "aime24", "--samples", "0"],
    ["accuracy", "--model", "qwen3-8b", "--task", "aime24", "--weight-dtype", "int3"],
    ["accuracy", "--model", "qwen3-8b"],
    ["accuracy", "--profile", "/no/such/profile.yaml"],
    ["fit", "/no/such/log.jsonl", "--model", "m", "--task", "t"],
    ["fit", SYNTH, "--model", "m", "--task", "t", "--difficulty", "gamma"],
    ["fit", SYNTH, "--model", "m", "--task", "t", "--task-kind", "poetry"],
])
def test_cli_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("planner: error:") and err.count("\n") == 1


def test_cli_fit_reader_error_names_line(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"problem": "a", "n": 2, "correct": 1}\n{"problem": "b", "n": 2, "correct": 3}\n')
    assert main(["fit", str(path), "--model", "m", "--task", "t"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2" in err and "correct" in err and "3" in err
