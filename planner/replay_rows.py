"""The parameter-free reading of measured rows for a replay (planner.replay.Prepared):
each row's catalog model, device and engine profile, its dtypes, the layout it is read as
(the dev file's product-encoded layouts: planner.measured_layouts) and its status, ``ok``
or ``unsupported: <reason>`` for a row the engine cannot express yet (planner.replay's
module docstring lists them). One pass over the rows with cheap checks; the prediction
itself is vectorized (planner.replay.Prepared.run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.errors import InputError
from planner.harness import resolve_kv_dtype
from planner.measured import FP4_OR_BF16, MODES, MeasuredRuns, dtypes_for
from planner.measured_layouts import product_encoded, product_encoded_dp


def _resolve(names, loader):
    """Catalog specs for the unique names; unknown names -> None."""
    out = {}
    for n in sorted(set(names.tolist())):
        try:
            out[n] = loader(n)
        except InputError:
            out[n] = None
    return out


DISAGG_LAYOUT = ("prefill_tp_size", "decode_tp_size")
DISAGG_COUNTS = ("prefill_num_workers", "decode_num_workers", "decode_batch_size")
LAYOUT_KEYS = ("tp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size")


def has_columns(runs: MeasuredRuns, columns, i: int) -> bool:
    """Whether row ``i`` has a value in every one of the disaggregated ``columns``."""
    return all(c in runs.disagg and np.isfinite(runs.disagg[c][i]) for c in columns)


def in_flight(runs: MeasuredRuns) -> np.ndarray:
    """Requests in flight per row: ``batch_size x attention_dp_size`` on aggregated rows
    (the batch is per attention data-parallel rank, as on the disaggregated decode side: on
    all 21 dev-file aggregated rows with attention DP the product is the provenance's
    ``silicon_concurrency``, e.g. DeepSeek-R1 ``tp 1, attention_dp 8, batch 32`` = c256); on
    disaggregated ones the decode batch (per attention data-parallel rank) times the decode
    ranks, ``decode_batch_size x decode_num_workers x decode_attention_dp_size`` (the
    benchmark's concurrency on every dev-file row that gives all three), else the row's
    total concurrency (planner.measured; NaN when it has none)."""
    n = len(runs)
    dis = np.array([disagg_value(runs, "decode_batch_size", i) * disagg_value(runs, "decode_num_workers", i)
                    * disagg_value(runs, "decode_attention_dp_size", i) if has_columns(runs, DISAGG_COUNTS, i)
                    else runs.total_concurrency[i] for i in range(n)])
    return np.where(runs.mode == "disagg", dis, runs.concurrency * runs.dp)


def disagg_value(runs: MeasuredRuns, column: str, i: int) -> float:
    """A disaggregated layout value of row ``i`` (empty or 0 = 1)."""
    v = runs.disagg.get(column)
    x = np.nan if v is None else v[i]
    return float(x) if np.isfinite(x) and x > 0 else 1.0


def _engine_or_none(name: str):
    """The engines/*.yaml profile of ``name``; None for an engine no file describes (its
    rows are ``unsupported: unknown engine``, as an unknown model's or system's are)."""
    from planner.engine_profiles import load_engine

    try:
        return load_engine(name)
    except InputError:
        return None


FP8_WEIGHT_ONLY_NOTE = "fp8 weights run weight-only (W8A16, FP8 Marlin) on {}"
CHECKPOINT_NOTE = "model '{}' read as {} (a quantized or re-published checkpoint of it: planner.catalog.checkpoint_base)"


@dataclass
class Rows:
    """What :func:`read_rows` found, per row (arrays of length ``len(runs)``) and per name."""
    models: dict            # CSV model name -> catalog spec (None: unknown)
    hws: dict               # CSV system name -> catalog device (None: unknown)
    profiles: dict          # engine name -> engines/*.yaml profile (None: unknown)
    status: np.ndarray      # "ok" or "unsupported: <reason>"
    device: np.ndarray      # catalog device name ("" where unknown)
    model: np.ndarray       # catalog model name (the CSV's name where unknown)
    group: np.ndarray       # "device/engine" ("" where the device is unknown)
    wdt: np.ndarray         # weight, activation and KV dtypes (None where the precision is unknown)
    adt: np.ndarray
    kdt: np.ndarray
    tp: np.ndarray          # the layout each row is read as (product-encoded layouts decoded)
    moe_tp: np.ndarray
    dp: np.ndarray
    ep: np.ndarray
    note: np.ndarray        # the assumption the reading made ("" where none)


def read_rows(runs: MeasuredRuns) -> Rows:
    """Names resolved, dtypes, layouts and status of every row of ``runs``."""
    from planner.catalog import checkpoint_reading, load_hardware, load_model

    n = len(runs)
    models = _resolve(runs.model, load_model)
    hws = _resolve(runs.system, load_hardware)
    status = np.full(n, "ok", dtype=object)
    dev = np.array([hws[s].name if hws[s] is not None else "" for s in runs.system], dtype=object)
    mname = np.array([models[m].name if models[m] is not None else m for m in runs.model], dtype=object)
    group = np.where(dev != "", dev + "/" + runs.engine.astype(object), "")
    wdt = np.empty(n, dtype=object)
    adt = np.empty(n, dtype=object)
    kdt = np.empty(n, dtype=object)
    for q in set(runs.quant.tolist()):
        sel = runs.quant == q
        d = dtypes_for(q) or (None, None, None)
        wdt[sel], adt[sel], kdt[sel] = d
    given_kv = runs.kv_dtype != ""
    kdt = np.where(given_kv & (kdt != None), runs.kv_dtype, kdt)  # noqa: E711 (the row's KV dtype)
    tp, moe_tp, dp, ep = runs.tp.copy(), runs.moe_tp.copy(), runs.dp.copy(), runs.ep.copy()
    layout_note = np.full(n, "", dtype=object)
    profiles = {e: _engine_or_none(e) for e in set(runs.engine.tolist())}
    read_as = {m: checkpoint_reading(m) for m in models if models[m] is not None}
    for i in range(n):  # per-row status: cheap checks; the prediction itself is vectorized
        m, h = models[runs.model[i]], hws[runs.system[i]]
        in_flight_row = runs.concurrency[i] * runs.dp[i]
        if h is not None and runs.mode[i] == "agg" and product_encoded(runs.tp[i], runs.moe_tp[i], runs.ep[i],
                                                                       runs.dp[i], h.max_devices):
            tp[i], moe_tp[i] = runs.moe_tp[i], 1.0
            layout_note[i] = (f"tp_size {runs.tp[i]:.0f} = moe_tp_size x moe_ep_size read as tp {tp[i]:.0f} "
                              f"x ep {runs.ep[i]:.0f} on {tp[i]:.0f} devices (README 'Measured serving runs')")
        elif h is not None and runs.mode[i] == "agg" and (real := product_encoded_dp(
                runs.tp[i], runs.moe_tp[i], runs.ep[i], runs.dp[i], h.max_devices)) is not None:
            dp[i], moe_tp[i], ep[i] = real
            layout_note[i] = (f"attention data parallel {runs.tp[i] * runs.dp[i]:.0f} = moe_tp x moe_ep "
                              f"read as tp {tp[i]:.0f} x attention_dp {dp[i]:.0f} x ep {ep[i]:.0f} on "
                              f"{tp[i] * dp[i]:.0f} devices, {in_flight_row:.0f} requests in flight "
                              "(README 'Measured serving runs')")
        reason = None
        if m is None:
            reason = f"unknown model '{runs.model[i]}'"
        elif profiles[runs.engine[i]] is None:
            reason = f"unknown engine '{runs.engine[i]}'"
        elif h is None:
            reason = f"unknown system '{runs.system[i]}'"
        elif runs.mode[i] not in MODES:
            reason = f"unknown mode '{runs.mode[i]}' (known: {', '.join(MODES)})"
        elif runs.mode[i] == "disagg" and not has_columns(runs, DISAGG_LAYOUT, i):
            reason = "disaggregated row without prefill_tp_size or decode_tp_size"
        elif runs.mode[i] == "disagg" and not has_columns(runs, DISAGG_COUNTS, i) \
                and not np.isfinite(runs.total_concurrency[i]):
            reason = "disaggregated row without worker counts, decode batch size or total concurrency"
        elif runs.mode[i] == "disagg" and max(disagg_value(runs, "prefill_pp_size", i),
                                              disagg_value(runs, "decode_pp_size", i)) > 1:
            reason = "pipeline parallel (pp > 1) on a disaggregated side (aggregated pp rows are predicted)"
        elif (ep[i] > 1 or dp[i] > 1 or moe_tp[i] * ep[i] > tp[i]) and m.moe is None:
            reason = "expert or attention data parallelism on a dense model"
        elif wdt[i] is None:
            reason = f"unknown precision '{runs.quant[i]}'"
        elif runs.concurrency[i] < 1 and runs.mode[i] != "disagg":
            reason = "no requests in flight (batch_size 0)"
        elif runs.tp[i] < 1 and runs.mode[i] != "disagg":
            reason = "no devices (tp_size 0)"
        if reason is None and adt[i] == FP4_OR_BF16:
            adt[i] = "fp4" if h.has_dtype("fp4") else "bf16"
        if reason is None:  # the harness's fp4 launches: fp8 KV on Blackwell (planner.harness)
            kdt[i] = resolve_kv_dtype(kdt[i], runs.kv_fp8_on_blackwell[i], h.blackwell_class)
        if reason is None and adt[i] == "fp8" and not h.has_dtype("fp8") \
                and profiles[runs.engine[i]].fp8_weight_only_fallback:
            adt[i] = "bf16"  # the engine's W8A16 path: fp8 weights, 16-bit GEMMs (engines/*.yaml)
            layout_note[i] = "; ".join(filter(None, (layout_note[i], FP8_WEIGHT_ONLY_NOTE.format(h.name))))
        if reason is None and not h.has_dtype(adt[i]):
            reason = f"no {adt[i]} compute on {h.name}"
        if reason is None and read_as.get(runs.model[i]):
            layout_note[i] = "; ".join(filter(None, (layout_note[i], CHECKPOINT_NOTE.format(
                runs.model[i], read_as[runs.model[i]]))))
        if reason is not None:
            status[i] = f"unsupported: {reason}"
    return Rows(models, hws, profiles, status, dev, mname, group, wdt, adt, kdt, tp, moe_tp, dp, ep, layout_note)
