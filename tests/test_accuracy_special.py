"""planner.accuracy.special (numpy special functions) and the Gauss-Legendre Beta cell
moments of the quadrature, against scipy (and mpmath where scipy itself is inexact)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special as S

from planner.accuracy import quadrature as Q
from planner.accuracy import special as M

RNG = np.random.default_rng(20240601)


def _rel(a, b, floor=1e-300):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b) / np.maximum(np.abs(b), floor)


def test_expit_logit_match_scipy():
    x = np.concatenate([np.linspace(-745, 745, 200001), RNG.normal(0, 5, 100000), [0.0, -0.0]])
    ref = S.expit(x)
    ours = M.expit(x)
    assert np.max(np.abs(ours - ref)) <= 2.3e-16
    big = ref > 1e-300
    assert np.max(_rel(ours[big], ref[big])) < 1e-15
    p = np.concatenate([np.logspace(-300, 0, 100000, endpoint=False), 1 - np.logspace(-16, -0.1, 10000),
                        RNG.random(100000), [0.3, 0.65, 0.5]])
    assert np.max(_rel(M.logit(p), S.logit(p), 1e-300)) < 1e-15
    assert M.logit(0.0) == -np.inf and M.logit(1.0) == np.inf
    assert M.expit(3.0) == pytest.approx(float(S.expit(3.0)), rel=1e-16)
    assert np.isscalar(M.expit(3.0)) and M.expit(np.array([1.0])).shape == (1,)


def test_ndtr_erfc_match_scipy():
    x = np.concatenate([np.linspace(-40, 40, 400001), RNG.normal(0, 10, 200000),
                        [0.0, 0.46875 * np.sqrt(2), 4 * np.sqrt(2), 26.543 * np.sqrt(2), np.inf, -np.inf]])
    ours, ref = M.ndtr(x), S.ndtr(x)
    assert np.max(np.abs(ours - ref)) <= 4.5e-16          # absolute, everywhere
    tail = x > -37
    assert np.max(_rel(ours[tail], ref[tail])) < 2e-13     # relative, down to 1e-300
    assert M.ndtr(np.nan) != M.ndtr(np.nan)
    y = x[np.abs(x) < 26]
    assert np.max(_rel(M.erfc(y), S.erfc(y))) < 2e-13
    assert np.max(np.abs(M.erfc(x) - S.erfc(x))) <= 4.5e-16
    assert M.ndtr(np.array([[0.0, 1.0]])).shape == (1, 2)


def test_gammaln_matches_scipy():
    x = np.concatenate([np.logspace(-300, 10, 200000), RNG.uniform(0, 30, 100000), np.linspace(0.5, 3, 100001),
                        np.arange(1, 200, dtype=float)])
    ours, ref = M.gammaln(x), S.gammaln(x)
    assert np.max(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))) < 3e-14
    away = np.abs(ref) > 0.1                             # relative, away from the zeros at 1, 2
    assert np.max(_rel(ours[away], ref[away])) < 1e-13
    xn = -RNG.uniform(0, 50, 20000)
    xn = xn[np.abs(xn - np.round(xn)) > 1e-6]
    assert np.max(np.abs(M.gammaln(xn) - S.gammaln(xn)) / np.maximum(1.0, np.abs(S.gammaln(xn)))) < 1e-12
    assert M.gammaln(0.0) == np.inf and M.gammaln(-3.0) == np.inf
    assert M.gammaln(1.0) == pytest.approx(0.0, abs=1e-15) and M.gammaln(2.0) == pytest.approx(0.0, abs=1e-15)


def test_betaln_matches_scipy_and_mpmath():
    a = 10 ** RNG.uniform(-3, 3, 200000)
    b = 10 ** RNG.uniform(-3, 3, 200000)
    ref = S.betaln(a, b)
    # scipy's betaln itself is off by up to ~2.5e-12 with one argument < 1 and the other
    # ~1e3 (mpmath below decides)
    assert np.max(np.abs(M.betaln(a, b) - ref) / np.maximum(1.0, np.abs(ref))) < 1e-11
    small = np.maximum(a, b) < 10
    assert np.max(np.abs(M.betaln(a, b) - ref)[small] / np.maximum(1.0, np.abs(ref[small]))) < 5e-14
    # beta_pass_at_k's ratio B(a, b+k) / B(a, b), k to 1e7
    k = 10 ** RNG.uniform(0, 7, 100000)
    a, b = 10 ** RNG.uniform(-2, 1.5, 100000), 10 ** RNG.uniform(-2, 1.5, 100000)
    d_ours = M.betaln(a, b + k) - M.betaln(a, b)
    d_ref = S.betaln(a, b + k) - S.betaln(a, b)
    assert np.max(np.abs(d_ours - d_ref) / np.maximum(1.0, np.abs(d_ref))) < 1e-8   # scipy's own error
    assert M.betaln(0.0, 1.0) == np.inf
    # large arguments: scipy's betaln is off by up to ~2e-9 there, mpmath decides
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    a, b = 10 ** RNG.uniform(-3, 7, 300), 10 ** RNG.uniform(-3, 7, 300)
    a[:100] = 10 ** RNG.uniform(-1, 0, 100)
    b[:100] = 10 ** RNG.uniform(2.5, 3.5, 100)
    exact = np.array([float(mpmath.log(mpmath.beta(u, v))) for u, v in zip(a, b)])
    assert np.max(np.abs(M.betaln(a, b) - exact) / np.maximum(1.0, np.abs(exact))) < 2e-14


def test_logsumexp_matches_scipy():
    a = RNG.normal(0, 300, (40, 30))
    for axis in (None, 0, 1, -1):
        assert np.allclose(M.logsumexp(a, axis=axis), S.logsumexp(a, axis=axis), rtol=1e-14, atol=0)
    assert M.logsumexp(a, axis=1, keepdims=True).shape == (40, 1)
    assert M.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert M.logsumexp(np.array([np.inf, 1.0])) == np.inf


def _scipy_cell_moments(a, b, lo, hi, r):
    """The former implementation: E[p^r; lo < p <= hi] from regularized incomplete Betas
    (CDF below 1/2, survival function above)."""
    ar, bb = a + r, b
    scale = np.exp(S.betaln(a + r, b) - S.betaln(a, b))
    lower = S.betainc(ar, bb, hi) - S.betainc(ar, bb, lo)
    upper = S.betainc(bb, ar, 1.0 - lo) - S.betainc(bb, ar, 1.0 - hi)
    return scale * np.clip(np.where(lo >= 0.5, upper, lower), 0.0, None)


def _test_cells():
    """The grid's cells and the graded sub-cells split_at makes around split points in
    the body, the far left tail and the far right tail."""
    edges = np.concatenate([[0.0], Q._edges(), [1.0]])
    xs = np.concatenate([RNG.random(30), 10 ** RNG.uniform(-15, -9, 15), 1 - 10 ** RNG.uniform(-14, -7, 15),
                         [0.5, 1e-3, 0.999]])
    c = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, len(edges) - 2)
    lo_c, hi_c = edges[c], edges[c + 1]
    fr = np.concatenate([[1.0], 0.5 ** np.arange(1, Q.SPLIT_LEVELS + 1), [0.0]])
    lo, hi = [edges[:-1]], [edges[1:]]
    for i in range(len(fr) - 1):
        lo += [xs - (xs - lo_c) * fr[i], xs + (hi_c - xs) * fr[::-1][i]]
        hi += [xs - (xs - lo_c) * fr[i + 1], xs + (hi_c - xs) * fr[::-1][i + 1]]
    return np.concatenate(lo), np.concatenate(hi)


@pytest.mark.parametrize("a,b", [(0.069, 0.531), (0.359, 0.091), (0.478, 0.122), (0.01, 0.01), (0.02, 5.0),
                                 (5.0, 0.02), (1.0, 1.0), (2.0, 3.0), (16.5, 16.5), (30.5, 2.5), (0.5, 32.5),
                                 (50.0, 50.0), (100.0, 300.0), (500.5, 500.5), (1000.0, 20.0), (3000.0, 7000.0),
                                 (0.3, 1e5)])
def test_cell_moments_match_incomplete_beta(a, b):
    """Gauss-Legendre in logit p against scipy's incomplete Beta: 1e-10 relative or 1e-14
    absolute (the latter is scipy's cancellation in CDF differences), every moment r = 0..3,
    on the grid's cells and split_at's sub-cells."""
    lo, hi = _test_cells()
    ours = Q._mixture_cell_moments(np.ones(1), np.array([a]), np.array([b]), lo, hi)
    for r in range(4):
        ref = _scipy_cell_moments(a, b, lo, hi, r)
        assert np.all(np.abs(ours[r] - ref) <= 1e-10 * np.abs(ref) + 1e-14), (a, b, r)


def test_cell_moments_exact_where_scipy_is_not():
    """Large parameters and tiny cells, where the incomplete-Beta differences lose digits:
    against mpmath quadrature of the same integral at 40 digits."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    cases = [(1e5, 0.3, 0.9998766054240137, 0.9999546021312976, 1),
             (1e6, 2.0, 0.9999938558253978, 0.999997739675702, 3),
             (2.0, 1e6, 4.5397868702434395e-05, 0.00012339457598623172, 2),
             (1000.0, 20.0, 0.5, 0.7310585786300049, 0),
             (0.01, 0.01, 0.269773506070216, 0.2697867137638703, 0),
             (0.5, 32.5, 0.4613436105988292, 0.5, 0),
             (500.5, 500.5, 0.8807970779778823, 0.9525741268224334, 2)]
    for a, b, lo, hi, r in cases:
        A, B = mpmath.mpf(a), mpmath.mpf(b)
        lb = mpmath.log(mpmath.beta(A, B))
        xl = mpmath.log(mpmath.mpf(lo) / (1 - mpmath.mpf(lo)))
        xh = mpmath.log(mpmath.mpf(hi) / (1 - mpmath.mpf(hi)))

        def f(x, A=A, B=B, lb=lb, r=r):
            return mpmath.exp((A + r) * -mpmath.log1p(mpmath.exp(-x)) + B * -mpmath.log1p(mpmath.exp(x)) - lb)

        exact = float(mpmath.quad(f, mpmath.linspace(xl, xh, 200)))
        ours = Q._mixture_cell_moments(np.ones(1), np.array([a]), np.array([b]), np.array([lo]), np.array([hi]))[r, 0]
        assert ours == pytest.approx(exact, rel=1e-11), (a, b, lo, hi, r)


def test_tail_cells_match_incomplete_beta():
    """The two tail cells (series) against scipy, mixtures included."""
    w = np.array([0.2, 0.5, 0.3])
    a, b = np.array([0.07, 1.5, 40.0]), np.array([0.5, 3.0, 0.2])
    edges = np.concatenate([[0.0], Q._edges(), [1.0]])
    lo, hi = edges[[0, -2]], edges[[1, -1]]
    ours = Q._mixture_cell_moments(w, a, b, lo, hi)
    for r in range(4):
        ref = sum(wm * _scipy_cell_moments(am, bm, lo, hi, r) for wm, am, bm in zip(w, a, b))
        assert np.all(np.abs(ours[r] - ref) <= 1e-12 * ref + 1e-300), r


def test_grids_of_shipped_profiles_unchanged():
    """Every shipped profile's quadrature grid against one built from scipy's incomplete
    Beta moments (the former construction): the same expectations of (1-p)^k (k to 1e5)
    and p^k (k to 64), plain and split (split_at), to 1e-10 (2e-11 k^2 for p^k: k^2 var
    of the cells near p = 1 where the former rule had one node). (Node counts can differ by one: near
    p = 1 the former moments were too noisy for a 2-point rule in some cells, which then
    fell back to one node at the cell mean; the rule is now 2-point there too.)"""
    from planner.accuracy import find_profile, list_profiles

    orig = Q._mixture_cell_moments

    def scipy_moments(wts, a, b, lo, hi):
        return np.array([sum(w_ * _scipy_cell_moments(a_, b_, lo, hi, r) for w_, a_, b_ in zip(wts, a, b))
                         for r in range(4)])

    ks = np.array([1, 2, 3, 8, 64, 1000, 1e5])[:, None, None]

    def moments(nodes, weights):
        nodes, weights = np.atleast_2d(nodes), np.atleast_2d(weights)
        return np.concatenate([((1 - nodes) ** ks * weights).sum(-1), (nodes ** ks[:5] * weights).sum(-1)])

    for task, model in list_profiles():
        comp = find_profile(model, task).difficulty.components()
        new = Q.beta_mixture_grid(*comp)
        try:
            Q._mixture_cell_moments = scipy_moments
            old = Q.beta_mixture_grid(*comp)
            split_old = Q.split_at(old, [1e-12, 0.3, 0.9999999])
        finally:
            Q._mixture_cell_moments = orig
        split_new = Q.split_at(new, [1e-12, 0.3, 0.9999999])
        assert abs(len(new.nodes) - len(old.nodes)) <= 2
        for d in (moments(new.nodes, new.weights) - moments(old.nodes, old.weights),
                  moments(*split_new) - moments(*split_old)):
            assert np.max(np.abs(d[:len(ks)])) < 1e-10      # (1-p)^k
            # p^k: the cells near p = 1 where the former rule had one node (error ~ k^2 var)
            assert np.all(np.abs(d[len(ks):]) <= 2e-11 * ks[:5, :, 0] ** 2)


def _loaded_after_predict(module: str, imports: str = "") -> bool:
    """Whether ``module`` is in sys.modules of a fresh interpreter after the search's
    accuracy calls (every strategy on a shipped profile)."""
    code = (f"import sys, numpy as np{imports}; from planner.accuracy import predict, find_profile; "
            "p = find_profile('qwen3-8b', 'aime24'); "
            "[predict(p, s, np.array([1, 4, 64])[:, None, None], [[4096], [32768]], kv_budget=[0, 512]) "
            "for s in ('single', 'pass@k', 'verify', 'majority', 'best-of-k')]; "
            f"print({module!r} in sys.modules)")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    return out.stdout.strip() == "True"


def test_predict_path_imports_no_scipy():
    assert not _loaded_after_predict("scipy", ", planner.accuracy, planner.recommend")


def test_unique_sorted_is_numpys_unique():
    """unique_sorted gives np.unique's values and dtype (the oracle) on integer, float and
    repeated inputs, empty and one-element arrays included."""
    rng = np.random.default_rng(7)
    cases = [np.array([], dtype=float), np.array([3.0]), np.array([2, 2, 2]), rng.integers(0, 5, 200),
             rng.choice([1.0, 2.0, 64.0, 0.75], (7, 11)), rng.normal(size=300), -np.arange(10.0)]
    for a in cases:
        got, want = M.unique_sorted(a), np.unique(a)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_predict_path_imports_no_numpy_ma():
    """The search's accuracy calls never import numpy.ma (np.unique without return flags
    does on numpy >= 2.3: tens of ms of a command's start-up)."""
    assert not _loaded_after_predict("numpy.ma")
