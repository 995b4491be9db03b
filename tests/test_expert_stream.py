"""The ceiling on the routed experts' weight stream (planner.serving_params
``expert_stream_bytes_per_s``): the fit recovers a synthetic ceiling from synthetic runs
of a dense and an MoE model, a lower ceiling never makes an MoE step faster, a dense model
never sees it, and a parameter set without it (a profile written before it) predicts as
with no ceiling at all."""

from __future__ import annotations

import numpy as np
import pytest

from planner import serving_params as SP
from planner.measured import read_measured
from planner.replay import Prepared
from planner.serving_fit import OPT_IN, fit_all

HEADER = "id,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,silicon_ttft_ms,silicon_tpot_ms"
# the dense weights near the h100 fit (0.85 x 3.35 TB/s), the experts' ceiling below them
TRUE = {"memory_efficiency": 0.85, "compute_efficiency": 0.5, "step_host_s": 0.001, "wave_sync": 0.4,
        "request_overhead_s": 0.04, "kernel_time_s": 7e-6, "link_efficiency": 0.4,
        "expert_stream_bytes_per_s": 2.0e12}
GRID = [(m, isl, osl, c, tp) for m, tps in (("meta-llama/Llama-3.1-8B-Instruct", (1, 2)),
                                            ("Qwen/Qwen3-30B-A3B", (1, 2)))
        for isl, osl in ((1024, 1024), (4096, 256)) for c in (1, 8, 64) for tp in tps]


def _hw():
    from planner.catalog import load_hardware

    return load_hardware("h100-sxm")


def _rows_file(tmp_path, name="grid.csv") -> str:
    rows = [f"r{i},vllm,{m},h100_sxm,,agg,{isl},{osl},{c},{tp},,"
            for i, (m, isl, osl, c, tp) in enumerate(GRID)]
    p = tmp_path / name
    p.write_text("\n".join([HEADER, *rows]) + "\n")
    return str(p)


def _predict(path, values):
    prep = Prepared(read_measured(path))
    pred = prep.run({"h100-sxm/vllm": ("v", {**SP.defaults(_hw()), **values})})
    assert (pred.status == "ok").all()
    return prep, pred


def test_fit_recovers_a_synthetic_expert_stream_rate(tmp_path):
    """'Measurements' made by the replay under TRUE: the pooled fit gives the experts' rate
    back, apart from the dense memory fraction (the dense rows pin that one)."""
    grid = _rows_file(tmp_path)
    _, pred = _predict(grid, TRUE)
    lines = open(grid).read().splitlines()
    out = [HEADER] + [f"{r.rsplit(',', 2)[0]},{t * 1e3:.9g},{q * 1e3:.9g}"
                      for r, t, q in zip(lines[1:], pred.ttft_s, pred.tpot_s)]
    path = tmp_path / "synthetic.csv"
    path.write_text("\n".join(out) + "\n")
    f = fit_all(read_measured(str(path)), extra=OPT_IN)["h100-sxm/vllm"]
    assert f.values["expert_stream_bytes_per_s"] == pytest.approx(2.0e12, rel=0.03)
    assert f.values["memory_efficiency"] == pytest.approx(0.85, rel=0.03)
    assert f.rms_log_tpot < 1e-3 and f.problems == []
    # the shipped fit does not take it (OPT_IN): the ceiling keeps its inactive default
    plain = fit_all(read_measured(str(path)))["h100-sxm/vllm"]
    assert plain.values["expert_stream_bytes_per_s"] == SP.defaults(_hw())["expert_stream_bytes_per_s"]


def test_slower_expert_stream_never_speeds_an_moe_step_and_leaves_dense_alone(tmp_path):
    prep, _ = _predict(_rows_file(tmp_path), TRUE)
    moe = np.array([m == "qwen3-30b-a3b" for m in prep.model])
    assert moe.any() and (~moe).any()
    tpots = [_predict(_rows_file(tmp_path), {**TRUE, "expert_stream_bytes_per_s": r})[1].tpot_s
             for r in (0.5e12, 1e12, 1.5e12, 2e12, 2.5e12, 4e12)]
    for slow, fast in zip(tpots, tpots[1:]):
        assert (fast[moe] <= slow[moe]).all()
        np.testing.assert_array_equal(fast[~moe], slow[~moe])  # a dense model reads no expert
    # at one request in flight an MoE decode step is weight-bound: strictly faster
    one = moe & (read_measured(_rows_file(tmp_path)).concurrency == 1)
    assert (tpots[-1][one] < tpots[0][one]).all()


def test_a_set_without_the_parameter_has_no_ceiling(tmp_path):
    """A profile written before the parameter existed predicts exactly as before it: the
    experts at the memory fraction's rate (the default ceiling, the datasheet bandwidth,
    is above any achieved rate)."""
    path = _rows_file(tmp_path)
    old = {k: v for k, v in TRUE.items() if k != "expert_stream_bytes_per_s"}
    prep = Prepared(read_measured(path))
    without = prep.run({"h100-sxm/vllm": ("v", old)})
    same = prep.run({"h100-sxm/vllm": ("v", {**old, "expert_stream_bytes_per_s": 19e12})})
    np.testing.assert_array_equal(without.tpot_s, same.tpot_s)
    np.testing.assert_array_equal(without.ttft_s, same.ttft_s)
    assert SP.defaults(_hw())["expert_stream_bytes_per_s"] == _hw().mem_bandwidth_gbps * 1e9


def test_one_ceiling_per_die_in_the_pooled_fit():
    """h100-sxm and h200 are both GH100: the pooled fit keeps one ceiling for the two, while
    the device's memory fraction stays its own."""
    from planner.catalog import load_hardware

    h100, h200 = load_hardware("h100-sxm"), load_hardware("h200")
    assert SP.owner("expert_stream_bytes_per_s", h100, "vllm") == SP.owner("expert_stream_bytes_per_s", h200, "sglang")
    assert SP.owner("memory_efficiency", h100, "vllm") != SP.owner("memory_efficiency", h200, "vllm")


def test_a_fitted_ceiling_reaches_the_cost_engine_through_the_profile():
    """A serving profile carries the ceiling in its calibration fields, so estimate and
    recommend cost with it too; a zero ceiling is refused naming the parameter."""
    from planner.calibrate.apply import profile_to_efficiency
    from planner.serving_profile import to_profile

    prof = to_profile(_hw(), "vllm", TRUE, {"file": "synthetic"}, {}, "2026-01-01")
    eff = profile_to_efficiency(prof, _hw())
    assert eff.expert_bytes_per_s == pytest.approx(2.0e12)
    assert eff.expert_bytes_per_s == SP.efficiency(_hw(), TRUE, "x").expert_bytes_per_s
    assert SP.check({"expert_stream_bytes_per_s": 0.0})[0].startswith("expert_stream_bytes_per_s = 0")
