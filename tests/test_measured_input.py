"""validate --measured on a path that is no CSV: one line naming the file, exit 2."""

from __future__ import annotations

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
