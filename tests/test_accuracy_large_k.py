"""Large-k extrapolation, model choice by held-out samples, degenerate logs, intervals
(issue 12, items 4 and 5). Oracles: synthetic problems with known success probabilities
(the truth at k is the mean of 1 - (1 - p_i)^k over the drawn p_i), closed forms."""

import json

import numpy as np
import pytest

from planner.accuracy import fit as F
from planner.accuracy import load_profile, predict
from planner.accuracy import logit_prior as LP
from planner.accuracy.difficulty import LogitGridDifficulty
from planner.accuracy.profile import profile_from_dict
from planner.accuracy.uncertainty import interval
from planner.cli import main
from planner.errors import InputError


def _write_counts(path, n, c):
    path.write_text("".join(json.dumps({"problem": f"q{i}", "n": int(a), "correct": int(b)}) + "\n"
                            for i, (a, b) in enumerate(zip(n, c))))
    return path


def _truth(p, k):
    return float(np.mean(-np.expm1(k * np.log1p(-p))))


def test_grid_prior_recovers_a_power_law_tail_and_predicts_held_out_k():
    """p from a Beta(0.3, 4) (density ~ p^-0.7 near 0, Schaeffer et al.'s power-law
    regime), 400 problems x 100 samples: the grid prior predicts pass@1000 and pass@10000
    of these problems within 6 points."""
    rng = np.random.default_rng(11)
    p = rng.beta(0.3, 4.0, 400)
    c = rng.binomial(100, p)
    w = LP.fit_grid_weights(np.full(400, 100), c, lam=1.0)
    d = LogitGridDifficulty(LP.LOGIT_MIN, LP.LOGIT_STEP, tuple(w))
    for k in (1000, 10000):
        assert abs(float(d.pass_at_k(k)) - _truth(p, k)) < 0.06
    # the mean is the observed pass@1 to within sampling error
    assert d.mean() == pytest.approx(c.mean() / 100, abs=0.005)


def test_grid_weights_recover_two_point_masses():
    """Synthetic parameters: half the problems at p = 0.02, half at p = 0.5; the fitted
    weight within one logit of each point is close to 0.5."""
    rng = np.random.default_rng(5)
    p = np.repeat([0.02, 0.5], 150)
    c = rng.binomial(200, p)
    w = LP.fit_grid_weights(np.full(300, 200), c, lam=0.3)
    x = LP.logit_nodes()
    for p0 in (0.02, 0.5):
        near = np.abs(x - np.log(p0 / (1 - p0))) <= 1.0
        assert w[near].sum() == pytest.approx(0.5, abs=0.08)


def test_fit_chooses_by_held_out_samples_and_predicts_large_k(tmp_path):
    rng = np.random.default_rng(2)
    p = rng.beta(0.25, 3.0, 300)
    c = rng.binomial(100, p)
    res = F.fit_eval_log(_write_counts(tmp_path / "log.jsonl", np.full(300, 100), c), "m", "t")
    cv = res.summary()["cv_heldout_loglik"]
    # the profile is the best candidate by held-out samples, or the average of those
    # within PLAUSIBLE_NATS of it
    assert (res.chosen in cv and cv[res.chosen] >= max(cv.values()) - 0.5) or res.chosen == "average of plausible"
    prof = load_profile(res.profile)
    for k in (1000, 10000):
        assert abs(float(predict(prof, "pass@k", k)) - _truth(p, k)) < 0.07


@pytest.mark.parametrize("correct", [0, 100])
def test_degenerate_logs_give_a_valid_profile(tmp_path, correct):
    """Pythia 70M's case (nothing solved in 100 samples) and its mirror (everything
    solved): the fit writes a profile that loads and predicts finite accuracies."""
    log = _write_counts(tmp_path / "d.jsonl", np.full(67, 100), np.full(67, correct))
    out = tmp_path / "d.yaml"
    assert main(["fit", str(log), "-m", "m", "-t", "t", "-o", str(out), "--json"]) == 0
    prof = load_profile(str(out))
    for strat in ("pass@k", "majority", "single"):
        v = predict(prof, strat, [1, 16, 10000])
        assert np.all(np.isfinite(v)) and np.all((v >= 0) & (v <= 1))
    if correct == 0:
        assert float(predict(prof, "single", 1)) < 0.01
    else:
        assert float(predict(prof, "single", 1)) > 0.99


def test_out_of_range_fitted_parameter_is_refused_with_field_and_value():
    with pytest.raises(InputError) as ei:
        F._spec_mean({"kind": "beta", "a": 0.0, "b": 1.0}, "log.jsonl")
    assert ei.value.field == "difficulty.a" and ei.value.value == 0.0
    with pytest.raises(InputError) as ei:
        F._spec_mean({"kind": "logit_grid", "logit_min": -18.0, "logit_step": 0.5, "weights": [1.5, -0.5]}, "x")
    assert "weights" in str(ei.value) and "-0.5" in str(ei.value)


def test_intervals_cover_synthetic_truth(tmp_path):
    """Interval coverage on synthetic data with a known truth: 8 logs of 60 problems x 100
    samples from a Beta(0.4, 3); the 80% interval of pass@1000 holds the truth (these
    problems' mean) in at least 5 of 8."""
    hits = 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        p = rng.beta(0.4, 3.0, 60)
        c = rng.binomial(100, p)
        res = F.fit_eval_log(_write_counts(tmp_path / f"s{seed}.jsonl", np.full(60, 100), c), "m", "t", seed=seed)
        lo, hi = interval(res.profile, "pass@k", 1000)
        assert lo <= float(predict(res.profile, "pass@k", 1000)) + 1e-9 and hi >= lo
        hits += bool(lo <= _truth(p, 1000) <= hi)
    assert hits >= 5


def test_cli_accuracy_json_gives_interval(tmp_path, capsys):
    rng = np.random.default_rng(9)
    c = rng.binomial(100, rng.beta(0.5, 2.0, 40))
    out = tmp_path / "p.yaml"
    assert main(["fit", str(_write_counts(tmp_path / "l.jsonl", np.full(40, 100), c)), "-m", "m", "-t", "t",
                 "-o", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["accuracy", "-p", str(out), "-s", "pass@k", "-k", "1000", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    lo, hi = res["interval_80"]
    assert 0 <= lo <= res["accuracy"] <= hi <= 1
    # shipped profiles from published figures carry no replicates: no interval
    assert main(["accuracy", "-m", "qwen3-8b", "-t", "aime24", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interval_80"] is None


def test_logit_grid_profile_schema_round_trip():
    w = np.full(10, 0.1)
    data = {"task": "t", "model": "m", "task_kind": "math_answer", "reference_gen_len": 1000,
            "difficulty": {"kind": "logit_grid", "logit_min": -5.0, "logit_step": 1.0, "weights": list(w)},
            "trace_length": {"median_tokens": 300, "sigma": 0.5}, "sources": {"pass_at_1": "test"}}
    x = -5.0 + np.arange(10)
    data["pass_at_1"] = float(np.mean(1 / (1 + np.exp(-x))))
    prof = profile_from_dict(data)
    assert float(predict(prof, "pass@k", 7)) == pytest.approx(float(np.mean(1 - (1 - 1 / (1 + np.exp(-x))) ** 7)))


def test_forced_beta_on_a_degenerate_log_is_refused_and_nothing_written(tmp_path, capsys):
    log = _write_counts(tmp_path / "z.jsonl", np.full(67, 100), np.zeros(67))
    out = tmp_path / "z.yaml"
    assert main(["fit", str(log), "-m", "m", "-t", "t", "--difficulty", "beta", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "difficulty.a" in err and "value" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _shifted_template(shift_steps: int):
    """A skewed prior shape on the grid (a logit-normal bump with a long left tail), and
    the same shape moved ``shift_steps`` grid nodes up."""
    x = LP.logit_nodes()
    w = np.exp(-0.5 * ((x + 6.0) / np.where(x < -6.0, 3.0, 1.5)) ** 2)
    w /= w.sum()
    return w, LP.shift_weights(w, shift_steps)


def test_posterior_route_recovers_the_prior_closed_form_at_10000():
    """Synthetic parameters: 400 problems with p ~ Beta(0.3, 4) (the power-law regime of
    Schaeffer et al.), 100 samples each. The posterior-averaged grid prior predicts
    pass@10000 within 0.06 of the Beta's closed form 1 - B(a, b + k)/B(a, b) and of these
    problems' own mean; a problem seen solved counts as (almost) solved at k = 10000."""
    from planner.accuracy.difficulty import beta_pass_at_k

    rng = np.random.default_rng(21)
    p = rng.beta(0.3, 4.0, 400)
    n = np.full(400, 100)
    c = rng.binomial(100, p)
    w = LP.posterior_average(n, c, LP.fit_grid_weights(n, c, lam=1.0))
    d = LogitGridDifficulty(LP.LOGIT_MIN, LP.LOGIT_STEP, tuple(w / w.sum()))
    assert float(d.pass_at_k(10000)) == pytest.approx(float(beta_pass_at_k(0.3, 4.0, 10000)), abs=0.06)
    assert float(d.pass_at_k(10000)) == pytest.approx(_truth(p, 10000), abs=0.06)
    # the seen-solved share is a floor of pass@k at k >= n (to the grid's resolution)
    assert float(d.pass_at_k(1000)) >= np.mean(c > 0) - 0.01


def test_template_shift_recovers_the_ability_of_a_synthetic_model():
    """A model whose p is the template shape moved up by 3 in logit (6 grid steps): from
    100 samples of 300 problems the fitted template lands within one step of that shift,
    and pass@1000 / pass@10000 within 0.05 of the shifted shape's own values."""
    base, moved = _shifted_template(6)
    rng = np.random.default_rng(3)
    p = rng.choice(LP._expit(LP.logit_nodes()), size=300, p=moved)
    c = rng.binomial(100, p)
    w = LP.fit_template_shift(np.full(300, 100), c, [base])
    grid = LogitGridDifficulty(LP.LOGIT_MIN, LP.LOGIT_STEP, tuple(w / w.sum()))
    truth = LogitGridDifficulty(LP.LOGIT_MIN, LP.LOGIT_STEP, tuple(moved))
    x = LP.logit_nodes()
    assert abs(float(w @ x) - float(moved @ x)) <= 2 * LP.LOGIT_STEP
    for k in (1000, 10000):
        assert float(grid.pass_at_k(k)) == pytest.approx(float(truth.pass_at_k(k)), abs=0.05)


def test_fit_with_templates_is_monotone_in_k_and_keeps_degenerate_logs_valid(tmp_path):
    """pass@k of a fitted profile (and both ends of its interval) never decreases in k;
    with templates, logs where nothing or everything is solved still give a valid profile."""
    base, moved = _shifted_template(4)
    rng = np.random.default_rng(8)
    c = rng.binomial(100, rng.choice(LP._expit(LP.logit_nodes()), size=60, p=moved))
    ks = np.unique(np.geomspace(1, 1e5, 40).round())
    res = F.fit_eval_log(_write_counts(tmp_path / "m.jsonl", np.full(60, 100), c), "m", "t", templates=[base])
    v = np.asarray(predict(res.profile, "pass@k", ks))
    lo, hi = interval(res.profile, "pass@k", ks)
    for arr in (v, lo, hi):
        assert np.all(np.diff(arr) >= -1e-9)
    for correct in (0, 100):
        log = _write_counts(tmp_path / f"d{correct}.jsonl", np.full(67, 100), np.full(67, correct))
        prof = F.fit_eval_log(log, "m", "t", templates=[base]).profile
        assert prof.difficulty.mean() == pytest.approx(correct / 100, abs=0.01)
        assert np.all(np.isfinite(predict(prof, "pass@k", [1, 1000, 10000])))


def test_template_choice_without_templates_is_refused(tmp_path):
    log = _write_counts(tmp_path / "x.jsonl", np.full(10, 100), np.arange(10))
    with pytest.raises(InputError) as ei:
        F.fit_eval_log(log, "m", "t", difficulty="template")
    assert ei.value.field == "difficulty" and ei.value.value == "template"


def test_cli_fit_with_a_template_profile(tmp_path, capsys):
    """`planner fit --template A.yaml`: model A sampled 20,000 times a problem gives the
    shape; model B (the same shape 4 grid steps up, 100 samples) is fitted with it and
    predicts its own problems' pass@10000 within 0.06; the profile says where its shape
    came from. A template on another grid is refused with file and field (exit 2)."""
    base, moved = _shifted_template(4)
    nodes = LP._expit(LP.logit_nodes())
    rng = np.random.default_rng(12)
    pa = rng.choice(nodes, size=200, p=base)
    pb = rng.choice(nodes, size=200, p=moved)
    a_yaml, b_yaml = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert main(["fit", str(_write_counts(tmp_path / "a.jsonl", np.full(200, 20000), rng.binomial(20000, pa))),
                 "-m", "a", "-t", "t", "-o", str(a_yaml), "--json"]) == 0
    assert main(["fit", str(_write_counts(tmp_path / "b.jsonl", np.full(200, 100), rng.binomial(100, pb))),
                 "-m", "b", "-t", "t", "-o", str(b_yaml), "--template", str(a_yaml), "--difficulty", "template",
                 "--json"]) == 0
    prof = load_profile(str(b_yaml))
    assert prof.spec.difficulty.kind == "logit_grid"
    assert any("a.yaml" in s for s in prof.spec.assumptions)
    assert float(predict(prof, "pass@k", 10000)) == pytest.approx(_truth(pb, 10000), abs=0.06)
    bad = tmp_path / "bad.yaml"
    import yaml

    spec = yaml.safe_load(a_yaml.read_text())
    spec["difficulty"] = {"kind": "logit_grid", "logit_min": -2.0, "logit_step": 1.0, "weights": [0.5, 0.5]}
    spec["pass_at_1"] = round(float(np.mean(1 / (1 + np.exp([2.0, 1.0])))), 6)
    spec.pop("uncertainty", None)
    bad.write_text(yaml.safe_dump(spec))
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "b.jsonl"), "-m", "b", "-t", "t", "--template", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "difficulty.logit_min" in err and "-2" in err


def test_interval_holds_the_point_prediction_for_every_strategy(tmp_path):
    """A bootstrap quantile need not hold the fit's own prediction (the replicates are
    skewed where the prediction saturates); the interval a user sees always does, for
    every strategy, k and budget."""
    rng = np.random.default_rng(21)
    c = rng.binomial(100, rng.beta(0.6, 1.5, 50))
    res = F.fit_eval_log(_write_counts(tmp_path / "l.jsonl", np.full(50, 100), c), "m", "t", seed=3)
    k = np.array([1, 2, 4, 16, 64, 1000]).reshape(-1, 1)
    L = np.array([2000.0, 8000.0, 32000.0]).reshape(1, -1)
    for strategy in ("single", "pass@k", "majority", "best-of-k"):
        kk = np.ones_like(k) if strategy == "single" else k
        lo, hi = interval(res.profile, strategy, kk, L)
        point = np.asarray(predict(res.profile, strategy, kk, L), float)
        assert np.all(lo <= point + 1e-12) and np.all(point <= hi + 1e-12), strategy
