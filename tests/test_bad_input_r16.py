"""Bad input found by probing every command and file reader (round 16): each case here
was accepted in silence before (exit 0, a value other than the one written used). The
oracle is the user-visible promise of the developers' guide: one line naming the file,
the field and the value, exit code 2; and, for a measured row the replay cannot cost, the
row's own "unsupported" status while the rest of the file is predicted as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_robust import one_error_line as one_line
from test_robust import run

from planner.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DEV_CSV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
needs_dev = pytest.mark.skipif(not DEV_CSV.exists(), reason="the shared dev file is not here")


# --------------------------------------------------------------------------- a key written twice

def test_a_yaml_key_written_twice_is_refused(tmp_path):
    """A device file with ``name:`` written twice was read with the last one (YAML 1.2,
    section 3.2.1.1: a mapping's keys are unique; PyYAML keeps the last in silence): the
    device was renamed and the estimate ran (exit 0)."""
    f = tmp_path / "hw.yaml"
    f.write_text((ROOT / "hardware" / "h100-sxm.yaml").read_text() + "name: renamed\n")
    rc, out, err = run("estimate", "-m", "qwen3-0.6b", "-H", str(f))
    assert rc == 2 and out == ""
    one_line(err, str(f), "field 'name'", "twice")


def test_a_nested_key_written_twice_is_named_by_its_path(tmp_path):
    """The field named is the key's whole path (a serving profile's parameter, a list item)."""
    from planner.safeload import loads_yaml

    with pytest.raises(InputError) as e:
        loads_yaml("fitted:\n  serving:\n    parameters: {wave_sync: 0.1, step_host_s: 0.0, wave_sync: 0.2}\n", "p.yaml")
    assert e.value.field == "fitted.serving.parameters.wave_sync" and "line 3" in e.value.reason
    with pytest.raises(InputError) as e:
        loads_yaml("checks:\n  - {name: a}\n  - {name: b, name: c}\n", "c.yaml")
    assert e.value.field == "checks.1.name"


def test_yaml_merge_keys_and_equal_keys_in_other_mappings_still_read():
    """What YAML allows stays allowed: a key overriding a merged one (``<<``), the same key
    in sibling mappings; every shipped YAML file still reads (the catalog loads)."""
    from planner.catalog import all_hardware, all_models
    from planner.safeload import loads_yaml

    assert loads_yaml("a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  b: 3\n", "f.yaml") == {"a": {"b": 1, "c": 2},
                                                                                 "d": {"b": 3, "c": 2}}
    assert loads_yaml("- {name: a}\n- {name: a}\n", "f.yaml") == [{"name": "a"}, {"name": "a"}]
    assert all_hardware() and all_models()


# --------------------------------------------------------------------------- true / false as a number

@pytest.mark.parametrize("edit,field", [
    (("memory_gb: 80", "memory_gb: true"), "memory_gb"),
    (("max_devices: 8", "max_devices: true"), "max_devices"),
    (("  fp8: 1978.9", "  fp8: true"), "peak_tflops.fp8"),
])
def test_a_device_number_given_true_is_refused(tmp_path, edit, field):
    """pydantic's lax mode read ``memory_gb: true`` as a device of 1 GB and ``max_devices:
    true`` as 1 device (exit 0); a number field given true/false is one line naming it
    (planner.catalog.parse_spec, every spec file)."""
    text = (ROOT / "hardware" / "h100-sxm.yaml").read_text()
    assert edit[0] in text
    f = tmp_path / "hw.yaml"
    f.write_text(text.replace(edit[0], edit[1], 1))
    rc, _, err = run("estimate", "-m", "qwen3-0.6b", "-H", str(f))
    assert rc == 2
    one_line(err, str(f), f"field '{field}'", "value True", "not true/false")


def test_true_as_a_number_in_a_checks_file_and_a_capacity_scenario(tmp_path):
    checks = tmp_path / "c.yaml"
    checks.write_text("checks:\n  - name: a\n    estimate: {model: qwen3-0.6b, hardware: h100-sxm, prompt_len: true}\n"
                      "    assert: ['tpot_s <= 1']\n")
    rc, _, err = run("check", str(checks))
    assert rc == 2
    one_line(err, str(checks), "checks.a.estimate.prompt_len", "not true/false")
    cap = tmp_path / "cap.yaml"
    cap.write_text((ROOT / "examples" / "capacity.yaml").read_text().replace("max_gen_len: 8192",
                                                                             "max_gen_len: true"))
    rc, _, err = run("report", str(cap), "-o", str(tmp_path / "r.md"))
    assert rc == 2
    one_line(err, str(cap), "traffic.max_gen_len", "not true/false")
    assert not (tmp_path / "r.md").exists()


def test_a_bool_field_still_takes_a_bool():
    """The rule is about numbers: a field whose type is a bool keeps true/false."""
    from planner.catalog import parse_spec
    from planner.check_file import ChecksFile

    cf = parse_spec(ChecksFile, {"checks": [{"name": "a", "estimate": {"model": "qwen3-0.6b", "hardware": "h100-sxm",
                                                                       "prefix_sharing": True},
                                             "assert": ["tpot_s <= 1"]}]}, "c.yaml")
    assert cf.checks[0].estimate.prefix_sharing is True


def test_a_calibration_profile_version_true_is_not_version_1(tmp_path):
    """``version: true`` passed the version check (True == 1 in Python)."""
    f = tmp_path / "p.yaml"
    f.write_text((ROOT / "calibration" / "serving" / "h200.vllm.yaml").read_text().replace("version: 1",
                                                                                           "version: true", 1))
    rc, _, err = run("estimate", "-m", "qwen3-0.6b", "-H", "h200", "--calibration", str(f))
    assert rc == 2
    one_line(err, str(f), "field 'version'", "unsupported profile version")


# --------------------------------------------------------------------------- serving profiles

@pytest.mark.parametrize("edit,field", [
    (("hardware: h200", "hardware: h100-sxm"), "hardware"),
    (("    engine: vllm", "    engine: sglang"), "fitted.serving.engine"),
    (("hardware: h200", "hardware: no-such-device"), "hardware"),
])
def test_a_serving_profile_names_the_pair_its_file_name_says(tmp_path, monkeypatch, edit, field):
    """A user's ``serving/h200.vllm.yaml`` whose content is another device's (or another
    engine's) fit was used for h200 under vLLM by estimate (found by its file name) and
    for the other pair by the replay (read by its content), exit 0; an unknown device there
    failed without naming the profile. Now one line naming the profile and the field."""
    text = (ROOT / "calibration" / "serving" / "h200.vllm.yaml").read_text()
    assert edit[0] in text
    d = tmp_path / "calibration" / "serving"
    d.mkdir(parents=True)
    f = d / "h200.vllm.yaml"
    f.write_text(text.replace(edit[0], edit[1], 1))
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path))
    rc, _, err = run("estimate", "-m", "qwen3-0.6b", "-H", "h200", "--engine", "vllm")
    assert rc == 2
    one_line(err, str(f), f"field '{field}'")


def test_a_serving_profile_naming_its_device_by_an_alias_is_used(tmp_path, monkeypatch):
    """``hardware: h200_sxm`` (an alias of h200: hardware/h200.yaml) is the same device: the
    estimate is the shipped profile's, byte for byte, but for the label, which names the
    user's file (planner.serving_profile.shown_path)."""
    rc, shipped, _ = run("estimate", "-m", "qwen3-0.6b", "-H", "h200", "--engine", "vllm", "--json")
    assert rc == 0
    d = tmp_path / "calibration" / "serving"
    d.mkdir(parents=True)
    (d / "h200.vllm.yaml").write_text((ROOT / "calibration" / "serving" / "h200.vllm.yaml").read_text()
                                      .replace("hardware: h200", "hardware: h200_sxm", 1))
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path))
    rc, out, err = run("estimate", "-m", "qwen3-0.6b", "-H", "h200", "--engine", "vllm", "--json")
    assert rc == 0, err
    mine, theirs = json.loads(out), json.loads(shipped)
    assert str(d / "h200.vllm.yaml") in mine.pop("efficiency")  # the user's file, named as such
    theirs.pop("efficiency")
    assert mine == theirs


# --------------------------------------------------------------------------- measured CSV

def _dev_rows(n: int = 2) -> tuple[list[str], list[list[str]]]:
    lines = DEV_CSV.read_text().splitlines()
    head = lines[0].split(",")
    rows = [x.split(",") for x in lines[1:] if ",agg," in x][:n]
    assert all(len(r) == len(head) for r in rows)
    return head, rows


@needs_dev
def test_a_measured_column_written_twice_is_refused(tmp_path):
    """A second ``isl`` column replaced the first one's lengths in silence (a dict reader
    keeps the last): one line naming the column (planner.safeload.check_header)."""
    head, rows = _dev_rows()
    f = tmp_path / "m.csv"
    f.write_text(",".join(head + ["isl"]) + "\n" + "\n".join(",".join(r + ["5"]) for r in rows) + "\n")
    rc, out, err = run("validate", "--measured", str(f), "--json")
    assert rc == 2 and out == ""
    one_line(err, str(f), "field 'isl'", "line 1", "twice")


@needs_dev
def test_an_aggregated_row_on_no_devices_is_unsupported(tmp_path):
    """``tp_size 0`` on an aggregated row was costed ("ok", a TTFT of ~880 s on one row of
    the dev file); like ``batch_size 0`` it is that row's "unsupported" status, and the
    other row's prediction is the one it gets alone."""
    from planner.measured import read_measured
    from planner.replay import predict
    from planner.serving_profile import load_serving

    params = load_serving()

    head, rows = _dev_rows()
    f = tmp_path / "m.csv"
    f.write_text(",".join(head) + "\n" + ",".join(rows[1]) + "\n")
    alone = predict(read_measured(f), params)
    rows[0][head.index("tp_size")] = "0"
    f.write_text(",".join(head) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    both = predict(read_measured(f), params)
    assert both.status[0] == "unsupported: no devices (tp_size 0)"
    assert both.status[1] == alone.status[0] == "ok"
    assert both.ttft_s[1] == alone.ttft_s[0] and both.tpot_s[1] == alone.tpot_s[0]


# --------------------------------------------------------------------------- check --baseline

def test_a_baseline_that_is_a_folder_is_named_so(tmp_path):
    """``check --baseline DIR`` said "baseline file not found (create it with
    --update-baseline)" for a folder that exists (and --update-baseline cannot create)."""
    rc, _, err = run("check", str(ROOT / "examples" / "checks.yaml"), "--baseline", str(tmp_path))
    assert rc == 2
    one_line(err, str(tmp_path), "field 'baseline'", "is a folder")


# --------------------------------------------------------------------------- options a mode does not read

@pytest.mark.parametrize("extra,field", [
    (["-m", "qwen3-8b"], "model"), (["-H", "h100-sxm"], "hardware"), (["--layers", "-1"], "layers"),
    (["--threads", "0"], "threads"), (["--quick"], "quick"),
])
def test_validate_measured_refuses_the_torch_runs_options(tmp_path, extra, field):
    """``validate --measured F.csv -m qwen3-8b`` replayed every model of the file (the
    option is the torch run's), ``--layers -1`` was not even checked: one line naming it."""
    f = tmp_path / "m.csv"
    f.write_text("model_path,system,backend,precision,mode,isl,osl,batch_size,tp_size,silicon_ttft_ms,"
                 "silicon_tpot_ms\nQwen/Qwen3-8B,h200_sxm,vllm,bf16,agg,1024,1024,8,1,,\n")
    rc, out, err = run("validate", "--measured", str(f), *extra, "--json")
    assert rc == 2 and out == ""
    one_line(err, f"field '{field}'", "not used with --measured")


@pytest.mark.parametrize("argv,field", [
    (["--compare", "a.yaml", "b.yaml"], "compare"), (["--threads", "-1"], "threads"), (["--device", "cpu"], "device"),
    (["-H", "h100-sxm"], "hardware"), (["--physical-bounds"], "physical-bounds"),
])
def test_calibrate_refit_refuses_the_other_modes_options(tmp_path, argv, field):
    """``calibrate --refit P --compare A B`` refit and compared nothing, ``--threads -1``
    passed unchecked (exit 0): the modes (--from-measured, --refit, --compare, measuring
    with --device) are exclusive and an option of another mode is one line."""
    out = tmp_path / "o.yaml"
    rc, _, err = run("calibrate", "--refit", str(ROOT / "calibration" / "cpu-amd-epyc-2c.yaml"), "-o", str(out),
                     *argv)
    assert rc == 2 and not out.exists()
    one_line(err, f"field '{field}'")


def test_calibrate_compare_writes_nothing_so_refuses_an_output(tmp_path):
    p = str(ROOT / "calibration" / "cpu-amd-epyc-2c.yaml")
    rc, _, err = run("calibrate", "--compare", p, p, "-o", str(tmp_path / "x.yaml"))
    assert rc == 2
    one_line(err, "field 'output'", "not used with --compare")


def test_an_unknown_template_names_the_template_flag():
    """``fit --template NAME`` with an unknown NAME said "field 'profile'" (no such flag)."""
    rc, _, err = run("fit", str(ROOT / "examples" / "eval_synthetic.jsonl"), "-m", "m", "-t", "t",
                     "--template", "no-such-model/aime24")
    assert rc == 2
    one_line(err, "field 'template'", "no-such-model/aime24", "unknown task profile")
