"""Curve fitting recovers known parameters from synthetic, noisy measurements."""

from __future__ import annotations

import numpy as np
import pytest

from planner.calibrate.fit import (fit_attention_factor, fit_bandwidth, fit_compute, fit_curve, fit_measurements,
                                   kernel_overhead, roofline_time, saturating)

RNG = np.random.default_rng(7)


def noisy(x, sigma=0.03):
    return np.asarray(x) * np.exp(RNG.normal(0.0, sigma, np.shape(x)))


def test_saturating_shape():
    assert saturating([1e9], 0.8, 0.0)[0] == pytest.approx(0.8)
    assert saturating([1e6], 0.8, 1e6)[0] == pytest.approx(0.4)


def test_fit_curve_recovers_parameters():
    w = np.logspace(4, 10, 30)
    eff = noisy(saturating(w, 0.72, 3e6))
    c = fit_curve(w, eff)
    assert c.e_max == pytest.approx(0.72, rel=0.05)
    assert c.w_half == pytest.approx(3e6, rel=0.2)
    assert c.rms_log_error < 0.06


def test_fit_curve_constant_gives_zero_half():
    w = np.logspace(6, 9, 12)
    c = fit_curve(w, noisy(np.full_like(w, 0.5), 0.01))
    assert c.e_max == pytest.approx(0.5, rel=0.03)
    assert c(w[0]) / c(w[-1]) > 0.97  # flat: the half-work is far below every size measured


def test_fit_curve_ignores_one_disturbed_sample():
    w = np.logspace(4, 10, 25)
    eff = saturating(w, 0.6, 1e6)
    eff[12] /= 5.0  # another process took the CPU during this one
    c = fit_curve(w, eff)
    assert c.e_max == pytest.approx(0.6, rel=0.05)
    assert c.w_half == pytest.approx(1e6, rel=0.25)


def test_fit_bandwidth_measured_peak():
    b = np.logspace(4, 9.5, 20)
    t = b / (30e9 * saturating(b, 1.0, 2e5))
    peak, c = fit_bandwidth(b, noisy(t, 0.02))
    assert peak == pytest.approx(30e9, rel=0.05)
    assert c.e_max == 1.0
    assert c.w_half == pytest.approx(2e5, rel=0.3)


def _gemm_grid():
    F, B = [], []
    for k, n in [(1024, 4096), (2048, 2048), (2048, 8192)]:
        for m in [1, 2, 4, 8, 16, 32, 64, 128, 512]:
            F.append(2.0 * m * k * n)
            B.append(4.0 * (k * n + m * k + m * n))
    for s in (512, 1024, 2048):
        F.append(2.0 * s ** 3)
        B.append(12.0 * s * s)
    return np.array(F), np.array(B)


def test_fit_compute_spec_reference():
    F, B = _gemm_grid()
    peak, bw, mem = 200e9, 30e9, (0.6, 1e5)
    t = roofline_time(F, B, peak, (0.75, 4e7), bw, mem)
    p, c = fit_compute(F, B, noisy(t, 0.02), peak_flops=peak, peak_bw=bw, memory=mem)
    assert p == peak
    assert c.e_max == pytest.approx(0.75, rel=0.05)
    assert c.w_half == pytest.approx(4e7, rel=0.3)


def test_fit_compute_measured_reference_folds_emax_into_peak():
    F, B = _gemm_grid()
    bw, mem = 30e9, (0.6, 1e5)
    t = roofline_time(F, B, 150e9, (1.0, 2e7), bw, mem)
    p, c = fit_compute(F, B, noisy(t, 0.02), peak_flops=None, peak_bw=bw, memory=mem)
    assert c.e_max == 1.0
    assert p == pytest.approx(150e9, rel=0.05)
    assert c.w_half == pytest.approx(2e7, rel=0.3)


def test_fit_attention_factor():
    b = np.array([2.0 * bb * 8 * c * 128 * 4 for bb in (1, 4, 16) for c in (256, 1024, 4096)])
    F = b / 4.0
    t = roofline_time(F, b, 150e9, (1.0, 1e6), 30e9, (0.6, 1e5), 0.45)
    a, rms = fit_attention_factor(F, b, noisy(t, 0.02), peak_flops=150e9, compute=(1.0, 1e6), peak_bw=30e9,
                                  memory=(0.6, 1e5))
    assert a == pytest.approx(0.45, rel=0.05)
    assert rms < 0.05


def test_kernel_overhead_per_layer():
    assert kernel_overhead({1: 1e-3, 3: 2.6e-3}, 8) == pytest.approx(1e-4)


def test_fit_measurements_end_to_end():
    """Rows as bench.run makes them, generated from known figures, come back out."""
    peak, bw, mem, comp, att, op = 160e9, 28e9, (0.65, 1e5), (1.0, 5e6), 0.5, 3e-6
    rows = [{"kind": "tiny_op", "dtype": "fp32", "flops": 16.0, "bytes": 128.0, "seconds": op}]
    rows += [{"kind": "tiny_decoder", "dtype": "fp32", "layers": n, "flops": 0.0, "bytes": 0.0,
              "seconds": 2e-4 + n * 8 * 30e-6} for n in (1, 3)]
    for s in np.logspace(14, 30, 9, base=2):
        rows.append({"kind": "stream_read", "dtype": "fp32", "bytes": s, "flops": s / 4,
                     "seconds": op + s / (bw * saturating(s, 1.0, 3e4))})
    for n in (8, 128, 2048, 32768, 131072):
        F, B = 2.0 * 2048 * n, 4.0 * (2048 * n + 2048 + n)
        rows.append({"kind": "gemv", "dtype": "fp32", "m": 1, "k": 2048, "n": n, "flops": F, "bytes": B,
                     "seconds": op + float(roofline_time(F, B, peak, comp, bw, mem))})
    F, B = _gemm_grid()
    for f, b in zip(F, B):
        rows.append({"kind": "gemm", "dtype": "fp32", "flops": f, "bytes": b,
                     "seconds": op + float(roofline_time(f, b, peak, comp, bw, mem))})
    for bb in (1, 4, 16):
        for c in (256, 1024, 4096):
            b = 2.0 * bb * 8 * c * 128 * 4
            rows.append({"kind": "attention", "dtype": "fp32", "batch": bb, "context": c, "flops": b / 4, "bytes": b,
                         "seconds": op + float(roofline_time(b / 4, b, peak, comp, bw, mem, att))})
    f = fit_measurements(rows, main_dtype="fp32", kernels_per_layer=8)
    assert f["peaks_from"] == "measured"
    assert f["peak_bandwidth"] == pytest.approx(bw, rel=0.05)
    assert f["memory"]["e_max"] == pytest.approx(0.65, rel=0.05)
    assert f["peak_flops"]["fp32"] == pytest.approx(peak, rel=0.05)
    assert f["attention_memory"] == pytest.approx(att, rel=0.05)
    assert f["kernel_overhead_s"] == pytest.approx(30e-6, rel=1e-6)


def test_fit_compute_tokens_recovers_rows_half():
    from planner.calibrate.fit import fit_compute_tokens

    M, F, B = [], [], []
    for k, n in [(1024, 4096), (2048, 8192), (1024, 32768)]:
        for m in [1, 2, 4, 8, 16, 32, 64, 128, 512]:
            M.append(m)
            F.append(2.0 * m * k * n)
            B.append(4.0 * k * n)
    M, F, B = map(np.array, (M, F, B))
    tc = F * (M + 12.0) / M / 150e9
    tm = B / (30e9 * 0.6)
    peak, e_max, m_half, rms = fit_compute_tokens(M, F, B, noisy(np.maximum(tc, tm), 0.02), peak_flops=None,
                                                  peak_bw=30e9, memory=(0.6, 0.0))
    assert peak == pytest.approx(150e9, rel=0.05) and e_max == 1.0
    assert m_half == pytest.approx(12.0, rel=0.15) and rms < 0.05


def test_rows_correction_recovers_a_kernel_switch():
    """A BLAS that runs 8-row GEMMs 1.6x slower than the hyperbola says: the correction
    table finds 1.6 at 8 rows and ~1 elsewhere (only rows measured on >= 2 shapes)."""
    from planner.calibrate.fit_gemv import rows_correction

    M, F, t = [], [], []
    truth = {1: 1.0, 2: 1.0, 4: 1.0, 8: 1.6, 16: 1.0, 64: 1.0}
    for k, n in [(1024, 4096), (2048, 8192), (1024, 32768)]:
        for m, c in truth.items():
            f = 2.0 * m * k * n
            M.append(m)
            F.append(f)
            t.append(f * (1 + 12.0 / m) / 150e9 * c)
    M.append(3)  # measured on one shape only: left to the interpolation
    F.append(1e9)
    t.append(1.0)
    hyper = np.array(F) * (1 + 12.0 / np.array(M, dtype=float)) / 150e9
    corr = rows_correction(M, hyper, hyper * 1e-3, noisy(np.array(t), 0.01))
    assert set(corr) == set(truth)
    for m, c in truth.items():
        assert corr[m] == pytest.approx(c, rel=0.03)
