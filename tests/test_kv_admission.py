"""How each engine admits requests into its KV cache (planner.engine_profiles
``kv_admission``, ``kv_memory_fraction`` / ``kv_memory_of``, ``kv_dtype_auto``;
planner.cost.footprint.kv_pool_bytes; planner.cost.running).

Oracles: the engines' documented defaults (their YAML files cite them), a brute-force
block allocator on small cases, the measured dev rows (Llama-3.1-70B fp8 on one H200:
no queue where the measured TTFT stays below a second, a queue where it jumps to tens
of seconds), and the discrete-event simulator on a grid where the KV cache caps the
running set."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.engine_profiles import load_engine
from planner.errors import InputError
from planner.measured import read_measured
from planner.replay import Prepared

HEADER = "id,backend,model_path,system,precision,mode,isl,osl,gemm_quant_mode,batch_size,tp_size,silicon_ttft_ms,silicon_tpot_ms"


def test_documented_defaults_are_read_from_the_engine_files():
    trt, vllm, sgl = load_engine("trtllm"), load_engine("vllm"), load_engine("sglang")
    # TensorRT-LLM: GUARANTEED_NO_EVICT, free_gpu_memory_fraction 0.9 of the free memory
    assert (trt.kv_admission, trt.kv_memory_fraction, trt.kv_memory_of) == ("reserve", 0.9, "free")
    # vLLM: paged blocks on demand with preemption, gpu_memory_utilization 0.9 of the device
    assert (vllm.kv_admission, vllm.kv_memory_fraction, vllm.kv_memory_of) == ("on_demand", 0.9, "total")
    # SGLang: token pool on demand with retraction, mem_fraction_static 0.88
    assert (sgl.kv_admission, sgl.kv_memory_fraction, sgl.kv_memory_of) == ("on_demand", 0.88, "total")
    assert (trt.kv_dtype_auto, vllm.kv_dtype_auto, sgl.kv_dtype_auto) == ("checkpoint", "checkpoint", "activations")
    for e in (trt, vllm, sgl):
        for key in ("kv_admission", "kv_memory_fraction", "kv_memory_of", "kv_dtype_auto"):
            if key in e.model_fields_set:
                assert e.sources.get(key), (e.name, key)


def test_an_admission_policy_that_contradicts_the_reservation_is_refused(tmp_path):
    text = (load_engine("trtllm").model_dump_json())
    import json

    data = json.loads(text)
    data["kv_reserve_output"] = 0.5  # reserve admission holds the whole length
    import yaml

    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_engine(str(p))
    assert "kv_admission" in str(err.value)


def _rows(tmp_path, engine: str, concurrencies, isl=1024, osl=8192, tp=1, model="meta-llama/Llama-3.1-70B-Instruct",
          quant="fp8"):
    lines = [f"c{c},{engine},{model},h200_sxm,fp8,agg,{isl},{osl},{quant},{c},{tp},," for c in concurrencies]
    p = tmp_path / f"{engine}-{isl}-{osl}.csv"
    p.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return read_measured(str(p))


def _ctx(prep: Prepared):
    from planner.cost.context import Ctx
    from planner.cost.tables import HardwareTable

    return Ctx(prep.cols, prep.mt, HardwareTable.build([prep.hw[g] for g in prep.gnames]))


def _running(prep: Prepared):
    from planner.cost.running import running_limit

    x = _ctx(prep)
    c = prep.cols
    P, G = prep.runs.isl[prep.idx].astype(float), prep.runs.osl[prep.idx].astype(float)
    return running_limit(x, np.full(len(P), 1e9), c["kv_reserve"], 1.0, P, G, np.zeros(len(P), bool),
                         c["kv_fraction"], c["kv_of_free"])


@pytest.mark.parametrize("engine", ["trtllm", "vllm", "sglang"])
def test_the_running_set_is_what_a_block_allocator_admits(tmp_path, engine):
    """Brute force: a pool of whole KV blocks sized by the engine's documented rule
    (TensorRT-LLM 0.9 of the memory free after weights and activations; vLLM / SGLang
    their fraction of the device less weights and activations), requests admitted one
    at a time. Reserve: each takes the blocks of its whole length. On demand: the
    requests of a desynchronized closed loop hold the blocks of their current tokens,
    at ages spread evenly over their output, so the pool holds as many as fit with
    those staggered occupancies. The analytic count matches within one request
    (reserve) and 3% (on demand: the blocks' rounding and the age spread)."""
    from planner.cost.footprint import kv_cache_bytes_per_device, memory_footprint

    eng = load_engine(engine)
    block = eng.kv_block_tokens
    for P, G in ((1024, 1024), (2048, 512), (1024, 8192)):
        prep = Prepared(_rows(tmp_path, engine, [64], isl=P, osl=G))
        x = _ctx(prep)
        n = float(_running(prep)[0])
        weights, _, acts, _, _, cap = (float(np.asarray(v).ravel()[0]) for v in
                                       memory_footprint(x, 1.0, 1.0, float(P), float(G), False, 1.0))
        f = eng.kv_memory_fraction
        pool = f * (cap - weights - acts) if eng.kv_memory_of == "free" else f * cap - weights - acts
        per_token = float(np.asarray(kv_cache_bytes_per_device(x, 1.0, 1.0, 1.0, 0.0, False)).ravel()[0])
        blocks = int(pool // (per_token * block))
        if eng.kv_admission == "reserve":
            need, count = math.ceil((P + G) / block), 0
            while (count + 1) * need <= blocks:
                count += 1
            assert abs(n - count) <= 1, (engine, P, G, n, count)
        else:
            def fits(k):
                ages = (np.arange(k) + 0.5) * G / k  # tokens generated so far, spread over the output
                return int(np.sum(np.ceil((P + ages) / block))) <= blocks
            count = 1
            while fits(count + 1):
                count += 1
            assert abs(n / count - 1) < 0.03, (engine, P, G, n, count)


def _with_kv(prep: Prepared, kv: str) -> Prepared:
    from planner.cost.tables import DTYPE_CODE

    prep.cols["kv_dtype"] = np.full(len(prep.idx), DTYPE_CODE[kv], dtype=np.int64)
    return prep


def test_measured_queues_start_where_an_fp8_cache_is_full(tmp_path):
    """Llama-3.1-70B fp8, one H200, 1024 in / 8192 out. TensorRT-LLM measured TTFT 0.45 s
    at 32 in flight and 80 s at 64 (a queue); vLLM 0.47 s at 32 and 5.3 s at 64 (its
    cache holds them). With each engine's admission rule and memory fraction, a bf16
    cache would hold fewer than 32 (TensorRT-LLM) and 64 (vLLM) requests, against the
    measurements; the fp8 cache the checkpoint asks for (``kv_dtype_auto: checkpoint``)
    holds 32 to 63 under TensorRT-LLM and 64 or more under vLLM, as measured."""
    assert load_engine("trtllm").kv_dtype_auto == load_engine("vllm").kv_dtype_auto == "checkpoint"
    trt = Prepared(_rows(tmp_path, "trtllm", [32, 64]))
    assert np.all(_running(trt) < 32)  # the replay's bf16 cache
    fp8 = _running(_with_kv(trt, "fp8"))
    assert np.all((fp8 >= 32) & (fp8 < 64))
    vllm = Prepared(_rows(tmp_path, "vllm", [64]))
    assert _running(vllm)[0] < 64 <= _running(_with_kv(vllm, "fp8"))[0]


@pytest.mark.parametrize("engine", ["trtllm", "vllm"])
def test_simulator_and_closed_loop_share_the_engine_running_set(engine):
    """On a grid where each engine's KV pool caps the running set, the discrete-event
    simulator (requests admitted one by one up to the cap) and the analytic closed loop
    agree on mean TTFT within 10% and TPOT within 5%; TTFT grows with the concurrency."""
    from planner.catalog import load_hardware, load_model
    from planner.cost.api import estimate
    from planner.cost.serving_api import simulate_estimate

    eng = load_engine(engine)
    model, hw = load_model("llama-3.1-70b"), load_hardware("h200")
    last = 0.0
    for C, P, G in ((96, 1024, 2048), (160, 1024, 2048), (96, 4096, 1024)):
        kw = dict(devices=1, concurrency=C, prompt_len=P, gen_len=G, weight_dtype="fp8")
        est = estimate(model, hw, engine=eng, arrival="closed", **kw)
        sim = simulate_estimate(model, hw, engine=eng, arrival="closed", **kw)
        assert abs(est["ttft_s"] / sim["ttft"]["mean_s"] - 1) < 0.10, (engine, C, P, G)
        assert abs(est["tpot_s"] / sim["tpot"]["mean_s"] - 1) < 0.05, (engine, C, P, G)
        if P == 1024:
            assert est["ttft_s"] > last
            last = est["ttft_s"]


def test_a_file_that_gives_only_the_reservation_keeps_its_policy():
    from planner.engine_profiles import EngineProfile

    data = load_engine("trtllm").model_dump()
    data.pop("kv_admission")
    assert EngineProfile(**data).kv_admission == "reserve"
    data["kv_reserve_output"] = 0.5
    assert EngineProfile(**data).kv_admission == "on_demand"
