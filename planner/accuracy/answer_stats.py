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
    """Majority vote's eta (strategies.majority): over the problems j with at least
    MIN_WRONG_FOR_SHARE wrong answers,

        eta = sum_j max_a W_j(a) / sum_j W_j,

    W_j(a) the count of wrong answer a on problem j (the top wrong answer's share of the
    wrong answers, pooled: a ratio of sums, so problems with more wrong answers weigh
    more). The "top wrong answer" race of the plurality vote is the model of strategies.py
    (its module docstring); the statistic is its maximum-likelihood estimate under that
    model (the share of a multinomial cell, pooled over problems). None when no problem
    qualifies. Returns {"majority_top_wrong_share", "problems_used"}."""
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
    """The reward model's pairwise ranking accuracy (best-of-k's AUC, strategies.best_of_k),
    pooled over problems with both correct and wrong samples:

        AUC = sum_j U_j / sum_j (n_pos,j x n_neg,j),  clipped to [0.01, 0.99],

    U_j the Mann-Whitney U of problem j's correct scores against its wrong ones (rank sum
    of the correct scores among all of j's scores, ties at mid-rank, minus
    n_pos (n_pos + 1) / 2): the number of (correct, wrong) pairs ranked correctly, ties
    counting 1/2 (Mann and Whitney 1947; U / (n_pos n_neg) is the area under the ROC curve,
    Hanley and McNeil 1982). Pairs are only formed within a problem, as the reward model
    only ranks a problem's own samples. The clip keeps rho = AUC / (1 - AUC) finite
    (strategy_tables.rho_from_auc). None when no problem has both. Returns {"reward_auc",
    "problems_used"}."""
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
