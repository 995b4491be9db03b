"""Compare the accuracy model of this tree with another commit on what `planner recommend`
asks of it: the default scenario and ``examples/layouts_scenario.yaml``.

For each tree (this one and ``REF``, extracted with ``git archive`` into a temporary
folder) a fresh interpreter runs `planner recommend --json` with the on-disk caches off
(``PLANNER_NO_CACHE=1``), records every ``planner.accuracy.predict`` call the search makes
and its result, and keeps the JSON answer. Printed: per strategy the largest |difference|
of the predictions between the two trees, and whether the answers choose the same
configurations (recommendations, frontier and nearest rows: every field but the accuracy
figures) with the largest |difference| of the accuracies they show.
Run: python benchmarks/accuracy_compare.py [REF]   (default REF: main)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {"default scenario": [], "layouts scenario": ["--scenario", str(ROOT / "examples" / "layouts_scenario.yaml")]}
ACCURACY_FIELDS = ("accuracy", "interval_80")

_CHILD = r"""
import importlib, json, pickle, sys
import numpy as np
import planner.accuracy as A
PM = importlib.import_module("planner.accuracy.predict")
calls = []
orig = PM.predict
def rec(prof, strategy, *a, **k):
    out = orig(prof, strategy, *a, **k)
    calls.append((getattr(prof, "model", str(prof)), strategy, np.asarray(out)))
    return out
A.predict = rec
PM.predict = rec
from planner.cli import app
sys.argv = ["planner", "recommend", "--json"] + sys.argv[2:]
import io, contextlib
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    try:
        app()
    except SystemExit:
        pass
with open(sys.argv[1], "wb") as f:
    pickle.dump({"calls": calls, "answer": json.loads(buf.getvalue())}, f)
"""


def _run(tree: Path, extra: list[str], out: Path) -> dict:
    env = dict(os.environ, PLANNER_NO_CACHE="1", PYTHONPATH=str(tree))
    code = _CHILD.replace("sys.argv[2:]", repr(extra)).replace("sys.argv[1]", repr(str(out)))
    subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, check=True)
    with open(out, "rb") as f:
        return pickle.load(f)


def _by_key(calls) -> dict:
    seen: dict = {}
    out = {}
    for model, strategy, values in calls:
        n = seen[(model, strategy)] = seen.get((model, strategy), -1) + 1
        out[(model, strategy, n)] = values
    return out


def _choices(answer: dict):
    """The configurations an answer shows, accuracy figures left out; and those figures."""
    rows, accs = [], []
    for key in ("recommendations", "frontier", "nearest"):
        for r in answer.get(key, []):
            rows.append((key, json.dumps({k: v for k, v in r.items() if k not in ACCURACY_FIELDS}, sort_keys=True)))
            accs.append(r["accuracy"])
    return rows, np.array(accs, dtype=float)


def main(ref: str = "main") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "ref"
        base.mkdir()
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        for name, extra in SCENARIOS.items():
            a = _run(base, extra, Path(tmp) / "a.pkl")
            b = _run(ROOT, extra, Path(tmp) / "b.pkl")
            print(f"{name}: {len(b['calls'])} predict calls ({ref}: {len(a['calls'])})")
            worst: dict[str, float] = {}
            # the search's two accuracy threads finish in any order: calls are matched by
            # (model, strategy, n-th such call), the order within one (model, strategy)
            keyed = [_by_key(t["calls"]) for t in (a, b)]
            assert keyed[0].keys() == keyed[1].keys(), "the two trees make different accuracy calls"
            for key, va in keyed[0].items():
                vb = keyed[1][key]
                worst[key[1]] = max(worst.get(key[1], 0.0), float(np.max(np.abs(va - vb))) if va.size else 0.0)
            print("  max |diff| of predictions: " + ", ".join(f"{s} {v:.1e}" for s, v in worst.items()))
            rows_a, acc_a = _choices(a["answer"])
            rows_b, acc_b = _choices(b["answer"])
            same = rows_a == rows_b
            diff = float(np.max(np.abs(acc_a - acc_b))) if same and acc_a.size else float("nan")
            print(f"  same choices (recommendations, frontier, nearest: {len(rows_b)} rows): {same}; "
                  f"max |diff| of their accuracies {diff:.1e}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref", nargs="?", default="main", help="the commit to compare with (default: %(default)s)")
    main(ap.parse_args().ref)
