"""Unbiased estimators from n samples with c correct.

pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"):
    1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1..n} (1 - k/i),   k <= n.
The vectorized form evaluates the binomial ratio with log-gamma functions (relative error
~1e-12 for n up to 1e6); ``pass_at_k_product`` is the product form of the paper, kept as a
scalar reference implementation.
"""

from __future__ import annotations

import numpy as np

from planner.accuracy import special


def pass_at_k_unbiased(n, c, k) -> np.ndarray:
    """Unbiased pass@k for arrays n, c, k (broadcast); requires k <= n."""
    n = np.asarray(n, dtype=float)
    c = np.asarray(c, dtype=float)
    k = np.asarray(k, dtype=float)
    n, c, k = np.broadcast_arrays(n, c, k)
    out = np.ones(n.shape, dtype=float)
    ok = (n - c) >= k
    if np.any(ok):
        nn, cc, kk = n[ok], c[ok], k[ok]
        log_ratio = (special.gammaln(nn - cc + 1) + special.gammaln(nn - kk + 1)
                     - special.gammaln(nn - cc - kk + 1) - special.gammaln(nn + 1))
        out[ok] = -np.expm1(log_ratio)
    return out


def pass_at_k_product(n: int, c: int, k: int) -> float:
    """The numerically stable product form of Chen et al. (scalar reference)."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def majority_at_k_empirical(answer_counts: dict, correct_answer, k: int, rng=None, trials: int = 2000) -> float:
    """Monte Carlo majority@k from the observed answers of one problem (used in tests
    and fit diagnostics): draw k answers without replacement, ties broken at random."""
    rng = rng or np.random.default_rng(0)
    answers = [a for a, m in answer_counts.items() for _ in range(m)]
    n = len(answers)
    if n == 0:
        return 0.0
    k = min(k, n)
    wins = 0.0
    for _ in range(trials):
        pick = rng.choice(n, size=k, replace=False)
        votes: dict = {}
        for i in pick:
            votes[answers[i]] = votes.get(answers[i], 0) + 1
        top = max(votes.values())
        leaders = [a for a, v in votes.items() if v == top]
        if correct_answer in leaders:
            wins += 1.0 / len(leaders)
    return wins / trials
