"""Issue 13: every input path robust, tables that fit, calibration that cannot hurt,
no silent choices, --version. Each case here was a traceback, a hang, a silent choice or
data loss before; the oracle is the user-visible promise (exit 2, one line naming the
file, bounded time, files untouched)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from planner.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def one_error_line(err: str, *fragments: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert len(lines[0]) < 600
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def test_alias_bomb_refused_fast(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(BOMB + "name: *i\n")
    from planner.errors import InputError
    from planner.safeload import read_yaml

    t0 = time.perf_counter()
    with pytest.raises(InputError):
        read_yaml(p)
    assert time.perf_counter() - t0 < 1.0
    rc, _, err = run("estimate", "-m", str(p))
    assert rc == 2
    one_error_line(err, str(p), "aliases expand")


@pytest.mark.parametrize("text, fragment", [
    ("a: " + "[" * 1000 + "]" * 1000 + "\n", "nest"),
    ("name: x\nnum_layers: " + "9" * 401 + "\n", "too large"),
    ("name: x\nnum_layers: .inf\n", "finite"),
    ("name: x\nnum_layers: .nan\n", "finite"),
    ("name: " + "x" * 100_000 + "\n", "longer than"),
])
def test_yaml_limits(tmp_path, text, fragment):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    rc, _, err = run("estimate", "-m", str(p))
    assert rc == 2
    one_error_line(err, str(p), fragment)


def test_unreadable_and_non_utf8_inputs(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    rc, _, err = run("estimate", "-m", str(p))
    assert rc == 2 and "UTF-8" in one_error_line(err, str(p))
    rc, _, err = run("estimate", "-m", str(tmp_path))  # a folder
    assert rc == 2
    rc, _, err = run("estimate", "-m", "x" * 300)  # a name too long for the file system
    assert rc == 2
    one_error_line(err)


def test_json_limits(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    rc, _, err = run("models", "import", str(p))
    assert rc == 2
    one_error_line(err, str(p))
    p.write_text('{"num_hidden_layers": 1e308}')
    rc, _, err = run("models", "import", str(p))
    assert rc == 2
    one_error_line(err, "num_hidden_layers")
    log = tmp_path / "e.jsonl"
    log.write_text('{"problem": 1, "correct": true, "tokens": NaN}\n')
    rc, _, err = run("fit", str(log), "--model", "m", "--task", "t")
    assert rc == 2
    one_error_line(err, str(log))


@pytest.mark.parametrize("argv", [
    ["estimate", "--prompt-len", str(2**63)],
    ["estimate", "--gen-len", "9" * 401],
    ["estimate", "--prompt-len", "40000"],  # beyond qwen3-8b's context
    ["estimate", "--batch", "4", "--concurrency", "8"],
    ["accuracy", "-m", "qwen3-8b", "-t", "aime24", "-s", "single", "-k", "4"],
    ["accuracy", "-m", "qwen3-8b", "-t", "aime24", "-s", "majority", "-k", "9" * 401],
    ["fit", str(ROOT / "examples" / "eval_synthetic.jsonl"), "--seed", "-1"],
])
def test_bad_flags_exit_2(argv):
    rc, out, err = run(*argv)
    assert rc == 2, (out, err)
    one_error_line(err)


def test_bad_verifier_is_named():
    rc, _, err = run("recommend", "--task", "aime24", "--verifier", "no-such-model", "--top", "1")
    assert rc == 2
    one_error_line(err, "field 'verifier'")


@pytest.mark.parametrize("target", ["missing/sub/r.html", "folder.html", "file/r.html", "x" * 300 + ".html"])
def test_report_write_errors(tmp_path, target):
    (tmp_path / "folder.html").mkdir()
    (tmp_path / "file").write_text("x")
    rc, _, err = run("report", str(ROOT / "examples" / "capacity.yaml"), "-o", str(tmp_path / target))
    if target.startswith("missing"):  # a missing folder is created
        assert rc == 0
        return
    assert rc == 2
    one_error_line(err, "cannot write")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_markdown_report_files_move_in_together(tmp_path):
    out = tmp_path / "r.md"
    rc, _, err = run("report", str(ROOT / "examples" / "capacity.yaml"), "-o", str(out))
    assert rc == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r-pareto.svg", "r-roofline.svg", "r.md"]  # no temporary folder left


def test_update_baseline_never_overwrites_other_files(tmp_path):
    cap = tmp_path / "capacity.yaml"
    shutil.copy(ROOT / "examples" / "capacity.yaml", cap)
    before = cap.read_bytes()
    rc, _, err = run("check", str(ROOT / "examples" / "checks.yaml"), "--update-baseline", "--baseline", str(cap))
    assert rc == 2
    one_error_line(err, "not a baseline")
    assert cap.read_bytes() == before


def _tree_bytes(*folders: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


def test_no_command_writes_into_shipped_files():
    """Nothing the package ships is ever overwritten by a command: every output flag aimed at a
    shipped folder (examples/, tasks/, calibration/) or into the package is one line, exit 2,
    and the shipped files are byte-identical afterwards."""
    folders = [ROOT / "examples", ROOT / "tasks", ROOT / "calibration", ROOT / "models"]
    before = _tree_bytes(*folders)
    log = str(ROOT / "examples" / "eval_synthetic.jsonl")
    for argv in (["report", str(ROOT / "examples" / "capacity.yaml"), "-o", str(ROOT / "examples" / "capacity.yaml")],
                 ["report", str(ROOT / "examples" / "capacity.yaml"), "-o", str(ROOT / "planner" / "r.md")],
                 ["check", str(ROOT / "examples" / "checks.yaml"), "--update-baseline"],
                 ["check", str(ROOT / "examples" / "checks.yaml"), "--junit", str(ROOT / "examples" / "j.xml")],
                 ["fit", log, "--model", "m", "--task", "t", "-o", str(ROOT / "tasks" / "math--pythia-1b.yaml")],
                 ["models", "import", str(ROOT / "tests" / "data" / "NOPE.json"), "-o",
                  str(ROOT / "models" / "llama-3.1-8b.yaml")],
                 ["calibrate", "--from-measured", str(ROOT / "examples" / "eval_synthetic.jsonl"),
                  "-o", str(ROOT / "calibration" / "serving")]):
        rc, _, err = run(*argv)
        assert rc == 2, (argv, err)
        one_error_line(err, "refusing to write")
    assert _tree_bytes(*folders) == before
    assert not (ROOT / "planner" / "r.md").exists()


def test_broken_calibration_is_an_error_everywhere(tmp_path):
    text = (ROOT / "calibration" / "cpu-amd-epyc-2c.yaml").read_text()
    p = tmp_path / "c.yaml"
    p.write_text(text.replace("memory: {e_max: ", "memory: {e_max: -"))
    for argv in (["estimate", "--calibration", str(p)],
                 ["recommend", "--task", "aime24", "--models", "qwen3-0.6b", "-H", "h100-sxm", "--calibration", str(p)]):
        rc, _, err = run(*argv)
        assert rc == 2, argv
        one_error_line(err, str(p), "memory.e_max")


def test_calibration_fit_outside_physical_range_refused(tmp_path):
    text = (ROOT / "calibration" / "cpu-amd-epyc-2c.yaml").read_text()
    p = tmp_path / "c.yaml"
    p.write_text(text.replace("memory: {e_max: 0.6121993909494788", "memory: {e_max: 2.65"))
    rc, _, err = run("estimate", "--calibration", str(p))
    assert rc == 2
    one_error_line(err, "fitted.memory.e_max", "physical")


def test_calibration_never_writes_into_the_shipped_folder():
    shipped = ROOT / "calibration" / "cpu-amd-epyc-2c.yaml"
    before = shipped.read_bytes()
    rc, _, err = run("calibrate", "--refit", str(shipped))
    assert rc == 2
    one_error_line(err, "refusing to write")
    assert shipped.read_bytes() == before


def test_shipped_profile_not_applied_on_another_machine():
    rc, out, _ = run("estimate", "-H", str(ROOT / "calibration" / "cpu-amd-epyc-2c.hardware.yaml"), "--json")
    import json

    assert rc == 0
    r = json.loads(out)
    from planner.calibrate.lookup import machine_mismatch
    from planner.calibrate.profile import load_profile

    if machine_mismatch(load_profile(ROOT / "calibration" / "cpu-amd-epyc-2c.yaml")) is None:
        assert "matches this machine" in r["efficiency"]
    else:
        assert r["efficiency"].startswith("defaults") and "not applied" in r["efficiency"]


def test_estimate_that_does_not_fit_says_so_and_strict_exits_1():
    rc, out, _ = run("estimate", "-m", "llama-3.1-405b")
    assert rc == 0 and out.startswith("DOES NOT FIT")
    rc, _, err = run("estimate", "-m", "llama-3.1-405b", "--strict", "--json")
    assert rc == 1


def test_assumptions_listed():
    rc, out, _ = run("estimate", "-H", "amd-epyc-9654", "--json")
    import json

    notes = json.loads(out)["assumptions"]
    assert any("amortized" in n for n in notes) and any("efficiency" in n for n in notes)


@pytest.mark.parametrize("width", [80, 120])
def test_recommend_table_fits_the_terminal(monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    rc, out, _ = run("recommend")
    assert rc == 0
    lines = out.splitlines()
    header = next(x for x in lines if x.startswith("model "))
    for col in ("model", "strategy", "accuracy", "latency", "$/req"):
        assert col in header.split()
    assert "…" not in out
    assert max(len(x) for x in lines) <= width
    rows = [x for x in lines if x.startswith("qwen3") and not x.split()[0].endswith((":", ","))]  # not the wrapped note
    assert rows and all("%" in r and "$" in r for r in rows)


def test_recommend_wide_shows_every_column():
    rc, out, _ = run("recommend", "--wide")
    header = next(x for x in out.splitlines() if x.startswith("model "))
    for col in ("energy", "bound", "batch", "gen"):
        assert col in header


def test_version():
    rc, out, _ = run("--version")
    from planner import __version__

    assert rc == 0 and out.strip() == f"planner {__version__}"


def test_error_line_never_walks_a_huge_value():
    from planner.errors import InputError

    x: list = [0]
    for _ in range(30):
        x = [x, x]  # 2**30 leaves if walked
    t0 = time.perf_counter()
    line = InputError("r" * 10_000, file="f" * 1000, field="a", value=x).one_line()
    assert time.perf_counter() - t0 < 0.1 and len(line) < 500 and "\n" not in line
    assert "digits" in InputError("bad", value=10**5000).one_line()


def test_sigterm_removes_temporary_files(tmp_path):
    """A real `planner` process killed by SIGTERM while writing leaves no temporary file."""
    import signal

    script = ("import sys, time\n"
              "from planner.cli import _install_signal_handlers\n"
              "from planner import files as output\n"
              "_install_signal_handlers()\n"
              "orig = output.os.fsync\n"
              "def slow(fd):\n"
              "    print('writing', flush=True); time.sleep(30)\n"
              "output.os.fsync = slow\n"
              f"output.atomic_write_text({str(tmp_path / 'r.html')!r}, 'x' * 10**6)\n")
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    assert p.returncode == -signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_real_executable_errors_are_one_line(tmp_path):
    exe = Path(sys.executable).parent / "planner"
    if not exe.exists():
        pytest.skip("planner executable not installed")
    p = tmp_path / "bomb.yaml"
    p.write_text(BOMB + "name: *i\n")
    r = subprocess.run([str(exe), "estimate", "-m", str(p)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "COLUMNS": "80"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    one_error_line(r.stderr, "aliases expand")


def test_ordinary_yaml_anchors_still_work(tmp_path):
    """Anchors for reuse (a merge key) expand to a handful of values: accepted."""
    p = tmp_path / "checks.yaml"
    p.write_text("base: &base {model: qwen3-8b, hardware: h100-sxm, prompt_len: 512, gen_len: 64}\n"
                 "checks:\n"
                 "  - name: a\n    estimate: {<<: *base, batch: 1}\n    assert: ['tpot_s <= 1']\n"
                 "  - name: b\n    estimate: *base\n    assert: ['tpot_s <= 1']\n")
    from planner.safeload import read_yaml

    data = read_yaml(p)
    assert data["checks"][0]["estimate"]["model"] == "qwen3-8b" and data["checks"][1]["estimate"]["gen_len"] == 64


@pytest.mark.parametrize("edit, field", [
    (("num_layers: 36", "num_layers: 100000000000000000"), "num_layers"),
    (("head_dim: 128", "head_dim: 0"), "head_dim"),
])
def test_model_fields_within_physical_bounds(tmp_path, edit, field):
    text = (ROOT / "models" / "qwen3-8b.yaml").read_text()
    assert edit[0] in text
    p = tmp_path / "m.yaml"
    p.write_text(text.replace(edit[0], edit[1]))
    rc, _, err = run("estimate", "-m", str(p))
    assert rc == 2
    one_error_line(err, str(p), field)


def test_scenario_listing_a_device_twice_is_refused(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("task: aime24\nhardware: [" + ", ".join(["h100-sxm"] * 201) + "]\n")
    rc, _, err = run("recommend", "--scenario", str(p))
    assert rc == 2
    one_error_line(err, str(p), "hardware")


def test_huge_layer_count_in_config_json_refused_fast(tmp_path):
    import json

    cfg = json.loads((ROOT / "tests" / "data" / "hf_configs" / "qwen3-8b.json").read_text())
    cfg["num_hidden_layers"] = 10**17
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    rc, _, err = run("models", "import", str(p))
    assert rc == 2
    one_error_line(err, "num_hidden_layers")


@pytest.mark.parametrize("lines, rc_expected", [
    (['{"problem":"a","n":4,"correct":0}', '{"problem":"b","n":4,"correct":0}'], 0),  # unsolved
    (['{"problem":"a","n":4,"correct":4}', '{"problem":"b","n":4,"correct":4}'], 0),  # all solved
    (['{"problem":"a","n":1,"correct":0}', '{"problem":"b","n":1,"correct":1}'], 2),  # no held-out half
    (['{"problem":"a","n":4,"correct":1}'], 2),                                      # one problem
])
def test_fit_on_degenerate_logs(tmp_path, lines, rc_expected):
    """A nearly (un)solved task fits and writes a valid profile; logs that determine no
    distribution are a clean error, never a traceback or a failure on the fit's own result."""
    log = tmp_path / "e.jsonl"
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.yaml"
    rc, _, err = run("fit", str(log), "-m", "m", "-t", "t", "-o", str(out))
    assert rc == rc_expected, err
    if rc == 0:
        from planner.accuracy.profile import load_profile

        d = load_profile(str(out)).spec.difficulty  # loads: the written profile is valid
        assert d.kind != "beta" or (d.a > 0 and d.b > 0)
    else:
        one_error_line(err, str(log))


def test_report_states_quantization_chosen_without_an_accuracy_profile(tmp_path):
    import json

    import yaml

    scn = yaml.safe_load((ROOT / "examples" / "capacity.yaml").read_text())
    scn.pop("task", None)
    scn.pop("min_accuracy", None)
    p = tmp_path / "cap.yaml"
    p.write_text(yaml.safe_dump(scn))
    out = tmp_path / "r.md"
    rc, stdout, err = run("report", str(p), "-o", str(out), "--json")
    assert rc == 0, err
    plan = json.loads(stdout)["plan"]["candidates"]
    blind = [c for c in plan if c["status"] == "ok" and c["config"]["weight_dtype"] not in ("bf16", "fp16")]
    text = out.read_text()
    assert blind  # cost alone picks a quantized format somewhere
    assert "Quantized without any accuracy check" in text
    for c in blind:
        assert f"{c['model']} @ {c['hardware']} ({c['config']['weight_dtype']})" in text


def test_errors_deep_in_scenario_and_checks_files_name_the_file(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text("task: aime24\nmodels: [no-such-model]\n")
    rc, _, err = run("recommend", "--scenario", str(s))
    assert rc == 2
    one_error_line(err, str(s), "no-such-model")
    rc, _, err = run("recommend", "--scenario", str(s), "--models", "other-missing")
    assert rc == 2 and str(s) not in err  # a flag's error is the flag's, not the file's
    s.write_text("task: aime24\nmodels: [qwen3-0.6b]\nkv_budgets: []\n")  # was a KeyError
    rc, _, err = run("recommend", "--scenario", str(s))
    assert rc == 2
    one_error_line(err, str(s), "kv_budgets")
    c = tmp_path / "checks.yaml"
    c.write_text("checks:\n  - name: x\n    estimate: {model: qwen3-8b, hardware: h100-sxm, prompt_len: 40000}\n"
                 "    assert: ['tpot_s <= 1']\n")
    rc, _, err = run("check", str(c))
    assert rc == 2
    one_error_line(err, str(c), "checks.x.estimate.prompt_len")  # the file's key, not the flag


@pytest.mark.parametrize("edit", [
    ("kind: gemm", "kind: 7"), ("seconds: ", "seconds: -"), ("dtype: fp32, ", ""),
])
def test_refit_refuses_malformed_measurements(tmp_path, edit):
    """--refit on measurements of the wrong type or with missing fields: exit 2 naming the
    measurement (was a KeyError / TypeError inside the fits)."""
    text = (ROOT / "calibration" / "cpu-amd-epyc-2c.yaml").read_text()
    assert edit[0] in text
    p = tmp_path / "c.yaml"
    p.write_text(text.replace(edit[0], edit[1], 1))
    rc, _, err = run("calibrate", "--refit", str(p), "-o", str(tmp_path / "out.yaml"))
    assert rc == 2
    one_error_line(err, str(p), "measurements[")
    assert not (tmp_path / "out.yaml").exists()


def test_refit_refuses_a_fitted_peak_outside_the_physical_range(tmp_path):
    """A measurement timed at 1e-300 s (found by the fuzz: seed 2, case 4232) fits a peak
    of ~7e294 FLOP/s: exit 2 naming the fitted field (was a pydantic traceback), nothing
    written."""
    import yaml

    data = yaml.safe_load((ROOT / "calibration" / "cpu-amd-epyc-2c.yaml").read_text())
    gemv = next(m for m in data["measurements"] if m["kind"] == "gemv" and m["dtype"] == "fp32")
    gemv["seconds"] = 1e-300
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    rc, _, err = run("calibrate", "--refit", str(p), "-o", str(tmp_path / "out.yaml"))
    assert rc == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "peak_tflops" in err and "refusing the fit" in err
    assert not (tmp_path / "out.yaml").exists()
