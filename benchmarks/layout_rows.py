"""How the measured rows with expert parallelism, attention data parallelism or
disaggregated prefill/decode come out (a development check: nothing is fitted; datasheet
efficiencies, each row's engine profile at its documented defaults, closed loop).

Reads ../shared/data/serving-measured-hopper-dev.csv with the csv module; the layout
reading is the README's table ("Layouts of the measured data"). Prints the median
|error| and median signed error of TTFT and TPOT by layout kind, and the rows that
cannot be predicted with the reason.

    python benchmarks/layout_rows.py
"""

from __future__ import annotations

import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner.catalog import load_hardware, load_model  # noqa: E402
from planner.cost.api import columns, estimate  # noqa: E402
from planner.cost.disagg import disaggregated_rows  # noqa: E402
from planner.cost.tables import HardwareTable, ModelTable  # noqa: E402
from planner.engine_profiles import load_engine  # noqa: E402
from planner.errors import InputError  # noqa: E402
from planner.measured import FP4_OR_BF16, dtypes_for  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


def num(v, default=1.0):
    return float(v) if v not in ("", None) and float(v) > 0 else default


def layout(r, prefix, moe):
    """(tp, attn_dp, ep) of one worker from the CSV's layout columns (README table)."""
    tp = int(num(r[prefix + "tp_size"]))
    a = int(num(r[prefix + "attention_dp_size"]))
    if not moe:
        return tp, a, 1
    moe_tp, ep = int(num(r[prefix + "moe_tp_size"])), int(num(r[prefix + "moe_ep_size"]))
    if moe_tp * ep > tp * a and (moe_tp * ep) % tp == 0:  # attention DP not recorded (vLLM rows)
        a = moe_tp * ep // tp
    return tp, a, ep


def kind(tp, a, ep):
    return ("EP + attention DP" if a > 1 and ep > 1 else "attention DP (MoE TP)" if a > 1
            else "EP" if ep > 1 else "MoE, TP only (reference)")


def resolve(r):
    m = load_model(r["model_path"])
    h = load_hardware(r["system"])
    d = dtypes_for(r["gemm_quant_mode"] or r["precision"] or "bf16")
    if d is None:
        raise InputError("unknown precision", field="precision", value=r["precision"])
    w, act, kv = d
    if act == FP4_OR_BF16:
        act = "fp4" if h.has_dtype("fp4") else "bf16"
    return m, h, w, act, kv


def main() -> None:
    rows = list(csv.DictReader(DATA.open()))
    errs = defaultdict(lambda: {"ttft": [], "tpot": []})
    skipped = Counter()
    for r in rows:
        if r["mode"] != "agg":
            continue
        try:
            m, h, w, act, kv = resolve(r)
        except InputError as e:
            skipped[f"agg: {e}"[:70]] += 1
            continue
        moe = getattr(m, "moe", None) is not None
        tp, a, ep = layout(r, "", moe)
        if not moe and a == 1 or num(r["pp_size"]) > 1:
            continue  # dense tensor-parallel rows: benchmarks/serving_measured.py
        if tp > h.max_devices:
            skipped["agg: attention TP beyond one NVLink domain"] += 1
            continue
        C = int(num(r["batch_size"]))
        for label, conc in (("batch = per worker", C), ("batch = per attention-DP rank", C * a)):
            if a == 1 and label != "batch = per worker":
                continue
            try:
                res = estimate(m, h, devices=tp, dp=a, ep=ep, concurrency=conc, prompt_len=int(r["isl"]),
                               gen_len=int(r["osl"]), weight_dtype=w, act_dtype=act, kv_dtype=kv,
                               engine=load_engine(r["backend"]), arrival="closed")
            except InputError as e:
                skipped[f"agg: {e}"[:70]] += 1
                continue
            key = f"{kind(tp, a, ep)} [{label}]" if a > 1 else kind(tp, a, ep)
            errs[key]["ttft"].append(res["ttft_s"] * 1e3 / float(r["silicon_ttft_ms"]) - 1.0)
            errs[key]["tpot"].append(res["tpot_s"] * 1e3 / float(r["silicon_tpot_ms"]) - 1.0)
    _disagg(rows, errs, skipped)
    print(f"{'layout kind':52s} {'rows':>5s} {'TTFT med|e|':>12s} {'signed':>8s} {'TPOT med|e|':>12s} {'signed':>8s}")
    for key in sorted(errs):
        t, p = np.array(errs[key]["ttft"]), np.array(errs[key]["tpot"])
        print(f"{key:52s} {len(t):5d} {np.median(abs(t)):12.0%} {np.median(t):+8.0%} {np.median(abs(p)):12.0%} "
              f"{np.median(p):+8.0%}")
    print("not predicted:")
    for why, n in skipped.most_common():
        print(f"  {n:4d}  {why}")


def _disagg(rows, errs, skipped):
    for r in rows:
        if r["mode"] != "disagg":
            continue
        if not (r["prefill_num_workers"] and r["decode_num_workers"] and r["decode_batch_size"]):
            skipped["disagg: no worker counts / batch size in the row"] += 1
            continue
        try:
            m, h, w, act, kv = resolve(r)
        except InputError as e:
            skipped[f"disagg: {e}"[:70]] += 1
            continue
        moe = getattr(m, "moe", None) is not None
        pre, dec = layout(r, "prefill_", moe), layout(r, "decode_", moe)
        if max(pre[0], dec[0]) > h.max_devices:
            skipped["disagg: attention TP beyond one NVLink domain"] += 1
            continue
        X, Y = int(num(r["prefill_num_workers"])), int(num(r["decode_num_workers"]))
        C = int(num(r["decode_batch_size"])) * Y
        eng = load_engine(r["backend"])
        mt, ht = ModelTable.build([m]), HardwareTable.build([h])
        cols = columns(1, model=0, hardware=0, devices=1, batch=1, concurrency=1, prompt_len=int(r["isl"]),
                       gen_len=int(r["osl"]), samples=1, weight_dtype=w, act_dtype=act, kv_dtype=kv, kv_budget=0,
                       prefix_sharing=False, token_budget=eng.token_budget, chunked=int(eng.chunked_prefill),
                       host_step_s=eng.host_step_s)
        res = disaggregated_rows(cols, mt, ht, prefill=dict(zip(("devices", "attn_dp", "ep"), pre)),
                                 decode=dict(zip(("devices", "attn_dp", "ep"), dec)), concurrency=C,
                                 prefill_workers=X, decode_workers=Y)
        errs["disaggregated"]["ttft"].append(res["ttft_s"][0] * 1e3 / float(r["silicon_ttft_ms"]) - 1.0)
        errs["disaggregated"]["tpot"].append(res["tpot_s"][0] * 1e3 / float(r["silicon_tpot_ms"]) - 1.0)


if __name__ == "__main__":
    main()
