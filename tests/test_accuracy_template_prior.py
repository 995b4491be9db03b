"""The prior over a template's shift built from the other models of a task, and logs with
(almost) nothing solved (issue 12, item 4). Oracles: templates that are the same shape
moved by known shifts (the shifts between them are known), synthetic models drawn from a
known shifted shape (the truth at k is the shape's own pass@k)."""

import json

import numpy as np
import pytest

from planner.accuracy import fit as F
from planner.accuracy import logit_prior as LP
from planner.accuracy.difficulty import LogitGridDifficulty
from planner.accuracy.predict import predict
from planner.accuracy.uncertainty import interval

ABILITIES = (0, 4, 8, 12)     # the other models' shifts of the base shape, grid steps


def _base():
    """A skewed shape on the grid (a logit-normal bump at logit -9 with a long left tail)."""
    x = LP.logit_nodes()
    w = np.exp(-0.5 * ((x + 9.0) / np.where(x < -9.0, 2.5, 1.2)) ** 2)
    return w / w.sum()


def _write(path, n, c):
    path.write_text("".join(json.dumps({"problem": f"q{i}", "n": int(a), "correct": int(b)}) + "\n"
                            for i, (a, b) in enumerate(zip(n, c))))
    return path


def _pass_at_k(w, k):
    return float(LogitGridDifficulty(LP.LOGIT_MIN, LP.LOGIT_STEP, tuple(w / w.sum())).pass_at_k(k))


def test_matching_shift_recovers_known_shifts_between_templates():
    base = _base()
    tpl = [LP.shift_weights(base, s) for s in ABILITIES]
    for i, a in enumerate(ABILITIES):
        for j, b in enumerate(ABILITIES):
            assert LP.matching_shift(tpl[i], tpl[j]) == pytest.approx(b - a, abs=0.5)


def test_shift_prior_is_centred_on_the_other_models_and_flat_for_one_template():
    base = _base()
    tpl = [LP.shift_weights(base, s) for s in ABILITIES]
    s = np.asarray(LP.TEMPLATE_SHIFTS, float)
    for a, lp in zip(ABILITIES, LP.shift_log_prior(tpl)):
        q = np.exp(lp - lp.max())
        q /= q.sum()
        # the mode of a Student t is its centre: the mean of the others' shifts from this one
        assert s[np.argmax(lp)] == pytest.approx(np.mean(ABILITIES) - a, abs=1.0)
    (flat,) = LP.shift_log_prior(tpl[:1])
    assert np.ptp(flat) == 0.0


def test_template_shift_recovers_a_known_ability_with_several_templates():
    """A model 6 steps above the best template, 200 problems x 100 samples: the posterior
    over the shift lands within a step of it and pass@1000 within 0.05 of the truth."""
    base = _base()
    tpl = [LP.shift_weights(base, s) for s in ABILITIES]
    true_w = LP.shift_weights(base, 18)
    rng = np.random.default_rng(5)
    p = rng.choice(LP._expit(LP.logit_nodes()), size=200, p=true_w)
    c = rng.binomial(100, p)
    moved, post = LP.template_shift_posterior(np.full(200, 100), c, tpl)
    s = np.asarray(LP.TEMPLATE_SHIFTS, float)
    for a, q in zip(ABILITIES, post):
        assert float(q @ s) == pytest.approx(18 - a, abs=1.0)
    w = LP.fit_template_shift(np.full(200, 100), c, tpl)
    assert _pass_at_k(w, 1000) == pytest.approx(_pass_at_k(true_w, 1000), abs=0.05)


def test_zero_success_log_interval_holds_the_synthetic_truth(tmp_path):
    """A model 2 steps (1 in logit) below the weakest template solves nothing in 67 x 100
    samples. The flat prior over the shift would run to the lowest shift tried (pass@k ~ 0);
    the prior from the other models keeps the prediction within a factor of 3 of the truth
    at k = 1,000 and 10,000, and the 80% interval holds the truth."""
    base = _base()
    tpl = [LP.shift_weights(base, s) for s in ABILITIES]
    true_w = LP.shift_weights(base, -2)
    for seed in range(100):       # the first draw (of a fixed sequence) with nothing solved
        rng = np.random.default_rng(seed)
        c = rng.binomial(100, rng.choice(LP._expit(LP.logit_nodes()), size=67, p=true_w))
        if c.sum() == 0:
            break
    assert c.sum() == 0
    log = _write(tmp_path / "zero.jsonl", np.full(67, 100), c)
    prof = F.fit_eval_log(log, "m", "t", difficulty="template", templates=tpl).profile
    ks = [1000, 10000]
    pred = np.asarray(predict(prof, "pass@k", ks), float)
    lo, hi = interval(prof, "pass@k", ks)
    truth = np.array([_pass_at_k(true_w, k) for k in ks])
    assert np.all(truth > 0.05)       # the test means something: the truth is far from 0
    assert np.all(pred > truth / 3) and np.all(pred < truth * 3)
    assert np.all(lo <= truth) and np.all(truth <= hi)
    assert prof.difficulty.mean() < 1e-3          # still a model that solves almost nothing


@pytest.mark.parametrize("correct", [0, 100])
def test_degenerate_logs_with_several_templates_give_a_valid_profile(tmp_path, correct):
    base = _base()
    tpl = [LP.shift_weights(base, s) for s in ABILITIES]
    log = _write(tmp_path / f"d{correct}.jsonl", np.full(67, 100), np.full(67, correct))
    for kind in ("template", "auto"):
        prof = F.fit_eval_log(log, "m", "t", difficulty=kind, templates=tpl).profile
        v = np.asarray(predict(prof, "pass@k", [1, 100, 1000, 10000]), float)
        assert np.all(np.isfinite(v)) and np.all(np.diff(v) >= -1e-9)
        assert prof.difficulty.mean() == pytest.approx(correct / 100, abs=0.01)
        lo, hi = interval(prof, "pass@k", [1000, 10000])
        assert np.all(lo <= v[2:] + 1e-12) and np.all(v[2:] <= hi + 1e-12)


def test_shipped_math_templates_load_and_name_their_source():
    """examples/templates/ (benchmarks/make_math_templates.py): each loads as a template on
    the fit's grid, its pass@1 is its dev-file model's observed pass@1 (all 10,000 samples),
    and its sources name the dev file."""
    import csv
    from pathlib import Path

    from planner.accuracy.profile import load_profile
    from planner.accuracy.selection import template_weights

    root = Path(__file__).resolve().parents[1]
    counts: dict = {}
    with open(root.parent / "shared" / "data" / "pass-at-k-math-pythia-dev.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            counts.setdefault(row["model"].lower().replace(" ", "-"), []).append(int(row["correct"]) / int(row["n"]))
    files = sorted((root / "examples" / "templates").glob("math--pythia-*.yaml"))
    assert len(files) == 7
    for f in files:
        w = template_weights(str(f))
        assert w.shape == LP.logit_nodes().shape and w.sum() == pytest.approx(1.0)
        prof = load_profile(str(f))
        assert prof.spec.pass_at_1 == pytest.approx(np.mean(counts[prof.spec.model]), rel=0.02)
        assert "pass-at-k-math-pythia-dev.csv" in prof.spec.sources["difficulty"]
