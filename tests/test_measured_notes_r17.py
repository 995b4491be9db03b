"""Round 17's calls on three inputs round 16 (S10) read in silence, as a demanding user
would want them (docs/serving-experiments.md, Round 17 (S3)):

* a measured time of 0 ms is still "not measured" (no run takes no time; one bad row must
  not fail a whole file), and ``validate`` / ``calibrate --from-measured`` now say how many
  rows gave it;
* an ``id`` several rows give is still read, each row scored on its own (the id is a label,
  the prediction depends only on the row's facts), and the text output says how many ids
  repeat;
* a serving profile's ``hardware:`` names a catalog device (name or alias), never a file of
  that name in the folder the command runs in (a command-line ``-H`` still may).

Oracles: rows written out of the dev file, whose predictions alone are known; the catalog's
own h200."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_robust import one_error_line as one_line
from test_robust import run

ROOT = Path(__file__).resolve().parent.parent
DEV_CSV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
needs_dev = pytest.mark.skipif(not DEV_CSV.exists(), reason="the shared dev file is not here")


def _write(path: Path, head: list[str], rows: list[list[str]]) -> Path:
    path.write_text(",".join(head) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def _dev_rows(n: int) -> tuple[list[str], list[list[str]]]:
    lines = DEV_CSV.read_text().splitlines()
    head = lines[0].split(",")
    rows = [x.split(",") for x in lines[1:] if ",agg," in x and '"' not in x][:n]
    assert len(rows) == n and all(len(r) == len(head) for r in rows)
    return head, rows


def _notes(out: str) -> list[str]:
    """The ``note:`` lines at the end of a text output (a long one may wrap)."""
    return " ".join(out.split()).split(" note: ")[1:]


@needs_dev
def test_a_measured_time_of_0_ms_is_not_measured_and_is_counted(tmp_path):
    head, rows = _dev_rows(4)
    t, p = head.index("silicon_ttft_ms"), head.index("silicon_tpot_ms")
    clean = _write(tmp_path / "clean.csv", head, rows)
    rc, out, _ = run("validate", "--measured", str(clean))
    assert rc == 0 and _notes(out) == []
    rows[0][t] = "0"
    rows[1][p] = "0.0"
    rows[2][t] = rows[2][p] = "0"
    f = _write(tmp_path / "zero.csv", head, rows)
    rc, out, _ = run("validate", "--measured", str(f))
    assert rc == 0
    assert "4 of 4 rows predicted, 1 with measurements" in " ".join(out.split())
    assert _notes(out) == ["rows with a measured time of 0 ms: 3 (TTFT 2, TPOT 2), read as not measured: "
                           "no error scored"]
    rc, out, _ = run("validate", "--measured", str(f), "--json")
    assert rc == 0
    scored = json.loads(out)["rows"]
    assert [r["ttft_error"] is None for r in scored] == [True, False, True, False]
    assert [r["tpot_error"] is None for r in scored] == [False, True, True, False]
    assert scored[0]["measured_ttft_ms"] == 0.0


@needs_dev
def test_repeated_ids_are_each_scored_and_counted(tmp_path):
    head, rows = _dev_rows(5)
    i = head.index("id")
    rc, alone, _ = run("validate", "--measured", str(_write(tmp_path / "a.csv", head, rows)), "--json")
    assert rc == 0
    for r in rows[1:4]:
        r[i] = rows[0][i]      # ids 0-3 the same
    rows[4][i] = ""            # an empty id is row-N, not a repeat
    f = _write(tmp_path / "b.csv", head, rows)
    rc, out, _ = run("validate", "--measured", str(f), "--json")
    assert rc == 0
    before, after = json.loads(alone)["rows"], json.loads(out)["rows"]
    assert [r["id"] for r in after] == [rows[0][i]] * 4 + ["row-5"]
    for a, b in zip(before, after):  # the same predictions and errors, row by row
        assert {k: v for k, v in a.items() if k != "id"} == {k: v for k, v in b.items() if k != "id"}
    rc, out, _ = run("validate", "--measured", str(f))
    assert rc == 0
    assert _notes(out) == [f"ids given by more than one row: 1 (4 rows; most: '{rows[0][i]}', 4 rows), every row "
                           "read and scored on its own"]


@needs_dev
def test_calibrate_from_measured_counts_0_ms_rows_too(tmp_path):
    lines = DEV_CSV.read_text().splitlines()
    head = lines[0].split(",")
    pair = [x.split(",") for x in lines[1:] if ",agg," in x and '"' not in x and "h100_sxm" in x and ",vllm," in x]
    assert len(pair) >= 30
    pair[0][head.index("silicon_tpot_ms")] = "0"
    f = _write(tmp_path / "m.csv", head, pair)
    rc, out, err = run("calibrate", "--from-measured", str(f), "-o", str(tmp_path / "out"))
    assert rc == 0, err
    assert _notes(out) == ["rows with a measured time of 0 ms: 1 (TTFT 0, TPOT 1), read as not measured: "
                           "no error scored"]


def _profile(tmp_path: Path, hardware: str) -> Path:
    text = (ROOT / "calibration" / "serving" / "h200.vllm.yaml").read_text()
    assert "hardware: h200\n" in text
    f = tmp_path / "prof.yaml"
    f.write_text(text.replace("hardware: h200\n", f"hardware: {hardware}\n", 1))
    return f


def test_a_serving_profiles_device_is_never_a_file_in_the_working_folder(tmp_path, monkeypatch):
    """A file called ``h200`` in the working folder (here not even YAML) was read as the
    profile's device; the catalog's h200 is meant."""
    from planner.serving_profile import load_serving

    f = _profile(tmp_path, "h200")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "h200").write_text("not: [a device\n")
    assert list(load_serving([str(f)])) == ["h200/vllm"]


@pytest.mark.parametrize("given", ["./h200.yaml", "hardware/h200.yaml", "h200.yaml"])
def test_a_serving_profiles_device_given_as_a_path_is_refused(tmp_path, monkeypatch, given):
    from planner.errors import InputError
    from planner.serving_profile import load_serving

    f = _profile(tmp_path, given)
    monkeypatch.chdir(ROOT)  # where hardware/h200.yaml is a file
    with pytest.raises(InputError) as exc:
        load_serving([str(f)])
    assert exc.value.field == "hardware" and exc.value.file == str(f)
    rc, out, err = run("validate", "--measured", str(DEV_CSV), "--calibration", str(f))
    assert rc == 2 and out == ""
    one_line(err, str(f), "field 'hardware'", "not a file")
