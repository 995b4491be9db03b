"""Numbers in exponent form are numbers in every YAML file (YAML 1.2 core schema).

PyYAML resolves YAML 1.1, where a float needs a dot and a signed exponent: ``1e-3``,
``1E5``, ``-2e+3`` and ``1.5e3`` were read as TEXT, so ``range_ratio: 1e-3`` was refused
as "must be a number" while other fields converted the text. The one loader every input
goes through (planner.safeload.loads_yaml) reads them as floats. Oracles: Python's own
``float(text)``; the same file written with the decimal spelling; every shipped YAML
parsed by PyYAML's plain safe loader (the change adds numbers, never alters one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.cli import main
from planner.errors import InputError
from planner.safeload import MAX_ABS_NUMBER, loads_yaml, yaml_loader

ROOT = Path(__file__).resolve().parent.parent

digits = st.text("0123456789", min_size=1, max_size=6)


@st.composite
def exponent_text(draw):
    """A YAML 1.2 float in exponent form that YAML 1.1 reads as text: no dot, or a dot with
    an unsigned exponent; optional sign; 'e' or 'E'."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    mantissa = draw(st.one_of(digits, st.builds(lambda a, b: f"{a}.{b}", digits, st.text("0123456789", max_size=4)),
                              st.builds(lambda b: f".{b}", digits)))
    dot = "." in mantissa
    esign = draw(st.sampled_from([""] if dot else ["", "-", "+"]))
    exp = draw(st.integers(0, 400))
    return f"{sign}{mantissa}{draw(st.sampled_from('eE'))}{esign}{exp}"


@settings(max_examples=300, deadline=None)
@given(exponent_text())
def test_exponent_form_is_a_float(text):
    """Equal to float(text); beyond the readers' magnitude limit (an overflow to inf
    included) a one-line error naming the field, as for any other number."""
    assert isinstance(yaml.safe_load(f"x: {text}")["x"], str)  # YAML 1.1: text
    want = float(text)
    if abs(want) > MAX_ABS_NUMBER:
        with pytest.raises(InputError, match="field 'x'"):
            loads_yaml(f"x: {text}\n", "f.yaml")
        return
    got = loads_yaml(f"x: {text}\ny: [{text}]\n", "f.yaml")
    assert type(got["x"]) is float and got["x"] == want and got["y"] == [want]


@pytest.mark.parametrize("text", ["1e", "e3", "1e3.5", "1_0e3", "1e-3x", "'1e-3'", "\"1E5\""])
def test_not_a_number_stays_text(text):
    assert isinstance(loads_yaml(f"x: {text}", "f.yaml")["x"], str)


def test_plain_yaml_loaders_are_left_alone():
    loads_yaml("x: 1e-3", "f.yaml")
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}
    assert yaml.load("x: 1e-3", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == {"x": "1e-3"}


def test_shipped_yaml_reads_as_before():
    """Every shipped YAML file parses to the same objects (same types) as PyYAML's safe
    loader reads it: the exponent rule changes no shipped value."""
    files = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    assert len(files) > 50
    for f in files:
        text = (ROOT / f).read_text(encoding="utf-8-sig")
        assert repr(yaml.load(text, Loader=yaml_loader())) == repr(yaml.safe_load(text)), f


CHECK = """checks:
  - name: spread
    estimate: {{model: llama-3.1-8b, hardware: h100-sxm, concurrency: 16, engine: vllm, arrival: closed,
               prompt_len: 1024, gen_len: 1024, range_ratio: {r}, rate: {rate}}}
    track: [tpot_s, latency_s]
"""


def _snapshot(tmp_path, capsys, name, **values):
    f = tmp_path / f"{name}.yaml"
    f.write_text(CHECK.format(**values))
    base = tmp_path / f"{name}-base.yaml"
    assert main(["check", str(f), "--baseline", str(base), "--update-baseline"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return base.read_text()


def test_checks_file_takes_exponent_form(tmp_path, capsys):
    """``range_ratio: 8e-1`` (refused before as "must be a number from 0 to 1") and
    ``rate: 0e0`` cost what ``0.8`` and ``0.0`` cost."""
    assert _snapshot(tmp_path, capsys, "exp", r="8e-1", rate="0e0") == \
        _snapshot(tmp_path, capsys, "dec", r="0.8", rate="0.0")


CAP = """name: spread
traffic: {{requests_per_s: {rps}, prompt_len: 1024, gen_len: 256, range_ratio: {r}}}
slo: {{ttft_s: 2e0}}
models: [qwen3-8b]
hardware: [h100-sxm]
"""


def test_capacity_file_takes_exponent_form(tmp_path):
    from planner.capacity import load_scenario

    scns = []
    for name, r, rps in (("exp", "1e-3", "5E0"), ("dec", "0.001", "5.0")):
        f = tmp_path / f"{name}.yaml"
        f.write_text(CAP.format(r=r, rps=rps))
        scns.append(load_scenario(str(f))[0])
    assert scns[0] == scns[1]
    assert scns[0].traffic.range_ratio == 0.001
