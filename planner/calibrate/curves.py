"""The efficiency model's curves, each fitted on its own kind of microbenchmark (pure
numpy/scipy), with the engine's own formula: ``e(w) = e_max * w / (w + w_half)`` of the
work per kernel (:func:`fit_curve`), a streaming kernel's bandwidth (:func:`fit_bandwidth`,
:func:`memory_curve`), the GEMMs' compute curve through the roofline max
(:func:`fit_compute`, or in the rows per pass: :func:`fit_compute_tokens`), decode
attention's memory factor (:func:`fit_attention_factor`) and the per-kernel overhead
(:func:`kernel_overhead`). Each minimizes the log error (``scipy.optimize.least_squares``,
soft-L1 loss, so one disturbed sample does not drag the fit) from several starts.
planner.calibrate.fit runs them all on a benchmark's rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


MIN_LEFT = 0.3  # a measurement minus fixed costs is kept at >= 30% of itself
F_SCALE = 0.25  # soft-L1: log errors beyond ~25% count linearly (a disturbed sample pulls less)


@dataclass(frozen=True)
class CurveFit:
    e_max: float
    w_half: float
    rms_log_error: float
    n: int

    def __call__(self, w):
        return saturating(w, self.e_max, self.w_half)

    def as_dict(self) -> dict:
        return {k: float(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def saturating(w, e_max: float, w_half: float):
    """``e_max * w / (w + w_half)`` (the constant ``e_max`` when ``w_half`` is 0)."""
    w = np.asarray(w, dtype=float)
    if w_half <= 0:
        return np.full_like(w, e_max)
    return e_max * w / (w + w_half)


def _robust_cost(res) -> float:
    """The soft-L1 cost least_squares minimizes, for comparing starts."""
    z = (np.asarray(res, dtype=float) / F_SCALE) ** 2
    return float(np.sum(2.0 * (np.sqrt(1.0 + z) - 1.0)))


def _least_squares(residual, x0s, bounds, grid: tuple | None = None):
    """Robust least squares from several starts; ``grid`` = per-parameter 1-D arrays of
    candidate values whose best combination is added as a start (the roofline max makes
    the cost non-convex, so a local fit from a poor start can stall)."""
    from scipy.optimize import least_squares

    starts = [np.asarray(x, dtype=float) for x in x0s]
    if grid is not None:
        mesh = np.meshgrid(*grid, indexing="ij")
        cands = np.stack([m.ravel() for m in mesh], axis=1)
        costs = [_robust_cost(residual(c)) for c in cands]
        order = np.argsort(costs)[:3]
        starts.extend(cands[i] for i in order)
    best = None
    for x0 in starts:
        x0 = np.clip(x0, bounds[0], bounds[1])
        r = least_squares(residual, x0, bounds=bounds, loss="soft_l1", f_scale=F_SCALE, x_scale=1.0, max_nfev=2000)
        if best is None or r.cost < best.cost:
            best = r
    return best


def _rms(res) -> float:
    res = np.asarray(res, dtype=float)
    return float(np.sqrt(np.mean(res ** 2))) if res.size else float("nan")


def _clean_whalf(w_half: float, work) -> float:
    """A half-work far below every measured size is indistinguishable from 0."""
    return 0.0 if w_half < 1e-4 * float(np.min(work)) else float(w_half)


def fit_curve(work, eff) -> CurveFit:
    """Fit ``eff ~ e_max * w / (w + w_half)`` on log error."""
    w = np.asarray(work, dtype=float)
    e = np.asarray(eff, dtype=float)
    ok = (w > 0) & (e > 0) & np.isfinite(w) & np.isfinite(e)
    w, e = w[ok], e[ok]
    if w.size < 2:
        raise ValueError("need at least two measurements to fit a curve")
    lw, le = np.log(w), np.log(e)

    def residual(x):
        return np.log(np.exp(x[0])) + lw - np.logaddexp(lw, x[1]) - le

    lo = np.array([math.log(1e-6), lw.min() - 25.0])
    hi = np.array([math.log(100.0), lw.max() + 25.0])
    x0s = [(math.log(e.max() * 1.05), q) for q in np.quantile(lw, [0.0, 0.25, 0.5, 0.75])]
    x0s.append((math.log(e.max() * 1.05), lw.min() - 10.0))
    grid = (np.log(e.max()) + np.linspace(-0.5, 1.5, 21), np.linspace(lw.min() - 8.0, lw.max() + 2.0, 41))
    r = _least_squares(residual, x0s, (lo, hi), grid)
    e_max, w_half = math.exp(r.x[0]), math.exp(r.x[1])
    w_half = _clean_whalf(w_half, w)
    return CurveFit(e_max, w_half, _rms(residual(np.array([r.x[0], math.log(w_half) if w_half else lo[1]]))), int(w.size))


def time_left(seconds, fixed_s):
    """A measurement less its fixed costs, kept at ``MIN_LEFT`` of itself at least."""
    t = np.asarray(seconds, dtype=float)
    return np.maximum(t - fixed_s, MIN_LEFT * t)


def fit_bandwidth(nbytes, seconds, fixed_s: float = 0.0) -> tuple[float, CurveFit]:
    """Asymptotic bandwidth (bytes/s) of a streaming kernel and its curve (e_max = 1)."""
    b = np.asarray(nbytes, dtype=float)
    bw = b / time_left(seconds, fixed_s)
    p0 = float(bw.max())
    c = fit_curve(b, bw / p0)
    return p0 * c.e_max, CurveFit(1.0, c.w_half, c.rms_log_error, c.n)


def memory_curve(nbytes, seconds, peak_bw: float, fixed_s: float = 0.0) -> CurveFit:
    """Memory curve of a kernel relative to ``peak_bw``."""
    b = np.asarray(nbytes, dtype=float)
    return fit_curve(b, b / time_left(seconds, fixed_s) / peak_bw)


def roofline_time(flops, nbytes, peak_flops, compute: tuple[float, float], peak_bw,
                  memory: tuple[float, float], memory_factor: float = 1.0):
    """The engine's time of one kernel: max(compute side, memory side)."""
    F = np.asarray(flops, dtype=float)
    B = np.asarray(nbytes, dtype=float)
    tc = (F + compute[1]) / (peak_flops * compute[0]) if compute[1] > 0 else F / (peak_flops * compute[0])
    tm = (B + memory[1]) / (peak_bw * memory[0] * memory_factor) if memory[1] > 0 else B / (peak_bw * memory[0] * memory_factor)
    return np.maximum(tc, tm)


def fit_compute(flops, nbytes, seconds, *, peak_flops: float | None, peak_bw: float,
                memory: tuple[float, float], fixed_s: float = 0.0, overlap: bool = True) -> tuple[float, CurveFit]:
    """Compute curve of GEMMs through the roofline max (memory side fixed).

    ``peak_flops=None``: the reference is the best achieved rate and the fitted e_max is
    folded into the returned peak (e_max = 1). Returns ``(peak, curve)``.
    ``overlap=False`` fits the alternative model compute + memory (no overlap), for
    comparison only (the engine takes the max)."""
    F = np.asarray(flops, dtype=float)
    B = np.asarray(nbytes, dtype=float)
    t = time_left(seconds, fixed_s)
    ok = (F > 0) & (t > 0)
    F, B, t = F[ok], B[ok], t[ok]
    if F.size < 2:
        raise ValueError("need at least two GEMM measurements")
    measured_ref = peak_flops is None
    p_ref = float((F / t).max()) if measured_ref else float(peak_flops)
    me, mw = memory
    tm = (B + mw) / (peak_bw * me)
    lt = np.log(t)
    lF = np.log(F)

    def residual(x):
        tc = np.exp(np.logaddexp(lF, x[1]) - x[0]) / p_ref
        pred = np.maximum(tc, tm) if overlap else tc + tm
        return np.log(pred) - lt

    lo = np.array([math.log(1e-6), lF.min() - 25.0])
    hi = np.array([math.log(100.0), lF.max() + 10.0])
    rate = F / t / p_ref
    x0s = [(math.log(max(rate.max(), 1e-6)), q) for q in np.quantile(lF, [0.0, 0.25, 0.5, 0.75, 1.0])]
    x0s.append((math.log(max(rate.max(), 1e-6)), lF.min() - 10.0))
    grid = (math.log(max(rate.max(), 1e-6)) + np.linspace(-1.0, 1.0, 21), np.linspace(lF.min() - 8.0, lF.max() + 2.0, 41))
    r = _least_squares(residual, x0s, (lo, hi), grid)
    e_max, w_half = math.exp(r.x[0]), _clean_whalf(math.exp(r.x[1]), F)
    rms = _rms(residual(np.array([r.x[0], math.log(w_half) if w_half else lo[1]])))
    if measured_ref:
        return p_ref * e_max, CurveFit(1.0, w_half, rms, int(F.size))
    return p_ref, CurveFit(e_max, w_half, rms, int(F.size))


def fit_compute_tokens(rows_m, flops, nbytes, seconds, *, peak_flops: float | None, peak_bw: float,
                       memory: tuple[float, float], fixed_s: float = 0.0,
                       row_bytes=0.0) -> tuple[float, float, float, float]:
    """The GEMM model the engine uses with a profile (``gemm_rows_half``): compute
    efficiency as a function of the rows M of the GEMM (tokens in the pass),
    ``e_max * M / (M + m_half)``, through the same roofline max. On CPUs the efficiency of an LLM-sized GEMM depends
    on M, hardly on K x N, which a curve in FLOPs per kernel cannot express.
    ``row_bytes``: the one-row GEMMs' per-row cost on the memory side, in bytes per GEMM
    (:mod:`planner.calibrate.fit_gemv`). Returns ``(peak, e_max, m_half, rms_log_error)``."""
    M = np.asarray(rows_m, dtype=float)
    F = np.asarray(flops, dtype=float)
    B = np.asarray(nbytes, dtype=float)
    t = time_left(seconds, fixed_s)
    measured_ref = peak_flops is None
    p_ref = float((F / t).max()) if measured_ref else float(peak_flops)
    tm = (B + row_bytes + memory[1]) / (peak_bw * memory[0])
    lt, lM = np.log(t), np.log(M)

    def residual(x):
        tc = F * np.exp(np.logaddexp(lM, x[1]) - lM - x[0]) / p_ref
        return np.log(np.maximum(tc, tm)) - lt

    lo, hi = np.array([math.log(1e-6), math.log(1e-3)]), np.array([math.log(100.0), math.log(1e5)])
    x0 = math.log(max((F / t / p_ref).max(), 1e-6))
    grid = (x0 + np.linspace(-1.0, 1.0, 21), np.linspace(math.log(0.01), math.log(1e4), 41))
    r = _least_squares(residual, [(x0, math.log(8.0))], (lo, hi), grid)
    e_max, m_half = math.exp(r.x[0]), math.exp(r.x[1])
    rms = _rms(residual(r.x))
    if measured_ref:
        return p_ref * e_max, 1.0, m_half, rms
    return p_ref, e_max, m_half, rms


def fit_attention_factor(flops, nbytes, seconds, *, peak_flops: float, compute: tuple[float, float],
                         peak_bw: float, memory: tuple[float, float], fixed_s: float = 0.0) -> tuple[float, float]:
    """Scalar on the memory side of decode attention (KV reads vs weight streaming).
    Returns ``(factor, rms_log_error)``."""
    F = np.asarray(flops, dtype=float)
    B = np.asarray(nbytes, dtype=float)
    t = time_left(seconds, fixed_s)
    lt = np.log(t)

    def residual(x):
        return np.log(roofline_time(F, B, peak_flops, compute, peak_bw, memory, math.exp(x[0]))) - lt

    r = _least_squares(residual, [(math.log(f),) for f in (0.1, 0.5, 1.0, 2.0)],
                       (np.array([math.log(1e-3)]), np.array([math.log(100.0)])),
                       (np.linspace(math.log(1e-3), math.log(10.0), 61),))
    return math.exp(r.x[0]), _rms(residual(r.x))


def kernel_overhead(step_seconds: dict[int, float], kernels_per_layer: int) -> float:
    """Per-kernel fixed cost from decode steps of a negligible-work decoder at two depths."""
    items = sorted(step_seconds.items())
    (l1, t1), (l2, t2) = items[0], items[-1]
    if l2 == l1:
        raise ValueError("need two depths")
    per_layer = (t2 - t1) / (l2 - l1)
    return max(per_layer, 0.0) / kernels_per_layer
