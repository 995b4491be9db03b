"""The per-problem prior of the templates stacked with the held-out choice (stacking.py).
Oracles: the brute-force shift of grid weights, a mixture whose weight is known (the
stacking weight recovers it exactly), and synthetic Rasch data with known abilities and
difficulties (templates with counts, a new model seen through 100 samples per problem;
the truth at k is the drawn p's own pass@k)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.accuracy import fit as F
from planner.accuracy import logit_prior as LP
from planner.accuracy import stacking as SK
from planner.accuracy import template_cv as TC
from planner.accuracy.profile import TaskProfile, profile_to_yaml
from planner.accuracy.uncertainty import interval
from planner.errors import InputError

THETAS = (-9.0, -8.0, -7.0, -6.0, -5.0)
SIGMA, TAU = 0.8, 2.5


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _shift_loop(w, steps):
    """The definition: move every weight ``steps`` nodes, pile what falls off on the end."""
    m = len(w)
    out = np.zeros(m)
    for j, x in enumerate(w):
        out[min(max(j + steps, 0), m - 1)] += x
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-80, 80), min_size=1, max_size=8), st.integers(0, 2 ** 31 - 1))
def test_shift_stack_matches_the_loop_definition(shifts, seed):
    w = np.random.default_rng(seed).random((3, 57))
    got = LP.shift_stack(w, shifts)
    want = np.array([[_shift_loop(row, s) for row in w] for s in shifts])
    assert got.shape == (len(shifts), 3, 57)
    assert np.allclose(got, want, atol=1e-13)
    assert np.allclose(got.sum(axis=-1), w.sum(axis=-1)[None, :])


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.75, 1.0])
def test_stacking_weight_recovers_a_known_mixture(alpha):
    """Truth = alpha * (second predictor) + (1 - alpha) * (first) on every split: the
    weight minimizing the mixture's squared error is alpha."""
    rng = np.random.default_rng(1)
    p_a, p_r = rng.random(6), rng.random(6)
    truth = alpha * p_r + (1 - alpha) * p_a
    assert TC.stacking_weight(p_a - truth, p_r - truth) == pytest.approx(alpha, abs=1e-9)
    assert TC.stacking_weight([0.1, -0.2], [0.1, -0.2]) == 0.5          # indistinguishable
    assert TC.stacking_weight([0.1], [0.3]) == 0.0                        # clipped to [0, 1]


def _synthetic(rng, n_problems=80, n=10_000):
    b = rng.normal(0.0, TAU, n_problems)
    p = {i: _expit(th - b + SIGMA * rng.standard_normal(n_problems)) for i, th in enumerate(THETAS + (-7.5,))}
    c = {i: rng.binomial(n, q) for i, q in p.items()}
    return p, c


def _template(path, model, n, c):
    w = LP.fit_grid_weights(n, c, 1.0)
    spec = TaskProfile.model_validate({
        "task": "synth", "model": model, "task_kind": "math_answer", "pass_at_1": float(w @ _expit(LP.logit_nodes())),
        "reference_gen_len": 4096, "difficulty": {"kind": "logit_grid", "logit_min": LP.LOGIT_MIN,
                                                  "logit_step": LP.LOGIT_STEP, "weights": w.tolist()},
        "trace_length": {"median_tokens": 1024, "sigma": 0.6}, "sources": {"pass_at_1": "synthetic"},
        "problem_counts": {"problems": [f"q{j}" for j in range(len(n))], "n": [int(x) for x in n],
                           "correct": [int(x) for x in c]}})
    path.write_text(profile_to_yaml(spec))
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    rng = np.random.default_rng(12)
    p, c = _synthetic(rng)
    refs = [_template(d / f"synth--m{i}.yaml", f"m{i}", np.full(len(c[i]), 10_000), c[i]) for i in range(len(THETAS))]
    return d, p, refs


def _log(path, c):
    path.write_text("".join(json.dumps({"problem": f"q{j}", "n": 100, "correct": int(x)}) + "\n"
                            for j, x in enumerate(c)))
    return path


def test_fit_stacks_the_per_problem_prior_and_predicts_the_synthetic_truth(synth, monkeypatch, tmp_path):
    """A sixth model (ability -7.5) of Rasch data, 100 samples per problem, the five others
    as templates with counts: the profile stacks the per-problem prior with the shared
    shape and predicts pass@1,000 / pass@10,000 of the drawn p within 0.05 / 0.08 (one draw
    of 100 samples per problem; measured 0.008 / 0.028, the per-problem prior alone 0.018 /
    0.063), inside its 80% interval."""
    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    d, p, refs = synth
    c = np.random.default_rng(3).binomial(100, p[5])
    res = F.fit_eval_log(_log(tmp_path / "l.jsonl", c), "m5", "synth", templates=refs)
    assert "rasch" in res.chosen and "stacked" in res.chosen
    assert any("Rasch" in a and "rehearsed on the templates" in a for a in res.profile.assumptions)
    from planner.accuracy import rasch as R
    from planner.accuracy.profile import Profile

    # the weight is rehearsed on the templates (template_cv.py); here (Rasch data, measured)
    # the shared shape extrapolates better than the per-problem prior, and the stacked
    # prediction errs no more than the per-problem prior alone
    ctx = SK._cached_rasch(SK.template_counts(refs))
    w_r = R.fit_new_model([f"q{j}" for j in range(len(c))], np.full(len(c), 100.0), c, ctx.priors, ctx.thetas)
    p_nodes = _expit(LP.logit_nodes())
    for k in (1000, 10_000):
        truth = float(np.mean(1.0 - (1.0 - p[5]) ** k))
        got = float(res.profile.difficulty.build().pass_at_k(k))
        assert abs(got - truth) <= abs(float(w_r @ (1.0 - (1.0 - p_nodes) ** k)) - truth) + 1e-3

    prof = Profile(spec=res.profile, path="synthetic")
    for k, tol in ((1000, 0.05), (10_000, 0.08)):
        truth = float(np.mean(1.0 - (1.0 - p[5]) ** k))
        got = float(res.profile.difficulty.build().pass_at_k(k))
        lo, hi = interval(prof, "pass@k", k)
        assert got == pytest.approx(truth, abs=tol)
        assert lo <= truth <= hi


@pytest.mark.parametrize("solved", [0, 100])
def test_degenerate_logs_still_give_a_valid_stacked_profile(synth, solved, tmp_path):
    d, p, refs = synth
    res = F.fit_eval_log(_log(tmp_path / "l.jsonl", np.full(len(p[5]), solved)), "m5", "synth", templates=refs)
    diff = res.profile.difficulty.build()
    curve = [float(diff.pass_at_k(k)) for k in (1, 10, 100, 1000, 10_000)]
    assert np.all(np.isfinite(curve)) and np.all(np.diff(curve) >= -1e-9)
    assert (curve[0] < 0.01) if solved == 0 else (curve[0] > 0.95)


def test_templates_without_counts_or_unknown_problems_give_no_per_problem_prior(synth, tmp_path):
    d, p, refs = synth
    assert SK.template_counts([np.ones(57) / 57]) == {}
    assert len(SK.template_counts(refs)) == len(refs)
    assert SK.rasch_context(refs[:1], [f"q{j}" for j in range(10)]) is None          # one template
    assert SK.rasch_context(refs, [f"other{j}" for j in range(10)]) is None         # no problem known
    # forcing a kind keeps it alone (no stacking)
    res = F.fit_eval_log(_log(tmp_path / "l.jsonl", np.random.default_rng(5).binomial(100, p[5])), "m5", "synth",
                         templates=refs, difficulty="template")
    assert res.chosen == "template"


def test_problem_counts_of_unequal_lengths_are_refused(tmp_path):
    from planner.accuracy.profile import load_profile

    d = {"task": "x", "model": "m", "task_kind": "math_answer", "pass_at_1": 0.5, "reference_gen_len": 100,
         "difficulty": {"kind": "beta", "a": 1.0, "b": 1.0}, "trace_length": {"median_tokens": 10, "sigma": 0.5},
         "sources": {"pass_at_1": "test"}, "problem_counts": {"problems": ["a", "b"], "n": [10], "correct": [1]}}
    path = tmp_path / "x--m.yaml"
    import yaml

    path.write_text(yaml.safe_dump(d))
    with pytest.raises(InputError) as exc:
        load_profile(str(path))
    assert "problem_counts" in str(exc.value)


DEV = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pass-at-k-math-pythia-dev.csv"


@pytest.mark.skipif(not DEV.exists(), reason="dev data not present")
def test_default_fit_on_the_dev_file_is_stacked_and_bounded(tmp_path):
    """The default `planner fit -t math` (shipped templates with counts, the model's own
    excluded) on 100 of 10,000 samples per problem, seed 0, three models spanning the range:
    stacked, pass@1,000 / pass@10,000 within its 80% interval, mean |error| measured 0.029
    (0.014 with the weight from the log's own splits; 5 seeds, all 7 models: 0.038, was
    0.045, benchmarks/accuracy_fidelity.py); the gate is 0.04, the issue's target."""
    import csv
    from collections import defaultdict

    from planner.accuracy.estimators import pass_at_k_unbiased
    from planner.accuracy.profile import Profile

    counts = defaultdict(list)
    with open(DEV, newline="") as fh:
        for row in csv.DictReader(fh):
            counts[row["model"]].append((row["problem"], int(row["n"]), int(row["correct"])))
    errs = []
    for model in ("Pythia 12B", "Pythia 410M", "Pythia 70M"):
        probs = counts[model]
        n = np.array([p[1] for p in probs])
        c = np.array([p[2] for p in probs])
        seen = np.random.default_rng(0).hypergeometric(c, n - c, 100)
        log = tmp_path / "l.jsonl"
        log.write_text("".join(json.dumps({"problem": p[0], "n": 100, "correct": int(x)}) + "\n"
                               for p, x in zip(probs, seen)))
        res = F.fit_eval_log(log, model, "math", seed=0)
        assert "stacked" in res.chosen
        prof = Profile(spec=res.profile, path=str(log))
        for k in (1000, 10_000):
            truth = float(pass_at_k_unbiased(n, c, np.full(len(n), k)).mean())
            lo, hi = interval(prof, "pass@k", k)
            assert lo <= truth <= hi
            errs.append(abs(float(res.profile.difficulty.build().pass_at_k(k)) - truth))
    assert np.mean(errs) < 0.04
