"""The Python API: the scalar fast path equals the vectorized engine, names / paths /
specs resolve to the same answer, the README example prints what the README shows, and
`import planner` stays light."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import planner
from planner.catalog import all_hardware, all_models, builtin_dir
from planner.cost.engine import evaluate, evaluate_one
from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable
from planner.errors import InputError

ROOT = Path(__file__).resolve().parent.parent


def _random_rows(n, n_models, n_hw, seed):
    rng = np.random.default_rng(seed)
    pick = lambda xs: rng.choice(xs, n)  # noqa: E731
    return {
        "model": rng.integers(0, n_models, n), "hardware": rng.integers(0, n_hw, n),
        "devices": pick([1, 2, 4, 8]).astype(float), "batch": pick([1, 3, 16, 64]).astype(float),
        "concurrency": np.where(rng.random(n) < 0.4, pick([1, 8, 100]), 0).astype(float),
        "prompt_len": pick([1, 150, 1024, 9000]).astype(float), "gen_len": pick([1, 7, 1024, 8000]).astype(float),
        "samples": pick([1, 4, 16]).astype(float),
        "weight_dtype": pick([DTYPE_CODE[d] for d in ("bf16", "fp8", "int8", "int4", "fp4")]),
        "act_dtype": pick([DTYPE_CODE[d] for d in ("bf16", "fp8", "fp32")]),
        "kv_dtype": pick([DTYPE_CODE[d] for d in ("bf16", "fp8")]),
        "kv_budget": pick([0, 0, 256, 4096]).astype(float), "prefix_sharing": rng.random(n) < 0.7,
    }


@pytest.mark.parametrize("calibrated", [False, True])
def test_scalar_path_equals_vectorized_engine(calibrated):
    """Random configurations over every model and device (serving and static, sparse,
    every weight dtype; with a calibration profile's curves, row corrections and overlap):
    the Python-float path gives the vectorized path's numbers to rtol 1e-9."""
    models, hardware = all_models(), all_hardware()
    effs = None
    if calibrated:
        from planner.calibrate.apply import profile_to_efficiency
        from planner.calibrate.profile import load_profile

        prof = load_profile(str(ROOT / "calibration" / "cpu-amd-epyc-2c.yaml"))
        effs = [profile_to_efficiency(prof, h) for h in hardware]
    mt, ht = ModelTable.build(models), HardwareTable.build(hardware, effs)
    cols = _random_rows(600, len(models), len(hardware), seed=11 + calibrated)
    out = evaluate(cols, mt, ht)
    checked = 0
    for i in range(600):
        if not np.isfinite(out["latency_s"][i]):
            continue  # a dtype the device lacks: the API rejects it before the engine
        row = {k: v[i].item() for k, v in cols.items()}
        one = evaluate_one(row, mt, ht)
        assert set(one) == set(out)
        for key, value in one.items():
            assert value == pytest.approx(out[key][i].item(), rel=1e-9, abs=0.0), (i, key)
        checked += 1
    assert checked > 300


def test_names_paths_and_specs_give_the_same_estimate():
    kw = dict(prompt_len=512, gen_len=64, batch=4)
    by_name = planner.estimate(model="qwen3-8b", hardware="h100-sxm", **kw)
    by_path = planner.estimate(model=str(builtin_dir("models") / "qwen3-8b.yaml"),
                               hardware=str(builtin_dir("hardware") / "h100-sxm.yaml"), **kw)
    by_spec = planner.estimate(model=planner.load_model("qwen3-8b"), hardware=planner.load_hardware("h100-sxm"), **kw)
    assert by_name == by_path == by_spec
    assert planner.estimate(**kw) == by_name  # the CLI's default model and device


def test_api_estimate_matches_the_cli_json():
    import json

    from planner.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["estimate", "--model", "llama-3.1-8b", "--concurrency", "8", "--json"]) == 0
    cli = json.loads(buf.getvalue())
    api = planner.estimate(model="llama-3.1-8b", concurrency=8)
    for key in ("ttft_s", "tpot_s", "latency_s", "energy_j", "cost_usd"):
        assert cli[key] == pytest.approx(api[key], rel=1e-12)


def test_api_bad_input_names_the_field():
    with pytest.raises(InputError, match="batch"):
        planner.estimate(model="qwen3-8b", batch=0)
    with pytest.raises(InputError, match="model"):
        planner.estimate(model="no-such-model")
    with pytest.raises(InputError, match="act-dtype"):
        planner.estimate(model="qwen3-8b", hardware="h100-sxm", act_dtype="fp4")


def test_readme_python_api_example_prints_what_the_readme_shows():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):text.index("## How the cost model works")]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)
    code = next(body for lang, body in blocks if lang == "python")
    shown = next(body for lang, body in blocks if lang == "")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "README.md", "exec"), {})
    assert buf.getvalue() == shown


def test_predict_accuracy_and_fit():
    """pass@k never falls as k grows; a fit recovers the eval log's pass@1."""
    accs = [planner.predict_accuracy("qwen3-8b/aime24", "pass@k", samples=k, gen_len=8192) for k in (1, 4, 16)]
    assert all(isinstance(a, float) for a in accs) and accs[0] <= accs[1] <= accs[2] <= 1.0
    res = planner.fit(ROOT / "examples" / "eval_synthetic.jsonl", model="m", task="t")
    assert 0.0 < res.summary()["pass_at_1"] < 1.0


def test_recommend_through_the_api_matches_the_scenario_answer():
    from planner.recommend import run
    from planner.specs import RecommendScenario

    fields = dict(task="aime24", hardware=["h100-sxm"], models=["qwen3-0.6b"], max_usd=0.01, top=3)
    # the built-in default scenario (examples/default_scenario.yaml) names the engine vLLM; fields override it
    default = planner.recommend(**fields)
    assert default["recommendations"] == run(RecommendScenario(**fields, engine="vllm"))["recommendations"]
    # a dict scenario replaces the default one: nothing of it (its engine included) is taken
    bare = planner.recommend({}, **fields)
    assert bare["recommendations"] == run(RecommendScenario(**fields))["recommendations"]
    assert bare["recommendations"] != default["recommendations"]  # the engine changes the answer


def test_import_planner_is_light():
    code = ("import sys, planner; heavy = [m for m in ('numpy', 'pydantic', 'scipy', 'torch') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_py_typed_ships():
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in cfg["tool"]["setuptools"]["package-data"]["planner"]
    assert (ROOT / "planner" / "py.typed").is_file()
