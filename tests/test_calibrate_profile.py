"""Profiles: round trip, rejection of corrupt/foreign files, atomic writes, lookup,
conversion to the engine's Efficiency, comparison, and the measured hardware spec."""

from __future__ import annotations

import copy
import os

import pytest
import yaml

from planner.calibrate.lookup import NO_PROFILE, find_profile, resolve_efficiency
from planner.calibrate.apply import profile_to_efficiency
from planner.calibrate.compare import compare_profiles
from planner.calibrate.hardware_spec import hardware_spec, write_hardware_spec
from planner.calibrate.profile import FORMAT, Profile, fingerprint_name, load_profile, profile_from_dict, write_profile
from planner.errors import InputError

DEVICE = {"type": "cpu", "name": "AMD EPYC", "cpu_model": "AMD EPYC", "gpu_name": None, "cores": 2,
          "memory_gb": 24.1}
FITTED = {
    "peak_flops": {"fp32": 1.6e11, "bf16": 2.0e10},
    "peak_bandwidth": 2.8e10,
    "peaks_from": "measured",
    "main_dtype": "fp32",
    "compute": {"fp32": {"e_max": 1.0, "w_half": 1.2e6}, "bf16": {"e_max": 1.0, "w_half": 0.0}},
    "memory": {"e_max": 0.65, "w_half": 1.1e5},
    "attention_memory": 0.5,
    "kernel_overhead_s": 3.5e-5,
    "fit_rms_log_error": {"memory": 0.04},
}


def make_profile(**kw) -> Profile:
    base = dict(hardware="cpu-amd-epyc-2c", device=dict(DEVICE), torch_version="2.13.0+cpu", threads=2,
                date="2025-06-01T10:00:00+00:00", fitted=copy.deepcopy(FITTED), scale="quick",
                measurements=[{"kind": "gemm", "dtype": "fp32", "m": 1, "k": 64, "n": 128, "flops": 16384.0,
                               "bytes": 33280.0, "seconds": 1.5e-5, "repeats": 5, "spread": 0.01}])
    base.update(kw)
    return Profile(**base)


def test_round_trip(tmp_path):
    p = make_profile(hardware_file="cpu-amd-epyc-2c.hardware.yaml")
    path = tmp_path / "p.yaml"
    write_profile(path, p)
    q = load_profile(path)
    assert q == p
    assert q.path == str(path)
    assert yaml.safe_load(path.read_text())["format"] == FORMAT


def test_corrupt_file_rejected(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("format: planner-calibration\nfitted: {peak_flops: [1, 2\n")
    with pytest.raises(InputError) as e:
        load_profile(path)
    assert str(path) in str(e.value)


def test_foreign_yaml_rejected(tmp_path):
    path = tmp_path / "h100.yaml"
    path.write_text("name: h100-sxm\nkind: gpu\npeak_tflops: {bf16: 989}\n")
    with pytest.raises(InputError) as e:
        load_profile(path)
    assert e.value.field == "format" and e.value.file == str(path)


def test_not_a_mapping_rejected(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InputError):
        load_profile(path)


@pytest.mark.parametrize("drop, field", [("date", "date"), ("fitted.memory", "fitted.memory"),
                                         ("fitted.peak_bandwidth", "fitted.peak_bandwidth")])
def test_missing_field_named(drop, field):
    d = make_profile().to_dict()
    if "." in drop:
        a, b = drop.split(".")
        del d[a][b]
    else:
        del d[drop]
    with pytest.raises(InputError) as e:
        profile_from_dict(d, "x.yaml")
    assert e.value.field == field and e.value.file == "x.yaml"


def test_bad_value_named():
    d = make_profile().to_dict()
    d["fitted"]["memory"]["e_max"] = "fast"
    with pytest.raises(InputError) as e:
        profile_from_dict(d, "x.yaml")
    assert e.value.field == "fitted.memory.e_max" and e.value.value == "fast"


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    import planner.files as out

    def boom(fd):
        raise KeyboardInterrupt("interrupted mid-write")

    monkeypatch.setattr(out.os, "fsync", boom)
    path = tmp_path / "cal" / "p.yaml"
    with pytest.raises(KeyboardInterrupt):
        write_profile(path, make_profile())
    assert not path.exists()
    assert os.listdir(path.parent) == []


def test_interrupted_write_keeps_the_old_profile(tmp_path, monkeypatch):
    import planner.files as out

    path = tmp_path / "p.yaml"
    write_profile(path, make_profile())
    before = path.read_text()
    monkeypatch.setattr(out.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises((OSError, ValueError)):  # an InputError (exit 2) naming the path
        write_profile(path, make_profile(threads=1))
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["p.yaml"]


def test_profile_to_efficiency(tmp_path):
    path = tmp_path / "p.yaml"
    write_profile(path, make_profile())
    eff = profile_to_efficiency(load_profile(path))
    assert eff.source == f"calibration:{path}"
    assert eff.peak_flops_override == FITTED["peak_flops"]
    assert eff.peak_bandwidth_override == FITTED["peak_bandwidth"]
    assert eff.compute_curve("fp32").w_half == 1.2e6
    assert eff.compute_curve("fp8").e_max == 1.0  # falls back to the main dtype's curve
    assert eff.memory.e_max == 0.65 and eff.attention_memory == 0.5
    assert eff.kernel_overhead_s == 3.5e-5


def test_profile_drives_the_engine(tmp_path):
    from planner.catalog import load_model
    from planner.cost.api import estimate
    from planner.specs import Hardware

    hw = Hardware(**hardware_spec("cpu-test", DEVICE, FITTED, "2025-06-01T10:00:00+00:00"))
    eff = profile_to_efficiency(make_profile(), hw)
    m = load_model("qwen3-0.6b")
    base = estimate(m, hw, prompt_len=128, gen_len=1, weight_dtype="fp32", act_dtype="fp32", kv_dtype="fp32",
                    efficiency=eff)
    slow = dict(FITTED, peak_bandwidth=FITTED["peak_bandwidth"] / 2)
    eff2 = profile_to_efficiency(make_profile(fitted=slow), hw)
    r2 = estimate(m, hw, prompt_len=128, gen_len=1, weight_dtype="fp32", act_dtype="fp32", kv_dtype="fp32",
                  efficiency=eff2)
    assert r2["decode_s"] > 1.8 * base["decode_s"]  # batch-1 decode is bandwidth bound


def test_find_profile(tmp_path, monkeypatch):
    d = tmp_path / "cal"
    write_profile(d / "cpu-amd-epyc-2c.yaml", make_profile())
    write_profile(d / "other-name.yaml", make_profile(hardware="my-box"))
    (d / "my-box.hardware.yaml").write_text("name: my-box\n")
    monkeypatch.setenv("PLANNER_PATH", str(d))
    assert find_profile("cpu-amd-epyc-2c") == d / "cpu-amd-epyc-2c.yaml"
    assert find_profile("my-box") == d / "other-name.yaml"  # by its hardware field
    assert find_profile("nothing-like-this") is None


def test_a_device_spec_beside_profiles_is_not_its_profile(tmp_path, monkeypatch):
    """README "Adding a device": a device file put straight in a $PLANNER_PATH folder
    (no hardware/ sub-folder) loads by name, and the lookup of calibration profiles in
    that folder does not take the device file ``<name>.yaml`` for its profile."""
    from planner.catalog import builtin_dir, load_hardware

    spec = yaml.safe_load((builtin_dir("hardware") / "l4.yaml").read_text(encoding="utf-8"))
    spec["name"] = "my-l4"
    spec.pop("aliases", None)
    (tmp_path / "my-l4.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("format: not-a-profile\nhardware: x\n", encoding="utf-8")
    monkeypatch.setenv("PLANNER_PATH", str(tmp_path))
    assert load_hardware("my-l4").memory_gb == spec["memory_gb"]
    assert find_profile("my-l4") is None
    assert resolve_efficiency(load_hardware("my-l4"), None) == (None, NO_PROFILE)
    with pytest.raises(InputError):   # a file that says it is a profile still fails loudly
        load_profile(find_profile("broken"))


def test_compare_flags_a_20_percent_slowdown():
    old = make_profile()
    f = copy.deepcopy(FITTED)
    f["peak_bandwidth"] *= 0.8
    f["kernel_overhead_s"] *= 1.05
    rows = {r["figure"]: r for r in compare_profiles(old, make_profile(fitted=f))}
    bw = rows["peak bandwidth"]
    assert bw["change"] == pytest.approx(-0.2) and bw["flagged"] and bw["verdict"] == "slower"
    assert rows["streaming B/s at 256 MiB"]["flagged"]
    ovh = rows["kernel overhead"]
    assert not ovh["flagged"] and ovh["verdict"] == "slower"
    assert not rows["peak FLOP/s fp32"]["flagged"] and rows["peak FLOP/s fp32"]["verdict"] == "same"


def test_compare_identical_flags_nothing():
    rows = compare_profiles(make_profile(), make_profile())
    assert rows and not any(r["flagged"] for r in rows)


def test_hardware_spec_is_valid_and_sourced(tmp_path):
    from planner.catalog import load_hardware

    spec = hardware_spec(fingerprint_name(DEVICE), DEVICE, FITTED, "2025-06-01T10:00:00+00:00")
    path = write_hardware_spec(tmp_path / "x.hardware.yaml", spec)
    hw = load_hardware(str(path))
    assert hw.name == "cpu-amd-epyc-2c" and hw.kind == "cpu"
    assert hw.peak_flops("fp32") == pytest.approx(1.6e11)
    assert hw.mem_bandwidth_gbps == pytest.approx(28.0)
    assert hw.unsourced_fields() == []
    for key in ("peak_tflops", "mem_bandwidth_gbps", "memory_gb"):
        assert "measured by planner calibrate on 2025-06-01" in hw.sources[key]
    for key in ("max_power_w", "price_per_hour_usd"):
        assert hw.sources[key].startswith("assumption:")


def test_fingerprint_names():
    assert fingerprint_name(DEVICE) == "cpu-amd-epyc-2c"
    assert fingerprint_name({"type": "cuda", "gpu_name": "NVIDIA H100 80GB HBM3"}) == "cuda-nvidia-h100-80gb-hbm3"


def test_a_fresh_profile_in_the_user_folder_wins_over_the_shipped_one(tmp_path, monkeypatch):
    """`planner calibrate` writes ~/.config/planner/calibration/<name>.yaml by default (issue
    13: never into the checkout or the package); the next command must find it there, not
    the profile shipped with the package, and a ./calibration folder is not searched."""
    monkeypatch.delenv("PLANNER_PATH", raising=False)
    monkeypatch.delenv("PLANNER_CALIBRATION_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    shipped = find_profile("cpu-amd-epyc-2c")
    assert shipped is not None and shipped.parent.name == "calibration"
    monkeypatch.chdir(tmp_path)
    write_profile(tmp_path / "calibration" / "cpu-amd-epyc-2c.yaml", make_profile())
    assert find_profile("cpu-amd-epyc-2c").resolve() == shipped.resolve()
    user = tmp_path / "config" / "planner" / "calibration" / "cpu-amd-epyc-2c.yaml"
    write_profile(user, make_profile())
    assert find_profile("cpu-amd-epyc-2c").resolve() == user.resolve()


def test_time_scale_is_recovered_from_reference_decoder_passes():
    """Measurements made 1.25x the profile's own prediction give a scale of 1.25, and a
    profile carrying it predicts exactly 1.25x the unscaled times."""
    from planner.calibrate.end_to_end import fit_time_scale, reference_model
    from planner.cost.api import estimate
    from planner.specs import Hardware

    hw = Hardware(**hardware_spec("box", DEVICE, FITTED, "2025-06-01T10:00:00+00:00"))
    eff = profile_to_efficiency(make_profile(), hw)
    m = reference_model()
    rows = []
    for phase, b, c in [("prefill", 1, 256), ("decode", 4, 1024), ("decode", 16, 256)]:
        r = estimate(m, hw, batch=b, prompt_len=c, gen_len=1, weight_dtype="fp32", act_dtype="fp32",
                     kv_dtype="fp32", efficiency=eff)
        t = r["prefill_s"] if phase == "prefill" else r["decode_s"]
        rows.append({"kind": "decoder", "dtype": "fp32", "phase": phase, "batch": b, "context": c, "seconds": 1.25 * t})
    scale, rms = fit_time_scale(FITTED, rows, hw)
    assert scale == pytest.approx(1.25, rel=1e-9) and rms == pytest.approx(0.0, abs=1e-9)
    f = copy.deepcopy(FITTED)
    f["time_scale"] = scale
    eff2 = profile_to_efficiency(make_profile(fitted=f), hw)
    for kw in (dict(batch=2, prompt_len=300, gen_len=40), dict(concurrency=8, prompt_len=300, gen_len=40)):
        a = estimate(m, hw, efficiency=eff, weight_dtype="fp32", act_dtype="fp32", kv_dtype="fp32", **kw)
        b = estimate(m, hw, efficiency=eff2, weight_dtype="fp32", act_dtype="fp32", kv_dtype="fp32", **kw)
        for key in ("prefill_s", "decode_s", "ttft_s", "tpot_s", "latency_s"):
            assert b[key] == pytest.approx(1.25 * a[key], rel=1e-9)


def test_bad_time_scale_rejected():
    d = make_profile().to_dict()
    d["fitted"]["time_scale"] = -1.0
    with pytest.raises(InputError) as e:
        profile_from_dict(d, "p.yaml")
    assert "fitted.time_scale" in str(e.value)


@pytest.mark.parametrize("tokens,field", [
    ({"fp32": {"peak_flops": 1.5e11, "e_max": 1.0, "m_half": -3.0}}, "fitted.gemm_tokens.fp32.m_half"),
    ({"fp32": {"peak_flops": 1.5e11, "e_max": 1.0, "m_half": 14.0, "rows_correction": {"8": "abc"}}},
     "fitted.gemm_tokens.fp32.rows_correction.8"),
    ({"fp32": {"peak_flops": 1.5e11, "e_max": 1.0, "m_half": 14.0, "rows_correction": {"0": 1.2}}},
     "fitted.gemm_tokens.fp32.rows_correction"),
    ({"fp32": "fast"}, "fitted.gemm_tokens.fp32"),
])
def test_bad_gemm_rows_model_rejected(tokens, field):
    d = make_profile().to_dict()
    d["fitted"]["gemm_tokens"] = tokens
    with pytest.raises(InputError) as e:
        profile_from_dict(d, "p.yaml")
    assert field in str(e.value)


def test_cli_reports_a_bad_profile_in_one_line(tmp_path, capsys):
    from planner.cli import main

    d = make_profile().to_dict()
    d["fitted"]["gemm_tokens"] = {"fp32": {"peak_flops": 1.5e11, "e_max": 1.0, "m_half": 14.0,
                                           "rows_correction": {"8": "abc"}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(d))
    rc = main(["estimate", "--model", "qwen3-0.6b", "--hardware", "h100-sxm", "--prompt-len", "10", "--gen-len", "10",
               "--calibration", str(tmp_path / "p.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "rows_correction.8" in err
