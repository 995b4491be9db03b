"""Read an eval log (JSONL) into per-problem aggregates, validating every line.

Input, one JSON object per line, either per sample
    {"problem": "p17", "correct": true, "answer": "204", "tokens": 8123, "score": 0.71}
("answer", "tokens" and "score" optional) or per problem
    {"problem": "p17", "n": 32, "correct": 27}.
The two formats cannot be mixed in one file. Every problem with the input is an
InputError naming the file, line and field. split_half divides each problem's samples
into a fitting half and a held-out half (fit.py's held-out check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner.errors import InputError

# Samples per problem in the per-problem format: far above any eval (1e4 is large), and
# below numpy's hypergeometric limit (1e9) used to split a problem's samples in halves.
MAX_SAMPLES_PER_PROBLEM = 1_000_000


@dataclass
class EvalData:
    """Per-problem aggregates of an eval log."""

    problems: list
    n: np.ndarray
    correct: np.ndarray
    fmt: str                                   # "sample" or "problem"
    outcomes: dict = field(default_factory=dict)   # problem -> list[bool] (sample format)
    answers: dict = field(default_factory=dict)    # problem -> list[(answer, correct)]
    tokens: dict = field(default_factory=dict)     # problem -> list[int]
    scores: dict = field(default_factory=dict)     # problem -> list[(score, correct)]
    path: str = ""

    @property
    def pass_at_1(self) -> float:
        return float(np.mean(self.correct / self.n))


def _err(path, line, field_, value, reason):
    where = f"{path}:{line}" if line else str(path)
    return InputError(reason, file=where, field=field_, value=value, has_value=value is not None)


def _as_bool(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    return None


def read_eval_log(path) -> EvalData:
    """Read and validate a JSONL eval log; every problem is an InputError with line number."""
    p = Path(path)
    fmt = None
    per_problem: dict = {}
    outcomes: dict = {}
    answers: dict = {}
    tokens: dict = {}
    scores: dict = {}
    order: list = []
    n_lines = 0
    from planner.safeload import iter_jsonl

    if True:  # keeps the indentation of the checks below
        for lineno, rec in iter_jsonl(p):
            n_lines += 1
            if not isinstance(rec, dict):
                raise _err(p, lineno, None, None, f"expected a JSON object, got {type(rec).__name__}")
            if "problem" not in rec:
                raise _err(p, lineno, "problem", None, "required field is missing")
            prob = rec["problem"]
            if not isinstance(prob, (str, int)) or isinstance(prob, bool):
                raise _err(p, lineno, "problem", prob, "must be a string or an integer")
            prob = str(prob)
            this = "problem" if "n" in rec else "sample"
            if fmt is None:
                fmt = this
            elif fmt != this:
                raise _err(p, lineno, "n" if this == "problem" else "n",
                           rec.get("n"), f"mixed formats: this line is per-{this} but earlier lines are per-{fmt}")
            if "correct" not in rec:
                raise _err(p, lineno, "correct", None, "required field is missing")
            if prob not in per_problem and prob not in outcomes:
                order.append(prob)
            if fmt == "problem":
                n = rec["n"]
                c = rec["correct"]
                if not isinstance(n, int) or isinstance(n, bool):
                    raise _err(p, lineno, "n", n, "must be an integer")
                if n <= 0:
                    raise _err(p, lineno, "n", n, "must be > 0")
                if n > MAX_SAMPLES_PER_PROBLEM:
                    raise _err(p, lineno, "n", n, f"must be <= {MAX_SAMPLES_PER_PROBLEM:,} samples")
                if not isinstance(c, int) or isinstance(c, bool):
                    raise _err(p, lineno, "correct", c, "must be an integer count in the per-problem format")
                if c < 0:
                    raise _err(p, lineno, "correct", c, "must be >= 0")
                if c > n:
                    raise _err(p, lineno, "correct", c, f"exceeds n = {n}")
                if prob in per_problem:
                    raise _err(p, lineno, "problem", prob, "appears twice in the per-problem format")
                per_problem[prob] = (n, c)
            else:
                ok = _as_bool(rec["correct"])
                if ok is None:
                    raise _err(p, lineno, "correct", rec["correct"], "must be true/false (or 1/0)")
                outcomes.setdefault(prob, []).append(ok)
                if "answer" in rec and rec["answer"] is not None:
                    answers.setdefault(prob, []).append((str(rec["answer"]), ok))
                if "tokens" in rec and rec["tokens"] is not None:
                    t = rec["tokens"]
                    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or t <= 0:
                        raise _err(p, lineno, "tokens", t, "must be a positive number")
                    tokens.setdefault(prob, []).append((float(t), ok))
                if "score" in rec and rec["score"] is not None:
                    s = rec["score"]
                    if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s):
                        raise _err(p, lineno, "score", s, "must be a finite number")
                    scores.setdefault(prob, []).append((float(s), ok))
    if n_lines == 0:
        raise InputError("empty eval log: no JSON lines", file=str(p))
    if fmt == "problem":
        n = np.array([per_problem[k][0] for k in order], float)
        c = np.array([per_problem[k][1] for k in order], float)
    else:
        n = np.array([len(outcomes[k]) for k in order], float)
        c = np.array([sum(outcomes[k]) for k in order], float)
    return EvalData(problems=order, n=n, correct=c, fmt=fmt, outcomes=outcomes, answers=answers,
                    tokens=tokens, scores=scores, path=str(p))


def split_half(data: EvalData, seed: int = 0):
    """(n_a, c_a, n_b, c_b): each problem's samples split in two halves (fit, held out)."""
    rng = np.random.default_rng(seed)
    n_a = np.floor(data.n / 2.0)
    if data.fmt == "sample":
        c_a = np.empty_like(n_a)
        for i, prob in enumerate(data.problems):
            outs = np.array(data.outcomes[prob], bool)
            pick = rng.permutation(len(outs))[: int(n_a[i])]
            c_a[i] = outs[pick].sum()
    else:
        c_a = np.array([rng.hypergeometric(int(c), int(n - c), int(na)) if na > 0 else 0
                        for n, c, na in zip(data.n, data.correct, n_a)], float)
    return n_a, c_a, data.n - n_a, data.correct - c_a
