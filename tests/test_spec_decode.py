"""Speculative decoding with DeepSeek's MTP module (planner.cost.spec_decode) and the
row facts that carry it (planner.measured: spec_decode_tokens, kv_cache_dtype).

Oracles: a Monte-Carlo draw of the acceptance process (tokens per step), the plain step
(no drafts: the same number, bit for bit), the bound that drafts cannot gain more than
``tau`` per iteration, and the dev file's DeepSeek-R1 "twins": TensorRT-LLM H200
disaggregated runs measured twice at the same engine, version, layout and concurrency,
once with MTP (3 drafts) and once without (the InferenceMAX dynamo-trt sweep runs both
at these concurrencies), whose slow twin the plain prediction and whose fast twin the
MTP prediction must each come near.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.spec_decode import tokens_per_step
from planner.cost.steps import step_time
from planner.cost.tables import HardwareTable, ModelTable
from planner.errors import InputError
from planner.harness import resolve_kv_dtype
from planner.measured import kv_cache_dtype, read_measured
from planner.replay import predict
from planner.serving_profile import load_serving

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "serving-measured-hopper-dev.csv"


def test_tokens_per_step_matches_a_draw_of_the_acceptance_process():
    rng = np.random.default_rng(7)
    for m, a in ((1, 0.7), (3, 0.7), (3, 0.9), (7, 0.5), (2, 0.0)):
        # each draft position accepted with probability a until the first miss; one token from the model after
        ok = rng.random((200_000, m)) < a
        accepted = np.where(ok.all(axis=1), m, np.argmin(ok, axis=1))
        assert tokens_per_step(m, a) == pytest.approx(1.0 + accepted.mean(), rel=0.01)
    assert tokens_per_step(0, 0.9) == 1.0 and tokens_per_step(3, 1.0) == 4.0


def test_the_shipped_acceptance_gives_the_published_mean_accepted_length():
    # nebius/MTP-DeepSeek-V3-0324 card: the original MTP module, 7 drafts: tau 3.20 (T=0), 3.09 (T=1)
    from planner.engine_profiles import load_engine

    for engine in ("trtllm", "sglang"):
        assert 3.09 - 0.1 <= tokens_per_step(7, load_engine(engine).spec_acceptance) <= 3.20 + 0.1


def _ctx(spec_tokens, spec_accept, devices=8, ep=8, concurrency=4):
    m, h = load_model("deepseek-r1"), load_hardware("h200")
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=concurrency, prompt_len=1024,
                   gen_len=1024, samples=1, weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", kv_budget=0,
                   prefix_sharing=False, ep=ep, spec_tokens=spec_tokens, spec_accept=spec_accept)
    return Ctx(cols, ModelTable.build([m]), HardwareTable.build([h]))


def _one(v) -> float:
    return float(np.asarray(v).reshape(-1)[0])


def test_no_drafts_is_the_plain_step_exactly():
    plain, zero = _ctx(0, 0.0), _ctx(0, 0.7)
    assert not zero.spec
    for d, p, ctx in ((1.0, 0.0, 1500.0), (64.0, 0.0, 3000.0), (8.0, 512.0, 2000.0)):
        assert step_time(zero, d, p, d, ctx, 256.0, 1e-3) == step_time(plain, d, p, d, ctx, 256.0, 1e-3)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 4), a=st.floats(0.0, 1.0), d=st.sampled_from([1.0, 4.0, 32.0, 256.0]),
       ctx=st.floats(100.0, 20000.0))
def test_drafts_gain_at_most_tau_and_cost_something(m, a, d, ctx):
    plain = _one(step_time(_ctx(0, 0.0), d, 0.0, d, ctx, 0.0, 1e-3))
    spec = _one(step_time(_ctx(m, a), d, 0.0, d, ctx, 0.0, 1e-3))
    tau = tokens_per_step(m, a)
    # the iteration (drafts + verification of d (1 + m) rows) is never cheaper than a plain step
    assert spec * tau >= plain * (1.0 - 1e-9)
    if a == 0.0:  # nothing accepted: pure overhead
        assert spec > plain


def test_more_drafts_cost_more_per_iteration():
    d, ctx = 16.0, 2048.0
    its = [_one(step_time(_ctx(m, 1.0), d, 0.0, d, ctx, 0.0, 0.0)) * (m + 1) for m in range(4)]
    assert all(b > a for a, b in zip(its, its[1:]))


# --- the dev file's twins ---------------------------------------------------------------

# (isl, osl, total concurrency): TensorRT-LLM 0.8.1.post1, H200, decode tp 8 x ep 8, measured
# with and without MTP (benchmarks/dsr1_decode_bound.py lists them)
TWINS = ((8192, 1024, 9), (8192, 1024, 28), (1024, 1024, 144))


def _twin_rows(tmp_path, drafts):
    rows = [r for r in csv.DictReader(DEV.open()) if r["model_path"] == "deepseek-ai/DeepSeek-R1"
            and r["backend"] == "trtllm" and r["system"] == "h200_sxm" and r["mode"] == "disagg"]
    keep = []
    for r in rows:
        c = int(r["silicon_data_source"].split("silicon_concurrency=")[1].split(";")[0])
        if (int(r["isl"]), int(r["osl"]), c) in TWINS:
            keep.append({**r, "spec_decode_tokens": str(drafts)})
    path = tmp_path / f"twins{drafts}.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(keep[0]))
        w.writeheader()
        w.writerows(keep)
    return read_measured(path)


@pytest.mark.skipif(not DEV.exists(), reason="needs the dev measurements")
def test_the_twins_are_the_plain_and_the_mtp_prediction(tmp_path):
    plain, mtp = _twin_rows(tmp_path, 0), _twin_rows(tmp_path, 3)
    shipped = load_serving(None)  # the shipped fitted profiles (what validate --measured uses)
    p0, p3 = predict(plain, shipped), predict(mtp, shipped)
    assert (p0.status == "ok").all() and (p3.status == "ok").all()
    meas = plain.measured_tpot_s
    groups = {}
    for i in range(len(plain)):
        c = plain.total_concurrency[i]
        groups.setdefault((plain.isl[i], c), []).append(i)
    assert len(groups) == len(TWINS)
    for key, idx in groups.items():
        idx = np.array(idx)
        slow, fast = idx[np.argmax(meas[idx])], idx[np.argmin(meas[idx])]
        assert meas[slow] / meas[fast] > 1.5  # a twin: the same facts, TPOT apart
        # the plain prediction is the slow twin's, the 3-draft MTP one the fast twin's
        assert abs(p0.tpot_s[slow] / meas[slow] - 1.0) < 0.25, key
        assert abs(p3.tpot_s[fast] / meas[fast] - 1.0) < 0.25, key
        assert p3.tpot_s[fast] < p0.tpot_s[slow]
        # and the predicted gain within 15% of the measured one
        gain, measured_gain = p0.tpot_s[slow] / p3.tpot_s[fast], meas[slow] / meas[fast]
        assert abs(gain / measured_gain - 1.0) < 0.15, key


# --- row facts --------------------------------------------------------------------------

HARNESS = "source_file=2026-03-25.csv; model=X; silicon_concurrency=8; wip=False; image=y"


def test_the_harness_kv_dtype_is_fp8_for_tensorrt_llm_fp8_and_blackwell_fp4_launches():
    assert kv_cache_dtype("", HARNESS, "trtllm", "fp8") == "fp8"
    assert kv_cache_dtype("", HARNESS, "trtllm", "fp8_block") == "fp8"
    # fp4 launches: fp8 on parts with fp4 units (dsr1_fp4_b200_trt.sh, gptoss_fp4_b200_trt.sh), auto
    # on Hopper (gptoss_fp4_h200_trt.sh): the device decides, in the replay (None: resolve_kv_dtype)
    assert kv_cache_dtype("", HARNESS, "trtllm", "nvfp4") is None
    assert resolve_kv_dtype("", True, blackwell=True) == "fp8"
    assert resolve_kv_dtype("", True, blackwell=False) == ""        # Hopper: the engine's default
    assert resolve_kv_dtype("bf16", False, blackwell=True) == "bf16"  # not the harness's fp4 launch
    assert kv_cache_dtype("", HARNESS, "sglang", "fp8") == ""        # no --kv-cache-dtype
    assert kv_cache_dtype("", "db-dump; config_id=3", "trtllm", "fp8") == ""  # not the harness
    assert kv_cache_dtype("bf16", HARNESS, "trtllm", "fp8") == "bf16"          # the row's own column wins
    assert kv_cache_dtype("FP8_E4M3", "", "vllm", "bf16") == "fp8"
    assert kv_cache_dtype("auto", HARNESS, "trtllm", "fp8") == ""


def test_a_harness_fp4_launch_caches_fp8_where_the_gpu_computes_fp4(tmp_path):
    """The same TensorRT-LLM fp4 harness row: on B200 it replays as with an explicit fp8 KV
    cache, on H200 (weight-only fp4) as with the engine's default."""
    f = tmp_path / "runs.csv"
    rows = [f"deepseek-ai/DeepSeek-R1,{s},trtllm,fp4,agg,1024,8192,64,4,,,{kv},{HARNESS}"
            for s in ("b200_sxm", "h200_sxm") for kv in ("", "fp8", "auto")]
    f.write_text(HEADER + ",kv_cache_dtype,silicon_data_source\n" + "\n".join(rows) + "\n")
    pred = predict(read_measured(f))
    assert (pred.status == "ok").all(), pred.status
    t = pred.tpot_s
    assert t[0] == t[1] != t[2] and t[3] == t[5] != t[4]


HEADER = "model_path,system,backend,precision,mode,isl,osl,batch_size,tp_size,silicon_ttft_ms,silicon_tpot_ms"


def test_the_columns_are_read_and_checked(tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text(HEADER + ",kv_cache_dtype,spec_decode_tokens\n"
                 "deepseek-ai/DeepSeek-R1,h200_sxm,trtllm,fp8,agg,1024,1024,4,8,,,fp8,3\n"
                 "deepseek-ai/DeepSeek-R1,h200_sxm,trtllm,fp8,agg,1024,1024,4,8,,,,\n")
    runs = read_measured(f)
    assert runs.kv_dtype.tolist() == ["fp8", ""] and runs.spec_tokens.tolist() == [3.0, 0.0]
    pred = predict(runs)
    assert (pred.status == "ok").all() and pred.tpot_s[0] < pred.tpot_s[1]
    for column, value in (("kv_cache_dtype", "int3"), ("spec_decode_tokens", "1.5"), ("spec_decode_tokens", "-1")):
        g = tmp_path / "bad.csv"
        g.write_text(HEADER + f",{column}\n" + "deepseek-ai/DeepSeek-R1,h200_sxm,trtllm,fp8,agg,1024,1024,4,8,,,"
                     + value + "\n")
        with pytest.raises(InputError) as e:
            read_measured(g)
        assert column in str(e.value) and "line 2" in str(e.value)


# --- estimate --spec-tokens ---------------------------------------------------------------

def _estimate_tpot(capsys, *extra):
    import json

    from planner.cli import main

    args = ["estimate", "-m", "deepseek-r1", "-H", "h200", "--devices", "8", "--ep", "8", "--weight-dtype", "fp8",
            "--act-dtype", "fp8", "--engine", "trtllm", "--prompt-len", "1024", "--gen-len", "1024", "--json", *extra]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_estimate_takes_mtp_drafts_in_the_closed_loop(capsys):
    base = ["--arrival", "closed", "--concurrency", "8"]
    plain = _estimate_tpot(capsys, *base)
    one, three = (_estimate_tpot(capsys, *base, "--spec-tokens", s) for s in ("1", "3"))
    assert three["tpot_s"] < one["tpot_s"] < plain["tpot_s"]
    assert three["config"]["spec_tokens"] == 3 and three["config"]["spec_accept"] == pytest.approx(0.70)
    # the gain is less than the tokens per step: the drafts and the wider verification cost something
    assert plain["tpot_s"] / three["tpot_s"] < tokens_per_step(3, 0.70)


@pytest.mark.parametrize("extra", [["--spec-tokens", "3"],  # steady state: not the scheduler model
                                   ["--arrival", "closed", "--concurrency", "4", "--spec-tokens", "-1"],
                                   ["--arrival", "closed", "--concurrency", "4", "--spec-tokens", "2", "--simulate"],
                                   ["--concurrency", "4", "--prefill-workers", "1", "--decode-workers", "1",
                                    "--spec-tokens", "1"]])
def test_estimate_refuses_what_it_cannot_cost(capsys, extra):
    from planner.cli import main

    assert main(["estimate", "-m", "deepseek-r1", "-H", "h200", "--devices", "8", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "spec" in err and "Traceback" not in err
