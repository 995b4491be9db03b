"""Shipped serving profiles are used by `planner estimate` when the device and engine
match, and give the same numbers as the replay of a measured row (the replay is the
oracle: it is what the profiles were fitted on); an unmeasured device says it takes its
datasheet plus the engine's carried parameters."""

from __future__ import annotations

import json

import pytest

from planner.cli import main

HEADER = "id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,silicon_ttft_ms,silicon_tpot_ms"


def _estimate(capsys, *args) -> dict:
    assert main(["estimate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("engine,hw,tp,c", [("vllm", "h100-sxm", 1, 32), ("trtllm", "h200", 2, 8),
                                            ("sglang", "h100-sxm", 4, 64)])
def test_estimate_uses_the_fitted_profile_like_the_replay(tmp_path, capsys, engine, hw, tp, c):
    from planner.measured import read_measured
    from planner.replay import Prepared
    from planner.serving_profile import load_serving

    system = {"h100-sxm": "h100_sxm", "h200": "h200_sxm"}[hw]
    f = tmp_path / "runs.csv"
    f.write_text(f"{HEADER}\nr1,{engine},meta-llama/Llama-3.1-8B-Instruct,{system},bf16,agg,1024,256,{c},{tp},,\n")
    pred = Prepared(read_measured(str(f))).run(load_serving())
    r = _estimate(capsys, "-m", "llama-3.1-8b", "-H", hw, "--engine", engine, "--arrival", "closed",
                  "--concurrency", str(c), "--devices", str(tp), "--prompt-len", "1024", "--gen-len", "256",
                  "--no-prefix-sharing")
    assert r["efficiency"].startswith("serving profile ") and f"{hw}.{engine}.yaml" in r["efficiency"]
    assert r["ttft_s"] == pytest.approx(pred.ttft_s[0], rel=1e-6)
    assert r["tpot_s"] == pytest.approx(pred.tpot_s[0], rel=1e-6)


def test_unmeasured_device_takes_datasheet_plus_carried_engine_parameters(tmp_path, capsys):
    from planner.measured import read_measured
    from planner.replay import Prepared
    from planner.serving_profile import load_serving

    r = _estimate(capsys, "-m", "llama-3.1-8b", "-H", "b200", "--engine", "vllm", "--arrival", "closed",
                  "--concurrency", "16", "--prompt-len", "1024", "--gen-len", "256")
    assert "datasheet + vllm" in r["efficiency"] and "h100-sxm/vllm" in r["efficiency"]
    generic = _estimate(capsys, "-m", "llama-3.1-8b", "-H", "b200", "--arrival", "closed", "--concurrency", "16",
                        "--prompt-len", "1024", "--gen-len", "256")
    assert "datasheet +" not in generic["efficiency"]
    # the carried host time, wave synchrony and request overhead change the prediction ...
    assert r["ttft_s"] != pytest.approx(generic["ttft_s"], rel=1e-3)
    # ... exactly as the replay of a measured row on that device predicts it (the oracle)
    f = tmp_path / "runs.csv"
    f.write_text(f"{HEADER}\nr1,vllm,meta-llama/Llama-3.1-8B-Instruct,b200_sxm,bf16,agg,1024,256,16,1,,\n")
    pred = Prepared(read_measured(str(f))).run(load_serving())
    assert r["ttft_s"] == pytest.approx(pred.ttft_s[0], rel=1e-6)
    assert r["tpot_s"] == pytest.approx(pred.tpot_s[0], rel=1e-6)


@pytest.mark.parametrize("param,value,reason", [("step_host_s", "abc", "must be a number"),
                                                ("step_host_s_per_request", "0.5", "not per-request bookkeeping")])
def test_a_calibration_profile_with_a_bad_serving_section_is_refused(tmp_path, capsys, param, value, reason):
    """--calibration takes a profile's efficiencies only, but a malformed serving section in
    it is still one line naming the file and the field, exit 2 (it was passed over)."""
    import re
    from pathlib import Path

    shipped = Path(__file__).resolve().parent.parent / "calibration" / "serving" / "h200.vllm.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(re.sub(rf"\b{param}: [0-9.e-]+", f"{param}: {value}", shipped.read_text()))
    assert main(["estimate", "-H", "h200", "--engine", "vllm", "--concurrency", "8", "--calibration", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and f"fitted.serving.parameters.{param}" in err
    assert reason in err
    assert main(["estimate", "-H", "h200", "--engine", "vllm", "--concurrency", "8", "--calibration",
                 str(shipped)]) == 0  # a good one is taken (its efficiencies)


SHIPPED = sorted(__import__("pathlib").Path(__file__).resolve().parents[1].glob("calibration/serving/*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_serving_profiles_two_copies_of_its_physics_agree_and_round_trip(tmp_path, path):
    """A serving profile writes its decode-step physics twice: in the calibration fields every
    reader of a profile costs with (planner.calibrate.apply) and in ``fitted.serving.parameters``
    (the replay's). Written again from its parameters (planner.serving_profile.to_profile) and
    read back, the shipped profile gives the same parameters, and its copies agree."""
    from planner.calibrate.profile import load_profile, write_profile
    from planner.catalog import load_hardware
    from planner.serving_profile import PROFILE_FIELDS, serving_of, to_profile

    prof = load_profile(path)
    hw, engine, vals = serving_of(prof)
    s = prof.fitted["serving"]
    again = to_profile(load_hardware(hw), engine, dict(vals), s["provenance"], s["fit"], prof.date)
    back = serving_of(load_profile(write_profile(tmp_path / path.name, again)))
    assert back[:2] == (hw, engine) and dict(back[2]) == pytest.approx(dict(vals), rel=1e-3)
    for field, name in PROFILE_FIELDS.items():
        assert prof.fitted[field] == pytest.approx(vals[name], rel=1e-3)


@pytest.mark.parametrize("field", ["kernel_overhead_s", "gemm_rows_half", "memory.e_max", "compute.fp8.e_max"])
def test_an_edit_of_one_copy_is_refused_naming_it(tmp_path, capsys, field):
    import yaml

    doc = yaml.safe_load((SHIPPED[0].parent / "h200.vllm.yaml").read_text())
    *path, last = field.split(".")
    node = doc["fitted"]
    for key in path:
        node = node[key]
    node[last] = float(node[last]) * 1.2 + 1e-6
    f = tmp_path / "edited.yaml"
    f.write_text(yaml.safe_dump(doc))
    assert main(["estimate", "-m", "llama-3.1-8b", "-H", "h200", "--engine", "vllm", "--calibration", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"field 'fitted.{field}'" in err
    assert "disagrees with fitted.serving.parameters" in err
