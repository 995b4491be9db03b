"""Diagnostic loop for the prefill physics: where TTFT is wrong when queueing is small.

Fits the pooled serving parameters in sample (planner.serving_fit.fit_all, physical
bounds), then, on the aggregated rows with at most ``--max-in-flight`` requests in flight
(default 8), compares the measured TTFT with the model's GPU time (its TTFT less the
fitted ``request_overhead_s``). Per (device/engine, model, precision, tensor-parallel
size) it prints the median residual (measured - GPU time, ms) and the least-squares line
``measured = a + b x GPU time`` over the prompt lengths: ``b`` > 1 says the model's
prefill grows too slowly with the prompt (too cheap per token), ``b`` < 1 too fast, and
``a`` is the floor the overhead must stand for. ``TF/dev`` is what the measurements
imply per added prompt token: the layers' matmul FLOPs per token (``2 x`` active matmul
weights, LM head excluded, attention not counted) over the measured TTFT's least-squares
slope in the prompt length, per device (TFLOP/s): the achieved prefill GEMM rate,
comparable across models (e.g. dense fp8 Llama-3.1-70B against the MoE deployments).
Run:

    python benchmarks/prefill_residuals.py [FILE.csv] [--max-in-flight N] [--rows]

(~40-60 s: one pooled fit). ``--rows`` also prints every row.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from planner.measured import read_measured
from planner.replay import Prepared, in_flight
from planner.serving_fit import as_params, fit_all

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    ap.add_argument("--max-in-flight", type=float, default=8.0, metavar="N",
                    help="the most requests in flight a row may have (default: %(default)s)")
    ap.add_argument("--rows", action="store_true", help="also print every row")
    args = ap.parse_args(argv)
    show_rows, cap, path = args.rows, args.max_in_flight, args.file
    t0 = time.perf_counter()
    runs = read_measured(path)
    prep = Prepared(runs)
    fits = fit_all(runs, strict=False, physical=True, prep=prep)
    params = as_params(fits)
    pred = prep.run(params)
    overhead = {g: v["request_overhead_s"] for g, (_, v) in params.items()}
    ovh = np.array([overhead.get(g, np.nan) for g in prep.group])
    C = in_flight(runs)
    gpu_ms = (pred.ttft_s - ovh) * 1e3
    meas_ms = runs.measured_ttft_s * 1e3
    ok = (pred.status == "ok") & (runs.mode == "agg") & (C <= cap) & np.isfinite(gpu_ms) & (meas_ms > 0)
    pos = np.searchsorted(prep.idx, np.arange(len(runs)))  # row -> position among the predictable rows
    matmul = prep.mt.cols["matmul_active"] - prep.mt.cols["lm_head"]  # per token: 2 x these FLOPs
    groups = defaultdict(list)
    for i in np.flatnonzero(ok):
        groups[(pred.group[i], pred.model[i], runs.quant[i], int(runs.tp[i]))].append(i)
    print(f"aggregated rows with <= {cap:g} requests in flight: {int(ok.sum())}; residual = measured - GPU time (ms)")
    print(f"{'device/engine':<17} {'model':<20} {'precision':<10} {'tp':>3} {'rows':>4} {'prompts':<17} "
          f"{'resid':>6} {'gpu ms':>11} {'a (ms)':>7} {'b':>5} {'TF/dev':>6}")
    for key, ix in sorted(groups.items()):
        ix = np.array(ix)
        isl = sorted(set(runs.isl[ix].astype(int).tolist()))
        res = np.median(meas_ms[ix] - gpu_ms[ix])
        line = ""
        if len(isl) > 1:
            (a, b), *_ = np.linalg.lstsq(np.c_[np.ones(ix.size), gpu_ms[ix]], meas_ms[ix], rcond=None)
            (_, ms_per_tok), *_ = np.linalg.lstsq(np.c_[np.ones(ix.size), runs.isl[ix]], meas_ms[ix], rcond=None)
            j = pos[ix[0]]
            devices = prep.cols["devices"][j] * prep.cols["attn_dp"][j]
            tflops = 2.0 * matmul[prep.cols["model"][j]] / (ms_per_tok * 1e-3) / devices / 1e12
            line = f"{a:7.0f} {b:5.2f} {tflops:6.0f}" if ms_per_tok > 0 else f"{a:7.0f} {b:5.2f} {'-':>6}"
        print(f"{key[0]:<17} {key[1]:<20} {key[2]:<10} {key[3]:>3} {ix.size:>4} {','.join(map(str, isl)):<17} "
              f"{res:+6.0f} {gpu_ms[ix].min():5.0f}-{gpu_ms[ix].max():<5.0f} {line}")
        if show_rows:
            for i in ix:
                print(f"    c{C[i]:<3.0f} {runs.isl[i]:>5.0f}/{runs.osl[i]:<5.0f} measured {meas_ms[i]:8.1f} "
                      f"gpu {gpu_ms[i]:8.1f}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
