"""A hard lower bound on DeepSeek-R1 decode time per step, against every measured row.

The test of issue 10 ("deepseek-r1 fp8 at batch 1 on 8x h200 is no faster than reading
its touched experts' and attention weights at datasheet bandwidth"), applied to each
DeepSeek-R1 row of the dev file. Per decode step and device, the bytes that must cross
HBM at least once, at the datasheet bandwidth (every assumption is the optimistic one, so
the bound is hard):

* routed experts: the distinct experts the step's ``B`` tokens touch per MoE layer,
  ``E (1 - (1 - k/E)^B)`` (uniform top-k routing; a skewed router touches fewer, which the
  hard column allows by taking ``B = 1``), spread evenly over all the worker's devices;
* attention projections (MLA: q_a, q_b, kv_a, kv_b, o), the dense MLPs of the first
  dense layers and the shared experts: split over the ``tp`` devices of an attention group;
* the LM head (16-bit in the fp8 checkpoints) split over every device of the worker;
* the KV cache: each request's MLA latent (576 values per token and layer) at one byte
  (fp8, the smaller of the two dtypes) at the mean decode context, split over the ``tp``
  devices of its group (the engines replicate the latent; split is the optimistic case).

``B`` is the decode batch of one worker: the row's own (aggregated rows; disaggregated rows
that give ``decode_batch_size``), else the hard case ``B = 1`` per attention rank, and the
column ``b_sweep`` reads it from the total concurrency as the replay does
(planner.measured_layouts.sweep_decode_workers). A measured TPOT under the step bound means more
than one token per step per request (multi-token prediction). Also lists the "twins":
rows whose every fact (engine, version, device, lengths, layout, total concurrency) is
equal but whose TPOT differs by more than 1.3x, which no deterministic model of those
facts can tell apart.

python benchmarks/dsr1_decode_bound.py [FILE.csv]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.catalog import load_hardware, load_model  # noqa: E402
from planner.measured import mean_length, read_measured  # noqa: E402
from planner.measured_layouts import sweep_decode_workers  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"
SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200"}


def weight_bytes(m):
    """(bytes of one routed expert, MLA attention per layer, dense MLPs + shared experts,
    LM head) of DeepSeek-R1 fp8 from its config (models/deepseek-r1.yaml)."""
    h, a = m.hidden_size, m.mla
    heads = m.num_heads
    qk = a.qk_nope_head_dim + a.qk_rope_head_dim
    attn = (h * a.q_lora_rank + a.q_lora_rank * heads * qk + h * (a.kv_lora_rank + a.qk_rope_head_dim)
            + a.kv_lora_rank * heads * (a.qk_nope_head_dim + a.v_head_dim) + heads * a.v_head_dim * h)
    mo = m.moe
    expert = 3 * h * mo.expert_intermediate_size
    moe_layers = m.num_layers - mo.first_dense_layers
    dense = mo.first_dense_layers * 3 * h * m.intermediate_size + moe_layers * mo.num_shared_experts * 3 * h \
        * mo.shared_expert_intermediate_size
    head = 2.0 * m.vocab_size * h
    return expert * 1.0, attn * 1.0, dense * 1.0, head, moe_layers


def step_bound_s(m, bw_bytes_per_s, tp, ranks, batch, context):
    """The hard lower bound (s) on one decode step of a worker of ``tp x ranks`` devices
    carrying ``batch`` requests (``batch / ranks`` per attention rank) at mean context
    ``context``. Arrays broadcast."""
    expert, attn, dense, head, moe_layers = weight_bytes(m)
    E, k = m.moe.num_experts, m.moe.experts_per_token
    devices = tp * ranks
    touched = E * (1.0 - (1.0 - k / E) ** np.maximum(batch, 1.0))
    routed = moe_layers * touched * expert / devices
    group = (m.num_layers * attn + dense) / tp
    kv_token = (m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) * m.num_layers * 1.0
    kv = np.maximum(batch / ranks, 1.0) * context * kv_token / tp
    return (routed + group + head / devices + kv) / bw_bytes_per_s


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    runs = read_measured(ap.parse_args(argv).file)
    sel = np.array(["DeepSeek-R1" in s for s in runs.model])
    r = runs.take(sel)
    m = load_model("deepseek-r1")
    n = len(r)
    dis = r.mode == "disagg"
    col = lambda c: r.disagg.get(c, np.full(n, np.nan))  # noqa: E731
    tp = np.where(dis, np.nan_to_num(col("decode_tp_size"), nan=1.0), r.tp)
    ranks = np.maximum(np.where(dis, np.nan_to_num(col("decode_attention_dp_size"), nan=1.0), r.dp), 1.0)
    # the dev file's product encodings (planner.measured_layouts.product_encoded / _dp): an 8-GPU worker
    big = tp * ranks > 16
    tp = np.where(big & (ranks > 1), 1.0, np.where(big, 8.0, tp))
    ranks = np.where(big & (ranks > 1), 8.0, ranks)
    given = np.where(dis, col("decode_batch_size") * ranks, r.concurrency * r.dp)
    given = np.where(big & ~dis, r.total_concurrency, given)
    total = r.total_concurrency
    workers = sweep_decode_workers(total, tp * ranks)
    b_sweep = np.where(np.isfinite(given), given, total / workers)
    b_hard = np.where(np.isfinite(given), given, ranks)
    isl, osl = mean_length(r.isl, r.range_ratio), mean_length(r.osl, r.range_ratio)
    ctx = isl + 0.5 * osl
    bw = np.array([load_hardware(SYSTEMS[s]).mem_bandwidth_gbps * 1e9 for s in r.system])
    hard = step_bound_s(m, bw, tp, ranks, b_hard, ctx)
    sweep = step_bound_s(m, bw, tp, ranks, b_sweep, ctx)
    meas = r.measured_tpot_s
    print(f"DeepSeek-R1 rows: {n}; bound = HBM bytes per decode step per device at datasheet bandwidth")
    print(f"{'slice':34s} {'n':>3s} {'meas/hard min':>13s} {'median':>7s} {'meas/sweep min':>14s} {'median':>7s} "
          f"{'<hard':>5s} {'<sweep':>6s}")
    key = [f"{e} {v} {s[:4]} {mo}" for e, v, s, mo in zip(r.engine, r.engine_version, r.system, r.mode)]
    for k in sorted(set(key)):
        i = np.array([x == k for x in key])
        a, b = meas[i] / hard[i], meas[i] / sweep[i]
        print(f"{k:34s} {i.sum():3d} {a.min():13.2f} {np.median(a):7.2f} {b.min():14.2f} {np.median(b):7.2f} "
              f"{(a < 1).sum():5d} {(b < 1).sum():6d}")
    print("\nlowest ten measured / sweep-batch bound:")
    for j in np.argsort(meas / sweep)[:10]:
        print(f"  {r.ids[j][:62]:62s} tpot {meas[j] * 1e3:6.2f} ms  bound {sweep[j] * 1e3:5.2f} ms  "
              f"(B {b_sweep[j]:.0f}, tp {tp[j]:.0f} x {ranks[j]:.0f})")
    # twins: every fact equal, TPOT apart
    facts = defaultdict(list)
    for j in range(n):
        lay = (tp[j], ranks[j], r.ep[j], r.moe_tp[j]) if not dis[j] else tuple(
            col(c)[j] for c in ("decode_tp_size", "decode_attention_dp_size", "decode_moe_ep_size"))
        facts[(r.engine[j], r.engine_version[j], r.system[j], r.mode[j], r.isl[j], r.osl[j], total[j], lay)].append(j)
    twins = [(k, v) for k, v in facts.items() if len(v) > 1 and meas[v].max() / meas[v].min() > 1.3]
    rows_in = sum(len(v) for _, v in twins)
    print(f"\ntwins (all facts equal, TPOT max/min > 1.3): {len(twins)} groups, {rows_in} rows")
    for k, v in sorted(twins, key=lambda kv: kv[0][:7]):
        t = sorted(meas[v] * 1e3)
        print(f"  {k[0]} {k[1]} {k[2][:4]} {k[3]} {int(k[4])}/{int(k[5])} c{int(k[6])}: TPOT "
              + " / ".join(f"{x:.2f}" for x in t) + f" ms (x{t[-1] / t[0]:.2f})")


if __name__ == "__main__":
    main(sys.argv[1:])
