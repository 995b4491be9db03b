"""Per-answer statistics of an eval log that `planner fit` turns into strategy defaults.

fit_wrong_share: the share of wrong answers taken by each problem's most common wrong
answer, pooled over problems with at least MIN_WRONG_FOR_SHARE wrong answers (majority
vote's eta, strategies.py). fit_reward_auc: the within-problem AUC of reward scores,
correct against wrong samples (Mann-Whitney U over each problem's pairs, pooled), the
reward model's pairwise accuracy of best-of-k.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from planner.accuracy.evallog import EvalData

MIN_WRONG_FOR_SHARE = 4


def fit_wrong_share(data: EvalData) -> Optional[dict]:
    top = tot = 0
    used = 0
    for prob, lst in data.answers.items():
        wrong = [a for a, ok in lst if not ok]
        if len(wrong) < MIN_WRONG_FOR_SHARE:
            continue
        counts: dict = {}
        for a in wrong:
            counts[a] = counts.get(a, 0) + 1
        top += max(counts.values())
        tot += len(wrong)
        used += 1
    if used == 0:
        return None
    return {"majority_top_wrong_share": top / tot, "problems_used": used}


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties averaged (as scipy.stats.rankdata, without importing stats)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def fit_reward_auc(data: EvalData) -> Optional[dict]:
    num = den = 0.0
    used = 0
    for prob, lst in data.scores.items():
        pos = np.array([s for s, ok in lst if ok])
        neg = np.array([s for s, ok in lst if not ok])
        if len(pos) == 0 or len(neg) == 0:
            continue
        r = _rankdata(np.concatenate([pos, neg]))
        u = r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
        num += u
        den += len(pos) * len(neg)
        used += 1
    if used == 0:
        return None
    return {"reward_auc": float(np.clip(num / den, 0.01, 0.99)), "problems_used": used}
