"""The one-row GEMM (matrix-vector product) memory model, and the GEMM row correction
fitted through the engine's roofline (pure numpy/scipy).

A GEMV streams its weight matrix ``[N, K]`` once and pays a fixed cost per output row
(the row's reduction and store). On the 2-core EPYC VM the shipped profile comes from,
the twelve one-row GEMMs of a quick sweep (K = 1024..8192, 17-270 MB) fit
``t = N K b / 26.8 GB/s + N x 92 ns`` with 10% rms, against 14% for a plain bandwidth;
GEMMs of 2 and 4 rows show no such term (3-4% rms without it). So a decoder whose rows
are long streams faster at batch 1 than one with short rows: llama-3.2-1b (rows of
2048-8192 values) at ~21 GB/s, qwen3-0.6b (1024-value rows, an LM head of 152k rows) at
~17 GB/s, which one bandwidth for both cannot express (it over-predicted llama-3.2-1b's
batch-1 decode by 20-38%). The engine charges ``gemv_row_bytes`` per output row of a
one-row GEMM (:func:`planner.cost.roofline.gemm_memory_bytes`, weighted by
:func:`planner.cost.roofline.gemv_weight`).

:func:`fit_gemv_rows` fits ``t = (B + N r + w_half) / (bw e)`` on the one-row GEMMs
(``e`` the memory curve's e_max, ``r`` the row cost in bytes, ``w_half`` the memory
curve's per-kernel offset fitted on the size sweep). :func:`rows_correction` then fits,
per row count, the factor on the GEMM compute side that makes the engine's
``max(compute, memory)`` match the measurements: where the memory side already explains
a row count (one row), the factor is the largest that leaves it so.
"""

from __future__ import annotations

import math

import numpy as np

from planner.calibrate.curves import F_SCALE  # the soft-L1 scale on log errors of every curve fit

MIN_ROW_BYTES = 1 << 20  # one-row GEMMs of at least this many weight bytes enter the row fit
MIN_WIDTHS = 3           # distinct row widths K needed to tell a per-row cost from bandwidth


def fit_gemv_rows(nbytes, out_rows, widths, seconds, *, peak_bw: float, w_half: float):
    """``(e_max, row_bytes, rms_log_error)`` of ``t = (B + N r + w_half) / (peak_bw e)``
    on one-row GEMMs (``nbytes`` B, ``out_rows`` N, row ``widths`` K), or None when the
    measurements cannot separate the two (fewer than :data:`MIN_WIDTHS` widths)."""
    from scipy.optimize import least_squares, nnls

    B = np.asarray(nbytes, dtype=float)
    N = np.asarray(out_rows, dtype=float)
    K = np.asarray(widths, dtype=float)
    t = np.asarray(seconds, dtype=float)
    ok = (B >= MIN_ROW_BYTES) & (N > 0) & (t > 0) & np.isfinite(t)
    B, N, K, t = B[ok], N[ok], K[ok], t[ok]
    if np.unique(K).size < MIN_WIDTHS or t.size < MIN_WIDTHS + 1:
        return None
    # t = a (B + w_half) + b N with a = 1 / (bw e), b = r a: non-negative least squares on
    # relative error for a start, then soft-L1 on log error (a disturbed sample pulls less)
    A = np.stack([(B + w_half) / t, N / t], axis=1)
    (a0, b0), _ = nnls(A, np.ones_like(t))
    a0 = a0 if a0 > 0 else float(np.median(t / (B + w_half)))
    lt = np.log(t)

    def residual(x):
        return np.log(math.exp(x[0]) * (B + w_half) + math.exp(x[1]) * N) - lt

    floor = math.log(a0) - 40.0  # a row cost this small is none
    starts = [(math.log(a0), math.log(max(b0, 1e-30)))]
    starts.append((math.log(float(np.median(t / (B + w_half)))), floor))
    best = None
    for x0 in starts:
        x0 = np.clip(np.asarray(x0), [math.log(a0) - 5, floor], [math.log(a0) + 5, math.log(a0) + 40])
        r = least_squares(residual, x0, bounds=([math.log(a0) - 5, floor], [math.log(a0) + 5, math.log(a0) + 40]),
                          loss="soft_l1", f_scale=F_SCALE)
        if best is None or r.cost < best.cost:
            best = r
    a, b = math.exp(best.x[0]), math.exp(best.x[1])
    row_bytes = b / a if best.x[1] > floor + 1.0 else 0.0
    rms = float(np.sqrt(np.mean(residual(best.x) ** 2)))
    return 1.0 / (a * peak_bw), row_bytes, rms


def rows_correction(rows_m, hyperbola_s, memory_s, seconds, *, tolerance: float = 0.01) -> dict[int, float]:
    """For each row count measured on at least two shapes, the factor ``c`` on the
    hyperbola's compute time that makes ``max(c * hyperbola, memory)`` best match the
    measured times (soft-L1 on log error, a 1-D search). Where the memory side explains
    the row count, a range of small factors fits equally: the largest factor within
    ``tolerance`` of the best cost is kept, so the compute side stays just below it."""
    M = np.asarray(rows_m, dtype=float)
    h = np.asarray(hyperbola_s, dtype=float)
    tm = np.asarray(memory_s, dtype=float)
    t = np.asarray(seconds, dtype=float)
    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 601))
    out = {}
    for m in np.unique(M):
        sel = M == m
        if sel.sum() < 2:
            continue
        pred = np.maximum(grid[:, None] * h[sel][None, :], tm[sel][None, :])
        z = (np.log(pred / t[sel][None, :]) / F_SCALE) ** 2
        cost = np.sum(2.0 * (np.sqrt(1.0 + z) - 1.0), axis=1)
        good = np.nonzero(cost <= cost.min() * (1.0 + tolerance) + 1e-12)[0]
        out[int(m)] = float(grid[good.max()])
    return out
