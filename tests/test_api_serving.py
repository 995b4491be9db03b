"""The Python API serves as the command line does (planner.estimating): a named engine
uses the same profile, arrival pattern and numbers as `planner estimate --engine`, says
where its numbers come from and their measured error, sees a profile written while the
process runs, and refuses bad input by field and value."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import pytest

import planner
from planner.catalog import builtin_dir
from planner.cli import main
from planner.errors import InputError


def _cli(*args: str) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["estimate", *args, "--json"]) == 0
    return json.loads(buf.getvalue())


@pytest.mark.parametrize("engine, hardware", [("vllm", "h200"), ("trtllm", "h100-sxm"), ("sglang", "b200")])
def test_api_with_an_engine_gives_the_command_lines_answer(engine, hardware):
    """Same configuration through both front ends: same times, same profile, same error line
    (the fitted pairs and a device nobody measured, which takes the carried parameters)."""
    cli = _cli("-m", "llama-3.1-70b", "-H", hardware, "--devices", "4", "--concurrency", "16",
               "--engine", engine, "--weight-dtype", "fp8", "--act-dtype", "fp8")
    api = planner.estimate(model="llama-3.1-70b", hardware=hardware, devices=4, concurrency=16, engine=engine,
                           weight_dtype="fp8", act_dtype="fp8")
    for key in ("ttft_s", "tpot_s", "latency_s", "energy_j", "cost_usd"):
        assert api[key] == pytest.approx(cli[key], rel=1e-12), key
    assert api["efficiency"] == cli["efficiency"]
    assert api["expected_error"] == cli["expected_error"]
    assert api["config"]["arrival"] == "closed"  # a named engine's requests in flight: the benchmarks' loop
    path = api["expected_error"]["path"]
    assert path == ("carried" if hardware == "b200" else "fitted")
    assert (f"calibration/serving/{hardware}.{engine}.yaml" in api["efficiency"]) == (path == "fitted")


def test_api_engine_changes_the_answer_the_way_the_scheduler_does():
    """A named engine's closed loop waits behind other prompts and pays its request overhead:
    TTFT well above the generic steady state's one prompt (the issue's 3-55x gap)."""
    kw = dict(model="llama-3.1-8b", hardware="h100-sxm", concurrency=64, prompt_len=1024, gen_len=256)
    generic = planner.estimate(**kw)
    vllm = planner.estimate(engine="vllm", **kw)
    assert generic["config"]["arrival"] == "steady" and generic["expected_error"]["path"] == "generic"
    assert vllm["ttft_s"] > 2 * generic["ttft_s"]
    steady = planner.estimate(engine="vllm", arrival="steady", **kw)
    assert steady["config"]["arrival"] == "steady"
    assert steady["expected_error"]["same_as_measured"] is False  # measured on closed loops
    poisson = planner.estimate(engine="vllm", rate=2.0, **{k: v for k, v in kw.items() if k != "concurrency"})
    assert poisson["config"]["arrival"] == "poisson"


def test_a_profile_written_while_the_process_runs_is_used(tmp_path, monkeypatch):
    """The per-process memo of resolved profiles is keyed by the profile folders' state: a
    serving profile dropped into the user's calibration folder between two calls is used by
    the second (its name in the label, its slower memory fraction in the TPOT)."""
    monkeypatch.setenv("PLANNER_CALIBRATION_DIR", str(tmp_path))
    kw = dict(model="llama-3.1-8b", hardware="h200", concurrency=8, engine="vllm")
    before = planner.estimate(**kw)
    assert "calibration/serving/h200.vllm.yaml" in before["efficiency"]
    (tmp_path / "serving").mkdir()
    text = (builtin_dir("calibration") / "serving" / "h200.vllm.yaml").read_text()
    fitted = re.search(r"memory_efficiency: ([0-9.]+)", text).group(1)  # whatever the shipped refit gives
    half = f"{float(fitted) / 2:.4f}"
    slower = text.replace(f"memory: {{e_max: {fitted}", f"memory: {{e_max: {half}").replace(
        f"memory_efficiency: {fitted}", f"memory_efficiency: {half}")
    assert slower.count(half) == 2
    (tmp_path / "serving" / "h200.vllm.yaml").write_text(slower)
    after = planner.estimate(**kw)
    assert str(tmp_path) in after["efficiency"]
    assert after["tpot_s"] > 1.3 * before["tpot_s"]  # a decode step at 8 in flight is mostly weight reads
    from planner.serving_profile import load_serving

    served = load_serving()  # the replay's names: the user's file by its path, the shipped ones by name
    assert served["h200/vllm"][0] == f"calibration:{tmp_path / 'serving' / 'h200.vllm.yaml'}"
    assert served["h200/sglang"][0] == "calibration:h200.sglang.yaml"
    shutil.rmtree(tmp_path / "serving")
    assert planner.estimate(**kw)["tpot_s"] == pytest.approx(before["tpot_s"], rel=1e-12)


def test_api_serving_bad_input_names_the_field():
    with pytest.raises(InputError, match="engine.*vlm"):
        planner.estimate(model="llama-3.1-8b", engine="vlm", concurrency=4)
    with pytest.raises(InputError, match="arrival"):
        planner.estimate(model="llama-3.1-8b", engine="vllm", arrival="closed", rate=3.0)
    with pytest.raises(InputError, match="arrival"):
        planner.estimate(model="llama-3.1-8b", engine="vllm", arrival="bogus", concurrency=4)
    with pytest.raises(InputError, match="engine"):
        planner.estimate(model="llama-3.1-8b", engine={"name": "vllm"}, concurrency=4)
    from planner.cost.efficiency import default_efficiency

    with pytest.raises(InputError, match="efficiency"):
        planner.estimate(model="llama-3.1-8b", efficiency=default_efficiency(planner.load_hardware("h100-sxm")),
                         calibration="x.yaml")


def test_an_engine_file_path_is_an_engine():
    """A YAML path, as a string or a Path, names the same profile as its name."""
    from pathlib import Path

    path = builtin_dir("engines") / "sglang.yaml"
    kw = dict(model="qwen3-8b", hardware="h100-sxm", concurrency=8)
    named = planner.estimate(engine="sglang", **kw)
    assert planner.estimate(engine=Path(path), **kw)["tpot_s"] == named["tpot_s"]
    assert planner.estimate(engine=str(path), **kw)["ttft_s"] == named["ttft_s"]


def test_an_edited_engine_file_and_a_user_engine_are_seen(tmp_path, monkeypatch):
    """The engine lookup is memoized (the API's speed needs it) by reference and
    $PLANNER_PATH, the parse by the file's time: a user's engine on a newly set $PLANNER_PATH
    shadows the shipped one of that name, and an edited file is re-read. Oracle: a larger per-step host time is a slower TPOT, a user's file named
    like a shipped engine takes over from the next call on."""
    import os

    from planner.cost.efficiency import default_efficiency

    shipped = (builtin_dir("engines") / "vllm.yaml").read_text()
    # a given efficiency: the engine file's own scheduler facts, no fitted serving parameters
    kw = dict(model="qwen3-8b", hardware="h100-sxm", concurrency=8,
              efficiency=default_efficiency(planner.load_hardware("h100-sxm")))
    before = planner.estimate(engine="vllm", **kw)["tpot_s"]
    user = tmp_path / "engines"
    user.mkdir()
    mine = user / "vllm.yaml"
    mine.write_text(shipped.replace("host_step_us:", "host_step_us: 9000 #", 1))
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path))
    slow = planner.estimate(engine="vllm", **kw)["tpot_s"]
    assert slow > before + 5e-3
    mine.write_text(shipped.replace("host_step_us:", "host_step_us: 20000 #", 1))
    os.utime(mine, ns=(mine.stat().st_atime_ns, mine.stat().st_mtime_ns + 10**9))  # a new modification time
    assert planner.estimate(engine="vllm", **kw)["tpot_s"] > slow + 5e-3
    monkeypatch.delenv("PLANNER_PATH")
    assert planner.estimate(engine="vllm", **kw)["tpot_s"] == pytest.approx(before)


def test_an_engine_file_created_later_in_a_named_folder_is_seen(tmp_path, monkeypatch):
    """$PLANNER_PATH names a folder before it holds an engine of a shipped name: the lookup
    (memoized) finds the shipped one; once the user's file is written there, the next call
    takes it, and once it is removed, the shipped one again. Oracle: a larger per-step host time
    is a slower TPOT."""
    from planner.cost.efficiency import default_efficiency

    shipped = (builtin_dir("engines") / "vllm.yaml").read_text()
    kw = dict(model="qwen3-8b", hardware="h100-sxm", concurrency=8,
              efficiency=default_efficiency(planner.load_hardware("h100-sxm")))
    user = tmp_path / "engines"
    user.mkdir()
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path))
    before = planner.estimate(engine="vllm", **kw)["tpot_s"]
    mine = user / "vllm.yaml"
    mine.write_text(shipped.replace("host_step_us:", "host_step_us: 9000 #", 1))
    assert planner.estimate(engine="vllm", **kw)["tpot_s"] > before + 5e-3
    mine.unlink()
    assert planner.estimate(engine="vllm", **kw)["tpot_s"] == pytest.approx(before)


def test_a_given_efficiency_is_used_as_is_and_says_so():
    """The caller's efficiency, not the fitted profile's: at the datasheet defaults the decode
    steps run at the default memory fraction, and no measured error is claimed for it."""
    from planner.cost.efficiency import default_efficiency

    kw = dict(model="llama-3.1-8b", hardware="h200", engine="vllm", concurrency=8)
    given = planner.estimate(efficiency=default_efficiency(planner.load_hardware("h200")), **kw)
    assert given["efficiency"].startswith("given by the caller") and given["expected_error"] is None
    assert given["config"]["arrival"] == "closed"
    assert given["tpot_s"] != pytest.approx(planner.estimate(**kw)["tpot_s"], rel=1e-3)
