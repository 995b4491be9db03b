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


