"""CI gate on serving fidelity: a fixed subset of ~100 measured rows of the dev file,
replayed with the shipped serving profiles (calibration/serving/), must not get worse
than the median |error| committed in tests/data/measured-gate.json by more than 2 points.

After an intended change of the model, refresh the figures (and say why in the commit):
    .venv/bin/python tests/test_measured_gate.py --update
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
GATE = Path(__file__).resolve().parent / "data" / "measured-gate.json"
TOLERANCE = 0.02
EVERY = 9  # every 9th predictable row, sorted by id


def replay_subset(ids=None):
    from planner.measured import read_measured
    from planner.replay import predict
    from planner.replay_scoring import summarize
    from planner.serving_profile import load_serving

    runs = read_measured(DEV)
    if ids is None:
        ok = predict(runs).status == "ok"
        ids = sorted(str(i) for i in runs.ids[ok])[::EVERY]
    sub = runs.take(np.isin(runs.ids.astype(str), ids))
    s = summarize(predict(sub, load_serving()), sub)
    return ids, s


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_serving_fidelity_has_not_regressed():
    gate = json.loads(GATE.read_text())
    ids, s = replay_subset(gate["ids"])
    assert s["rows"] == len(gate["ids"]), "rows of the gate's subset are missing from the dev file"
    assert s["predicted"] == s["rows"], f"rows no longer predicted: {s['unsupported']}"
    for key in ("ttft", "tpot"):
        now, then = s[key]["median_abs"], gate[f"{key}_median_abs"]
        assert now <= then + TOLERANCE, (f"{key.upper()} median |error| {now:.1%} is worse than the committed "
                                         f"{then:.1%} by more than {TOLERANCE:.0%} points")


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_the_gate_can_fail():
    """The engine without the fitted profiles (as it was before them) fails this gate."""
    from planner.measured import read_measured
    from planner.replay import predict
    from planner.replay_scoring import summarize

    gate = json.loads(GATE.read_text())
    runs = read_measured(DEV)
    sub = runs.take(np.isin(runs.ids.astype(str), gate["ids"]))
    s = summarize(predict(sub, today=True), sub)
    assert s["ttft"]["median_abs"] > gate["ttft_median_abs"] + TOLERANCE


if __name__ == "__main__" and "--update" in sys.argv:
    ids, s = replay_subset()
    GATE.write_text(json.dumps({
        "source": "../shared/data/serving-measured-hopper-dev.csv, every 9th predictable row sorted by id",
        "profiles": "calibration/serving/ (shipped)", "tolerance": TOLERANCE,
        "ttft_median_abs": round(s["ttft"]["median_abs"], 4), "tpot_median_abs": round(s["tpot"]["median_abs"], 4),
        "ttft_p90_abs": round(s["ttft"]["p90_abs"], 4), "tpot_p90_abs": round(s["tpot"]["p90_abs"], 4),
        "ids": ids}, indent=1) + "\n")
    print(f"{len(ids)} rows: TTFT {s['ttft']['median_abs']:.1%}, TPOT {s['tpot']['median_abs']:.1%} -> {GATE}")
