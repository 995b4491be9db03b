"""Shipped verifier profiles against the published figures they cite (typed in here from
the papers and result files: the outside oracle), the numbers derived from them, and
``--verifier`` moving the accuracy of the verifier strategies."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import pytest

from planner.accuracy.verifiers import QUALITY_FIELDS, find_verifier, list_verifiers
from planner.cli import main

# (task, verifier) -> field -> (published value as a fraction, half its rounding step)
PUBLISHED = {
    # ProcessBench (Zheng et al. 2024, arXiv 2412.06559) Table 3, Qwen2.5-72B-Instruct, MATH:
    # Error 46.3, Correct 93.1 (percent, one decimal)
    ("math500", "qwen2.5-72b"): {"completeness": (0.931, 0.0005), "soundness": (0.463, 0.0005)},
    # RewardBench results (allenai/reward-bench-results, eval-set/meta-llama/*.json), "math-prm"
    ("math500", "llama-3.1-8b"): {"reward_auc": (0.610738255033557, 0.0)},
    ("math500", "llama-3.1-70b"): {"reward_auc": (0.7639821029082774, 0.0)},
    ("math500", "llama-3.1-405b"): {"reward_auc": (0.756152125279642, 0.0)},
    ("math500", "gemma-2-27b"): {"reward_auc": (0.8098434004474273, 0.0)},
}
# the F1 of the same ProcessBench row, reprinted in Zhang et al. 2025 (arXiv 2501.07301) Table 7
PROCESSBENCH_F1_MATH_QWEN25_72B = 0.618
SHIPPED_STEP = 0.0005  # profiles give 3 decimals


def _z(p):
    return NormalDist().inv_cdf(p)


def _phi(x):
    return NormalDist().cdf(x)


def test_every_number_says_whether_it_is_published_derived_or_assumed():
    for task, v in list_verifiers():
        vp, _ = find_verifier(v, task)
        for f in QUALITY_FIELDS:
            kind = vp.sources[f].split(":", 1)[0]
            assert kind in ("published", "derived", "assumption"), (v, f, vp.sources[f][:40])
            if kind == "published":  # every published claim is checked below
                assert f in PUBLISHED.get((task, v), {}), (v, f)
            if kind != "published":
                assert vp.assumptions, (v, f)  # a profile with a non-published number says so


@pytest.mark.parametrize("pair", sorted(PUBLISHED))
def test_shipped_numbers_are_the_published_figures(pair):
    found = find_verifier(pair[1], pair[0])
    assert found is not None, pair
    vp, _ = found
    for f, (value, half_step) in PUBLISHED[pair].items():
        assert abs(getattr(vp, f) - value) <= half_step + SHIPPED_STEP + 1e-12, (pair, f)
        assert vp.sources[f].startswith("published:")


def test_the_processbench_pair_reproduces_its_published_f1():
    vp, _ = find_verifier("qwen2.5-72b", "math500")
    f1 = 2 * vp.completeness * vp.soundness / (vp.completeness + vp.soundness)
    assert abs(f1 - PROCESSBENCH_F1_MATH_QWEN25_72B) <= 0.0005 + 0.001  # F1's rounding + the rates'


def test_derived_numbers_follow_from_the_published_ones():
    """Equal-variance Gaussian score classes: AUC = Phi((z(c) + z(s)) / sqrt 2)."""
    for task, v in list_verifiers():
        vp, _ = find_verifier(v, task)
        implied_auc = _phi((_z(vp.completeness) + _z(vp.soundness)) / math.sqrt(2))
        if vp.sources["reward_auc"].startswith("derived"):
            assert vp.reward_auc == pytest.approx(implied_auc, abs=SHIPPED_STEP)
        if vp.sources["soundness"].startswith("derived"):
            # soundness rounded to 2 decimals from the published AUC and the completeness
            assert vp.soundness == pytest.approx(_phi(math.sqrt(2) * _z(vp.reward_auc) - _z(vp.completeness)),
                                                 abs=0.005 + 0.002)


@pytest.mark.parametrize("strategy", ["best-of-k", "verify"])
def test_verifier_moves_the_verifier_strategies(strategy, capsys):
    """Every shipped verifier changes the accuracy of the strategies that use it (against
    the task profile's defaults); best-of-k rises with the verifier's reward AUC."""
    def acc(verifier):
        args = ["accuracy", "--model", "llama-3.1-70b", "--task", "math500", "--strategy", strategy,
                "--samples", "8", "--json"] + (["--verifier", verifier] if verifier else [])
        assert main(args) == 0
        return json.loads(capsys.readouterr().out)["accuracy"]

    base = acc(None)
    got = {v: acc(v) for t, v in list_verifiers() if t == "math500"}
    assert all(abs(a - base) > 1e-6 for a in got.values()), (base, got)
    if strategy == "best-of-k":
        by_auc = sorted(got, key=lambda v: find_verifier(v, "math500")[0].reward_auc)
        assert [got[v] for v in by_auc] == sorted(got[v] for v in by_auc)
