"""Published B200 measurements against the unmeasured-device prediction, per carry rule.

The rows and figures are tests/test_blackwell_rows.py's (their sources in its docstring):
SGLang on 8x B200, TP8, 1K / 1K, one request in flight, plus GLM-5 and Kimi-K2 (not
asserted there) and the H200 / B200 TPOT ratio on DeepSeek-R1. Prints, for each candidate rule of what an
unmeasured device carries (planner.serving_carry.CARRY_RULES), the predicted TPOT and its
error per model, then the predicted ratio against the published 1.79.
Run: python benchmarks/blackwell_published.py  (a few seconds)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import test_blackwell_rows as T  # noqa: E402

from planner import serving_carry as SC  # noqa: E402


def main() -> None:
    rows = [T._agg(name, "b200_sxm", model, quant, 1024, 1024, 1, tp=8, tpot=t) for name, model, quant, t in
            T.GIST_B200]
    rows += [T._agg(name, "b200_sxm", model, quant, 1024, 1024, 1, tp=8, tpot=t) for name, model, quant, t in
             T.MLA_EXTRA_B200]  # GLM-5 and Kimi-K2 (their sources in T.MLA_EXTRA_B200's comment)
    rows += [T._agg("h200-r1-fp8-c4", "h200_sxm", "deepseek-ai/DeepSeek-R1", "fp8", 1024, 1024, 4, tp=8),
             T._agg("b200-r1-fp4-c1", "b200_sxm", "deepseek-ai/DeepSeek-R1", "nvfp4", 1024, 1024, 1, tp=8)]
    measured = {r["id"]: float(r["silicon_tpot_ms"]) for r in rows if r["silicon_tpot_ms"] != ""}
    published = T.H200_R1_FP8_C4_TPOT_MS / T.B200_R1_FP4_C1_TPOT_MS
    with tempfile.TemporaryDirectory() as d:
        path = T._write(Path(d) / "rows.csv", rows)
        for rule, carried in SC.CARRY_RULES.items():
            SC.CARRIED = carried  # what planner.serving_carry.unmeasured carries by default
            runs, pred = T._predict(path)
            tpot = dict(zip(runs.ids, pred.tpot_s * 1e3))
            cells = [f"{i} {tpot[i]:.2f} ms ({tpot[i] / m - 1:+.0%})" for i, m in measured.items()]
            ratio = tpot["h200-r1-fp8-c4"] / tpot["b200-r1-fp4-c1"]
            mark = " (shipped)" if rule == SC.CARRY_RULE else ""
            print(f"{rule + mark:<30} " + "; ".join(cells) + f"; H200/B200 R1 {ratio:.2f} (published {published:.2f})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    main()
