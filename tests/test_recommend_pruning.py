"""The search asks the accuracy model only where a configuration can be feasible
(search.evaluate_space, prune_accuracy): the answer of `planner recommend` is unchanged.

Oracle: the same search with prune_accuracy=False (every (length, quantization) cell of
every model asked, as before the pruning), on the default scenario and two shipped
variants (examples/layouts_scenario.yaml; aime25 on two devices under an engine
profile): the whole answer (every recommendation, frontier and nearest row, the counts)
is equal, and every column of every feasible row is bit-identical."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from planner.catalog import builtin_dir
from planner.commands.recommend import default_scenario_path, load_scenario
from planner.specs import RecommendScenario

R = importlib.import_module("planner.recommend")  # the module (planner.recommend is also a function)
S = importlib.import_module("planner.search")

SCENARIOS = {
    "default": lambda: load_scenario(default_scenario_path()),
    "layouts": lambda: load_scenario(str(builtin_dir("examples") / "layouts_scenario.yaml")),
    "aime25-two-devices-vllm": lambda: RecommendScenario(
        task="aime25", hardware=["h100-sxm", "b200"], objective="accuracy-per-usd", engine="vllm", top=15),
}


def _run(scn, monkeypatch, prune: bool):
    """recommend.run with the search's pruning on or off; also the search's Result."""
    got = {}

    def search(*args, **kwargs):
        got["res"] = S.evaluate_space(*args, prune_accuracy=prune, **kwargs)
        return got["res"]

    monkeypatch.setattr(R, "evaluate_space", search)
    return R.run(scn), got["res"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_pruned_accuracy_leaves_the_answer_unchanged(name, monkeypatch):
    monkeypatch.setenv("PLANNER_NO_CACHE", "1")  # both searches compute every accuracy afresh
    scn = SCENARIOS[name]()
    answer, res = _run(scn, monkeypatch, prune=True)
    oracle, full = _run(scn, monkeypatch, prune=False)
    assert answer == oracle
    assert answer["recommendations"] and answer["frontier"]
    # the pruning did skip cells (the Qwen3 models' 32k generations exceed their window):
    # those rows hold NaN and are infeasible; every feasible row has its accuracy
    skipped = np.isnan(res.cols["accuracy"])
    assert skipped.any() and not np.isnan(full.cols["accuracy"]).any()
    assert not (skipped & res.feasible).any()
    np.testing.assert_array_equal(res.feasible, full.feasible)
    assert res.infeasible_counts == full.infeasible_counts
    for key, col in res.cols.items():
        np.testing.assert_array_equal(col[res.feasible], full.cols[key][full.feasible], err_msg=key)
        if key not in ("accuracy", "accuracy_lo", "accuracy_hi"):
            np.testing.assert_array_equal(col, full.cols[key], err_msg=key)


def test_pruning_skips_what_cannot_fit(monkeypatch):
    """The cells skipped are those beyond the model's window (prompt + generation) and
    those whose weights cannot fit on the layout's devices: on this small space exactly
    the cells without a feasible configuration in the unpruned search (deepseek-r1 fits
    8 x 80 GB in int4, not in bf16; qwen3-8b's 32k generation exceeds its window)."""
    from planner.catalog import load_model

    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    models = ["qwen3-8b", "deepseek-r1"]
    lens = [8192, 32768]
    scn = RecommendScenario(task="aime24", hardware=["h100-sxm"], models=models, strategies=["single"],
                            samples=[1], batches=[1], kv_budgets=[0], gen_lens=lens,
                            quantizations=["bf16", "int4"], kv_dtypes=["bf16"], devices=[8], top=3)
    answer, res = _run(scn, monkeypatch, prune=True)
    oracle, full = _run(scn, monkeypatch, prune=False)
    assert answer == oracle
    shape = res.blocks[0].shape  # (M, H, D, K, L, Q, V, B, T)
    asked = ~np.isnan(res.cols["accuracy"].reshape(shape)).all(axis=(1, 2, 3, 6, 7, 8))
    feasible = full.feasible.reshape(shape).any(axis=(1, 2, 3, 6, 7, 8))
    np.testing.assert_array_equal(asked, feasible)
    prompt = R.build_space(scn, []).prompt_len
    window = np.array([[prompt + L <= load_model(m).max_context for L in lens] for m in models])
    assert window[1].all() and not window[0].all()          # both cases of the context check
    assert asked[1, :, 1].all() and not asked[1, :, 0].any()  # deepseek-r1: int4 only


def test_a_wrong_weights_bound_falls_back_to_the_full_grid(monkeypatch):
    """If the weights bound ever skipped a cell the engine finds feasible (here: every
    dtype made 1,000x heavier for the bound only), the search asks the accuracy on the
    full grid again: the answer is the unpruned one."""
    monkeypatch.setenv("PLANNER_NO_CACHE", "1")
    scn = RecommendScenario(task="aime24", hardware=["h100-sxm"], models=["qwen3-0.6b", "qwen3-8b"],
                            strategies=["single", "majority"], samples=[4], batches=[1, 16], kv_budgets=[0],
                            gen_lens=[4096, 32768], devices=[1, 2], top=5)
    oracle, full = _run(scn, monkeypatch, prune=False)
    monkeypatch.setattr(S, "BITS", {k: v * 1000.0 for k, v in S.BITS.items()})
    answer, res = _run(scn, monkeypatch, prune=True)
    assert answer == oracle
    assert not (np.isnan(res.cols["accuracy"]) & res.feasible).any()
    np.testing.assert_array_equal(res.feasible, full.feasible)
