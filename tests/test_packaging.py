"""Packaging: every subpackage is listed, catalogs are package data, start-up is light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(cfg["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "planner").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"
    for pkg, folder in cfg["tool"]["setuptools"]["package-dir"].items():
        assert (ROOT / folder).is_dir(), f"{pkg} -> {folder} does not exist"


def test_cli_help_does_not_import_heavy_modules():
    code = ("import sys; from planner.cli import main; rc = main(['--help']); "
            "heavy = [m for m in ('torch', 'scipy', 'matplotlib', 'numpy', 'pydantic') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout[-300:]


def test_estimate_does_not_import_torch():
    code = ("import sys; from planner.cli import main; "
            "rc = main(['estimate', '--json']); print('TORCH', 'torch' in sys.modules, rc)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "TORCH False 0" in out.stdout
