"""Fuzz the measured-runs route (``planner validate --measured FILE.csv``), the one every
held-out row takes, which the shipped-file fuzzer (tests/fuzzing.py) does not mutate.

The base file is a few rows of each kind a held-out file brings: dense and MoE,
aggregated and disaggregated, Hopper and Blackwell systems, an NVL72-only layout, every
engine. Each case mutates it one way (a cell set to an out-of-range, non-finite, huge or
non-numeric value; a column dropped, duplicated or renamed; the file cut short; a byte
that is not UTF-8; a row with too few or too many cells) and runs the command in process.
The promise (tests/fuzzing.py ``judge``): exit 0 or 2, never a traceback, no hang, a
one-line message, no nan or inf in the output (JSON nulls are fine). An unknown engine in
the ``backend`` column makes only its row unsupported, as an unknown system or model does
(issue 11).
``python benchmarks/fuzz.py N SEED --only measured`` runs more of them.
"""

from __future__ import annotations

import csv
import io
import random

import fuzzing
import pytest

from fuzzing import Case

CELLS = ["-1", "0", "1e400", "inf", "nan", "-inf", str(2**63), "9" * 401, "40000", "1e18", "0.5", "abc", "",
         "1,5", " 8 ", "0x10", "\u00a0", "8.0.0", "-0", "1e-300", "x" * 10_000]
SYSTEMS = ["b200_sxm", "gb200_sxm", "b300_sxm", "gb300_sxm", "h200_sxm", "a100_sxm", "l40s", "tpu_v9", ""]
QUANTS = ["nvfp4", "fp8_block", "w4a8_mxfp4_mxfp8", "int4_wo", "sq", "fp8", "bf16", "mxfp9", ""]
HEADER = ["id", "backend", "model_path", "system", "precision", "mode", "isl", "osl", "gemm_quant_mode", "batch_size",
          "tp_size", "pp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size", "prefill_batch_size",
          "prefill_num_workers", "prefill_tp_size", "prefill_attention_dp_size", "prefill_moe_tp_size",
          "prefill_moe_ep_size", "decode_batch_size", "decode_num_workers", "decode_tp_size",
          "decode_attention_dp_size", "decode_moe_tp_size", "decode_moe_ep_size", "silicon_data_source",
          "silicon_ttft_ms", "silicon_tpot_ms"]


def base_rows() -> list[dict]:
    agg = dict(mode="agg", isl=1024, osl=1024, silicon_ttft_ms=120.5, silicon_tpot_ms=9.8)
    rows = [
        dict(agg, backend="vllm", model_path="meta-llama/Llama-3.1-8B-Instruct", system="b200_sxm", precision="fp8",
             gemm_quant_mode="fp8", batch_size=16, tp_size=1),
        dict(agg, backend="trtllm", model_path="deepseek-ai/DeepSeek-R1", system="gb200_sxm", precision="fp4",
             gemm_quant_mode="nvfp4", batch_size=32, tp_size=1, attention_dp_size=32, moe_tp_size=1, moe_ep_size=32),
        dict(agg, backend="sglang", model_path="openai/gpt-oss-120b", system="gb300_sxm", precision="fp4",
             gemm_quant_mode="w4a8_mxfp4_mxfp8", batch_size=8, tp_size=4, pp_size=2),
        dict(agg, backend="vllm", model_path="Qwen/Qwen3-32B", system="h200_sxm", precision="", batch_size=4,
             tp_size=2),
        dict(mode="disagg", backend="trtllm", model_path="deepseek-ai/DeepSeek-R1", system="b300_sxm", precision="fp8",
             gemm_quant_mode="fp8_block", isl=8192, osl=1024, prefill_batch_size=1, prefill_num_workers=2,
             prefill_tp_size=8, prefill_moe_ep_size=8, decode_batch_size=64, decode_num_workers=1, decode_tp_size=1,
             decode_attention_dp_size=8, decode_moe_ep_size=8, silicon_ttft_ms=900, silicon_tpot_ms=30),
        dict(mode="disagg", backend="sglang", model_path="deepseek-ai/DeepSeek-R1", system="h200_sxm",
             precision="fp8", isl=1024, osl=1024, prefill_tp_size=8, decode_tp_size=8,
             silicon_data_source="silicon_concurrency=64", silicon_ttft_ms="", silicon_tpot_ms=""),
    ]
    return [{"id": f"r{i}", **r} for i, r in enumerate(rows)]


def _text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def mutate(rng: random.Random) -> bytes:
    """One mutated copy of the base file."""
    header = list(HEADER)
    rows = [[str(r.get(c, "")) for c in header] for r in base_rows()]
    op = rng.randrange(10)
    if op == 0:  # a cell out of range, non-finite, huge or not a number
        rows[rng.randrange(len(rows))][rng.randrange(len(header))] = rng.choice(CELLS)
    elif op == 1:  # a column dropped
        j = rng.randrange(len(header))
        header.pop(j)
        rows = [r[:j] + r[j + 1:] for r in rows]
    elif op == 2:  # a column duplicated or renamed
        j = rng.randrange(len(header))
        if rng.random() < 0.5:
            header.append(header[j])
            rows = [r + [rng.choice(CELLS)] for r in rows]
        else:
            header[j] = rng.choice(["", header[j].upper(), header[j] + " ", "id"])
    elif op == 3:  # the text cut short
        text = _text(header, rows)
        return text[: rng.randrange(len(text) + 1)].encode()
    elif op == 4:  # a byte that is not UTF-8
        raw = bytearray(_text(header, rows).encode())
        raw[rng.randrange(len(raw))] = 0xFF
        return bytes(raw)
    elif op == 5:  # a row too short or too long
        r = rng.randrange(len(rows))
        rows[r] = rows[r][: rng.randrange(len(header))] if rng.random() < 0.5 else rows[r] + ["9"] * 3
    elif op == 6:  # an unknown or odd system, precision, engine or model
        r = rng.randrange(len(rows))
        col, choices = rng.choice([("system", SYSTEMS), ("gemm_quant_mode", QUANTS),
                                   ("backend", ["vllm", "sglang", "trtllm", "tgi", ""]),
                                   ("model_path", ["nobody/none", "", "deepseek-ai/DeepSeek-R1", "../../etc/passwd"])])
        rows[r][header.index(col)] = rng.choice(choices)
    elif op == 7:  # a layout no device allows: wider than a rack, experts not divided, pp deeper than layers
        r = rng.randrange(len(rows))
        col = rng.choice(["tp_size", "pp_size", "attention_dp_size", "moe_ep_size", "moe_tp_size", "decode_tp_size",
                          "prefill_num_workers", "decode_attention_dp_size", "decode_moe_ep_size"])
        rows[r][header.index(col)] = rng.choice(["3", "7", "96", "144", "1000", "4096", "100000", "0"])
    elif op == 8:  # lengths and concurrency at the edges
        r = rng.randrange(len(rows))
        col = rng.choice(["isl", "osl", "batch_size", "decode_batch_size"])
        rows[r][header.index(col)] = rng.choice(["1", "0", "1048576", "2000000", "99999999", "1.5"])
    else:  # the measured times odd
        r = rng.randrange(len(rows))
        rows[r][header.index(rng.choice(["silicon_ttft_ms", "silicon_tpot_ms"]))] = rng.choice(CELLS)
    return _text(header, rows).encode()


def make_cases(n: int, seed: int = 0) -> list[Case]:
    rng = random.Random(seed)
    return [Case(["validate", "--measured", "{F}", "--json"], {"runs.csv": mutate(rng)}, f"measured csv #{i}")
            for i in range(n)]


def test_the_base_file_is_predicted(tmp_path):
    text = _text(HEADER, [[str(r.get(c, "")) for c in HEADER] for r in base_rows()])
    case = Case(["validate", "--measured", "{F}", "--json"], {"runs.csv": text.encode()}, "base")
    o = fuzzing.run_in_process(case, tmp_path, timeout_s=30.0)
    assert o.rc == 0 and o.problem is None, o.err
    assert o.out.count('"status": "ok"') == len(base_rows()), o.out[:2000]


@pytest.mark.parametrize("seed", range(3))
def test_mutated_measured_files_keep_the_promise(tmp_path, seed):
    failures = []
    for i, case in enumerate(make_cases(40, seed=seed)):
        scratch = tmp_path / str(i)
        scratch.mkdir()
        o = fuzzing.run_in_process(case, scratch, timeout_s=10.0)
        if o.problem or o.rc not in (0, 2):
            failures.append((case.label, o.rc, o.problem, o.err.strip()[-300:]))
    assert not failures, failures[:5]


def test_the_largest_concurrency_is_scored_and_beyond_it_is_refused(tmp_path):
    """Found by ``benchmarks/fuzz.py 1000 7 --only measured`` (case 716): batch_size 1e18
    fell outside every concurrency band and sorting the bands raised ValueError. Since round
    15 a count beyond planner.bounds (1e18 requests) is one line, exit 2; the largest one
    allowed still lands in the top band and is scored."""
    from planner.bounds import MAX_REQUESTS

    for value, rc in ((str(MAX_REQUESTS), 0), ("1e18", 2)):
        rows = base_rows()
        rows[0]["batch_size"] = value
        text = _text(HEADER, [[str(r.get(c, "")) for c in HEADER] for r in rows])
        o = fuzzing.run_in_process(Case(["validate", "--measured", "{F}"], {"runs.csv": text.encode()}, value),
                                   tmp_path, timeout_s=30.0)
        assert o.rc == rc and o.problem is None, o.err
        if rc == 0:
            assert ">128" in o.out
        else:
            assert o.err.count("\n") == 1 and "field 'batch_size'" in o.err, o.err


def test_an_unknown_engine_makes_only_its_row_unsupported(tmp_path):
    """Issue 11: an unknown model or system on a row makes that row unsupported and the rest
    are predicted; an unknown engine (``backend``) is held to the same rule."""
    import json

    rows = base_rows()
    rows[0]["backend"] = "tgi"
    text = _text(HEADER, [[str(r.get(c, "")) for c in HEADER] for r in rows])
    o = fuzzing.run_in_process(Case(["validate", "--measured", "{F}", "--json"], {"runs.csv": text.encode()},
                                    "tgi"), tmp_path, timeout_s=30.0)
    assert o.rc == 0 and o.problem is None, o.err
    status = {r["id"]: r["status"] for r in json.loads(o.out)["rows"]}
    assert status["r0"] == "unsupported: unknown engine 'tgi'"
    assert sum(s == "ok" for s in status.values()) == len(rows) - 1
