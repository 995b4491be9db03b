"""The requests a serving engine runs at once are capped by its free KV memory
(planner.cost.footprint.kv_running_limit, with the engine's kv_reserve_output).

Oracles: the memory footprint model (a brute-force count of requests that fit) and the
measured dev rows, where TensorRT-LLM's TPOT stops growing with the concurrency once the
cache is full while its TTFT keeps growing (the rest of the requests queue):
Llama-3.1-70B fp8 on one H200, 1024 tokens in, 8192 out: TPOT 27.5 / 30.5 / 30.4 ms and
TTFT 0.45 / 80 / 369 s at 32 / 64 / 128 in flight."""

from __future__ import annotations

import numpy as np

from planner.engine_profiles import load_engine
from planner.measured import read_measured
from planner.replay import Prepared

HEADER = "id,backend,model_path,system,precision,mode,isl,osl,gemm_quant_mode,batch_size,tp_size,silicon_ttft_ms,silicon_tpot_ms"


def _rows(tmp_path, engine: str, concurrencies, isl=1024, osl=8192, tp=1):
    lines = [f"c{c},{engine},meta-llama/Llama-3.1-70B-Instruct,h200_sxm,fp8,agg,{isl},{osl},fp8,{c},{tp},,"
             for c in concurrencies]
    p = tmp_path / f"{engine}.csv"
    p.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return read_measured(str(p))


def _limit(prep: Prepared, reserve: float):
    from planner.cost.context import Ctx
    from planner.cost.footprint import kv_running_limit
    from planner.cost.tables import HardwareTable

    ht = HardwareTable.build([prep.hw[g] for g in prep.gnames])
    x = Ctx(prep.cols, prep.mt, ht)
    P, G = prep.runs.isl[prep.idx].astype(float), prep.runs.osl[prep.idx].astype(float)
    return x, P, G, kv_running_limit(x, 1.0, P, G, False, reserve)


def test_the_limit_is_the_largest_count_whose_kv_fits(tmp_path):
    """Brute force over the memory footprint: n requests at P + reserve x G tokens fit
    beside the weights, the reserve and the activations; n + 1 do not."""
    from planner.cost.footprint import memory_footprint

    prep = Prepared(_rows(tmp_path, "trtllm", [64]))
    for reserve in (1.0, 0.5):
        x, P, G, n = _limit(prep, reserve)
        assert 1 <= n[0] < 1000
        for count, fits in ((n, True), (n + 1, False)):
            weights, kv, acts, res, total, cap = memory_footprint(x, count, 1.0, P, reserve * G, False, 1.0)
            # activations of one request, as the limit counts them
            w1, _, a1, r1, _, _ = memory_footprint(x, 1.0, 1.0, P, reserve * G, False, 1.0)
            assert bool((w1 + r1 + a1 + kv <= cap)[0]) is fits


def test_on_demand_allocation_runs_more_requests_than_full_reservation(tmp_path):
    prep = Prepared(_rows(tmp_path, "trtllm", [64]))
    assert _limit(prep, 0.5)[3][0] > _limit(prep, 1.0)[3][0]
    assert load_engine("trtllm").kv_reserve_output == 1.0 > load_engine("vllm").kv_reserve_output


def test_tpot_plateaus_and_ttft_grows_once_the_cache_is_full(tmp_path):
    """As measured (module docstring): beyond the cached requests TPOT stays, TTFT grows."""
    prep = Prepared(_rows(tmp_path, "trtllm", [64, 128, 256]))
    pred = prep.run()
    tpot, ttft = pred.tpot_s, pred.ttft_s
    assert np.all(np.isfinite(tpot)) and np.all(np.isfinite(ttft))
    assert abs(tpot[1] / tpot[0] - 1.0) < 0.02 and abs(tpot[2] / tpot[1] - 1.0) < 0.02
    assert ttft[1] > 2.0 * ttft[0] and ttft[2] > 1.8 * ttft[1]
