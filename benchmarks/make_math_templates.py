"""Write the MATH template profiles shipped in examples/templates/ (for `planner fit --template`).

Source: ../shared/data/pass-at-k-math-pythia-dev.csv (Pythia 70M..12B, 67 MATH problems,
10,000 samples each; Brown et al. 2024, "Large Language Monkeys", via Schaeffer et al.
2025, "How do large language monkeys get their power (laws)?"). For each model the
per-problem counts of all 10,000 samples are fitted by `planner fit --difficulty logit_grid`
(fit.fit_eval_log: the grid prior's smoothing chosen by held-out samples, the posterior
route, bootstrap replicates) and written as examples/templates/math--<model>.yaml, with the
per-problem counts themselves (``problem_counts``: the per-problem Rasch prior of
planner/accuracy/stacking.py reads them).

    .venv/bin/python benchmarks/make_math_templates.py [--out examples/templates]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accuracy_fidelity import DATA, read_counts  # noqa: E402

SOURCE = ("planner fit --difficulty logit_grid of all 10,000 samples per problem in "
          "pass-at-k-math-pythia-dev.csv (Brown et al. 2024, Large Language Monkeys, arXiv:2407.21787, "
          "via Schaeffer et al. 2025, arXiv:2502.17578); benchmarks/make_math_templates.py")


def slug(model: str) -> str:
    return model.lower().replace(" ", "-")


def main(argv=None) -> None:
    from planner.accuracy.fit import fit_eval_log, write_profile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "examples" / "templates"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model, probs in read_counts(DATA).items():
            log = Path(tmp) / f"pass-at-k-math-pythia-dev--{slug(model)}.jsonl"
            log.write_text("".join(json.dumps({"problem": p, "n": n, "correct": c}) + "\n" for p, n, c in probs))
            spec = fit_eval_log(log, slug(model), "math", difficulty="logit_grid", seed=0).profile
            sources = {k: (SOURCE if v.startswith("planner fit") else v) for k, v in spec.sources.items()}
            sources["problem_counts"] = SOURCE.split(";")[0].replace("planner fit --difficulty logit_grid of all",
                                                                     "all")
            spec = spec.model_validate(dict(spec.model_dump(exclude_none=True), **{
                "description": f"MATH (67 problems) / {model}: a difficulty template for planner fit --template.",
                "sources": sources,
                "problem_counts": {"problems": [str(p) for p, _, _ in probs], "n": [int(n) for _, n, _ in probs],
                                   "correct": [int(c) for _, _, c in probs]}}))
            path = out / f"math--{slug(model)}.yaml"
            write_profile(spec, path)
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: pass@1 {spec.pass_at_1:.5f}")


if __name__ == "__main__":
    main()
