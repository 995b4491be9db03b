"""Diagnostic loop for the decode-step physics: where TPOT is wrong on measured runs.

Fits the pooled serving parameters in sample (planner.serving_fit.fit_all, physical
bounds; or ``--datasheet``: no fit), then prints the TPOT error, log(predicted /
measured), by bins of the quantities a decode step depends on: requests in flight, the
decode step's weight bytes and KV bytes per device, MoE token slots per touched expert,
precision, device, engine, model, tensor-parallel size, and the share of the pure decode
step that is KV reads. A physical effect the model lacks shows as a trend of the median
residual along one of them. Run:

    python benchmarks/decode_residuals.py [FILE.csv] [--datasheet] [--rows]

(~20-40 s: one pooled fit). ``--rows`` also prints the 25 worst rows. The decode step is taken
apart with the replay's own parameter set (fitted kernel time and link efficiency included), so
its parts add up to the pure decode step the engine predicts; what the closed loop adds on top
(the other requests' prefill chunks in the mixed steps) is its own table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from planner.measured import read_measured
from planner.replay import Prepared
from planner.serving_fit import as_params, fit_all

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


def decode_features(prep: Prepared, params) -> dict:
    """Per predictable aggregated row: the pure decode step's parts at the mean decode
    context (weights and KV bytes per device, times by kernel class), from the engine's
    own functions."""
    from planner import serving_params as SP
    from planner.cost.context import Ctx
    from planner.cost.interconnect import allreduce_s
    from planner.cost.passes import dense_kernels, launch_overhead_s
    from planner.cost.steps import attention_time
    from planner.cost.tables import HardwareTable
    from planner.cost.weights import touched_experts

    sets = prep.parameter_sets(params)
    # the replay's own efficiencies (fitted kernel time and link efficiency included)
    effs = [SP.efficiency(prep.hw[g], v, name) for g, (name, v) in zip(prep.gnames, sets)]
    ht = HardwareTable.build([prep.hw[g] for g in prep.gnames], effs)
    x = Ctx(prep.cols, prep.mt, ht)
    C = prep.C.astype(float)
    P, G = prep.isl.astype(float), prep.osl.astype(float)  # the replay's (mean) lengths
    ctx = P + 1.0 + 0.5 * (G - 1.0)
    t_lin, _, _, _, w_bytes, _ = dense_kernels(x, C, 1.0, C)
    t_att = attention_time(x, C, ctx, 0.0, 0.0)
    t_comm = allreduce_s(x, C, 1.0)
    t_ovh = launch_overhead_s(x, 1.0)
    M = x.model
    kv_bytes = C / x.attn_dp * M["layers"] * np.minimum(ctx, x.kv_cap_global) * x.kv_bytes_per_token_layer / x.kv_shard
    touched = touched_experts(x, C)
    tpe = np.where(touched > 0, C * M["experts_per_token"] / np.maximum(touched, 1e-30), np.nan)
    host = np.array([v["step_host_s"] for _, v in sets])[prep.g_idx]
    t_dec = (t_lin + t_att + t_comm + t_ovh) * x.hw["time_scale"] + host  # the pure decode step (steps.step_time)
    return {"t_lin": t_lin, "t_att": t_att, "t_comm": t_comm, "t_ovh": t_ovh, "host": host, "w_bytes": w_bytes,
            "kv_bytes": kv_bytes, "tok_per_expert": tpe, "t_dec": t_dec}


def table(title, key, r, bins=None, fmt=str):
    """Median / p90 of |r| and the signed median of r by value (or bin) of ``key``."""
    print(f"\n{title}")
    print(f"  {'value':<22} {'rows':>5} {'med':>7} {'|med|':>6} {'p90':>6}")
    if bins is not None:
        idx = np.digitize(key, bins)
        labels = [f"<{fmt(bins[0])}"] + [f"{fmt(a)}-{fmt(b)}" for a, b in zip(bins[:-1], bins[1:])] + [f">={fmt(bins[-1])}"]
        keys = [(labels[i], idx == i) for i in range(len(labels))]
    else:
        keys = [(str(v), key == v) for v in sorted(set(key.tolist()))]
    for label, sel in keys:
        sel = sel & np.isfinite(r)
        if sel.sum() == 0:
            continue
        a = r[sel]
        print(f"  {label:<22} {sel.sum():>5} {np.median(a):>+7.1%} {np.median(np.abs(a)):>6.1%} "
              f"{np.percentile(np.abs(a), 90):>6.1%}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    ap.add_argument("--datasheet", action="store_true", help="no fit: the datasheet parameters")
    ap.add_argument("--rows", action="store_true", help="also print the 25 worst rows")
    args = ap.parse_args(argv)
    runs = read_measured(args.file)
    prep = Prepared(runs)
    t0 = time.perf_counter()
    if args.datasheet:
        params = {}
    else:
        fits = fit_all(runs, strict=False, physical=True, prep=prep)
        params = as_params(fits)
        for g, f in sorted(fits.items()):
            print(f"  {g}: " + ", ".join(f"{k} {v:.3g}" for k, v in f.values.items()))
    pred = prep.run(params)
    print(f"fit + run {time.perf_counter() - t0:.1f} s")
    idx = prep.idx
    agg = ~prep.dis
    meas = runs.measured_tpot_s[idx]
    e_all = pred.tpot_s[idx] / meas - 1.0
    ok = np.isfinite(e_all)
    print(f"TPOT all predicted rows: median |err| {np.median(np.abs(e_all[ok])):.1%}, p90 "
          f"{np.percentile(np.abs(e_all[ok]), 90):.1%} ({ok.sum()} rows)")
    feats = decode_features(prep, params)
    e = np.where(agg, e_all, np.nan)
    C = prep.C.astype(float)
    table("requests in flight", C, e, bins=[2, 5, 9, 17, 33, 65, 129, 257], fmt=lambda v: f"{v:g}")
    table("model", prep.model[idx], e)
    table("device", prep.device[idx], e)
    table("engine", runs.engine[idx], e)
    table("precision", runs.quant[idx], e)
    table("tp", runs.tp[idx], e)
    pair = lambda a, b: np.array([f"{u}/{v}" for u, v in zip(a, b)], dtype=object)  # noqa: E731
    table("device/precision", pair(prep.device[idx], runs.quant[idx]), e)
    table("device/model", pair(prep.device[idx], prep.model[idx]), e)
    table("weight GB/device/step", feats["w_bytes"] / 1e9, e, bins=[2, 5, 10, 20, 40, 80], fmt=lambda v: f"{v:g}")
    table("KV GB/device/step", feats["kv_bytes"] / 1e9, e, bins=[0.1, 0.3, 1, 3, 10, 30], fmt=lambda v: f"{v:g}")
    table("KV share of decode step (model)", feats["t_att"] / feats["t_dec"], e, bins=[0.05, 0.1, 0.2, 0.4, 0.6],
          fmt=lambda v: f"{v:g}")
    table("host share of decode step", feats["host"] / feats["t_dec"], e, bins=[0.05, 0.1, 0.2, 0.4],
          fmt=lambda v: f"{v:g}")
    # what the closed loop adds to the pure decode step: the other requests' prefill chunks
    # in the mixed steps a request lives through (and the KV running cap's running set)
    mixed = 1.0 - feats["t_dec"] / pred.tpot_s[idx]
    table("mixed-step share of predicted TPOT", mixed, e, bins=[0.02, 0.1, 0.2, 0.35, 0.5], fmt=lambda v: f"{v:g}")
    table("MoE slots per touched expert", feats["tok_per_expert"], e, bins=[1.5, 3, 6, 12, 24, 48],
          fmt=lambda v: f"{v:g}")
    table("isl", runs.isl[idx], e)
    table("osl", runs.osl[idx], e)
    if args.rows:
        order = np.argsort(-np.abs(np.nan_to_num(e)))[:25]
        print("\nworst rows: id, C, tp, pred ms, meas ms, t_lin t_att t_comm t_ovh host t_dec (ms)")
        for i in order:
            print(f"  {runs.ids[idx[i]]:<60} {C[i]:>5g} {runs.tp[idx[i]]:>3g} {pred.tpot_s[idx[i]] * 1e3:>7.2f} "
                  f"{meas[i] * 1e3:>7.2f}  " + " ".join(f"{feats[k][i] * 1e3:6.2f}" for k in
                                                      ("t_lin", "t_att", "t_comm", "t_ovh", "host", "t_dec")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
