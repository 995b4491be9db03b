"""planner validate --measured: the CSV reader, the vectorized replay and its scoring.

Oracles: the single-configuration API (planner.cost.api.estimate) for the replay's
numbers, hand-made CSVs for the schema rules, and the dev file's own row counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from planner.cli import main
from planner.measured import read_measured
from planner.replay import Prepared, predict
from planner.replay_scoring import rows_json, summarize

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
HEADER = ("id,backend,model_path,system,precision,mode,isl,osl,gemm_quant_mode,batch_size,tp_size,pp_size,"
          "attention_dp_size,moe_ep_size,silicon_ttft_ms,silicon_tpot_ms,extra_column")
ROWS = [
    "a,vllm,meta-llama/Llama-3.1-8B-Instruct,h100_sxm,,agg,1024,256,,8,1,1,1,1,40.0,8.0,x",
    "b,trtllm,Qwen/Qwen3-32B,h200_sxm,fp8,agg,2048,512,fp8,32,2,1,1,1,300.0,20.0,y",
    "c,sglang,nobody/NoSuchModel-7B,h100_sxm,,agg,1024,256,,8,1,1,1,1,40.0,8.0,z",
    "d,vllm,meta-llama/Llama-3.1-70B,h100_sxm,fp8,agg,1024,256,fp8,4,4,1,1,1,,,",
    "e,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,agg,1024,256,fp8,16,8,1,1,8,100,10,",
    "f,trtllm,Qwen/Qwen3-32B,h200_sxm,fp8,disagg,1024,256,fp8,,,,,,100,10,",
    "g,vllm,Qwen/Qwen3-32B,b300_sxm,fp4,agg,1024,256,nvfp4,8,1,1,1,1,,,",
]


def write_csv(tmp_path, rows=ROWS, header=HEADER, name="runs.csv") -> str:
    p = tmp_path / name
    p.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(p)


def test_rows_statuses_and_predict_only_rows(tmp_path, capsys):
    path = write_csv(tmp_path)
    assert main(["validate", "--measured", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["id"]: r for r in out["rows"]}
    assert set(rows["a"]) == {"id", "status", "predicted_ttft_ms", "predicted_tpot_ms", "measured_ttft_ms",
                              "measured_tpot_ms", "ttft_error", "tpot_error", "profile", "note", "flags"}
    assert rows["a"]["status"] == rows["b"]["status"] == "ok"
    assert rows["c"]["status"] == "unsupported: unknown model 'nobody/NoSuchModel-7B'"
    assert rows["e"]["status"] == "ok"  # expert parallel: costed (planner.cost.expert_parallel)
    assert rows["f"]["status"] == "unsupported: disaggregated row without prefill_tp_size or decode_tp_size"
    # measured columns empty: predicted only, errors null
    assert rows["d"]["status"] == "ok" and rows["d"]["predicted_tpot_ms"] > 0
    assert rows["d"]["ttft_error"] is None and rows["d"]["measured_tpot_ms"] is None
    # Blackwell (no measurement anywhere): fp4 computes in fp4 there, and it is predicted
    assert rows["g"]["status"] == "ok"
    a = rows["a"]
    assert a["tpot_error"] == pytest.approx(a["predicted_tpot_ms"] / a["measured_tpot_ms"] - 1.0)
    assert a["ttft_error"] == pytest.approx(a["predicted_ttft_ms"] / a["measured_ttft_ms"] - 1.0)
    s = out["summary"]
    assert s["rows"] == 7 and s["predicted"] == 5 and s["measured"] == 3
    assert s["unsupported"] == {"unknown model 'nobody/NoSuchModel-7B'": 1,
                                "disaggregated row without prefill_tp_size or decode_tp_size": 1}


def test_an_unknown_engine_is_its_rows_reason_not_the_files(tmp_path, capsys):
    """As for an unknown model or system: the row that names an engine no engines/*.yaml
    describes is ``unsupported: unknown engine 'X'``; the others are predicted."""
    rows = [ROWS[0].replace(",vllm,", ",fooeng,", 1), ROWS[1]]
    assert main(["validate", "--measured", write_csv(tmp_path, rows=rows), "--json"]) == 0
    out = {r["id"]: r["status"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert out == {"a": "unsupported: unknown engine 'fooeng'", "b": "ok"}


def test_table_view_names_slices_and_reasons(tmp_path, capsys):
    assert main(["validate", "--measured", write_csv(tmp_path)]) == 0
    out = capsys.readouterr().out
    for needle in ("engine", "model", "device", "precision", "concurrency", "TTFT med |err|", "TPOT p90",
                   "llama-3.1-8b", "h100-sxm", "1 unknown model 'nobody/NoSuchModel-7B'"):
        assert needle in out


@pytest.mark.parametrize("mutate, needle", [
    (lambda h, r: (h.replace(",isl,", ",input_len,"), r), "field 'isl': line 1: required column is missing"),
    (lambda h, r: (h, [r[0].replace(",1024,256,", ",1k,256,"), *r[1:]]), "field 'isl', value '1k': line 2: must be"),
    (lambda h, r: (h, [r[0], r[1].replace(",512,", ",5.5,"), *r[2:]]), "field 'osl', value '5.5': line 3"),
    (lambda h, r: (h, [r[0].replace(",agg,", ",,"), *r[1:]]), "field 'mode': line 2: a value is required"),
    (lambda h, r: (h, [r[0].replace(",40.0,8.0,", ",fast,8.0,"), *r[1:]]), "field 'silicon_ttft_ms'"),
    (lambda h, r: (h, [r[0].replace(",1024,256,", ",0,256,"), *r[1:]]), "field 'isl', value '0': line 2: must be a whole number >= 1"),
    (lambda h, r: (h, [r[0].replace(",8,1,1,1,1,", ",-8,1,1,1,1,"), *r[1:]]), "field 'batch_size', value '-8'"),
    (lambda h, r: (h, [",".join(r[0].split(",")[:7]), *r[1:]]), "field 'osl': line 2: a value is required"),
    (lambda h, r: (h, [r[0] + ",extra,cells", *r[1:]]), "line 2: more cells than the header"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, mutate, needle):
    header, rows = mutate(HEADER, list(ROWS))
    path = write_csv(tmp_path, rows, header)
    assert main(["validate", "--measured", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert path in err and needle in err


def test_missing_file_exit_2(tmp_path, capsys):
    assert main(["validate", "--measured", str(tmp_path / "nope.csv")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_replay_equals_the_single_configuration_api(tmp_path):
    """Vectorized replay (engine as it is) == planner.cost.api.estimate per row."""
    from planner.catalog import load_hardware, load_model
    from planner.cost.api import estimate

    runs = read_measured(write_csv(tmp_path))
    pred = predict(runs, today=True)
    cases = {"a": ("llama-3.1-8b", "h100-sxm", "bf16", "bf16"), "b": ("qwen3-32b", "h200", "fp8", "fp8")}
    for i, rid in enumerate(runs.ids):
        if rid not in cases:
            continue
        m, h, w, act = cases[rid]
        r = estimate(load_model(m), load_hardware(h), devices=int(runs.tp[i]), concurrency=int(runs.concurrency[i]),
                     prompt_len=int(runs.isl[i]), gen_len=int(runs.osl[i]), weight_dtype=w, act_dtype=act,
                     kv_dtype="bf16", prefix_sharing=False)
        assert pred.ttft_s[i] == pytest.approx(r["ttft_s"], rel=1e-9)
        assert pred.tpot_s[i] == pytest.approx(r["tpot_s"], rel=1e-9)


def test_replay_mixes_the_closed_loop_and_the_steady_state_as_the_api_computes_them(tmp_path):
    """wave_sync = 1: each row is the scheduler model's closed loop with its engine's
    facts (the single-configuration API, arrival="closed"); wave_sync = 0: the later
    waves spread out as in the steady state (plus the host time per step) while the
    first wave stays in line, so TTFT lies between the two; in between, the linear mix.
    TPOT is the closed loop's whatever the synchrony. TTFT of the closed loop grows with
    the number in flight."""
    from planner.catalog import load_hardware, load_model
    from planner.cost.api import estimate
    from planner.engine_profiles import load_engine

    rows = [f"r{c},vllm,Qwen/Qwen3-32B,h100_sxm,fp8,agg,2048,256,fp8,{c},2,1,1,1,,," for c in (1, 4, 16, 64)]
    runs = read_measured(write_csv(tmp_path, rows))
    prep = Prepared(runs)
    m, h, eng = load_model("qwen3-32b"), load_hardware("h100-sxm"), load_engine("vllm")
    params = {"memory_efficiency": h.memory_efficiency, "compute_efficiency": h.compute_efficiency,
              "step_host_s": 0.002, "request_overhead_s": 0.0}
    waves = prep.run({"h100-sxm/vllm": ("t", {**params, "wave_sync": 1.0})})
    spread = prep.run({"h100-sxm/vllm": ("t", {**params, "wave_sync": 0.0})})
    half = prep.run({"h100-sxm/vllm": ("t", {**params, "wave_sync": 0.5})})
    eng = eng.model_copy(update={"host_step_us": 2000.0})
    for i, c in enumerate((1, 4, 16, 64)):
        kw = dict(devices=2, concurrency=c, prompt_len=2048, gen_len=256, weight_dtype="fp8", act_dtype="fp8",
                  kv_dtype="bf16", prefix_sharing=False, engine=eng)  # fp8 rows keep a 16-bit KV cache
        closed, steady = estimate(m, h, arrival="closed", **kw), estimate(m, h, arrival="steady", **kw)
        assert waves.ttft_s[i] == pytest.approx(closed["ttft_s"], rel=1e-6)
        assert waves.tpot_s[i] == pytest.approx(closed["tpot_s"], rel=1e-6)
        assert spread.tpot_s[i] == half.tpot_s[i] == waves.tpot_s[i]
        assert half.ttft_s[i] == pytest.approx(0.5 * (waves.ttft_s[i] + spread.ttft_s[i]), rel=1e-9)
        if c > 1:  # the first wave's prompts wait behind each other; later ones no longer
            assert steady["ttft_s"] + 0.002 < spread.ttft_s[i] < waves.ttft_s[i]
    assert np.all(np.diff(waves.ttft_s) > 0)


def test_rows_json_is_one_entry_per_row_in_order(tmp_path):
    runs = read_measured(write_csv(tmp_path))
    pred = predict(runs)
    js = rows_json(pred, runs)
    assert [r["id"] for r in js] == list(runs.ids)
    s = summarize(pred, runs)
    assert s["predicted"] == sum(r["status"] == "ok" for r in js)


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_dev_file_replays_fast_and_counts_add_up(capsys):
    import time

    t0 = time.perf_counter()
    assert main(["validate", "--measured", str(DEV), "--json"]) == 0
    elapsed = time.perf_counter() - t0
    out = json.loads(capsys.readouterr().out)
    s = out["summary"]
    assert len(out["rows"]) == s["rows"] == 1294
    assert s["predicted"] + sum(s["unsupported"].values()) == s["rows"]
    # every row: disaggregated rows without worker counts from their total concurrency (the
    # smallest deployment, noted on the row), TP over 8 GPUs across nodes or read as the
    # file's product encoding, Qwen3.5 with its linear-attention layers
    assert s["unsupported"] == {}
    assert s["predicted"] == 1294
    notes = [r["note"] for r in out["rows"] if r["note"]]
    assert sum("workers derived" in n for n in notes) == 177
    assert sum("moe_tp_size x moe_ep_size" in n for n in notes) == 42
    assert elapsed < 10.0


def _grid_runs(tmp_path_factory):
    rows = [f"r{c}-{m[:4]},vllm,{m},h100_sxm,fp8,agg,2048,512,fp8,{c},2,1,1,1,,,"
            for m in ("Qwen/Qwen3-32B", "openai/gpt-oss-120b") for c in (1, 2, 4, 8, 16, 32, 64, 128)]
    d = tmp_path_factory.mktemp("grid")
    return Prepared(read_measured(write_csv(d, rows)))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    return _grid_runs(tmp_path_factory)


def test_monotone_in_concurrency_and_efficiency_for_any_physical_parameters(grid):
    """Hypothesis over the physical parameter box: more requests in flight never make a
    token faster, a higher achieved bandwidth never makes one slower."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from planner import serving_params as SP

    @settings(max_examples=25, deadline=None)
    @given(me=st.floats(0.2, 1.0), ce=st.floats(0.2, 1.0), host=st.floats(0.0, 0.01), s=st.floats(0.0, 1.0),
           req=st.floats(0.0, 0.5), gain=st.floats(1.01, 2.0))
    def check(me, ce, host, s, req, gain):
        vals = {"memory_efficiency": me, "compute_efficiency": ce, "step_host_s": host, "wave_sync": s,
                "request_overhead_s": req}
        assert SP.check(vals) == []
        p = grid.run({"h100-sxm/vllm": ("h", vals)})
        faster = grid.run({"h100-sxm/vllm": ("h", {**vals, "memory_efficiency": min(1.0, me * gain)})})
        for half in (slice(0, 8), slice(8, 16)):  # each model: concurrency 1 .. 128
            assert np.all(np.diff(p.tpot_s[half]) >= -1e-12)
            assert np.all(np.diff(p.ttft_s[half]) >= -1e-12)
        assert np.all(faster.tpot_s <= p.tpot_s + 1e-12)

    check()


def test_disaggregated_and_expert_parallel_rows_equal_the_single_configuration_paths(tmp_path):
    """A disaggregated row with its worker counts is the vectorized disaggregated model
    (equal to planner.cost.serving_api.disaggregated_estimate, the per-configuration
    oracle, at wave_sync-free datasheet parameters); an EP row is the closed loop with
    ep and attention-DP columns (equal to the API's estimate(ep=, dp=))."""
    from planner.catalog import load_hardware, load_model
    from planner.cost.api import estimate
    from planner.cost.serving_api import disaggregated_estimate
    from planner.engine_profiles import load_engine

    header = ("id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,attention_dp_size,moe_tp_size,"
              "moe_ep_size,prefill_num_workers,prefill_tp_size,decode_num_workers,decode_tp_size,decode_batch_size,"
              "silicon_ttft_ms,silicon_tpot_ms")
    rows = ["d1,sglang,Qwen/Qwen3-32B,h200_sxm,fp8,disagg,1024,256,,,,,,2,2,1,4,16,,",
            "e1,trtllm,Qwen/Qwen3-235B-A22B-FP8,h200_sxm,fp8,agg,1024,256,8,4,1,1,4,,,,,,,"]
    runs = read_measured(write_csv(tmp_path, rows, header))
    h = load_hardware("h200")
    params = {"memory_efficiency": h.memory_efficiency, "compute_efficiency": h.compute_efficiency,
              "step_host_s": 0.0, "wave_sync": 1.0, "request_overhead_s": 0.0}
    pred = Prepared(runs).run({"h200/sglang": ("t", params), "h200/trtllm": ("t", params)})
    assert list(pred.status) == ["ok", "ok"]
    sg = load_engine("sglang").model_copy(update={"host_step_us": 0.0})
    d = disaggregated_estimate(load_model("qwen3-32b"), h, prefill_workers=2, decode_workers=1, prefill_devices=2,
                               decode_devices=4, concurrency=16, prompt_len=1024, gen_len=256, weight_dtype="fp8",
                               act_dtype="fp8", kv_dtype="bf16", engine=sg)
    assert pred.ttft_s[0] == pytest.approx(d["ttft_s"], rel=1e-6)
    assert pred.tpot_s[0] == pytest.approx(d["tpot_s"], rel=1e-6)
    tr = load_engine("trtllm").model_copy(update={"host_step_us": 0.0})
    e = estimate(load_model("qwen3-235b-a22b"), h, devices=4, ep=4, concurrency=8, prompt_len=1024, gen_len=256,
                 weight_dtype="fp8", act_dtype="fp8", kv_dtype="bf16", prefix_sharing=False, engine=tr,
                 arrival="closed")
    assert pred.tpot_s[1] == pytest.approx(e["tpot_s"], rel=1e-6)
    assert pred.ttft_s[1] == pytest.approx(e["ttft_s"], rel=1e-6)


DISAGG_HEADER = ("id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,silicon_data_source,"
                 "prefill_num_workers,prefill_tp_size,prefill_moe_ep_size,decode_num_workers,decode_tp_size,"
                 "decode_moe_ep_size,decode_batch_size,decode_attention_dp_size,silicon_ttft_ms,silicon_tpot_ms")


def test_disaggregated_row_with_and_without_worker_counts(tmp_path):
    """A disaggregated row without worker counts is the same deployment as one that gives
    the counts the derivation picks (planner.cost.disagg.derive_workers: the fewest decode
    workers whose KV memory holds the benchmark's concurrency, the fewest prefill workers
    that keep up): equal predictions, and the row's note names the workers. Its total
    concurrency comes from the provenance column (silicon_concurrency=N). More decode
    workers for the same concurrency shrink each worker's batch: TPOT falls. A row with
    neither counts nor a concurrency cannot be predicted, and says why."""
    from planner.catalog import load_hardware, load_model
    from planner.cost.api import columns
    from planner.cost.context import Ctx
    from planner.cost.disagg import decode_worker_capacity
    from planner.cost.tables import HardwareTable, ModelTable

    src = "db-dump; silicon_concurrency={c}; measured=2026"
    rows = [f"n,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,1024,1024,,,{src.format(c=1024)},,8,8,,8,8,,1,,",
            f"s,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,1024,1024,,,{src.format(c=16)},,8,8,,8,8,,1,,",
            "z,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,1024,1024,,,no concurrency here,,8,8,,8,8,,1,,"]
    prep = Prepared(read_measured(write_csv(tmp_path, rows, DISAGG_HEADER)))
    pred = prep.run()
    assert prep.assumed.tolist() == [True, True, True]  # scored, never fitted (planner.serving_fit)
    assert list(pred.status[:2]) == ["ok", "ok"]
    assert pred.status[2] == ("unsupported: disaggregated row without worker counts, decode batch size or "
                              "total concurrency")
    note = pred.note[0]
    X, Y = (int(note.split(": ")[1].split(" prefill")[0]), int(note.split(", ")[1].split(" decode")[0]))
    assert pred.note[1].startswith("workers derived") and " 1 decode, 16 requests per decode worker" in pred.note[1]
    # the derived decode workers are the fewest that hold 1024 requests of 2048 tokens
    x = Ctx(columns(1, model=0, hardware=0, devices=8, batch=1, concurrency=1, prompt_len=1024, gen_len=1024,
                    samples=1, kv_budget=0, prefix_sharing=False, weight_dtype="fp8", act_dtype="fp8",
                    kv_dtype="bf16", ep=8), ModelTable.build([load_model("deepseek-r1")]),
            HardwareTable.build([load_hardware("h200")]))
    b_max = float(decode_worker_capacity(x, 1024.0, 1024.0, 2048)[0])
    assert (Y - 1) * b_max < 1024 <= Y * b_max and X >= 1
    # the same deployment with its worker counts written out: the same prediction, no note
    counted = [f"c,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,1024,1024,,,,{X},8,8,{Y},8,8,{1024 // Y},1,,",
               f"d,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,1024,1024,,,,{X},8,8,{4 * Y},8,8,{256 // Y},1,,"]
    assert 1024 % (4 * Y) == 0  # whole decode batches (Y = 4 on this device and model)
    prep2 = Prepared(read_measured(write_csv(tmp_path, counted, DISAGG_HEADER, name="counted.csv")))
    p2 = prep2.run()
    assert not prep2.assumed.any()
    assert list(p2.status) == ["ok", "ok"] and p2.note[0] == ""
    assert p2.tpot_s[0] == pytest.approx(pred.tpot_s[0], rel=1e-9)
    assert p2.ttft_s[0] == pytest.approx(pred.ttft_s[0], rel=1e-9)
    assert p2.tpot_s[1] < p2.tpot_s[0]  # 4x the decode workers, a quarter of the batch each


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_product_encoded_tp_rows_are_the_measurements_of_their_small_twins():
    """The oracle for reading tp_size 64 = moe_tp 8 x moe_ep 8 as 8 devices: the dev file
    measured some runs under both encodings (same model, engine, lengths, concurrency and
    the 8-device layout tp 8 / moe_ep 8; TTFT and TPOT within 0.03%, most identical).
    Read that way, each twin pair is predicted alike."""
    runs = read_measured(DEV)
    pred = predict(runs)
    encoded = [i for i in range(len(runs)) if "moe_tp_size x moe_ep_size" in pred.note[i]]
    assert len(encoded) == 42
    twins = []
    for i in encoded:
        for j in range(len(runs)):
            same = (j != i and runs.mode[j] == "agg" and runs.model[j] == runs.model[i]
                    and runs.engine[j] == runs.engine[i] and runs.isl[j] == runs.isl[i]
                    and runs.osl[j] == runs.osl[i] and runs.concurrency[j] == runs.concurrency[i]
                    and runs.tp[j] == runs.moe_tp[i] and runs.ep[j] == runs.ep[i] and runs.moe_tp[j] == 1)
            if same and abs(runs.measured_tpot_s[j] / runs.measured_tpot_s[i] - 1) < 1e-3 \
                    and abs(runs.measured_ttft_s[j] / runs.measured_ttft_s[i] - 1) < 1e-3:
                twins.append((i, j))
    assert len(twins) >= 16
    for i, j in twins:
        assert pred.status[i] == pred.status[j] == "ok"
        assert pred.tpot_s[i] == pytest.approx(pred.tpot_s[j], rel=1e-9)
        assert pred.ttft_s[i] == pytest.approx(pred.ttft_s[j], rel=1e-9)


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_product_encoding_is_read_the_same_on_an_nvl72_domain(tmp_path):
    """GB200's NVLink domain holds 72 devices, so "wider than the domain" no longer marks
    the sample's tp 64 = 8 x 8 encoding of an 8-GPU run. The dev rows so encoded, renamed
    to gb200_sxm, must still be read as their 8-device (or 4-device) deployments, while a
    genuine 16-device group with moe_tp != moe_ep inside the domain is taken as written."""
    import csv

    with open(DEV, newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    enc = [r for r in rows if r["mode"] == "agg" and float(r["tp_size"] or 1) > 8
           and float(r["attention_dp_size"] or 1) <= 1]
    assert len(enc) == 42
    genuine = dict(enc[0], id="genuine_tp16", tp_size="16", moe_tp_size="2", moe_ep_size="8")
    out = tmp_path / "nvl72.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        for r in enc + [genuine]:
            w.writerow(dict(r, system="gb200_sxm"))
    runs = read_measured(out)
    pred = predict(runs)
    notes = ["moe_tp_size x moe_ep_size" in (n or "") for n in pred.note]
    assert sum(notes[:-1]) == 42 and not notes[-1]
    assert list(pred.status) == ["ok"] * 43


def test_attention_dp_batch_is_per_rank_and_product_encoded_dp_rows_predict_like_their_twins(tmp_path):
    """An aggregated row's ``batch_size`` with attention data parallelism is per rank: the
    requests in flight are ``batch_size x attention_dp_size`` (oracle: the provenance's
    ``silicon_concurrency`` on every dev-file row with attention DP, below). A row that
    writes the 8-GPU DeepSeek-R1 deployment ``tp 1, attention_dp 8, moe_ep 8`` at batch 32
    as ``attention_dp 64 = moe_tp 8 x moe_ep 8`` at batch 4 (the dev file's
    ``tp8_ep8`` c256 runs, measured identical) predicts exactly as its explicit twin, and
    says how it was read."""
    header = ("id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,attention_dp_size,"
              "moe_tp_size,moe_ep_size,silicon_ttft_ms,silicon_tpot_ms")
    rows = ["explicit,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,agg,8192,1024,32,1,8,1,8,12223,101.8",
            "encoded,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,agg,8192,1024,4,1,64,8,8,12223,101.8",
            "quarter,trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,agg,8192,1024,8,1,8,1,8,,"]
    pred = predict(read_measured(write_csv(tmp_path, rows, header)))
    assert list(pred.status) == ["ok"] * 3
    assert pred.tpot_s[1] == pytest.approx(pred.tpot_s[0], rel=1e-9)
    assert pred.ttft_s[1] == pytest.approx(pred.ttft_s[0], rel=1e-9)
    assert "tp 1 x attention_dp 8 x ep 8 on 8 devices, 256 requests in flight" in pred.note[1]
    assert pred.tpot_s[2] < pred.tpot_s[0]  # a quarter of the requests per rank: a shorter step
    # the vLLM MiniMax-M2.5 form: tp 4 x attention_dp 4 = moe_ep 16 on H100 is the 4-GPU
    # tp 4 / moe_ep 4 deployment at 4 x 4 requests in flight (the dev file's tp4_ep4 twins)
    rows = ["explicit,vllm,MiniMaxAI/MiniMax-M2.5,h100_sxm,fp8,agg,1024,8192,16,4,1,1,4,102,16.1",
            "encoded,vllm,MiniMaxAI/MiniMax-M2.5,h100_sxm,fp8,agg,1024,8192,4,4,4,1,16,115,16.1"]
    pred = predict(read_measured(write_csv(tmp_path, rows, header, name="mm.csv")))
    assert list(pred.status) == ["ok"] * 2
    assert pred.tpot_s[1] == pytest.approx(pred.tpot_s[0], rel=1e-9)
    assert pred.ttft_s[1] == pytest.approx(pred.ttft_s[0], rel=1e-9)
    assert "tp 4 x attention_dp 1 x ep 4 on 4 devices, 16 requests in flight" in pred.note[1]


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_in_flight_is_the_benchmark_concurrency_on_attention_dp_rows():
    from planner.replay import in_flight

    runs = read_measured(DEV)
    adp = (runs.mode == "agg") & (runs.dp > 1)
    assert adp.sum() >= 20
    assert np.array_equal(in_flight(runs)[adp], runs.total_concurrency[adp])


@pytest.mark.skipif(not DEV.is_file(), reason="../shared/data not present")
def test_product_encoded_attention_dp_rows_predict_like_their_measured_twins():
    """The oracle for planner.measured_layouts.product_encoded_dp: every dev-file row it reads has
    a twin in the file with the explicit layout, the same model, engine, device, lengths
    and requests in flight, and the same measured TPOT (within 0.1%); each pair is
    predicted alike."""
    from planner.replay import in_flight

    runs = read_measured(DEV)
    pred = predict(runs)
    C = in_flight(runs)
    encoded = [i for i in range(len(runs)) if str(pred.note[i]).startswith("attention data parallel")]
    assert len(encoded) == 17  # 5 DeepSeek-R1 (TensorRT-LLM, H200) + 12 MiniMax-M2.5 (vLLM, H100)
    paired = 0
    for i in encoded:
        twins = [j for j in range(len(runs)) if j not in encoded and runs.mode[j] == "agg"
                 and runs.model[j] == runs.model[i] and runs.engine[j] == runs.engine[i]
                 and runs.system[j] == runs.system[i] and runs.isl[j] == runs.isl[i] and runs.osl[j] == runs.osl[i]
                 and C[j] == C[i] and abs(runs.measured_tpot_s[j] / runs.measured_tpot_s[i] - 1) < 0.02]
        for j in twins:
            assert pred.tpot_s[j] == pytest.approx(pred.tpot_s[i], rel=1e-9)
            assert pred.ttft_s[j] == pytest.approx(pred.ttft_s[i], rel=1e-9)
            paired += 1
    assert paired >= 10


def test_aiconfigurator_quant_modes_are_read_with_their_weight_bytes(tmp_path, capsys):
    """Every GEMM / MoE quant mode of NVIDIA aiconfigurator (its common.py: bytes per weight
    2 / 1 / 0.5, compute 16-bit / 8-bit / fp4) is read, and a decode step at batch 1 (weight
    reads) is slower the more bytes per weight the mode stores: 16-bit > 8-bit > 4-bit."""
    modes = {"float16": 2, "bfloat16": 2, "int8_wo": 1, "sq": 1, "fp8_static": 1, "fp8_ootb": 1,
             "w4afp8": 0.5, "w4a16_mxfp4": 0.5, "w4a8_mxfp4_mxfp8": 0.5, "w4a8_mxfp4_mxfp8_trtllm": 0.5}
    rows = [f"{m},vllm,Qwen/Qwen3-32B,b200_sxm,,agg,1024,256,{m},1,1,1,1,1,,," for m in modes]
    assert main(["validate", "--measured", write_csv(tmp_path, rows), "--json"]) == 0
    out = {r["id"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert all(r["status"] == "ok" for r in out.values()), {k: r["status"] for k, r in out.items()}
    tpot = {m: out[m]["predicted_tpot_ms"] for m in modes}
    by_bytes = {b: [tpot[m] for m in modes if modes[m] == b] for b in (2, 1, 0.5)}
    assert min(by_bytes[2]) > max(by_bytes[1]) and min(by_bytes[1]) > max(by_bytes[0.5])
