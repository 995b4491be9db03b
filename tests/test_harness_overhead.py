"""The request overhead by benchmark harness (planner.serving_params.HARNESS_OVERHEAD): the
harness family read from a row's provenance (planner.measured.harness_family) on the dev
file's real provenance strings, and the pooled fit recovering two known overheads (one per
harness) from synthetic runs whose 'measurements' are the replay's own predictions."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from planner import serving_params as SP
from planner.catalog import load_hardware
from planner.measured import GAP_ANALYSIS, INFERENCEMAX, harness_family, read_measured
from planner.replay import Prepared

DEV = "../shared/data/serving-measured-hopper-dev.csv"
HEADER = ("id,silicon_data_source,backend,model_path,system,precision,mode,isl,osl,batch_size,tp_size,"
          "random_range_ratio,silicon_ttft_ms,silicon_tpot_ms")  # fixed lengths on both: only the harness differs
SOURCES = {INFERENCEMAX: "measured=x;wip=1;silicon_concurrency=8",
           GAP_ANALYSIS: "source_file=/u/aic-auto-gap-analysis/data/h200_sxm/vllm/a.csv;silicon_concurrency=8"}
TRUTH = {"request_overhead_s": 0.15, "inferencemax_overhead_s": 0.07, "step_host_s": 0.0008, "wave_sync": 0.3}


@pytest.mark.parametrize("source, family", [
    ("config_id=3;measured=1;silicon_concurrency=4;workflow_run_id=123", INFERENCEMAX),
    ("image=x;measured=1;model=m;silicon_concurrency=4;source_file=a.csv;wip=0", INFERENCEMAX),
    ("aic_database_mode=silicon;silicon_concurrency=8;source_file=kimi-k2.5-gap-analysis.csv", INFERENCEMAX),
    ("silicon_concurrency=8;source_file=/Users/x/aic-auto-gap-analysis/data/h100_sxm/trtllm/1.0/r.csv", GAP_ANALYSIS),
    ("gtl_job_id=1;gtl_task_id=2;source_file=/Users/x/aic-auto-gap-analysis/data/h100_sxm/trtllm/1.2/r.csv", ""),
    ("", ""),
])
def test_harness_family_of_provenance(source, family):
    assert harness_family(source) == family


def test_dev_file_every_engine_has_rows_of_both_harnesses():
    runs = read_measured(DEV)
    n = collections.Counter(zip(runs.engine, runs.harness))
    for engine in ("vllm", "sglang", "trtllm"):
        assert n[(engine, INFERENCEMAX)] >= 100 and n[(engine, GAP_ANALYSIS)] >= 100, engine
    assert sum(v for (_, h), v in n.items() if not h) < 20  # the Dynamo jobs: the engine's overhead


def test_pooled_fit_recovers_one_overhead_per_harness(tmp_path):
    """Rows of both harnesses on one device, generated with different overheads: the fit
    gives each harness its own, and a row of an unknown harness the engine's."""
    from planner.serving_fit import fit_all

    grid = [(m, isl, osl, c, tp) for m, tp in (("meta-llama/Llama-3.1-8B-Instruct", 1), ("Qwen/Qwen3-32B", 2))
            for isl, osl in ((1024, 1024), (4096, 256)) for c in (1, 16, 64)]
    rows = [f"{h}-{i},{SOURCES[h]},vllm,{m},h200_sxm,,agg,{isl},{osl},{c},{tp},1,,"
            for h in SOURCES for i, (m, isl, osl, c, tp) in enumerate(grid)]
    grid_csv = tmp_path / "grid.csv"
    grid_csv.write_text("\n".join([HEADER, *rows]) + "\n")
    truth = {"h200/vllm": ("truth", {**SP.defaults(load_hardware("h200")), **TRUTH})}
    prep = Prepared(read_measured(str(grid_csv)))
    pred = prep.run(truth)
    assert (pred.status == "ok").all()
    # the overhead is added once to TTFT: same rows, only the harness differs
    half = len(grid)
    np.testing.assert_allclose(pred.ttft_s[:half] - pred.ttft_s[half:], 0.07 - 0.15, rtol=1e-9)
    path = tmp_path / "two-harnesses.csv"
    path.write_text("\n".join([HEADER] + [f"{r.rsplit(',', 2)[0]},{t * 1e3:.9g},{q * 1e3:.9g}"
                                          for r, t, q in zip(rows, pred.ttft_s, pred.tpot_s)]) + "\n")
    fit = fit_all(read_measured(str(path)))["h200/vllm"].values
    assert fit["request_overhead_s"] == pytest.approx(0.15, abs=3e-3)
    assert fit["inferencemax_overhead_s"] == pytest.approx(0.07, abs=3e-3)
    # a profile written before the parameter existed: InferenceMAX rows take the engine's
    old = {k: v for k, v in truth["h200/vllm"][1].items() if k != "inferencemax_overhead_s"}
    np.testing.assert_allclose(prep.run({"h200/vllm": ("old", old)}).ttft_s[:half], pred.ttft_s[half:], rtol=1e-9)
