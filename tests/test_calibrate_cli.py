"""The calibrate/validate commands: torch absent, bad input, --compare."""

from __future__ import annotations

import copy
import sys

import pytest

from planner.cli import main
from planner.errors import InputError


@pytest.fixture
def no_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError


def test_require_torch_names_the_extra(no_torch):
    from planner.calibrate import require_torch

    with pytest.raises(InputError) as e:
        require_torch()
    assert "planner[calibrate]" in str(e.value) and "torch==2.13.0" in str(e.value)


@pytest.mark.parametrize("argv", [["calibrate", "--device", "cpu", "--quick"], ["validate", "--device", "cpu"]])
def test_commands_without_torch_exit_2(no_torch, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "torch is not installed: pip install 'planner[calibrate]' (torch==2.13.0)" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("cmd", ["calibrate", "validate"])
def test_unknown_device_exit_2(capsys, cmd):
    assert main([cmd, "--device", "tpu"]) == 2
    assert "unknown device" in capsys.readouterr().err


def test_calibrate_needs_a_device(capsys):
    assert main(["calibrate"]) == 2
    assert "--device" in capsys.readouterr().err


def test_cli_start_does_not_import_torch():
    import subprocess

    code = "import sys, planner.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=str(__import__("pathlib").Path(__file__).parents[1])).returncode == 0


def test_compare_command(tmp_path, capsys):
    from test_calibrate_profile import FITTED, make_profile

    from planner.calibrate.profile import write_profile

    f = copy.deepcopy(FITTED)
    f["peak_flops"]["fp32"] *= 0.8
    write_profile(tmp_path / "old.yaml", make_profile())
    write_profile(tmp_path / "new.yaml", make_profile(fitted=f))
    assert main(["calibrate", "--compare", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml")]) == 0
    out = capsys.readouterr().out
    assert "-20.0%" in out and "slower" in out
    assert main(["calibrate", "--compare", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["flagged"] >= 1


def test_compare_rejects_a_foreign_file(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("name: x\n")
    assert main(["calibrate", "--compare", str(tmp_path / "a.yaml"), str(tmp_path / "a.yaml")]) == 2
    assert "format" in capsys.readouterr().err


def test_refit_needs_no_torch_and_is_reproducible(no_torch, tmp_path, capsys):
    """Refitting the shipped profile's stored measurements: no torch, the measurements are
    kept, and refitting the refit gives the same figures (the fit is deterministic)."""
    from pathlib import Path

    from planner.calibrate.profile import load_profile

    shipped = Path(__file__).parents[1] / "calibration" / "cpu-amd-epyc-2c.yaml"
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert main(["calibrate", "--refit", str(shipped), "-o", str(a)]) == 0
    assert main(["calibrate", "--refit", str(a), "-o", str(b), "--json"]) == 0
    capsys.readouterr()
    pa, pb, ps = load_profile(a), load_profile(b), load_profile(shipped)
    assert pa.measurements == ps.measurements and pa.date == ps.date
    fa, fb = dict(pa.fitted), dict(pb.fitted)
    fa["info"], fb["info"] = dict(fa["info"]), dict(fb["info"])
    assert "refit" in fa["info"]
    fa["info"].pop("refit"), fb["info"].pop("refit")
    assert fa == fb
    assert fa["gemm_tokens"]["fp32"]["rows_correction"]  # the shipped sweep measures several shapes per row count


def test_refit_rejects_a_foreign_file(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("name: x\n")
    assert main(["calibrate", "--refit", str(tmp_path / "a.yaml")]) == 2
    assert "format" in capsys.readouterr().err
