"""Replay of a published check file (tests/data/*.csv) with the shipped serving profiles, the
one step every published-check test gates (test_inferencemax_nvidia, test_gpt_oss_published,
test_gpt_oss_published_other, test_vultr_b200, test_published_nvidia_other)."""

from __future__ import annotations

import numpy as np

from planner.measured import read_measured
from planner.replay import predict
from planner.replay_scoring import errors
from planner.serving_profile import load_serving


def replay(path):
    """(runs, prediction, TTFT error, TPOT error) of the file at ``path`` under the shipped profiles;
    error = predicted / measured - 1, NaN where a row has no measurement
    (planner.replay_scoring.errors, as `planner validate --measured` scores it)."""
    runs = read_measured(path)
    pred = predict(runs, load_serving())
    return (runs, pred, *errors(pred, runs))


def assert_every_row_predicted(replayed, rows: int, finite_ttft: bool = True) -> None:
    """The file's ``rows`` rows all predicted (status ok) with finite TPOT errors, and finite
    TTFT errors too unless ``finite_ttft`` is False (a file whose TTFTs are partly left out)."""
    runs, pred, e_ttft, e_tpot = replayed
    assert len(runs) == rows
    assert (pred.status == "ok").all(), pred.status[pred.status != "ok"]
    assert np.isfinite(e_tpot).all()
    if finite_ttft:
        assert np.isfinite(e_ttft).all()
