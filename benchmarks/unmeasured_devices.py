"""Published runs on devices nobody measured against what the replay predicts for them.

The rows: tests/data/inferencemax-nvidia.csv (InferenceX DeepSeek-R1 runs on B200, GB200
and B300, TensorRT-LLM and SGLang, aggregated and disaggregated, 3 to 8,192 requests in
flight, plus H200 runs of the same recipes as a cross-check against the fitted profiles)
tests/data/inferencemax-amd.csv (InferenceX DeepSeek-R1 runs on MI355X and MI325X, SGLang),
tests/data/amd-published.csv (dstack's DeepSeek-R1 runs on 8x MI300X and 8x H200, SGLang
and vLLM, March 2025) and tests/data/vultr-b200.csv (Vultr's published vLLM runs of
MiniMax-M2.5 on HGX B200) and tests/data/published-nvidia-other.csv (other NVIDIA parts:
Tenstorrent's vLLM GPU reference sweeps, Qwen3 on an A100 and on an RTX 4090, one request in
flight) and tests/data/gpt-oss-published.csv (InferenceX gpt-oss-120b runs on B200, vLLM and
TensorRT-LLM) and tests/data/gpt-oss-published-other.csv (the same harness's gpt-oss-120b runs on
H100 and H200 with vLLM, a cross-check of the fitted profiles, and on MI355X with ATOM); their sources on each row's ``silicon_data_source``. Nothing is
fitted to them: an unmeasured device takes its datasheet plus what
planner.serving_carry.CARRY_RULE carries from the fitted Hopper pairs.

Prints, under the shipped rule, the median |error| and the signed median of TTFT and TPOT
(error = predicted / measured - 1) per device, per (device, precision), per (device,
concurrency band), per (device, engine, mode), per (device, model) and per profile; then the
same harness point on an AMD part and on H200 (same engine, model, precision, GPUs, lengths and
requests in flight, within one source): the measured AMD / H200 ratio of TTFT and TPOT against
the replayed one (:func:`twin_ratios`), and the same for an AMD point whose only H200 twin ran
another engine (:func:`cross_engine_twins`: ATOM on MI355X against vLLM on H200); then, for every candidate rule of
planner.serving_carry.CARRY_RULES (switched as benchmarks/blackwell_published.py does), a
table rule x device. ``--rows`` also prints every row. :func:`published` gives the same replay's
error per device, all files pooled, for the ``published`` section of calibration/serving-fidelity.yaml
(planner.fidelity; written by benchmarks/serving_fidelity.py --write-error-summary). Run:
python benchmarks/unmeasured_devices.py [--rows]   (a few seconds)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from planner import serving_carry as SC  # noqa: E402
from planner.measured import read_measured  # noqa: E402
from planner.replay import in_flight, predict  # noqa: E402
from planner.replay_scoring import band, errors  # noqa: E402
from planner.serving_profile import load_serving  # noqa: E402

DATA = ROOT / "tests" / "data"
FILES = (DATA / "inferencemax-nvidia.csv", DATA / "inferencemax-amd.csv", DATA / "amd-published.csv",
         DATA / "vultr-b200.csv", DATA / "published-nvidia-other.csv", DATA / "gpt-oss-published.csv",
         DATA / "gpt-oss-published-other.csv")
# the harness each file's rows were measured with (their silicon_data_source says so row by row)
HARNESS = {"inferencemax-nvidia.csv": "InferenceX", "inferencemax-amd.csv": "InferenceX",
           "amd-published.csv": "dstack (March 2025 engines)", "vultr-b200.csv": "Vultr B200 cookbook",
           "published-nvidia-other.csv": "Tenstorrent GPU reference sweeps", "gpt-oss-published.csv": "InferenceX",
           "gpt-oss-published-other.csv": "InferenceX"}
AMD = ("mi300x", "mi325x", "mi355x")
# The carry-rule table's rows: every file but dstack's. The dstack runs are of March 2025
# engines, 3-7x slower than the 2026 ones the Hopper profiles were fitted on, on H200 as on
# MI300X (their H200 twins: TTFT -85%, TPOT -57%): their absolute error measures the engine
# version, not a rule; their AMD / H200 ratios are in the twin table.
RULE_FILES = (FILES[0], FILES[1], FILES[3], FILES[4], FILES[5], FILES[6])
# a file whose devices get a column of their own in the per-rule tables (its rows stay out of the
# "Blackwell" column, which keeps the InferenceX rows the earlier rounds report)
COLUMN_TAG = {"vultr-b200.csv": "-vultr", "gpt-oss-published.csv": "-gptoss", "gpt-oss-published-other.csv": "-gptoss"}
# devices with fitted profiles: their rows (under any tag) stay out of the "unmeasured" column
FITTED = ("h200", "h100-sxm")
BLACKWELL = ("b200", "gb200", "b300", "gb300")


def replay(path: Path):
    """(runs, prediction, TTFT error, TPOT error) of one file under the rule SC.CARRIED holds."""
    runs = read_measured(path)
    pred = predict(runs, load_serving())
    e_ttft, e_tpot = errors(pred, runs)
    return runs, pred, e_ttft, e_tpot


def published(files=FILES) -> tuple[dict, dict]:
    """(files, devices) for planner.fidelity.published_doc: each file's sha256 and harness; per
    catalog device any file covers, its predicted rows (status ok, as ``planner validate
    --measured FILE --json`` scores them: planner.replay_scoring.error_stats of
    predicted / measured - 1), all files pooled, the prediction path of each row
    (serving_profile.replay_path of its profile), the files they came from, and the same
    figures per engine (``engines``: engine -> rows, ttft, tpot)."""
    import hashlib

    from planner.replay_scoring import error_stats
    from planner.serving_profile import replay_path

    meta, per = {}, {}
    for path in files:
        meta[path.name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "harness": HARNESS[path.name]}
        runs, pred, e_ttft, e_tpot = replay(path)
        ok = pred.status == "ok"
        for d in sorted(set(pred.device[ok].tolist())):
            m = ok & (pred.device == d)
            acc = per.setdefault(d, {"ttft": [], "tpot": [], "paths": {}, "sources": [], "engines": {}})
            acc["ttft"].append(e_ttft[m])
            acc["tpot"].append(e_tpot[m])
            for eng in sorted(set(runs.engine[m].tolist())):
                me = m & (runs.engine == eng)
                by = acc["engines"].setdefault(eng, {"ttft": [], "tpot": []})
                by["ttft"].append(e_ttft[me])
                by["tpot"].append(e_tpot[me])
            for prof in pred.profile[m]:
                p = replay_path(str(prof))
                acc["paths"][p] = acc["paths"].get(p, 0) + 1
            acc["sources"].append({"file": path.name, "harness": HARNESS[path.name],
                                   "engines": sorted(set(runs.engine[m].tolist())), "rows": int(m.sum())})
    devices = {}
    for d, acc in per.items():
        st = {k: error_stats(np.concatenate(acc[k])) for k in ("ttft", "tpot")}
        if st["ttft"]["n"] and st["tpot"]["n"]:  # a device with no measured figure has no error to state
            engines = {}
            for eng, by in sorted(acc["engines"].items()):
                est = {k: error_stats(np.concatenate(by[k])) for k in ("ttft", "tpot")}
                if est["ttft"]["n"] and est["tpot"]["n"]:
                    engines[eng] = {"rows": int(sum(len(x) for x in by["ttft"])), **est}
            devices[d] = {"rows": sum(s["rows"] for s in acc["sources"]), **st, "paths": acc["paths"],
                          "sources": acc["sources"], "engines": engines}
    return meta, devices


def cell(e: np.ndarray) -> str:
    """median |error| (signed median) of the finite errors."""
    e = e[np.isfinite(e)]
    return f"{np.median(np.abs(e)):4.0%} ({np.median(e):+4.0%})" if e.size else "    -      "


def table(title: str, keys: np.ndarray, e_ttft, e_tpot) -> None:
    print(f"\n{title:<44} {'rows':>4}  {'TTFT |err| (signed)':>20}  {'TPOT |err| (signed)':>20}")
    for k in sorted(set(keys.tolist()), key=str):
        m = keys == k
        print(f"  {str(k):<42} {int(m.sum()):>4}  {cell(e_ttft[m]):>20}  {cell(e_tpot[m]):>20}")


def same_points(parts) -> dict:
    """(source, device, engine, model, precision, GPUs, ISL, OSL, requests in flight) ->
    (measured TTFT, replayed TTFT, measured TPOT, replayed TPOT) of every aggregated row of
    ``parts`` ((runs, prediction) per file). The source is the file (InferenceX rows pair
    across the two InferenceX files: one harness)."""
    out = {}
    for runs, pred in parts:
        src = "dstack" if "amd-published" in runs.file else "InferenceX"
        gpus = runs.tp * np.maximum(runs.dp, 1) * runs.pp
        for i in np.flatnonzero(runs.mode == "agg"):
            key = (src, str(pred.device[i]), runs.engine[i], runs.model[i], runs.quant[i], int(gpus[i]),
                   int(runs.isl[i]), int(runs.osl[i]), int(runs.concurrency[i] * max(runs.dp[i], 1)))
            out[key] = (runs.measured_ttft_s[i], pred.ttft_s[i], runs.measured_tpot_s[i], pred.tpot_s[i])
    return out


def twin_ratios(parts) -> list[tuple]:
    """Every harness point measured on an AMD part and on H200 (:func:`same_points`): (key,
    measured AMD / H200 TTFT, replayed ratio, measured TPOT ratio, replayed ratio). A replay
    right about the AMD part's speed relative to H200 has the two ratios equal, whatever the
    engine version's offset common to both (the dstack runs are of March 2025 engines)."""
    pts = same_points(parts)
    rows = []
    for k, a in sorted(pts.items()):
        h = pts.get(k[:1] + ("h200",) + k[2:])
        if k[1] in AMD and h is not None:
            rows.append((k, a[0] / h[0], a[1] / h[1], a[2] / h[2], a[3] / h[3]))
    return rows


def cross_engine_twins(parts) -> list[tuple]:
    """As :func:`twin_ratios` for an AMD harness point with no same-engine H200 twin, paired with
    the H200 rows of the same source, model, GPUs, lengths and requests in flight on another engine
    (and quantization label): (AMD key, H200 engine, measured TTFT ratio, replayed, measured TPOT
    ratio, replayed). The replay models both engines, so a replay right about both has the two
    ratios equal here too."""
    pts = same_points(parts)
    point = lambda k: k[:1] + (k[3],) + k[5:]  # noqa: E731  (source, model, GPUs, ISL, OSL, in flight)
    h200 = {}
    for k, v in pts.items():
        if k[1] == "h200":
            h200.setdefault(point(k), []).append((k[2], v))
    rows = []
    for k, a in sorted(pts.items()):
        if k[1] not in AMD or (k[:1] + ("h200",) + k[2:]) in pts:
            continue
        for eng, h in h200.get(point(k), []):
            if eng != k[2]:
                rows.append((k, eng, a[0] / h[0], a[1] / h[1], a[2] / h[2], a[3] / h[3]))
    return rows


def print_twins(parts) -> None:
    print(f"\nAMD / H200 at the same harness point (measured vs replayed){'':<6} TTFT meas / repl    TPOT meas / repl")
    for k, tm, tr, pm, pr in twin_ratios(parts):
        src, dev, eng, _, q, g, isl, osl, c = k
        print(f"  {src:<10} {dev:<7} {eng:<7} {q:<9} {g}x {isl:>5}/{osl:<5} C{c:<4}      {tm:5.2f} / {tr:4.2f}         {pm:5.2f} / {pr:4.2f}")
    print(f"\nAMD / H200 at the same harness point, another engine on H200{'':<4} TTFT meas / repl    TPOT meas / repl")
    for k, h_eng, tm, tr, pm, pr in cross_engine_twins(parts):
        src, dev, eng, _, q, g, isl, osl, c = k
        print(f"  {src:<10} {dev:<7} {eng + '/' + h_eng:<13} {g}x {isl:>5}/{osl:<5} C{c:<4}      "
              f"{tm:5.2f} / {tr:4.2f}         {pm:5.2f} / {pr:4.2f}")


def by_rule() -> None:
    """Rule x device: TTFT / TPOT median |error| (signed) of :data:`RULE_FILES`' rows per device (a
    :data:`COLUMN_TAG` file's rows in columns of their own)."""
    shipped = SC.CARRIED
    results = {}
    try:
        for rule, carried in SC.CARRY_RULES.items():
            SC.CARRIED = carried
            parts = [replay(f) for f in RULE_FILES]
            dev = np.concatenate([p[1].device.astype(object) + COLUMN_TAG.get(f.name, "")
                                  for f, p in zip(RULE_FILES, parts)])
            fitted = np.concatenate([np.isin(p[1].device, FITTED) for p in parts])
            results[rule] = (dev, np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]), fitted)
    finally:
        SC.CARRIED = shipped
    devices = sorted(set(results[SC.CARRY_RULE][0].tolist()))
    for what, col in (("TTFT", 1), ("TPOT", 2)):
        print(f"\n{what} median |error| (signed median) per carry rule and device "
              f"(shipped: {SC.CARRY_RULE}; h200 / h100-sxm rows use their fitted profile under every rule)")
        print(f"  {'rule':<24}" + "".join(f"{d:>16}" for d in devices) + f"{'Blackwell':>16}{'unmeasured':>16}")
        for rule, r in results.items():
            dev, e = r[0], r[col]
            cells = [cell(e[dev == d]) for d in devices] + [cell(e[np.isin(dev, BLACKWELL)]), cell(e[~r[3]])]
            mark = "*" if rule == SC.CARRY_RULE else " "
            print(f" {mark}{rule:<24}" + "".join(f"{c:>16}" for c in cells))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", action="store_true", help="also print every row")
    show_rows = ap.parse_args(argv).rows
    parts = []
    for path in FILES:
        runs, pred, e_ttft, e_tpot = replay(path)
        parts.append((runs, pred))
        ok = pred.status == "ok"
        print(f"\n== {path.relative_to(ROOT)}: {int(ok.sum())} of {len(runs)} rows predicted; "
              f"all rows TTFT {cell(e_ttft)}, TPOT {cell(e_tpot)}")
        dev = pred.device.astype(object)
        bands = np.array([band(c) for c in in_flight(runs)], dtype=object)
        table("device", dev, e_ttft, e_tpot)
        table("device, model", dev + " " + runs.model.astype(object), e_ttft, e_tpot)
        table("device, precision", dev + " " + runs.quant.astype(object), e_ttft, e_tpot)
        table("device, concurrency band", dev + " " + bands, e_ttft, e_tpot)
        table("device, engine, mode", dev + " " + runs.engine.astype(object) + " " + runs.mode.astype(object),
              e_ttft, e_tpot)
        table("profile", pred.profile.astype(object), e_ttft, e_tpot)
        if show_rows:
            print()
            for i in range(len(runs)):
                print(f"  {runs.ids[i]:<62} TTFT {pred.ttft_s[i] * 1e3:9.1f} ms ({e_ttft[i]:+5.0%})  "
                      f"TPOT {pred.tpot_s[i] * 1e3:6.2f} ms ({e_tpot[i]:+5.0%})")
    print_twins(parts)
    by_rule()


if __name__ == "__main__":
    main(sys.argv[1:])
