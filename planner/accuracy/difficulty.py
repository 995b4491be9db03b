"""Difficulty models: the distribution of the per-problem success probability p.

A profile describes, at its reference generation budget, how p varies over the problems
of a task:

- ``BetaDifficulty(a, b)``: p ~ Beta(a, b); mean a/(a+b) is the published pass@1, the
  spread s = a+b says how bimodal the task is (s < 1: most problems are either almost
  always or almost never solved, as for reasoning models on AIME).
- ``MixtureDifficulty``: a weighted mixture of Betas (fitted when it predicts held-out
  data better than one Beta).
- ``LogitGridDifficulty``: point masses on a grid in logit p with fitted weights (the
  nonparametric prior of logit_prior.py, chosen by held-out samples for large-k
  extrapolation); its quadrature grid is the point masses themselves.
- ``EmpiricalDifficulty``: the observed per-problem counts (n_i samples, c_i correct).
  Expectations are averages over problems: the closed-form ``pass_at_k`` uses the unbiased
  estimator of Chen et al. (2021) for k <= n_i and the per-problem posterior
  Beta(c_i+a0, n_i-c_i+b0) beyond (Jeffreys prior a0 = b0 = 1/2). The quadrature grid
  (every strategy in predict(), budgets, penalties) is the mixture of those posteriors, so
  its mean is the average posterior mean (c_i + 1/2)/(n_i + 1), within 1/(2(n+1)) of the
  observed pass@1.

Each model gives ``mean()``, a closed-form ``pass_at_k(k)`` vectorized over k, and a
quadrature ``grid()`` (see quadrature.py) used for everything without a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from planner.accuracy import special
from planner.accuracy.estimators import pass_at_k_unbiased
from planner.accuracy.quadrature import Grid, beta_mixture_grid

# Prior for per-problem posteriors of an empirical profile: Jeffreys, Beta(1/2, 1/2).
DEFAULT_PRIOR = (0.5, 0.5)


def beta_pass_at_k(a, b, k) -> np.ndarray:
    """1 - E[(1-p)^k] for p ~ Beta(a, b): 1 - B(a, b+k)/B(a, b), via log-Beta functions.

    Accurate for k up to 1e5 and beyond: the ratio is formed in log space, so it never
    underflows before it is negligible, and 1 - exp(x) is taken with expm1."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    k = np.asarray(k, dtype=float)
    return -np.expm1(special.betaln(a, b + k) - special.betaln(a, b))


class Difficulty:
    """Base class: a distribution of p over problems."""

    kind = "base"

    def mean(self) -> float:
        raise NotImplementedError

    def pass_at_k(self, k) -> np.ndarray:
        raise NotImplementedError

    def grid(self) -> Grid:
        raise NotImplementedError

    def components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weights, a, b) of the Beta mixture this model is (or is approximated by)."""
        raise NotImplementedError

    def sample_p(self, rng: np.random.Generator, n: int) -> np.ndarray:
        w, a, b = self.components()
        idx = rng.choice(len(w), size=n, p=w / w.sum())
        return rng.beta(a[idx], b[idx])


@dataclass(frozen=True)
class BetaDifficulty(Difficulty):
    a: float
    b: float
    kind = "beta"

    def __post_init__(self):
        if not (self.a > 0 and self.b > 0):
            raise ValueError(f"Beta parameters must be > 0, got a={self.a}, b={self.b}")

    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def spread(self) -> float:
        return self.a + self.b

    def pass_at_k(self, k) -> np.ndarray:
        return beta_pass_at_k(self.a, self.b, k)

    @cached_property
    def _grid(self) -> Grid:
        return beta_mixture_grid([1.0], [self.a], [self.b])

    def grid(self) -> Grid:
        return self._grid

    def components(self):
        return np.array([1.0]), np.array([self.a]), np.array([self.b])

@dataclass(frozen=True)
class MixtureDifficulty(Difficulty):
    weights: tuple
    a: tuple
    b: tuple
    kind = "mixture"

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=float)
        if len(w) == 0 or len(w) != len(self.a) or len(w) != len(self.b):
            raise ValueError("mixture weights, a and b must have the same non-zero length")
        if np.any(w < 0) or not np.isclose(w.sum(), 1.0, atol=1e-6):
            raise ValueError(f"mixture weights must be >= 0 and sum to 1, got {list(w)}")
        if np.any(np.asarray(self.a) <= 0) or np.any(np.asarray(self.b) <= 0):
            raise ValueError("mixture Beta parameters must be > 0")

    def _arr(self):
        return (np.asarray(self.weights, float), np.asarray(self.a, float), np.asarray(self.b, float))

    def mean(self) -> float:
        w, a, b = self._arr()
        return float(np.sum(w * a / (a + b)))

    def pass_at_k(self, k) -> np.ndarray:
        w, a, b = self._arr()
        k = np.asarray(k, dtype=float)
        vals = beta_pass_at_k(a, b, k[..., None])
        return vals @ w

    @cached_property
    def _grid(self) -> Grid:
        w, a, b = self._arr()
        return beta_mixture_grid(w, a, b)

    def grid(self) -> Grid:
        return self._grid

    def components(self):
        return self._arr()

@dataclass(frozen=True)
class LogitGridDifficulty(Difficulty):
    """p = expit(logit_min + j * logit_step) with probability weights[j]."""

    logit_min: float
    logit_step: float
    weights: tuple
    kind = "logit_grid"

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=float)
        if len(w) < 2 or np.any(~np.isfinite(w)) or np.any(w < 0) or not np.isclose(w.sum(), 1.0, atol=1e-6):
            raise ValueError("logit-grid weights must be >= 0, at least 2, and sum to 1")
        if not (self.logit_step > 0 and np.isfinite(self.logit_min)):
            raise ValueError("logit-grid step must be > 0")

    def nodes(self) -> np.ndarray:
        x = self.logit_min + self.logit_step * np.arange(len(self.weights))
        return 1.0 / (1.0 + np.exp(-x))

    def _w(self) -> np.ndarray:
        w = np.asarray(self.weights, float)
        return w / w.sum()

    def mean(self) -> float:
        return float(self.nodes() @ self._w())

    def pass_at_k(self, k) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        return -np.expm1(k[..., None] * np.log1p(-self.nodes())) @ self._w()

    @cached_property
    def _grid(self) -> Grid:
        w = self._w()
        keep = w > 1e-14
        return Grid(nodes=self.nodes()[keep], weights=w[keep] / w[keep].sum())

    def grid(self) -> Grid:
        return self._grid

    def components(self):
        raise NotImplementedError("a logit-grid difficulty is not a Beta mixture")

    def sample_p(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(self.nodes(), size=n, p=self._w())


@dataclass(frozen=True)
class EmpiricalDifficulty(Difficulty):
    n: tuple
    correct: tuple
    prior: tuple = field(default=DEFAULT_PRIOR)
    kind = "empirical"

    def __post_init__(self):
        n = np.asarray(self.n, dtype=float)
        c = np.asarray(self.correct, dtype=float)
        if len(n) == 0 or len(n) != len(c):
            raise ValueError("empirical profile needs equal, non-empty n and correct lists")
        if np.any(n <= 0) or np.any(c < 0) or np.any(c > n):
            raise ValueError("empirical counts need n > 0 and 0 <= correct <= n")
        if not (self.prior[0] > 0 and self.prior[1] > 0):
            raise ValueError("posterior prior parameters must be > 0")

    def _arr(self):
        return np.asarray(self.n, float), np.asarray(self.correct, float)

    def mean(self) -> float:
        n, c = self._arr()
        return float(np.mean(c / n))

    def pass_at_k(self, k) -> np.ndarray:
        """Average over problems: Chen et al. unbiased estimator where k <= n_i, the
        posterior Beta(c_i + a0, n_i - c_i + b0) closed form where k > n_i."""
        n, c = self._arr()
        k = np.asarray(k, dtype=float)
        kk = k[..., None]
        unbiased = pass_at_k_unbiased(n, c, np.minimum(kk, n))
        a0, b0 = self.prior
        post = beta_pass_at_k(c + a0, n - c + b0, kk)
        return np.where(kk <= n, unbiased, post).mean(axis=-1)

    def components(self):
        n, c = self._arr()
        a0, b0 = self.prior
        return np.full(len(n), 1.0 / len(n)), c + a0, n - c + b0

    @cached_property
    def _grid(self) -> Grid:
        return beta_mixture_grid(*self.components())

    def grid(self) -> Grid:
        return self._grid
