"""Fuzz the CLI with mutated copies of the shipped inputs (tests/fuzzing.py, seeded): every
case exits 0 or 2 (1 for a failing `check`), prints no traceback, never runs over its CPU
time limit and prints no nan/inf. ~500 cases in process; a few through the real executable.
benchmarks/fuzz.py runs >= 10,000 with the slow whole-search commands included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import fuzzing

N_CASES = int(os.environ.get("PLANNER_FUZZ_CASES", "500"))


def test_fuzz_in_process(tmp_path):
    cases = fuzzing.make_cases(N_CASES, seed=13, heavy=False)
    problems = []
    for i, case in enumerate(cases):
        scratch = tmp_path / str(i)
        scratch.mkdir()
        o = fuzzing.run_in_process(case, scratch, timeout_s=5.0)
        if o.problem:
            problems.append(f"{o.problem}: {case.label[:120]} | {o.err.strip()[-300:]}")
    assert not problems, "\n".join(problems[:20])


def test_fuzz_real_executable(tmp_path):
    exe = Path(os.sys.executable).parent / "planner"
    if not exe.exists():
        pytest.skip("planner executable not installed")
    for i, case in enumerate(fuzzing.make_cases(4, seed=7, heavy=False)):
        scratch = tmp_path / str(i)
        scratch.mkdir()
        o = fuzzing.run_subprocess(case, scratch, timeout_s=60)
        assert o.problem is None, (case.label, o.err[-500:])
