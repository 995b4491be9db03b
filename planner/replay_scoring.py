"""Score a replay of measured serving runs: errors, per-slice statistics, JSON rows.

error = predicted / measured - 1 for TTFT and TPOT (:func:`errors`); :func:`summarize` gives
the median and p90 of |error| and the signed median overall and per slice (engine, model,
device, precision, concurrency band), and counts the rows not predicted by reason;
:func:`input_notes` says what a file holds that is read but worth a line (0 ms, repeated ids);
:func:`rows_json` is the ``--json`` row list of ``planner validate --measured``. The
predictions come from :func:`planner.replay.predict`.
"""

from __future__ import annotations

import numpy as np

from planner.measured import MeasuredRuns
from planner.replay import Prediction
from planner.replay_rows import in_flight

BANDS = ((1, 8), (9, 32), (33, 64), (65, 128), (129, float("inf")))


def band(c: float) -> str:
    for lo, hi in BANDS:
        if lo <= c <= hi:
            return f"{lo}-{hi}" if hi < float("inf") else f">{lo - 1}"
    return "n/a"


def errors(pred: Prediction, runs: MeasuredRuns) -> tuple[np.ndarray, np.ndarray]:
    """predicted / measured - 1 for TTFT and TPOT (NaN where either is missing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ttft = pred.ttft_s / runs.measured_ttft_s - 1.0
        e_tpot = pred.tpot_s / runs.measured_tpot_s - 1.0
    bad_t = ~(runs.measured_ttft_s > 0)
    bad_p = ~(runs.measured_tpot_s > 0)
    e_ttft[bad_t] = np.nan
    e_tpot[bad_p] = np.nan
    return e_ttft, e_tpot


def input_notes(runs: MeasuredRuns) -> list[str]:
    """What a measured file holds that is read but a reader should know (round 17's calls):

    * a measured TTFT or TPOT of exactly 0 ms: no run takes no time, so 0 reads as "not
      measured", as an empty cell does (:func:`errors` scores no error there, the fit
      skips the row: planner.serving_fit); the file is not refused for it, as one bad row
      must not fail a whole file;
    * an ``id`` that more than one row gives: every row is still read, predicted and scored
      on its own (the ids only label rows in the output), but a reader matching rows by id
      (``--json``'s rows) would mix them up.

    One line each, none where the file has neither."""
    notes = []
    zero_t, zero_p = runs.measured_ttft_s == 0, runs.measured_tpot_s == 0
    if (zero_t | zero_p).any():
        notes.append(f"rows with a measured time of 0 ms: {int((zero_t | zero_p).sum())} (TTFT {int(zero_t.sum())}, "
                     f"TPOT {int(zero_p.sum())}), read as not measured: no error scored")
    ids, counts = np.unique(np.asarray(runs.ids, dtype=str), return_counts=True)
    repeated = counts > 1
    if repeated.any():
        first = ids[repeated][np.argmax(counts[repeated])]
        notes.append(f"ids given by more than one row: {int(repeated.sum())} ({int(counts[repeated].sum())} rows; "
                     f"most: '{first}', {int(counts[repeated].max())} rows), every row read and scored on its own")
    return notes


def error_stats(e: np.ndarray) -> dict:
    """n, median and p90 of |error| and the signed median over the finite errors of ``e``."""
    a = np.abs(e[np.isfinite(e)])
    if a.size == 0:
        return {"n": 0, "median_abs": None, "p90_abs": None, "median_signed": None}
    return {"n": int(a.size), "median_abs": float(np.median(a)), "p90_abs": float(np.percentile(a, 90)),
            "median_signed": float(np.median(e[np.isfinite(e)]))}


SLICES = ("engine", "model", "device", "precision", "concurrency")


def slice_keys(pred: Prediction, runs: MeasuredRuns) -> dict[str, np.ndarray]:
    return {
        "engine": runs.engine.astype(object),
        "model": pred.model,
        "device": np.where(pred.device != "", pred.device, runs.system.astype(object)),
        "precision": runs.quant.astype(object),
        "concurrency": np.array([band(c) for c in in_flight(runs)], dtype=object),
    }


def summarize(pred: Prediction, runs: MeasuredRuns) -> dict:
    """Overall and per-slice median / p90 of |error| for TTFT and TPOT, the rows not
    predicted counted by reason, and the rows the datasheet rules out as written
    (planner.plausibility: flagged, still predicted and scored) counted in all and by reason."""
    e_ttft, e_tpot = errors(pred, runs)
    ok = pred.status == "ok"
    keys = slice_keys(pred, runs)
    by_slice = {}
    for name in SLICES:
        col = keys[name]
        values = sorted(set(col[ok].tolist()), key=lambda v: (_band_order(v) if name == "concurrency" else v))
        by_slice[name] = [{"value": v, "ttft": error_stats(e_ttft[ok & (col == v)]), "tpot": error_stats(e_tpot[ok & (col == v)])}
                          for v in values]
    reasons: dict[str, int] = {}
    for s in pred.status[~ok]:
        reason = s.split(": ", 1)[1] if ": " in s else s
        reasons[reason] = reasons.get(reason, 0) + 1
    flagged: dict[str, int] = {}
    for fl in (pred.flags or []):
        for f in fl:
            reason = f.split(": ", 1)[0]
            flagged[reason] = flagged.get(reason, 0) + 1
    return {"rows": len(runs), "predicted": int(ok.sum()),
            "measured": int((ok & np.isfinite(e_ttft) & np.isfinite(e_tpot)).sum()),
            "ttft": error_stats(e_ttft[ok]), "tpot": error_stats(e_tpot[ok]), "by_slice": by_slice,
            "unsupported": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            "profiles": sorted(set(pred.profile[ok].tolist())),
            # rows the datasheet rules out as written (planner.plausibility): still predicted and scored
            "flagged": sum(bool(fl) for fl in (pred.flags or [])),
            "flagged_by_reason": dict(sorted(flagged.items(), key=lambda kv: -kv[1]))}


def _band_order(v: str) -> float:
    """Sort key of a concurrency band: its lower end; "n/a" (no requests in flight) last."""
    head = v.lstrip(">").split("-")[0]
    return int(head) if head.isdigit() else float("inf")


def rows_json(pred: Prediction, runs: MeasuredRuns) -> list[dict]:
    e_ttft, e_tpot = errors(pred, runs)

    def num(x, scale=1.0):
        return float(x) * scale if np.isfinite(x) else None

    return [{"id": str(runs.ids[i]), "status": str(pred.status[i]),
             "predicted_ttft_ms": num(pred.ttft_s[i], 1e3), "predicted_tpot_ms": num(pred.tpot_s[i], 1e3),
             "measured_ttft_ms": num(runs.measured_ttft_s[i], 1e3), "measured_tpot_ms": num(runs.measured_tpot_s[i], 1e3),
             "ttft_error": num(e_ttft[i]), "tpot_error": num(e_tpot[i]), "profile": str(pred.profile[i]) or None,
             "note": (str(pred.note[i]) or None) if pred.note is not None else None,
             "flags": list(pred.flags[i]) if pred.flags is not None else []}
            for i in range(len(runs))]
