"""Measured rows their stated deployment cannot produce on the datasheet (planner.plausibility).

Oracles: bounds computed here by hand from the models' published config.json numbers and
the devices' datasheets (H200: 1,978.9 TFLOP/s dense fp8, 4.8 TB/s, 141 GB), never from the
module's own counts; a row just slower than a bound is not flagged, just faster is; and a
property: slowing a row's measured times down never adds a flag."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.cli import main
from planner.measured import read_measured
from planner.plausibility import MEMORY, PREFILL, REASONS, STREAM, WEIGHTS, flag_rows
from planner.replay import Prepared

HEADER = ("id,backend,model_path,system,precision,mode,isl,osl,gemm_quant_mode,batch_size,tp_size,pp_size,"
          "attention_dp_size,moe_tp_size,moe_ep_size,silicon_ttft_ms,silicon_tpot_ms,spec_decode_tokens")
H200_FP8_FLOPS = 1978.9e12   # NVIDIA H200 datasheet, dense (3,958 with sparsity)
H200_BYTES_PER_S = 4.8e12    # NVIDIA H200 datasheet
H200_MEMORY_BYTES = 141 * 2 ** 30  # "141 GB", read as GiB: above the 143,771 MiB nvidia-smi shows
H100_BYTES_PER_S = 3.35e12   # NVIDIA H100 SXM datasheet


def llama8b_need_flops_per_s(ttft_s: float, tpot_s: float, isl=2000, osl=100, c=64) -> float:
    """Llama-3.1-8B config.json: hidden 4096, 32 layers, 32 heads, 8 KV heads of 128,
    intermediate 14336, vocab 128256. Matrix weights a token meets in the layers:
    q, o 4096^2, k, v 4096 x 1024, gate/up/down 3 x 4096 x 14336; LM head 128256 x 4096;
    attention 4 x 32 x 128 FLOPs per query-key pair per layer, causal."""
    body = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
    head = 128256 * 4096
    pair = 4 * 32 * 128 * 32
    pairs = isl * (isl + 1) / 2 + (osl - 1) * isl + osl * (osl - 1) / 2
    flops = 2 * body * (isl + osl - 1) + 2 * head * osl + pair * pairs
    return c / (ttft_s + (osl - 1) * tpot_s) * flops


def csv(tmp_path, rows, name="runs.csv") -> str:
    p = tmp_path / name
    p.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return str(p)


def replay_flags(path: str) -> dict:
    runs = read_measured(path)
    prep = Prepared(runs)
    return {str(i): fl for i, fl in zip(runs.ids, prep.plausibility.flags)}, prep


LLAMA8B = "{id},vllm,nvidia/Llama-3.1-8B-Instruct-FP8,h200_sxm,fp8,agg,2000,100,fp8,64,1,1,,1,1,{ttft},{tpot},"


def test_llama8b_fp8_dev_row_is_possible_and_a_faster_twin_is_not(tmp_path):
    # the dev file's row (vLLM 0.12.0, 1 x h200, 2000x100 at 64 in flight): 121.73 ms / 9.74 ms
    need = llama8b_need_flops_per_s(0.12173, 0.00974)
    assert need / H200_FP8_FLOPS == pytest.approx(0.91, abs=0.01)  # 1.80 PFLOP/s: possible, barely
    # 10% faster in both times would need more than the datasheet peak
    assert llama8b_need_flops_per_s(0.9 * 0.12173, 0.9 * 0.00974) > H200_FP8_FLOPS
    path = csv(tmp_path, [LLAMA8B.format(id="dev", ttft=121.73, tpot=9.74),
                          LLAMA8B.format(id="fast", ttft=0.9 * 121.73, tpot=0.9 * 9.74)])
    flags, prep = replay_flags(path)
    assert flags["dev"] == []
    assert [f.split(": ")[0] for f in flags["fast"]] == [PREFILL]
    assert "1 x h200" in flags["fast"][0] and "prefix caching" in flags["fast"][0]
    got = prep.plausibility.masks["need_flops_per_s"]
    assert got[0] == pytest.approx(need, rel=0.005)  # the module's count agrees with the hand count


QWEN235 = "{id},vllm,Qwen/Qwen3-235B-A22B-FP8,h200_sxm,fp8,agg,2000,100,fp8,5,1,1,,{moe_tp},1,493.74,42.56,"


def test_qwen3_235b_fp8_on_one_h200_does_not_fit_but_the_dev_rows_two_devices_do(tmp_path):
    # Qwen3-235B-A22B model card: 235B parameters in all; fp8 = 1 byte each: 235 GB > 141 GB
    assert 235e9 > H200_MEMORY_BYTES
    # the dev row writes tp 1 with moe_tp 2: vLLM's data parallel attention over 2 devices (the
    # replay's reading): attention weights whole on each (94 layers x (2 x 4096 x 64 x 128 q, o +
    # 2 x 4096 x 4 x 128 k, v)), the rest halved; fits
    attention = 94 * (2 * 4096 * 64 * 128 + 2 * 4096 * 4 * 128)
    assert attention + (235.09e9 - attention) / 2 < H200_MEMORY_BYTES
    path = csv(tmp_path, [QWEN235.format(id="one", moe_tp=1), QWEN235.format(id="two", moe_tp=2)])
    flags, prep = replay_flags(path)
    assert [f.split(": ")[0] for f in flags["one"]] == [WEIGHTS]
    assert "h200 holds 141 GB" in flags["one"][0]
    assert flags["two"] == []
    assert prep.plausibility.weight_bytes_per_device[0] == pytest.approx(235.09e9, rel=0.002)


def llama70b_floor_s() -> float:
    """Llama-3.1-70B config.json: hidden 8192, 80 layers, 64 heads, 8 KV heads of 128,
    intermediate 28672, vocab 128256; fp8 weights (1 byte) read once per decode step on one
    h200, the embedding table excepted (a lookup)."""
    layer = 2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672
    return (80 * layer + 128256 * 8192) / H200_BYTES_PER_S


# one request in flight: its KV reads add under 1% to the weight stream (decode-memory-above-bandwidth stays off)
LLAMA70B = "{id},trtllm,meta-llama/Llama-3.1-70B,h200_sxm,fp8,agg,1024,1024,fp8,1,1,1,,1,1,200,{tpot},{spec}"


def test_tpot_just_above_the_weight_stream_is_not_flagged_just_below_is(tmp_path):
    floor = llama70b_floor_s()
    assert floor == pytest.approx(14.48e-3, rel=0.005)
    path = csv(tmp_path, [LLAMA70B.format(id="slower", tpot=1.01 * floor * 1e3, spec=""),
                          LLAMA70B.format(id="faster", tpot=0.99 * floor * 1e3, spec=""),
                          LLAMA70B.format(id="mtp", tpot=0.5 * floor * 1e3, spec=3)])
    flags, prep = replay_flags(path)
    assert flags["slower"] == []
    assert flags["faster"][0].split(": ")[0] == STREAM  # (its run's memory traffic is also 0.3% over)
    assert "speculative decoding" in flags["faster"][0]
    assert flags["mtp"] == []  # drafts per step (spec_decode_tokens) legitimately beat the floor
    assert prep.plausibility.tpot_floor_s[0] == pytest.approx(floor, rel=0.002)


def qwen32b_need_bytes_per_s(ttft_s, tpot_s, kv_bytes=2, isl=4000, osl=1000, c=24) -> float:
    """Qwen3-32B config.json: hidden 5120, 64 layers, 64 heads and 8 KV heads of 128, intermediate
    25600, vocab 151936. fp8 weights read once per decode step on one device (embedding excepted),
    ``osl - 1`` steps per request of each client; each decode token reads its context's KV
    (64 layers x 2 x 8 x 128 values of ``kv_bytes``)."""
    layer = 2 * 5120 * 8192 + 2 * 5120 * 1024 + 3 * 5120 * 25600
    step_bytes = 64 * layer + 151936 * 5120
    kv_per_token = 64 * 2 * 8 * 128 * kv_bytes
    cycle = ttft_s + (osl - 1) * tpot_s
    pairs = (osl - 1) * isl + osl * (osl - 1) / 2
    return (osl - 1) / cycle * step_bytes + c / cycle * pairs * kv_per_token


QWEN32B = "{id},vllm,Qwen/Qwen3-32B,h100_sxm,fp8,agg,4000,1000,fp8,24,1,1,,,,{ttft},{tpot},,{kv}"


def test_decode_memory_of_the_qwen32b_h100_dev_row_is_over_the_datasheet_with_a_bf16_kv_cache(tmp_path):
    # the dev file's vLLM 0.12.0 row: 1 x h100-sxm, 4000x1000 at 24 in flight, 294.77 ms / 16.855 ms
    need = qwen32b_need_bytes_per_s(0.29477, 0.016855)
    assert need / H100_BYTES_PER_S == pytest.approx(1.05, abs=0.01)
    assert qwen32b_need_bytes_per_s(0.29477, 0.016855, kv_bytes=1) < H100_BYTES_PER_S  # fp8 KV: possible
    assert qwen32b_need_bytes_per_s(1.06 * 0.29477, 1.06 * 0.016855) < H100_BYTES_PER_S  # 6% slower: possible
    p = tmp_path / "runs.csv"
    p.write_text("\n".join([HEADER + ",kv_cache_dtype",
                            QWEN32B.format(id="dev", ttft=294.77, tpot=16.855, kv=""),
                            QWEN32B.format(id="fp8kv", ttft=294.77, tpot=16.855, kv="fp8"),
                            QWEN32B.format(id="slower", ttft=1.06 * 294.77, tpot=1.06 * 16.855, kv="")]) + "\n",
                 encoding="utf-8")
    flags, prep = replay_flags(str(p))
    assert [f.split(": ")[0] for f in flags["dev"]] == [MEMORY]
    assert "bf16 KV cache" in flags["dev"][0]
    assert flags["fp8kv"] == [] and flags["slower"] == []
    assert prep.plausibility.masks["need_bytes_per_s"][0] == pytest.approx(need, rel=0.005)


DISAGG_HEADER = ("id,backend,model_path,system,precision,mode,isl,osl,gemm_quant_mode,batch_size,tp_size,"
                 "prefill_batch_size,prefill_num_workers,prefill_tp_size,"
                 "decode_batch_size,decode_num_workers,decode_tp_size,"
                 "silicon_ttft_ms,silicon_tpot_ms")


def test_decode_memory_of_a_disaggregated_row_counts_its_decode_workers(tmp_path):
    # the dev file's SGLang 0.5.6 row: 5 prefill + 11 decode workers of 1 x h100-sxm, 48 requests per
    # decode worker (528 in flight), 4000x1000, 566.67 ms / 22.311 ms: each decode device steps like
    # one 48-request closed loop
    need = qwen32b_need_bytes_per_s(0.56667, 0.022311, c=48)
    assert need / H100_BYTES_PER_S == pytest.approx(1.155, abs=0.01)
    row = "{id},sglang,Qwen/Qwen3-32B,h100_sxm,fp8,disagg,4000,1000,fp8_block,,,1,5,1,48,{workers},1,566.67,22.311"
    p = tmp_path / "runs.csv"
    p.write_text("\n".join([DISAGG_HEADER, row.format(id="dev", workers=11),
                            row.format(id="more", workers=22)]) + "\n", encoding="utf-8")
    flags, prep = replay_flags(str(p))
    assert [f.split(": ")[0] for f in flags["dev"]] == [MEMORY]
    assert prep.plausibility.masks["need_bytes_per_s"][0] == pytest.approx(need, rel=0.005)
    # twice the decode workers at the same batch each: twice the clients, the same per-device load
    got = prep.plausibility.masks["need_bytes_per_s"]
    assert got[1] == pytest.approx(got[0], rel=1e-9)


def test_flagged_rows_are_scored_listed_and_never_fitted(tmp_path, capsys):
    from planner.serving_fit import MIN_ROWS, fit_all

    rows = [LLAMA70B.format(id=f"r{i}", tpot=0.5 * llama70b_floor_s() * 1e3, spec="") for i in range(MIN_ROWS)]
    path = csv(tmp_path, rows)
    assert main(["validate", "--measured", path, "--json", "--no-calibration"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(r["status"] == "ok" and r["tpot_error"] is not None for r in out["rows"])  # still scored
    # half the weight stream's time: under the floor, and twice the bandwidth over the run
    assert all([f.split(": ")[0] for f in r["flags"]] == [STREAM, MEMORY] for r in out["rows"])
    assert out["summary"]["flagged"] == MIN_ROWS
    assert out["summary"]["flagged_by_reason"] == {STREAM: MIN_ROWS, MEMORY: MIN_ROWS}
    assert main(["validate", "--measured", path, "--no-calibration"]) == 0
    assert f"{MIN_ROWS} rows: {MIN_ROWS} {STREAM}; {MIN_ROWS} {MEMORY}" in " ".join(capsys.readouterr().out.split())
    prep = Prepared(read_measured(path))
    assert (prep.status == "ok").sum() == MIN_ROWS and prep.flagged.all()
    assert fit_all(prep.runs, prep=prep) == {}  # every row flagged: no pair has rows left to fit


def test_unflagged_rows_have_an_empty_flags_list(tmp_path, capsys):
    path = csv(tmp_path, [LLAMA70B.format(id="ok", tpot=20.0, spec="")])
    assert main(["validate", "--measured", path, "--json", "--no-calibration"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["flags"] == [] and out["summary"]["flagged"] == 0


pos = st.floats(1e-3, 1e3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(pos, pos, st.integers(1, 4096), st.integers(1, 1024), pos, pos, pos, pos, pos, pos,
                          st.booleans(), st.booleans()), min_size=1, max_size=20),
       st.floats(1.0, 100.0))
def test_slowing_the_measured_times_never_adds_a_flag(rows, slower):
    cols = [np.array(c) for c in zip(*rows)]
    ttft, tpot, osl, c, w, mem, flops, peak, floor, devices, rate, stream = cols
    kw = dict(osl=osl.astype(float), in_flight=c.astype(float), weight_bytes_per_device=w, memory_bytes=mem,
              flops_per_request=flops * 1e9, compute_devices=devices, peak_flops_per_s=peak * 1e6,
              tpot_floor_s=floor * 1e-3, test_rate=rate, test_stream=stream, step_bytes_per_device=w,
              kv_bytes_per_request=flops * 1e6, bandwidth_bytes_per_s=peak * 1e6, test_memory=rate | stream)
    at = flag_rows(ttft_s=ttft * 1e-3, tpot_s=tpot * 1e-3, **kw)
    later = flag_rows(ttft_s=slower * ttft * 1e-3, tpot_s=slower * tpot * 1e-3, **kw)
    for r in REASONS:
        assert not (later[r] & ~at[r]).any()
