"""Write examples/eval_synthetic.jsonl: a synthetic per-sample eval log for `planner fit`.

60 problems x 16 samples, drawn from a known model so the fit can be checked:
- per-problem success p ~ Beta(0.9, 0.6) (mean 0.6);
- trace length: log-normal, median 6000 * exp(-1.0 (p - 0.6)) tokens, sigma 0.5, capped at
  16384 tokens (a capped sample is wrong and has no answer);
- wrong answers: the problem's most common wrong answer takes 40% of them, the rest are
  spread over many distinct values;
- reward score: logistic noise, +1.5 for correct samples (within-problem AUC ~0.82).

Run: python benchmarks/make_synthetic_eval.py [--out PATH] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

N_PROBLEMS = 60
N_SAMPLES = 16
A, B = 0.9, 0.6
MEDIAN, SLOPE, SIGMA, CAP = 6000.0, -1.0, 0.5, 16384
TOP_WRONG_SHARE = 0.4
SCORE_SHIFT = 1.5


def generate(seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    p_mean = A / (A + B)
    rows = []
    for i in range(N_PROBLEMS):
        p = rng.beta(A, B)
        truth = str(int(rng.integers(0, 1000)))
        top_wrong = str((int(truth) + 1 + int(rng.integers(0, 998))) % 1000)
        mu = np.log(MEDIAN) + SLOPE * (p - p_mean)
        for _ in range(N_SAMPLES):
            tokens = int(min(CAP, round(float(np.exp(rng.normal(mu, SIGMA))))))
            truncated = tokens >= CAP
            correct = (not truncated) and bool(rng.random() < p)
            if truncated:
                answer = None
            elif correct:
                answer = truth
            elif rng.random() < TOP_WRONG_SHARE:
                answer = top_wrong
            else:
                answer = str(int(rng.integers(1000, 100000)))
            score = float(rng.logistic(SCORE_SHIFT if correct else 0.0, 1.0))
            rec = {"problem": f"p{i:03d}", "correct": correct, "tokens": tokens, "score": round(score, 4)}
            if answer is not None:
                rec["answer"] = answer
            rows.append(rec)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "examples" / "eval_synthetic.jsonl"))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rows = generate(args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {out}: {len(rows)} samples, {N_PROBLEMS} problems")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
