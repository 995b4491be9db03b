"""Aliases: Hugging Face ids and the measured data's system names resolve to catalog
entries wherever a name is taken; every model_path and system of the dev file but one
(a hybrid linear-attention model the descriptor cannot express) resolves."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from planner.catalog import all_hardware, all_models, load_hardware, load_model
from planner.cli import main

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "serving-measured-hopper-dev.csv"


@pytest.mark.parametrize("alias, name", [
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"), ("nvidia/Llama-3.1-8B-Instruct-FP8", "llama-3.1-8b"),
    ("Qwen/Qwen3-235B-A22B-FP8", "qwen3-235b-a22b"), ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),
    ("openai/gpt-oss-120b", "gpt-oss-120b"), ("MiniMaxAI/MiniMax-M2.5", "minimax-m2.5"),
    ("moonshotai/Kimi-K2.5", "kimi-k2.5"), ("zhipuai/GLM-5", "glm-5"), ("QWEN/qwen3-32b", "qwen3-32b"),
])
def test_model_aliases(alias, name):
    assert load_model(alias).name == name


# the system names of NVIDIA aiconfigurator (ai-dynamo/aiconfigurator: its systems/*.yaml and
# the GPU -> system map of its Dynamo integration: h100_sxm, h200_sxm, b200_sxm, gb200_sxm,
# a100_sxm, l40s, h100_pcie), which the measured files' `system` column carries
@pytest.mark.parametrize("alias, name", [
    ("h100_sxm", "h100-sxm"), ("h200_sxm", "h200"), ("b200_sxm", "b200"), ("gb200", "gb200"),
    ("gb200_sxm", "gb200"), ("b300_sxm", "b300"), ("gb300", "gb300"), ("gb300_sxm", "gb300"),
    ("H100_SXM", "h100-sxm"), ("a100_sxm", "a100-sxm-80gb"), ("l40s", "l40s"), ("h100_pcie", "h100-pcie"),
])
def test_hardware_aliases(alias, name):
    assert load_hardware(alias).name == name


def test_aliases_are_unique_across_the_catalog():
    seen = {}
    for spec in [*all_models(), *all_hardware()]:
        for a in [spec.name, *spec.aliases]:
            key = a.lower().replace("_", "-")
            assert seen.setdefault(key, spec.name) == spec.name, f"{a} names {seen[key]} and {spec.name}"


def test_estimate_takes_an_alias(capsys):
    assert main(["estimate", "-m", "meta-llama/Llama-3.1-8B-Instruct", "-H", "h100_sxm", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"model": "llama-3.1-8b"' in out and '"hardware": "h100-sxm"' in out


def test_unknown_name_still_one_line(capsys):
    assert main(["estimate", "-m", "nobody/NoSuchModel", "--json"]) == 2
    err = capsys.readouterr().err
    assert "unknown model" in err and len(err.strip().splitlines()) == 1


def test_blackwell_ultra_is_faster_at_fp4_than_b200():
    b200, b300, gb300 = load_hardware("b200"), load_hardware("b300"), load_hardware("gb300")
    assert b300.peak_flops("fp4") > b200.peak_flops("fp4") and gb300.peak_flops("fp4") > b300.peak_flops("fp4")
    assert b300.memory_gb > b200.memory_gb and gb300.max_devices == 72


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_dev_file_names_resolve():
    with DEV.open() as fh:
        rows = list(csv.DictReader(fh))
    for system in {r["system"] for r in rows}:
        load_hardware(system)
    unresolved = set()
    for m in {r["model_path"] for r in rows}:
        try:
            load_model(m)
        except ValueError:
            unresolved.add(m)
    assert unresolved == set()  # Qwen3.5-397B-A17B too, with its linear-attention layers
