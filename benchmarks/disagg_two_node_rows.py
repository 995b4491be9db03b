"""The dev file's disaggregated deployments whose workers span two HGX boards (16 GPUs a
worker), row by row: what was measured, what the closed loop's own identities imply, and
what the model predicts with the shipped profiles and where its TTFT goes.

    python benchmarks/disagg_two_node_rows.py [FILE.csv]

Columns: engine, prompt / output tokens ``P/G``, requests in flight ``C``, the worker counts
(``X`` prefill, ``Y`` decode; ``*`` where the row does not give them and the model derives
them), measured TTFT / TPOT, ``k = TTFT / ((G - 1) TPOT)`` (how many whole decodes a
request waits before its first token), ``run/Y`` (requests decoding per decode worker by
Little's law over the closed loop, ``C / Y x (G - 1) TPOT / (TTFT + (G - 1) TPOT)``: every
request in flight is either before its first token or decoding; counted rows only), and
the model's TTFT, TPOT, KV hand-off, decode admission and the rest of its TTFT (the
prefill worker's step and queue). Docs: docs/serving-experiments.md, round 13 (S5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "serving-measured-hopper-dev.csv"


def main(argv: list[str]) -> int:
    import planner.cost.disagg as disagg
    from planner.measured import read_measured
    from planner.replay import Prepared, in_flight
    from planner.serving_profile import load_serving

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=str(DEFAULT), help="measured CSV (default: %(default)s)")
    runs = read_measured(ap.parse_args(argv).file)
    prep = Prepared(runs)
    seen = {}
    original = disagg.disaggregated_rows

    def spy(*a, **k):
        out = original(*a, **k)
        seen.update(out)
        return out

    disagg.disaggregated_rows = spy
    try:
        pred = prep.run(load_serving(None))
    finally:
        disagg.disaggregated_rows = original
    dis_idx = prep.idx[prep.dis]  # rows in the order disaggregated_rows saw them
    C = in_flight(runs)
    pre_tp, dec_tp = (np.array([prep.sides[s]["devices"][j] * prep.sides[s]["attn_dp"][j] for j in range(dis_idx.size)])
                      for s in ("prefill", "decode"))
    print(f"{'engine':<7} {'P/G':>9} {'C':>5} {'X':>3} {'Y':>3} {'TTFT ms':>8} {'TPOT':>6} {'k':>5} {'run/Y':>11} "
          f"{'pred TTFT':>9} {'TPOT':>6} {'KV':>5} {'admit':>6} {'prefill+queue':>13}")
    for j, i in enumerate(dis_idx):
        if runs.system[i] not in ("h100_sxm",) or max(pre_tp[j], dec_tp[j]) <= 8:
            continue
        G, m_ttft, m_tpot = runs.osl[i], runs.measured_ttft_s[i], runs.measured_tpot_s[i]
        X, Y, derived = seen["prefill_workers"][j], seen["decode_workers"][j], bool(seen["derived"][j])
        decode_s = (G - 1) * m_tpot
        running = "" if derived else f"{C[i] / Y * decode_s / (m_ttft + decode_s):.2f} of {C[i] / Y:.0f}"
        kv, admit = seen["kv_transfer_s"][j], seen["admission_s"][j]
        rest = pred.ttft_s[i] - kv - admit
        star = "*" if derived else " "
        print(f"{runs.engine[i]:<7} {runs.isl[i]:>4.0f}/{G:<4.0f} {C[i]:>5.0f} {X:>2.0f}{star} {Y:>2.0f}{star} "
              f"{m_ttft * 1e3:>8.0f} {m_tpot * 1e3:>6.1f} {m_ttft / decode_s:>5.2f} {running:>11} "
              f"{pred.ttft_s[i] * 1e3:>9.0f} {pred.tpot_s[i] * 1e3:>6.1f} {kv * 1e3:>5.1f} {admit * 1e3:>6.1f} "
              f"{rest * 1e3:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
