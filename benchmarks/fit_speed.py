"""CPU seconds of `planner fit` on a 100-sample log, first fit and cached fit (issue 12).

For each model asked (default Pythia 1B and Pythia 70M) the log is 100 of each problem's
10,000 samples of ../shared/data/pass-at-k-math-pythia-dev.csv (subsampled as
benchmarks/accuracy_fidelity.py, seed 0). Each figure is the CPU time (time.process_time,
every thread of the process) of one fit_eval_log call (what `planner fit` runs, default
``auto`` difficulty with the task's shipped templates) in a fresh interpreter, imports
excluded: "first" with an empty cache folder (PLANNER_CACHE_DIR; the Rasch fit of the
templates' counts, stacking.py, is computed and written), "cached" in the same folder
afterwards (the Rasch context read from disk). Then the CPU time of the Rasch fit alone
(rasch.fit_rasch and problem_priors of the templates of the first model). Best and worst of
``repeats`` runs each (CPU figures on a shared machine vary run to run).
Run: python benchmarks/fit_speed.py [repeats] [model ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.accuracy_fidelity import read_counts, SEEN
from planner.accuracy.fit import fit_eval_log
model, log = {model!r}, {log!r}
probs = read_counts()[model]
n_all = np.array([p[1] for p in probs]); c_all = np.array([p[2] for p in probs])
c_seen = np.random.default_rng(0).hypergeometric(c_all, n_all - c_all, SEEN)
open(log, "w").write("".join(json.dumps({{"problem": p[0], "n": SEEN, "correct": int(c)}}) + "\\n"
                             for p, c in zip(probs, c_seen)))
t0 = time.process_time()
fit_eval_log(log, model, "math", seed=0)
print(time.process_time() - t0)
"""

RASCH = """
import sys, time
sys.path.insert(0, {root!r})
from planner.accuracy import fit as F, rasch as R, stacking as S
counts = S.template_counts(F.task_templates("math", {model!r}))
t0 = time.process_time()
R.problem_priors(R.fit_rasch(counts))
print(time.process_time() - t0)
"""


def _child(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("args", nargs="*", metavar="ARG",
                    help="[repeats] [model ...]: runs per figure (default 3), then the models (default: Pythia 1B, Pythia 70M)")
    argv = list(ap.parse_args(argv).args)
    repeats = int(argv.pop(0)) if argv and argv[0].isdigit() else 3
    models = argv or ["Pythia 1B", "Pythia 70M"]
    from benchmarks.accuracy_fidelity import read_counts

    unknown = [m for m in models if m not in read_counts()]
    if unknown:
        sys.exit(f"fit_speed: unknown model {unknown[0]!r} (known: {', '.join(sorted(read_counts()))})")
    env = {k: v for k, v in os.environ.items() if k != "PLANNER_NO_CACHE"}
    for model in models:
        first, cached = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                env["PLANNER_CACHE_DIR"] = str(Path(tmp) / "cache")
                code = CHILD.format(root=str(ROOT), model=model, log=str(Path(tmp) / "log.jsonl"))
                first.append(_child(code, env))
                cached.append(_child(code, env))
        print(f"{model}: planner fit CPU s, first fit {min(first):.2f}-{max(first):.2f}, "
              f"cached fit {min(cached):.2f}-{max(cached):.2f} ({repeats} runs)", flush=True)
    env["PLANNER_NO_CACHE"] = "1"
    tpl_model = models[0].lower().replace(" ", "-")
    rasch = [_child(RASCH.format(root=str(ROOT), model=tpl_model), env) for _ in range(repeats)]
    print(f"Rasch fit of the templates ({tpl_model}'s others) alone: {min(rasch):.2f}-{max(rasch):.2f} CPU s")


if __name__ == "__main__":
    main()
