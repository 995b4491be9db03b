"""validate --measured on a path that is no CSV: one line naming the file, exit 2; and a
row at the edge of what is valid (1-token lengths drawn at random_range_ratio 0) is predicted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from planner.cli import main


def _one_line_error(capsys, path):
    assert main(["validate", "--measured", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and str(path) in err
    return err


def test_a_folder_is_named_as_a_folder(tmp_path, capsys):
    assert "is a folder, not a file" in _one_line_error(capsys, tmp_path)


@pytest.mark.parametrize("content", [b"", b"\n", b"  \r\n\n", b"\xef\xbb\xbf"])
def test_an_empty_file_says_it_is_empty(tmp_path, capsys, content):
    f = tmp_path / "runs.csv"
    f.write_bytes(content)
    assert "file is empty" in _one_line_error(capsys, f)


def test_a_binary_file_is_not_utf8(tmp_path, capsys):
    f = tmp_path / "runs.csv"
    f.write_bytes(b"model_path,\xff\xfe\n")
    assert "not UTF-8" in _one_line_error(capsys, f)


DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "serving-measured-hopper-dev.csv"


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/data")
@pytest.mark.parametrize("ratio", ["0", "0.5", "-0", "1e-300"])
def test_one_token_lengths_drawn_at_any_ratio_are_predicted(tmp_path, capsys, ratio):
    """isl = osl = 1 at a random_range_ratio below 1 was "unsupported: the engine gave no
    finite time" (round 14 fuzzing): the mean of [int(r), 1] is 0.5, which rounded to a
    0-token request. Whole numbers drawn from [0, 1] for a request that has at least one
    token are the 1-token request (oracle: the same row at ratio 1, fixed lengths)."""
    rows = list(csv.reader(DEV.open()))
    head, row = rows[0] + ["random_range_ratio"], rows[1]
    row[head.index("isl")] = row[head.index("osl")] = "1"
    f = tmp_path / "runs.csv"
    with f.open("w", newline="") as fh:
        csv.writer(fh).writerows([head, row + [ratio], row + ["1"]])
    assert main(["validate", "--measured", str(f), "--json"]) == 0
    drawn, fixed = json.loads(capsys.readouterr().out)["rows"]
    assert drawn["status"] == fixed["status"] == "ok", drawn
    assert drawn["predicted_ttft_ms"] == pytest.approx(fixed["predicted_ttft_ms"], rel=1e-9)
    assert drawn["predicted_tpot_ms"] == pytest.approx(fixed["predicted_tpot_ms"], rel=1e-9, abs=1e-12)
