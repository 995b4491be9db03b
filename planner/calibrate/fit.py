"""Fit the engine's efficiency model to microbenchmark measurements (pure numpy/scipy).

The engine (planner.cost.engine) times a kernel class as
``max(F / (peak * c(F/n)), B / (bw * m(B/n) [* attention_memory])) + kernels * overhead``
with curves ``e(w) = e_max * w / (w + w_half)`` of the work per kernel. Each fit here
predicts the benchmark with that same formula and minimizes the log error
(``scipy.optimize.least_squares``, soft-L1 loss, so one disturbed sample does not drag
the fit):

* memory curve: achieved bandwidth of weight streaming (a matrix-vector product, the
  decode GEMM at batch 1) as a function of bytes per kernel; the reference peak is the
  asymptote of a plain streaming read (or the spec's bandwidth for a catalog device);
* compute curve per dtype: every GEMM (skinny decode-like and prefill-like) through the
  roofline max with the memory curve fixed;
* GEMM rows model (what the engine uses): efficiency ``e_max * M / (M + m_half)`` in the
  rows M per pass, on weight-shaped GEMMs, and a measured correction per row count;
* attention memory factor: decode attention through the same roofline, one scalar on
  the memory side;
* kernel overhead: the step time of a decoder whose kernels do negligible work, per
  layer, divided by the kernels the engine counts per layer.

The end-to-end time scale is fitted afterwards, with the engine itself
(:mod:`planner.calibrate.end_to_end`).

When the reference peak is measured (a device without a spec), the fitted ``e_max`` is
folded into the peak: the curve then reads as a fraction of the measured asymptote.
"""

from __future__ import annotations

import numpy as np

from planner.calibrate.curves import (F_SCALE, MIN_LEFT, CurveFit, fit_attention_factor, fit_bandwidth, fit_compute,
                                     fit_compute_tokens, fit_curve, kernel_overhead, memory_curve, roofline_time,
                                     saturating, time_left)
from planner.calibrate.fit_gemv import fit_gemv_rows, rows_correction
from planner.cost.roofline import gemv_weight

# each curve's fit lives in planner.calibrate.curves; callers written before the split
# import them from here
__all__ = ["F_SCALE", "MIN_LEFT", "CurveFit", "fit_attention_factor", "fit_bandwidth", "fit_compute",
           "fit_compute_tokens", "fit_curve", "fit_measurements", "kernel_overhead", "memory_curve", "roofline_time",
           "saturating"]


def _rows(rows, kind, **match):
    return [r for r in rows if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]


def _cols(rows, *keys):
    return [np.array([float(r[k]) for r in rows]) for k in keys]


def fit_measurements(rows: list[dict], *, main_dtype: str, kernels_per_layer: int,
                     peak_flops: dict[str, float] | None = None, peak_bandwidth: float | None = None) -> dict:
    """Fit every figure of a profile from benchmark rows (see :mod:`planner.calibrate.bench`).

    ``peak_flops`` / ``peak_bandwidth``: the spec's peaks when calibrating a catalog device
    (the curves are then fractions of the datasheet); None = measured asymptotes.
    Returns the ``fitted`` mapping of a profile."""
    peak_flops = dict(peak_flops or {})
    info: dict = {}
    rms: dict = {}

    tiny = _rows(rows, "tiny_op")
    op_s = float(np.median([r["seconds"] for r in tiny])) if tiny else 0.0
    info["tiny_op_s"] = op_s

    layers = {int(r["layers"]): float(r["seconds"]) for r in _rows(rows, "tiny_decoder")}
    if len(layers) >= 2:
        ovh = kernel_overhead(layers, kernels_per_layer)
        info["tiny_decoder_step_s"] = {str(k): v for k, v in sorted(layers.items())}
    else:
        ovh = op_s
    if ovh <= 0:
        ovh = op_s

    # bandwidth: asymptote of a streaming read (the spec's figure for a catalog device)
    read = _rows(rows, "stream_read")
    if read:
        b, t = _cols(read, "bytes", "seconds")
        read_peak, read_curve = fit_bandwidth(b, t, op_s)
        info["stream_read_gbps"] = read_peak / 1e9
        rms["stream_read"] = read_curve.rms_log_error
    else:
        read_peak = None
    copy = _rows(rows, "stream_copy")
    if copy:
        b, t = _cols(copy, "bytes", "seconds")
        info["stream_copy_gbps"] = fit_bandwidth(b, t, op_s)[0] / 1e9
    bw = float(peak_bandwidth) if peak_bandwidth else read_peak
    if not bw:
        raise ValueError("no streaming measurements and no spec bandwidth")

    # memory curve: weights streamed through a matrix-vector product
    gemv = _rows(rows, "gemv") or read
    b, t = _cols(gemv, "bytes", "seconds")
    mem = memory_curve(b, t, bw, op_s)
    rms["memory"] = mem.rms_log_error
    info["memory_curve_from"] = "gemv" if _rows(rows, "gemv") else "stream_read"
    # one-row GEMMs: streaming plus a cost per output row (planner.calibrate.fit_gemv)
    # (as the memory curve's time: a stream factor and bytes per row at its rate)
    row_bytes, stream_factor = 0.0, 1.0
    one = [r for r in rows if r["kind"] in ("gemm", "gemv") and r.get("m") == 1 and r["dtype"] == main_dtype]
    if one:
        B1, N1, K1, t1 = _cols(one, "bytes", "n", "k", "seconds")
        got = fit_gemv_rows(B1, N1, K1, time_left(t1, op_s), peak_bw=bw, w_half=mem.w_half)
        if got is not None:
            e_one, r_one, rms["gemv_rows"] = got
            stream_factor = mem.e_max / e_one
            row_bytes = r_one * stream_factor
            info["gemv_gbps_streaming"] = bw * e_one / 1e9
    info["gemv_gbps_at_256MiB"] = float(bw * mem(256 << 20)) / 1e9
    mem_t = (mem.e_max, mem.w_half)

    # compute curves per dtype: all GEMMs (the batch-1 weight streams included)
    compute: dict[str, dict] = {}
    peaks: dict[str, float] = {}
    gemm_tokens: dict[str, dict] = {}
    for dt in sorted({r["dtype"] for r in rows if r["kind"] in ("gemm", "gemv")}):
        g = [r for r in rows if r["kind"] in ("gemm", "gemv") and r["dtype"] == dt]
        if len(g) < 2:
            continue
        F, B, t = _cols(g, "flops", "bytes", "seconds")
        ref = peak_flops.get(dt)
        if ref is None and peak_flops and dt in ("bf16", "fp16"):
            ref = peak_flops.get("fp16" if dt == "bf16" else "bf16")
        peak, curve = fit_compute(F, B, t, peak_flops=ref, peak_bw=bw, memory=mem_t, fixed_s=op_s)
        peaks[dt] = peak
        compute[dt] = {"e_max": curve.e_max, "w_half": curve.w_half}
        rms[f"compute.{dt}"] = curve.rms_log_error
        # the row-based fit uses weight-shaped GEMMs only (a decoder never runs the square
        # ones, which reach a higher peak and would inflate it)
        gt = [r for r in g if not (r.get("m") == r.get("k") == r.get("n"))]
        rows_m = [r.get("m") for r in gt]
        if len(gt) >= 2 and all(isinstance(x, (int, float)) and x > 0 for x in rows_m):
            Ft, Bt, tt, Nt = _cols(gt, "flops", "bytes", "seconds", "n")
            w1 = gemv_weight(np, np.asarray(rows_m, dtype=float)) if dt == main_dtype else 0.0
            extra = w1 * (Bt * (stream_factor - 1.0) + Nt * row_bytes)
            pk, em, mh, trms = fit_compute_tokens(rows_m, Ft, Bt, tt, peak_flops=ref, peak_bw=bw, memory=mem_t,
                                                  fixed_s=op_s, row_bytes=extra)
            Mt = np.asarray(rows_m, dtype=float)
            hyper = Ft * (1.0 + mh / Mt) / (pk * em)
            t_mem = (Bt + extra + mem_t[1]) / (bw * mem_t[0])
            corr = rows_correction(rows_m, hyper, t_mem, time_left(tt, op_s))
            gemm_tokens[dt] = {"peak_flops": pk, "e_max": em, "m_half": mh, "rms_log_error": trms,
                               "rows_correction": corr}
        try:  # the same GEMMs under "compute + memory" (no overlap), for comparison
            _, alt = fit_compute(F, B, t, peak_flops=ref, peak_bw=bw, memory=mem_t, fixed_s=op_s, overlap=False)
            info[f"gemm_no_overlap_rms.{dt}"] = alt.rms_log_error
        except ValueError:
            pass
    if main_dtype not in compute:
        raise ValueError(f"no GEMM measurements for the main dtype {main_dtype}")
    main_c = (compute[main_dtype]["e_max"], compute[main_dtype]["w_half"])

    # decode attention: one scalar on the memory side
    att = _rows(rows, "attention", dtype=main_dtype)
    factor = 1.0
    if att:
        F, B, t = _cols(att, "flops", "bytes", "seconds")
        factor, rms["attention"] = fit_attention_factor(F, B, t, peak_flops=peaks[main_dtype], compute=main_c,
                                                        peak_bw=bw, memory=mem_t, fixed_s=op_s)
    pre = _rows(rows, "prefill_attention", dtype=main_dtype)
    if pre:
        F, B, t = _cols(pre, "flops", "bytes", "seconds")
        pred = roofline_time(F, B, peaks[main_dtype], main_c, bw, mem_t)
        info["prefill_attention_vs_gemm_curve"] = float(np.median(pred / t))

    return {
        "peak_flops": peaks,
        "peak_bandwidth": bw,
        "peaks_from": "spec" if peak_flops or peak_bandwidth else "measured",
        "main_dtype": main_dtype,
        "compute": compute,
        "memory": {"e_max": mem.e_max, "w_half": mem.w_half},
        "gemv": {"stream_factor": stream_factor, "row_bytes": row_bytes},
        "attention_memory": factor,
        "kernel_overhead_s": ovh,
        "kernels_per_layer": kernels_per_layer,
        "fit_rms_log_error": rms,
        "gemm_tokens": gemm_tokens,
        "info": info,
    }
