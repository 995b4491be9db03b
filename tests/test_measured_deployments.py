"""The deployment a measured row belongs to (planner.measured.MeasuredRuns.deployments) and the
leave-deployments-out cross-validation of benchmarks/serving_fidelity.py built on it.

Oracles: hand-made CSVs whose deployments are known by construction (rows that differ only in
requests in flight are one deployment; any layout, length, engine-version or device change is
another), the dev file's README (every concurrency of a deployment kept together: no deployment
of the dev file holds two rows at one concurrency and another layout), and a fit that never sees
the rows it predicts (a held-out fold's prediction does not move when its own measurements do)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from planner.measured import read_measured
from planner.replay import Prepared
from planner.serving_fit import as_params, fit_all

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
HEADER = ("id,backend,backend_version,model_path,system,precision,mode,isl,osl,batch_size,tp_size,pp_size,"
          "attention_dp_size,moe_ep_size,prefill_batch_size,prefill_num_workers,prefill_tp_size,decode_batch_size,"
          "decode_num_workers,decode_tp_size,silicon_ttft_ms,silicon_tpot_ms")


def _runs(tmp_path, rows):
    p = tmp_path / "runs.csv"
    p.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return read_measured(str(p))


def test_rows_that_differ_only_in_requests_in_flight_are_one_deployment(tmp_path):
    runs = _runs(tmp_path, [
        "a,vllm,0.12.0,Qwen/Qwen3-32B,h200_sxm,fp8,agg,1024,1024,4,2,1,1,1,,,,,,,100,10",
        "b,vllm,0.12.0,Qwen/Qwen3-32B,h200_sxm,fp8,agg,1024,1024,64,2,1,1,1,,,,,,,300,20",
        "c,vllm,0.12.0,Qwen/Qwen3-32B,h200_sxm,fp8,agg,1024,1024,4,4,1,1,1,,,,,,,90,8",       # tp
        "d,vllm,0.12.0,Qwen/Qwen3-32B,h200_sxm,fp8,agg,1024,8192,4,2,1,1,1,,,,,,,100,10",     # osl
        "e,vllm,0.16.0,Qwen/Qwen3-32B,h200_sxm,fp8,agg,1024,1024,4,2,1,1,1,,,,,,,100,10",     # version
        "f,vllm,0.12.0,Qwen/Qwen3-32B,h100_sxm,fp8,agg,1024,1024,4,2,1,1,1,,,,,,,100,10",     # device
        "g,sglang,0.12.0,Qwen/Qwen3-32B,h200_sxm,fp8,agg,1024,1024,4,2,1,1,1,,,,,,,100,10",   # engine
        # disaggregated: the sides' batch sizes follow the requests in flight, their layouts do not
        "h,trtllm,1.0.0rc3,Qwen/Qwen3-32B,h200_sxm,fp8,disagg,1024,1024,,,,,,1,1,2,8,1,4,100,10",
        "i,trtllm,1.0.0rc3,Qwen/Qwen3-32B,h200_sxm,fp8,disagg,1024,1024,,,,,,2,1,2,64,1,4,200,20",
        "j,trtllm,1.0.0rc3,Qwen/Qwen3-32B,h200_sxm,fp8,disagg,1024,1024,,,,,,1,2,2,8,1,4,100,10",  # workers
    ])
    dep = runs.deployments()
    assert dep[0] == dep[1]
    assert len({int(dep[i]) for i in (0, 2, 3, 4, 5, 6)}) == 6
    assert dep[7] == dep[8] and dep[9] != dep[7]
    assert len(set(dep.tolist())) == 8


def test_the_dev_file_has_its_deployments_over_concurrencies():
    runs = read_measured(str(DEV))
    dep = runs.deployments()
    n = dep.max() + 1
    assert 100 < n < len(runs)  # 408 deployments of 1,294 rows: several concurrencies each
    # within a deployment only the requests in flight (and repeats) differ
    for k in range(n):
        at = dep == k
        for col in (runs.model, runs.system, runs.engine_version, runs.tp, runs.isl, runs.osl):
            assert len(set(col[at].tolist())) == 1


def _fidelity():
    spec = importlib.util.spec_from_file_location("serving_fidelity", ROOT / "benchmarks" / "serving_fidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def test_a_held_out_fold_is_predicted_without_its_own_measurements(tmp_path):
    """Leave-deployments-out on a small file: tripling one deployment's measured TTFT moves the
    in-sample prediction of its rows (the fit sees them) but not the leave-deployments-out one."""
    with open(DEV, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = list(reader)
    ix = {c: header.index(c) for c in ("model_path", "backend", "silicon_ttft_ms")}
    rows = [r for r in body if r[ix["model_path"]] == "Qwen/Qwen3-32B" and r[ix["backend"]] == "trtllm"][:80]
    fid = _fidelity()
    runs = read_measured(_write(tmp_path / "small.csv", header, rows))
    dep = runs.deployments()
    assert dep.max() + 1 >= 2 * fid.DEPLOYMENT_FOLDS
    target = dep == dep[0]
    changed = [list(r) for r in rows]
    for i in np.flatnonzero(target):
        changed[i][ix["silicon_ttft_ms"]] = str(3.0 * float(changed[i][ix["silicon_ttft_ms"]]))
    runs2 = read_measured(_write(tmp_path / "changed.csv", header, changed))
    fit = lambda r: Prepared(r).run(as_params(fit_all(r, strict=False, physical=True)))  # noqa: E731
    assert np.all(np.abs(fit(runs2).ttft_s[target] / fit(runs).ttft_s[target] - 1.0) > 1e-3)  # in sample: moves
    base = fid.leave_deployments_out(Prepared(runs))
    moved = fid.leave_deployments_out(Prepared(runs2))
    np.testing.assert_allclose(moved.ttft_s[target], base.ttft_s[target], rtol=1e-9)
    np.testing.assert_allclose(moved.tpot_s[target], base.tpot_s[target], rtol=1e-9)
    assert np.all(np.isfinite(base.ttft_s)) and np.all(base.ttft_s > 0.0)
