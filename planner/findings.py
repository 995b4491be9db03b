"""Reproduce the Kinetics findings with our own cost and accuracy models.

Kinetics (Sadhukhan et al. 2025) on AIME24 with the Qwen3 family on B200: (1) at low cost
the best sparse-attention configuration beats the best dense one by tens of points,
(2) the gap narrows at high cost, (3) below ~14B parameters the cost-optimal frontier
grows the model before it grows the generation length.

We search Qwen3 0.6B-32B on one B200 (large batches amortise weight reads, as in the
paper), with single samples and majority voting, dense vs block top-k sparse attention,
and read the accuracy frontiers against dollars per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QWEN3 = ["qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-14b", "qwen3-32b"]
SIZE_B = {"qwen3-0.6b": 0.6, "qwen3-1.7b": 1.7, "qwen3-4b": 4.0, "qwen3-8b": 8.2, "qwen3-14b": 14.8, "qwen3-32b": 32.8}


@dataclass
class Findings:
    budgets_usd: np.ndarray
    best_dense: np.ndarray
    best_sparse: np.ndarray
    dense_frontier: list[dict]
    small_models_max_gen: dict[str, int]
    max_gen_len: int

    @property
    def gap_points(self) -> np.ndarray:
        return 100.0 * (self.best_sparse - self.best_dense)


def run(hardware: str = "b200", task: str = "aime24") -> Findings:
    from planner.accuracy import find_profile
    from planner.catalog import load_hardware, load_model
    from planner.recommend import accuracy_for_search
    from planner.frontier import pareto_frontier
    from planner.search import Space, evaluate_space

    models = [load_model(m) for m in QWEN3]
    profiles = [find_profile(m, task) for m in QWEN3]
    hw = [load_hardware(hardware)]
    space = Space(strategies=["single", "majority"],
                  devices=[1], samples=[1, 2, 4, 8, 16, 32, 64],
                  gen_lens=[1024, 2048, 4096, 8192, 12288, 16384, 24576, 32768],
                  quantizations=["bf16"], kv_dtypes=["bf16"], batches=[1, 4, 16, 64, 256],
                  kv_budgets=[0, 128, 256, 512, 1024, 2048], prompt_len=150)
    res = evaluate_space(space, models, hw, [None], profiles, accuracy_for_search)
    c = res.cols
    ok = res.feasible
    sparse = np.zeros(ok.shape, dtype=bool)
    for b, off in zip(res.blocks, res.offsets):
        n = int(np.prod(b.shape))
        it = np.unravel_index(np.arange(n), b.shape)[-1]
        sparse[off:off + n] = res.axes["kv_budget"][it] > 0
    cost = c["cost_usd"].astype(np.float64)
    acc = c["accuracy"].astype(np.float64)
    lo = cost[ok].min()
    hi = cost[ok].max()
    budgets = np.geomspace(lo, hi, 25)
    best_dense, best_sparse = [], []
    for b in budgets:
        within = ok & (cost <= b)
        d = within & ~sparse
        s = within & sparse
        best_dense.append(acc[d].max() if d.any() else 0.0)
        best_sparse.append(acc[s].max() if s.any() else 0.0)
    front = pareto_frontier(cost, acc, ok & ~sparse)
    rows = [res.row(i) for i in front]
    small = {}
    for r in rows:
        if SIZE_B[r["model"]] < 14:
            small[r["model"]] = max(small.get(r["model"], 0), r["gen_len"])
    return Findings(budgets, np.array(best_dense), np.array(best_sparse), rows, small, max(space.gen_lens))
