"""Every number in a shipped hardware, model, engine or calibration YAML has a source.

Two independent readings of each spec file (hardware/, models/, engines/ and the
measured device specs calibration/*.hardware.yaml): the raw YAML (every top-level key
holding a number, at any depth, has an entry in ``sources:``) and the loader's
``unsourced_fields``. Calibration profiles (calibration/*.yaml, calibration/serving/)
are measurement records: their source is their provenance, checked against the outside
world where it can be: the measured file's sha256 (../shared/data), and the peaks a
profile says it took from the spec equal the spec's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from planner.catalog import builtin_dir, load_hardware, load_model
from planner.engine_profiles import load_engine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
NOT_FACTS = {"sources", "version"}  # the sources themselves; a file-format version

SPECS = ([("hardware", p) for p in sorted(Path(builtin_dir("hardware")).glob("*.yaml"))]
         + [("hardware", p) for p in sorted(Path(builtin_dir("calibration")).glob("*.hardware.yaml"))]
         + [("model", p) for p in sorted(Path(builtin_dir("models")).glob("*.yaml"))]
         + [("engine", p) for p in sorted(Path(builtin_dir("engines")).glob("*.yaml"))])
# every YAML of calibration/ but device specs and the measured error of each prediction path
# (planner.fidelity; its sources are tests/test_fidelity.py's)
PROFILES = sorted(p for p in Path(builtin_dir("calibration")).rglob("*.yaml")
                  if not p.name.endswith(".hardware.yaml") and p.name != "serving-fidelity.yaml")
LOADERS = {"hardware": load_hardware, "model": load_model, "engine": load_engine}


def _number_keys(doc: dict, not_facts: set[str] = NOT_FACTS) -> set[str]:
    """The top-level keys under which the document holds a number (booleans are not),
    less ``not_facts``. Also used by tests/test_task_sources.py."""
    def has_number(v) -> bool:
        if isinstance(v, bool):
            return False
        if isinstance(v, (int, float)):
            return True
        if isinstance(v, dict):
            return any(has_number(c) for c in v.values())
        return isinstance(v, list) and any(has_number(c) for c in v)

    return {k for k, v in doc.items() if has_number(v)} - not_facts


def test_every_family_is_found():
    kinds = {k for k, _ in SPECS}
    assert kinds == set(LOADERS) and len(SPECS) >= 60
    assert any(p.name.endswith(".hardware.yaml") for _, p in SPECS)
    assert PROFILES and any(p.parent.name == "serving" for p in PROFILES)


@pytest.mark.parametrize("kind,path", SPECS, ids=[f"{k}:{p.name}" for k, p in SPECS])
def test_every_number_in_a_spec_has_a_source(kind, path):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    sources = doc.get("sources") or {}
    assert not _number_keys(doc) - set(sources), path
    assert all(isinstance(t, str) and t.strip() for t in sources.values()), path
    spec = LOADERS[kind](str(path))
    assert spec.unsourced_fields() == []
    assert set(sources) <= set(type(spec).model_fields), path  # no typo'd source keys


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_a_calibration_profile_says_where_its_numbers_come_from(path):
    prof = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert prof["format"] == "planner-calibration" and prof["date"] and prof["device"]
    fitted = prof["fitted"]
    serving = fitted.get("serving")
    if serving is None:  # microbenchmarks: the raw measurements the fit is taken from
        assert prof["measurements"] and prof["torch_version"]
        assert all(m["seconds"] > 0 and m["kind"] for m in prof["measurements"])
    else:  # fitted on measured serving runs: the file, its digest, how
        pv = serving["provenance"]
        assert pv["rows"] > 0 and pv["how"].startswith("planner calibrate --from-measured")
        data = DATA / pv["file"]
        if data.is_file():
            assert hashlib.sha256(data.read_bytes()).hexdigest() == pv["sha256"]
    if fitted.get("peaks_from") == "spec":  # the peaks are the device spec's, to the digit
        hw = load_hardware(prof["hardware"])
        assert set(fitted["peak_flops"]) == set(hw.peak_tflops)
        for dt, flops in fitted["peak_flops"].items():
            assert flops == pytest.approx(hw.peak_tflops[dt] * 1e12, rel=1e-12)
        assert fitted["peak_bandwidth"] == pytest.approx(hw.mem_bandwidth_gbps * 1e9, rel=1e-12)
