"""Every script under benchmarks/ answers ``--help`` with its usage and exit 0 (argparse's
convention), without running anything; and refuses an option it does not know with exit 2
(before round 17 several read ``--help`` as a file name or a number and crashed with a
traceback, or ran the whole benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def _run(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 20


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_usage_and_exits_0(script):
    out = _run(script, "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"usage: {script.name}"), out.stdout[:200]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_unknown_option_is_refused_with_exit_2(script):
    out = _run(script, "--no-such-option")
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "unrecognized arguments: --no-such-option" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("body", [None, "id,model_path\nx,y\n"], ids=["missing", "no-required-columns"])
def test_serving_fidelity_refuses_a_bad_file_in_one_line(tmp_path, body):
    """A missing or malformed measured file: one line naming the file and the field, exit 2."""
    path = tmp_path / "runs.csv"
    if body is not None:
        path.write_text(body, encoding="utf-8")
    out = _run(ROOT / "benchmarks" / "serving_fidelity.py", str(path), "--quick")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and str(path) in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
