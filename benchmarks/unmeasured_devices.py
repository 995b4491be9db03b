"""Published runs on devices nobody measured against what the replay predicts for them.

The rows: tests/data/inferencemax-nvidia.csv (InferenceX DeepSeek-R1 runs on B200, GB200
and B300, TensorRT-LLM and SGLang, aggregated and disaggregated, 3 to 8,192 requests in
flight, plus H200 runs of the same recipes as a cross-check against the fitted profiles),
tests/data/inferencemax-amd.csv (MI355X) and tests/data/gpt-oss-published.csv (InferenceX
gpt-oss-120b runs on B200, vLLM and TensorRT-LLM); their sources on each row's
``silicon_data_source``. Nothing is fitted to them: an unmeasured device takes its
datasheet plus what planner.serving_params.CARRY_RULE carries from the fitted Hopper pairs.

Prints, under the shipped rule, the median |error| and the signed median of TTFT and TPOT
(error = predicted / measured - 1) per device, per (device, precision), per (device,
concurrency band), per mode and per profile; then, for every candidate rule of
planner.serving_params.CARRY_RULES (switched as benchmarks/blackwell_published.py does), a
table rule x device. ``--rows`` also prints every row. Run:
python benchmarks/unmeasured_devices.py [--rows]   (a few seconds)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import serving_params as SP  # noqa: E402
from planner.measured import read_measured  # noqa: E402
from planner.replay import in_flight, predict  # noqa: E402
from planner.replay_scoring import band, errors  # noqa: E402
from planner.serving_profile import load_serving  # noqa: E402

FILES = (ROOT / "tests" / "data" / "inferencemax-nvidia.csv", ROOT / "tests" / "data" / "inferencemax-amd.csv",
         ROOT / "tests" / "data" / "gpt-oss-published.csv")
BLACKWELL = ("b200", "gb200", "b300", "gb300")


def replay(path: Path):
    """(runs, prediction, TTFT error, TPOT error) of one file under the rule SP.CARRIED holds."""
    runs = read_measured(path)
    pred = predict(runs, load_serving())
    e_ttft, e_tpot = errors(pred, runs)
    return runs, pred, e_ttft, e_tpot


def cell(e: np.ndarray) -> str:
    """median |error| (signed median) of the finite errors."""
    e = e[np.isfinite(e)]
    return f"{np.median(np.abs(e)):4.0%} ({np.median(e):+4.0%})" if e.size else "    -      "


def table(title: str, keys: np.ndarray, e_ttft, e_tpot) -> None:
    print(f"\n{title:<44} {'rows':>4}  {'TTFT |err| (signed)':>20}  {'TPOT |err| (signed)':>20}")
    for k in sorted(set(keys.tolist()), key=str):
        m = keys == k
        print(f"  {str(k):<42} {int(m.sum()):>4}  {cell(e_ttft[m]):>20}  {cell(e_tpot[m]):>20}")


def by_rule() -> None:
    """Rule x device: TTFT / TPOT median |error| (signed) of every file's rows per device."""
    shipped = SP.CARRIED
    results = {}
    try:
        for rule, carried in SP.CARRY_RULES.items():
            SP.CARRIED = carried
            parts = [replay(f) for f in FILES]
            dev = np.concatenate([p[1].device for p in parts]).astype(object)
            results[rule] = (dev, np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))
    finally:
        SP.CARRIED = shipped
    devices = sorted(set(results[SP.CARRY_RULE][0].tolist()))
    for what, col in (("TTFT", 1), ("TPOT", 2)):
        print(f"\n{what} median |error| (signed median) per carry rule and device "
              f"(shipped: {SP.CARRY_RULE}; h200 rows use their fitted profile under every rule)")
        print(f"  {'rule':<24}" + "".join(f"{d:>15}" for d in devices) + f"{'Blackwell':>15}{'unmeasured':>15}")
        for rule, r in results.items():
            dev, e = r[0], r[col]
            cells = [cell(e[dev == d]) for d in devices] + [cell(e[np.isin(dev, BLACKWELL)]), cell(e[dev != "h200"])]
            mark = "*" if rule == SP.CARRY_RULE else " "
            print(f" {mark}{rule:<24}" + "".join(f"{c:>15}" for c in cells))


def main(argv: list[str]) -> None:
    for path in FILES:
        runs, pred, e_ttft, e_tpot = replay(path)
        ok = pred.status == "ok"
        print(f"\n== {path.relative_to(ROOT)}: {int(ok.sum())} of {len(runs)} rows predicted; "
              f"all rows TTFT {cell(e_ttft)}, TPOT {cell(e_tpot)}")
        dev = pred.device.astype(object)
        bands = np.array([band(c) for c in in_flight(runs)], dtype=object)
        table("device", dev, e_ttft, e_tpot)
        table("device, precision", dev + " " + runs.quant.astype(object), e_ttft, e_tpot)
        table("device, concurrency band", dev + " " + bands, e_ttft, e_tpot)
        table("device, engine, mode", dev + " " + runs.engine.astype(object) + " " + runs.mode.astype(object),
              e_ttft, e_tpot)
        table("profile", pred.profile.astype(object), e_ttft, e_tpot)
        if "--rows" in argv:
            print()
            for i in range(len(runs)):
                print(f"  {runs.ids[i]:<62} TTFT {pred.ttft_s[i] * 1e3:9.1f} ms ({e_ttft[i]:+5.0%})  "
                      f"TPOT {pred.tpot_s[i] * 1e3:6.2f} ms ({e_tpot[i]:+5.0%})")
    by_rule()


if __name__ == "__main__":
    main(sys.argv[1:])
