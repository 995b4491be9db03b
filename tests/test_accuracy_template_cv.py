"""The stacking weight rehearsed on the templates (template_cv.py) and the leave-one-out
per-problem priors it uses (rasch.leave_one_out_priors). Oracles: a mixture whose weight
is known (recovered exactly, and locally where two groups of models differ), the Rasch
priors recomputed from scratch on the counts without the model left out, synthetic Rasch
data (the per-problem prior is the true model there, so the rehearsals must favour it),
and the dev file's model names (a model's own counts never reach its fit)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.accuracy import rasch as R
from planner.accuracy import stacking as SK
from planner.accuracy import template_cv as TC

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pass-at-k-math-pythia-dev.csv"


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 1.0), st.integers(0, 2 ** 31 - 1))
def test_local_alpha_recovers_a_weight_shared_by_every_model(alpha, seed):
    """Every rehearsal's truth is alpha * (per-problem) + (1 - alpha) * (shape): whatever
    the kernel's weights, the weighted least squares weight is alpha."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-5, 2, 24)
    p_a, p_r = rng.random(24), rng.random(24)
    truth = alpha * p_r + (1 - alpha) * p_a
    rows = list(zip(z, p_a - truth, p_r - truth))
    assert TC.local_alpha(rows, float(rng.normal(-5, 2))) == pytest.approx(alpha, abs=1e-9)


def test_local_alpha_follows_the_models_of_similar_ability():
    """Low-ability models are best served by the shape (alpha 0), high-ability ones by the
    per-problem prior (alpha 1): a log near either group gets that group's weight, one in
    between a weight in between."""
    rng = np.random.default_rng(4)
    rows = []
    for z, a in ((-9.0, 0.0), (-8.5, 0.0), (-8.0, 0.0), (-4.0, 1.0), (-3.5, 1.0), (-3.0, 1.0)):
        for _ in range(4):
            p_a, p_r = rng.random(2)
            truth = a * p_r + (1 - a) * p_a
            rows.append((z, p_a - truth, p_r - truth))
    low, mid, high = (TC.local_alpha(rows, z) for z in (-8.5, -6.0, -3.5))
    assert low < 0.25 and high > 0.75 and low < mid < high   # the bandwidth is the spread of the abilities
    # weighted equally (benchmarks/accuracy_fidelity.py --weight equal): one weight for every
    # ability, between the groups' (half the rehearsals want 0, half 1)
    flat = [TC.local_alpha(rows, z, equal=True) for z in (-8.5, -6.0, -3.5)]
    assert flat[0] == flat[1] == flat[2] and low < flat[0] < high


def test_local_alpha_needs_three_abilities():
    assert TC.local_alpha([], -3.0) is None
    assert TC.local_alpha([(-3.0, 0.1, 0.2), (-4.0, 0.1, -0.2)], -3.0) is None


def _synthetic_counts(rng, thetas, n_problems=40, n=10_000, sigma=0.8, tau=2.5):
    b = rng.normal(0.0, tau, n_problems)
    return {f"m{i}": {f"q{j}": (n, int(x)) for j, x in
                      enumerate(rng.binomial(n, 1 / (1 + np.exp(-(th - b + sigma * rng.standard_normal(n_problems))))))}
            for i, th in enumerate(thetas)}


def test_leave_one_out_priors_equal_the_priors_recomputed_without_the_model():
    """Brute force: drop the model's row from the counts, keep the joint fit's abilities,
    sigma and tau, and build problem_priors from scratch; the leave-one-out priors agree."""
    counts = _synthetic_counts(np.random.default_rng(2), (-7.0, -5.0, -3.0, -1.0))
    fit = R.fit_rasch(counts)
    loo = R.leave_one_out_priors(fit)
    for i, m in enumerate(fit.models):
        keep = [j for j in range(len(fit.models)) if j != i]
        sub = R.RaschFit(theta={fit.models[j]: fit.theta[fit.models[j]] for j in keep}, b=fit.b, sigma=fit.sigma,
                         tau=fit.tau, problems=fit.problems, models=[fit.models[j] for j in keep],
                         n=fit.n[keep], c=fit.c[keep])
        want = R.problem_priors(sub)
        assert set(loo[m]) == set(want)
        for p in want:
            assert np.allclose(loo[m][p], want[p], atol=1e-12)
    # a model's own counts move its own problems' priors (the left-out prior is not the joint one)
    full = R.problem_priors(fit)
    assert max(np.abs(loo[fit.models[0]][p] - full[p]).max() for p in full) > 1e-3


def test_rehearsals_match_a_refit_without_each_template(monkeypatch):
    """Oracle for the leave-one-out shortcut: rehearsing template u with the per-problem
    prior of a Rasch model refitted from scratch on the other templates gives nearly the
    same errors (the shortcut keeps the joint fit's abilities, sigma and tau). Synthetic
    Rasch templates, 10,000 samples per problem, rehearsed from 100."""
    from planner.accuracy import logit_prior as LP
    from planner.accuracy.estimators import pass_at_k_unbiased

    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    monkeypatch.setattr(TC, "DRAWS", 1)
    counts = _synthetic_counts(np.random.default_rng(7), (-9.0, -8.0, -7.0, -6.0, -5.0))
    ctx = SK._cached_rasch(counts)
    rows = TC.rehearsals(ctx, 100, seed=0)
    assert len(rows) == len(counts) * len(TC.STEPS)
    assert all(np.isfinite(r).all() for r in rows)
    rng = np.random.default_rng(0 + 3571)          # the rehearsals' draws, in the same order
    p_nodes = LP._expit(LP.logit_nodes())
    for i, u in enumerate(ctx.models):
        ids = list(counts[u])
        n_u = np.array([counts[u][p][0] for p in ids])
        c_u = np.array([counts[u][p][1] for p in ids])
        c = rng.hypergeometric(c_u, n_u - c_u, 100).astype(float)
        refit = R.fit_rasch({m: v for m, v in counts.items() if m != u})
        w = R.fit_new_model(ids, np.full(len(c), 100.0), c, R.problem_priors(refit), list(refit.theta.values()))
        for j, k in enumerate(100 * np.array(TC.STEPS)):
            truth = float(pass_at_k_unbiased(n_u, c_u, np.full(len(n_u), k)).mean())
            e_refit = float(w @ (1.0 - (1.0 - p_nodes) ** k)) - truth
            assert rows[i * len(TC.STEPS) + j][2] == pytest.approx(e_refit, abs=0.03), (u, k)
    # a log with more samples than the templates can rehearse twice (100 n above 10,000): one step
    assert len(TC.rehearsals(ctx, 200, seed=0)) == len(counts)


@pytest.mark.skipif(not DEV.exists(), reason="dev data not present")
def test_a_models_own_counts_never_reach_its_fit():
    """Protocol of issue 12 (leave one model out): the templates `planner fit -m M -t math`
    uses by default, and the Rasch context built from them, hold the other models only,
    whatever spelling of the model's name."""
    from planner.accuracy.fit import task_templates

    models = defaultdict(list)
    with open(DEV, newline="") as fh:
        for row in csv.DictReader(fh):
            models[row["model"]].append(row["problem"])
    for model, problems in models.items():
        for name in (model, model.lower().replace(" ", "-")):
            refs = task_templates("math", name)
            counts = SK.template_counts(refs)
            assert len(refs) == len(models) - 1
            assert name.lower().replace(" ", "-") not in {m.lower().replace(" ", "-") for m in counts}
        ctx = SK.rasch_context(refs, problems)
        assert model.lower().replace(" ", "-") not in {m.lower().replace(" ", "-") for m in ctx.models}
        assert set(ctx.loo) == set(ctx.models)
