"""Disaggregated rows without worker counts: the decode workers their benchmark
concurrency implies (planner.measured_layouts.sweep_decode_workers: the concurrency's odd part,
a lower bound on the derived workers of planner.cost.disagg.derive_workers).

Oracle: the dev file's 29 disaggregated rows that write their deployment out
(``decode_num_workers``): with the counts removed, how often each derivation gets them back."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from planner.measured import read_measured
from planner.measured_layouts import SWEEP_MAX_DECODE_DEVICES, sweep_decode_workers
from planner.replay import Prepared, in_flight

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
COUNTS = ("prefill_num_workers", "decode_num_workers", "decode_batch_size")


@pytest.mark.skipif(not DEV.is_file(), reason="dev data not present")
def test_concurrency_reading_recovers_written_out_worker_counts():
    """With their counts removed (only the total concurrency left, as on the 177 countless
    rows), the derivation with the concurrency's odd part as a lower bound recovers
    ``decode_num_workers`` on 20 of the 29 rows; the smallest deployment alone on 8."""
    runs = read_measured(DEV)
    r = runs.take((runs.mode == "disagg") & np.isfinite(runs.disagg["decode_num_workers"]))
    assert len(r) == 29
    true_y = r.disagg["decode_num_workers"].copy()
    r.total_concurrency = in_flight(r)
    for c in COUNTS:
        r.disagg[c] = np.full(len(r), np.nan)
    prep = Prepared(r)

    def recovered(min_decode):
        prep.min_decode = min_decode
        notes = prep.run().note
        y = np.array([float(re.search(r"(\d+) decode", n).group(1)) for n in notes])
        return int((y == true_y).sum())

    reading = prep.min_decode.copy()
    assert (reading > 1).sum() >= 15
    # 20 and 8 since the InferenceMAX TensorRT-LLM fp8 rows cache fp8 KV (planner.measured.kv_cache_dtype):
    # 18 and 6 with a bf16 cache (the second 8 before the rows' mean lengths, planner.measured.mean_length)
    assert recovered(reading) == 20
    assert recovered(np.ones(len(r))) == 8


def test_odd_part_and_device_bound():
    """3,584 = 512 x 7 -> 7 workers; 1,024 -> 1; 36 -> 9; 13 -> 13 (one request each); 30 =
    2 x 15 on 16-device workers is 240 devices, beyond the bound -> no reading (1); an unknown
    concurrency -> 1."""
    got = sweep_decode_workers(np.array([3584, 1024, 36, 13, 30, np.nan]), np.array([8, 8, 8, 8, 16, 8]))
    assert got.tolist() == [7.0, 1.0, 9.0, 13.0, 1.0, 1.0]
    assert 15 * 16 > SWEEP_MAX_DECODE_DEVICES >= 13 * 8


def test_more_decode_workers_never_slow_a_request(tmp_path):
    """The reading only adds decode workers (a lower bound): each worker's batch shrinks, so
    TPOT does not grow (monotonicity against the smallest deployment)."""
    header = ("id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,silicon_data_source,"
              "prefill_tp_size,prefill_moe_ep_size,decode_tp_size,decode_moe_ep_size,silicon_ttft_ms,silicon_tpot_ms")
    rows = [f"c{c},trtllm,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,1024,1024,,,silicon_concurrency={c},8,8,8,8,,"
            for c in (13, 36, 88, 576, 3584)]
    p = tmp_path / "d.csv"
    p.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    prep = Prepared(read_measured(str(p)))
    assert prep.min_decode.tolist() == [13.0, 9.0, 11.0, 9.0, 7.0]
    with_reading = prep.run().tpot_s
    prep.min_decode = np.ones(5)
    without = prep.run().tpot_s
    assert np.all(with_reading <= without * (1 + 1e-12)) and np.any(with_reading < 0.9 * without)
