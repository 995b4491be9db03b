"""Strategy formulas: closed forms against Monte Carlo of the same per-problem model,
the Beta closed form against numerical integration, the quadrature against the closed
form, the unbiased estimator against the combinatorial formula, and the shape properties
(monotone pass@k, saturating majority, plateauing best-of-k, verifier ceiling).

Monte Carlo tolerances: each MC estimate is a mean of N Bernoulli outcomes, so its
standard error is at most 0.5/sqrt(N); we allow 4 standard errors (false-failure rate
~6e-5 per comparison, and the seeds are fixed)."""

import math

import numpy as np
import pytest
from scipy import integrate, special

from planner.accuracy import strategies as S
from planner.accuracy import strategy_tables as ST
from planner.accuracy.difficulty import BetaDifficulty, EmpiricalDifficulty, MixtureDifficulty, beta_pass_at_k
from planner.accuracy.estimators import pass_at_k_product, pass_at_k_unbiased
from planner.accuracy.quadrature import beta_mixture_grid

N_MC = 200_000
TOL_MC = 4 * 0.5 / math.sqrt(N_MC)   # 4 standard errors of a proportion


def _mc_counts(rng, p, w, k, n=N_MC):
    """Per-trial counts (correct C, wrong-with-answer W) of k samples of one problem."""
    u = rng.random((n, k))
    return (u < p).sum(1), ((u >= p) & (u < p + w)).sum(1)


# ------------------------------------------------------------------ closed forms vs MC
@pytest.mark.parametrize("p,k", [(0.05, 1), (0.05, 20), (0.3, 5), (0.7, 3)])
def test_pass_at_k_matches_monte_carlo(p, k):
    rng = np.random.default_rng(1)
    c, _ = _mc_counts(rng, p, 1 - p, k)
    assert abs(float(S.pass_at_k(p, k)) - np.mean(c > 0)) < TOL_MC


def test_beta_pass_at_k_matches_monte_carlo_over_problems():
    # two-stage simulation: p_i ~ Beta, then k Bernoulli(p_i) samples
    rng = np.random.default_rng(2)
    a, b, k = 0.6, 0.4, 8
    p = rng.beta(a, b, N_MC)
    solved = rng.random((N_MC, k)) < p[:, None]
    assert abs(float(beta_pass_at_k(a, b, k)) - np.mean(solved.any(1))) < TOL_MC


@pytest.mark.parametrize("p,w,c,s,k", [(0.3, 0.7, 0.9, 0.8, 4), (0.1, 0.9, 0.95, 0.9, 10), (0.4, 0.3, 0.8, 0.7, 6)])
def test_verify_matches_monte_carlo(p, w, c, s, k):
    rng = np.random.default_rng(3)
    n = N_MC
    kind = rng.random((n, k))
    correct = kind < p
    wrong = (kind >= p) & (kind < p + w)
    accept = rng.random((n, k)) < np.where(correct, c, np.where(wrong, 1 - s, 0.0))
    first = np.argmax(accept, axis=1)
    any_acc = accept.any(1)
    success = any_acc & correct[np.arange(n), first]
    assert abs(float(S.verify(p, k, c, s, w)) - success.mean()) < TOL_MC


@pytest.mark.parametrize("p,eta,k", [(0.3, 0.5, 1), (0.3, 0.5, 2), (0.25, 0.6, 7), (0.4, 0.8, 16), (0.35, 0.6, 40),
                                     (0.2, 0.3, 100)])
def test_majority_matches_monte_carlo(p, eta, k):
    rng = np.random.default_rng(4)
    t = eta * (1 - p)
    C, W = _mc_counts(rng, p, t, k)
    mc = np.mean((C > W) + 0.5 * ((C == W) & (C > 0)))
    # exact recursion for k <= 16; beyond, the Edgeworth approximation adds up to ~2e-3
    tol = TOL_MC + (0.0 if k <= ST.K_EXACT else 3e-3)
    assert abs(float(S.majority(p, k, eta)) - mc) < tol


@pytest.mark.parametrize("p,w,auc,k", [(0.3, 0.7, 0.8, 1), (0.3, 0.7, 0.8, 3), (0.1, 0.9, 0.75, 12),
                                       (0.2, 0.5, 0.8, 50), (0.05, 0.95, 0.9, 200)])
def test_best_of_k_matches_monte_carlo(p, w, auc, k):
    # Luce choice: the reward model picks a correct answer with probability rho C / (rho C + W)
    rng = np.random.default_rng(5)
    rho = auc / (1 - auc)
    C, W = _mc_counts(rng, p, w, k)
    den = rho * C + W
    pick_correct = rng.random(N_MC) < np.where(den > 0, rho * C / np.where(den > 0, den, 1), 0.0)
    tol = TOL_MC + (0.0 if k <= ST.K_EXACT else 2e-3)
    assert abs(float(S.best_of_k(p, k, auc, w)) - pick_correct.mean()) < tol


def test_best_of_k_luce_is_argmax_with_gumbel_noise():
    # the selection rule equals argmax of (log-odds + Gumbel) scores, and AUC is the pairwise accuracy
    rng = np.random.default_rng(6)
    auc, k, p = 0.8, 5, 0.3
    n = N_MC
    correct = rng.random((n, k)) < p
    scores = np.where(correct, math.log(auc / (1 - auc)), 0.0) + rng.gumbel(size=(n, k))
    picked = correct[np.arange(n), scores.argmax(1)]
    assert abs(float(S.best_of_k(p, k, auc)) - picked.mean()) < TOL_MC
    pair = rng.gumbel(size=n) + math.log(auc / (1 - auc)) > rng.gumbel(size=n)
    assert abs(pair.mean() - auc) < TOL_MC


# ------------------------------------------------------------------ Beta closed form
@pytest.mark.parametrize("a,b", [(0.5, 0.5), (0.564, 0.186), (2.0, 8.0), (0.3, 3.0)])
@pytest.mark.parametrize("k", [1, 3, 50, 1000])
def test_beta_closed_form_vs_numerical_integration(a, b, k):
    f = lambda p: (1 - p) ** k * p ** (a - 1) * (1 - p) ** (b - 1) / special.beta(a, b)
    # split at small p where the integrand is steep for large k; quad handles the endpoint singularities
    pts = sorted({0.0, min(1.0 / k, 0.5), 0.5, 1.0})
    total = sum(integrate.quad(f, lo, hi, limit=200, epsabs=1e-13, epsrel=1e-11)[0] for lo, hi in zip(pts, pts[1:]))
    assert float(beta_pass_at_k(a, b, k)) == pytest.approx(1 - total, abs=1e-8)


def test_beta_closed_form_is_accurate_to_k_1e5():
    # 1 - pass@k ~ Gamma(a+b)/Gamma(b) k^-a for large k (Schaeffer et al. 2025): checks no underflow/cancellation
    a, b = 0.4, 1.2
    for k in (1e3, 1e4, 1e5):
        miss = 1 - float(beta_pass_at_k(a, b, k))
        asym = math.exp(special.gammaln(a + b) - special.gammaln(b)) * k ** (-a)
        assert miss == pytest.approx(asym, rel=5e-3)
        assert 0 < miss < 1


@pytest.mark.parametrize("a,b", [(0.564, 0.186), (0.3, 0.34), (2.0, 8.0), (0.2, 5.0), (5.0, 0.5), (1.0, 1.0)])
def test_quadrature_matches_closed_form_up_to_1e5(a, b):
    g = beta_mixture_grid([1.0], [a], [b])
    ks = np.unique(np.round(np.logspace(0, 5, 40)))
    quad = 1 - np.exp(ks[:, None] * np.log1p(-np.minimum(g.nodes, 1 - 1e-16))) @ g.weights
    assert np.max(np.abs(quad - beta_pass_at_k(a, b, ks))) < 5e-4
    assert g.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert g.nodes @ g.weights == pytest.approx(a / (a + b), abs=1e-12)   # mean exact


def test_mixture_and_empirical_closed_forms():
    mix = MixtureDifficulty((0.3, 0.7), (0.2, 3.0), (2.0, 1.0))
    ks = np.array([1, 4, 64])
    expect = 0.3 * beta_pass_at_k(0.2, 2.0, ks) + 0.7 * beta_pass_at_k(3.0, 1.0, ks)
    assert np.allclose(mix.pass_at_k(ks), expect)
    g = mix.grid()
    assert np.allclose(1 - np.exp(ks[:, None] * np.log1p(-np.minimum(g.nodes, 1 - 1e-16))) @ g.weights, expect, atol=5e-4)
    emp = EmpiricalDifficulty((10, 10), (3, 0))
    # k <= n: the unbiased estimator averaged over problems; k > n: posterior Beta(c+.5, n-c+.5)
    assert float(emp.pass_at_k(1)) == pytest.approx((0.3 + 0.0) / 2)
    assert float(emp.pass_at_k(10)) == pytest.approx(0.5)
    post = (beta_pass_at_k(3.5, 7.5, 20) + beta_pass_at_k(0.5, 10.5, 20)) / 2
    assert float(emp.pass_at_k(20)) == pytest.approx(float(post))


# ------------------------------------------------------------------ unbiased estimator
def test_unbiased_estimator_vs_combinatorial_formula():
    for n in (1, 5, 16, 40):
        for c in range(n + 1):
            for k in range(1, n + 1):
                comb = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert float(pass_at_k_unbiased(n, c, k)) == pytest.approx(comb, abs=1e-12)
                assert pass_at_k_product(n, c, k) == pytest.approx(comb, abs=1e-12)


def test_unbiased_estimator_is_unbiased():
    # E over Binomial(n, p) of the estimator equals 1 - (1-p)^k exactly
    n, p, k = 12, 0.23, 5
    cs = np.arange(n + 1)
    pmf = np.array([math.comb(n, c) * p ** c * (1 - p) ** (n - c) for c in cs])
    assert float(pmf @ pass_at_k_unbiased(n, cs, k)) == pytest.approx(1 - (1 - p) ** k, abs=1e-12)


# ------------------------------------------------------------------ shapes
def test_pass_at_k_monotone_in_k():
    d = BetaDifficulty(0.564, 0.186)
    v = d.pass_at_k(np.arange(1, 5000))
    assert np.all(np.diff(v) > 0) and v[-1] < 1


def test_verify_ceiling_single_problem():
    r, c, s = 0.2, 0.9, 0.8
    ceiling = c * r / (c * r + (1 - s) * (1 - r))
    assert float(S.verify_ceiling(r, c, s)) == pytest.approx(ceiling)
    assert float(S.verify(r, 10_000, c, s)) == pytest.approx(ceiling, rel=1e-9)
    vals = S.verify(r, np.arange(1, 200), c, s)
    assert np.all(np.diff(vals) >= 0) and vals.max() <= ceiling + 1e-12 and ceiling < 1


def _profile(a, b, **extra):
    from planner.accuracy.profile import TaskProfile

    data = dict(task="t", model="m", task_kind="math_answer", pass_at_1=a / (a + b), reference_gen_len=1000,
                difficulty=dict(kind="beta", a=a, b=b), trace_length=dict(median_tokens=100, sigma=0.5),
                sources={"pass_at_1": "test"})
    data.update(extra)
    return TaskProfile.model_validate(data)


@pytest.mark.parametrize("a,b,eta", [(1.2, 0.8, 0.3), (2.0, 8.0, 0.3), (0.564, 0.186, 0.2)])
def test_majority_saturates_to_top_wrong_share(a, b, eta):
    from planner.accuracy import predict

    prof = _profile(a, b)
    # over a Beta: P(p > eta (1 - p)) = P(p > eta / (1 + eta)), exact from the CDF
    limit = 1 - special.betainc(a, b, eta / (1 + eta))
    ks = np.array([1, 16, 256, 4096, 65536, 10**6, 10**7])
    vals = predict(prof, "majority", ks, majority_top_wrong_share=eta)
    assert vals[0] == pytest.approx(a / (a + b), abs=1e-9)
    assert vals[-1] == pytest.approx(limit, abs=2e-3)
    assert abs(vals[-1] - vals[-2]) < 2e-3
    assert vals[-1] < float(predict(prof, "pass@k", 10**7))


def test_majority_quadrature_matches_fine_integration():
    # the split-cell quadrature against a 40,000-cell midpoint rule of the same integrand
    from planner.accuracy import predict

    a, b, eta = 2.0, 8.0, 0.3
    edges = np.linspace(0, 1, 40001)
    mass = np.diff(special.betainc(a, b, edges))
    mid = 0.5 * (edges[1:] + edges[:-1])
    ks = np.array([4, 17, 64, 256, 1024, 8192])
    fine = np.array([S.majority(mid, k, eta) @ mass for k in ks])
    assert np.max(np.abs(predict(_profile(a, b), "majority", ks, majority_top_wrong_share=eta) - fine)) < 4e-3


def test_best_of_k_plateaus():
    p, auc = 0.1, 0.8
    plateau = float(S.best_of_k_limit(p, auc))
    assert plateau == pytest.approx(4 * 0.1 / (4 * 0.1 + 0.9))
    vals = S.best_of_k(p, np.array([1, 10, 100, 1000, 10_000, 100_000]), auc)
    assert vals[0] == pytest.approx(p)
    assert vals[-1] == pytest.approx(plateau, abs=1e-3)
    assert vals[-1] - vals[-2] < 1e-3 and np.all(np.diff(vals) > -1e-9)


def test_single_is_pass_at_1():
    p = np.linspace(0, 1, 11)
    assert np.allclose(S.pass_at_k(p, 1), p)
    assert np.allclose(S.majority(p, 1, 0.5), p)
    assert np.allclose(S.best_of_k(p, 1, 0.8), p)
