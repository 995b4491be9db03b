"""The part of a request's overhead that grows with the model's depth (planner.serving_params
``request_overhead_s_per_kernel``; planner.cost.waves.request_overhead_s): recovered by the
fit beside the constant part, added once to TTFT of aggregated and disaggregated rows alike
(TPOT untouched), and the kernels of one pass counted from the models' published configs."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from test_measured_fit import TRUE, synthetic

from planner import serving_params as SP
from planner.catalog import load_hardware, load_model
from planner.cost.api import estimate
from planner.cost.context import kernels_per_pass
from planner.cost.tables import ModelTable
from planner.engine_profiles import load_engine
from planner.measured import read_measured
from planner.replay import Prepared
from planner.serving_fit import fit_all
from planner.serving_profile import load_serving

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "serving-measured-hopper-dev.csv"
PER_KERNEL_S = 8e-5


@pytest.mark.parametrize("per_kernel_s", [PER_KERNEL_S, 0.0])
def test_fit_tells_the_per_kernel_part_from_the_constant(tmp_path, per_kernel_s):
    """Synthetic runs of two models of different depth (Llama-3.1-8B, 32 layers; Qwen3-32B,
    64) under a known constant and per-kernel overhead: the fit gives both back, and a
    per-kernel part of zero back as zero (no depth term the data does not hold)."""
    truth = {**TRUE, "request_overhead_s": 0.02, "request_overhead_s_per_kernel": per_kernel_s}
    f = fit_all(read_measured(synthetic(tmp_path, truth)))["h100-sxm/vllm"]
    assert f.values["request_overhead_s"] == pytest.approx(0.02, rel=0.05)
    assert f.values["request_overhead_s_per_kernel"] == pytest.approx(per_kernel_s, rel=0.05, abs=1e-7)
    assert f.rms_log_ttft < 1e-3


def test_kernels_of_one_pass_from_the_published_layer_counts():
    """Llama-3.1-8B: 32 dense layers (config.json num_hidden_layers); DeepSeek-V3: 61 layers of
    which the first 3 dense (first_k_dense_replace), so 58 MoE layers: 8 kernels a layer, 4
    more a MoE layer, 2 for the embedding and LM head (planner.cost.context)."""
    mt = ModelTable.build([load_model("llama-3.1-8b"), load_model("deepseek-v3")])
    assert kernels_per_pass(mt.cols).tolist() == [32 * 8 + 2, 61 * 8 + 58 * 4 + 2]


@pytest.mark.parametrize("model, layers_moe", [("llama-3.1-8b", (32, 0)), ("qwen3-235b-a22b", (94, 94))])
def test_a_closed_loop_ttft_pays_it_once_tpot_not(model, layers_moe):
    """The same closed loop under a profile with and without the per-kernel part: TTFT grows by
    exactly the part times the kernels of one pass, TPOT does not move."""
    h200, vllm = load_hardware("h200"), load_engine("vllm")
    base = {**SP.defaults(h200, vllm), "wave_sync": 0.0, "request_overhead_s": 0.05}
    kw = dict(devices=8, concurrency=16, prompt_len=1024, gen_len=256, engine=vllm, arrival="closed")
    plain = estimate(model, h200, serving=base, **kw)
    paid = estimate(model, h200, serving={**base, "request_overhead_s_per_kernel": PER_KERNEL_S}, **kw)
    layers, moe = layers_moe
    assert paid["ttft_s"] - plain["ttft_s"] == pytest.approx(PER_KERNEL_S * (8 * layers + 4 * moe + 2), rel=1e-6)
    assert paid["tpot_s"] == pytest.approx(plain["tpot_s"], rel=1e-9)


@pytest.fixture(scope="module")
def dev_subset(tmp_path_factory):
    """Dev rows of each kind: aggregated dense and MoE, disaggregated with and without
    worker counts (the first 40 of each model and mode)."""
    with open(DEV, newline="") as f:
        reader = csv.DictReader(f)
        rows, seen = [], {}
        for r in reader:
            key = (r["model_path"], r["mode"], r["decode_num_workers"] == "")
            if seen.get(key, 0) < 40:
                seen[key] = seen.get(key, 0) + 1
                rows.append(r)
    path = tmp_path_factory.mktemp("dev") / "subset.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return Prepared(read_measured(str(path)))


def test_every_replayed_row_pays_it_once_aggregated_or_not(dev_subset):
    """On dev rows replayed under the shipped profiles with and without a per-kernel part:
    every predicted row's TTFT grows by the part times its model's kernels of one pass
    (disaggregated rows too: the prefill worker's pass is the model's), TPOT is unchanged."""
    prep = dev_subset
    assert prep.dis.any() and (~prep.dis).any()
    sets = dict(zip(prep.gnames, prep.parameter_sets(load_serving())))
    zero = {g: (n, {**v, "request_overhead_s_per_kernel": 0.0}) for g, (n, v) in sets.items()}
    paid = {g: (n, {**v, "request_overhead_s_per_kernel": PER_KERNEL_S}) for g, (n, v) in sets.items()}
    a, b = prep.run(zero), prep.run(paid)
    ok = np.isfinite(a.ttft_s)
    assert ok.sum() == prep.idx.size
    models = [load_model(m) for m in sorted(set(prep.model[prep.idx].tolist()))]
    kernels = dict(zip((m.name for m in models), kernels_per_pass(ModelTable.build(models).cols)))
    expect = np.array([PER_KERNEL_S * kernels[prep.model[i]] for i in prep.idx])
    np.testing.assert_allclose(b.ttft_s[prep.idx] - a.ttft_s[prep.idx], expect, rtol=1e-6)
    np.testing.assert_allclose(b.tpot_s[ok], a.tpot_s[ok], rtol=1e-12)


@pytest.mark.parametrize("value, why", [("-1e-05", "cannot be negative"), ("0.5", "more than 1 ms per kernel"),
                                        ("abc", "must be a number")])
def test_a_bad_value_in_a_users_profile_is_one_line_naming_file_field_value(tmp_path, monkeypatch, capsys, value, why):
    """A serving profile in the user's calibration folder with the part out of range or not a
    number: exit 2 and one line naming the file, the field and the value."""
    from planner.catalog import builtin_dir
    from planner.cli import main

    text = (builtin_dir("calibration") / "serving" / "h200.vllm.yaml").read_text()
    fitted = re.search(r"request_overhead_s_per_kernel: ([0-9.e+-]+)", text).group(1)
    (tmp_path / "serving").mkdir()
    bad = tmp_path / "serving" / "h200.vllm.yaml"
    bad.write_text(text.replace(f"request_overhead_s_per_kernel: {fitted}", f"request_overhead_s_per_kernel: {value}"))
    monkeypatch.setenv("PLANNER_CALIBRATION_DIR", str(tmp_path))
    capsys.readouterr()
    rc = main(["estimate", "--model", "llama-3.1-8b", "--hardware", "h200", "--engine", "vllm", "--concurrency", "8"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert str(bad) in err and "request_overhead_s_per_kernel" in err and value in err and why in err
