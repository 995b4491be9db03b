"""Achieved fraction of peak: documented defaults or curves fitted by calibration.

A curve is ``eff(w) = e_max * w / (w + w_half)``: tiny kernels reach little of the peak,
large ones approach ``e_max``. ``w`` is the work of one kernel (FLOPs for compute, bytes
for memory). With ``w_half = 0`` the curve is the constant ``e_max`` (the defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from planner.dtypes import compute_key
from planner.specs import DEFAULT_COMPUTE_EFFICIENCY


@dataclass(frozen=True)
class Curve:
    e_max: float
    w_half: float = 0.0

    def __call__(self, work):
        w = np.asarray(work, dtype=float)
        if self.w_half <= 0:
            return np.full_like(w, self.e_max)
        return self.e_max * w / (w + self.w_half)


@dataclass(frozen=True)
class Efficiency:
    """How close a device gets to its peaks, and what a kernel launch costs.

    ``compute`` maps a compute dtype to its GEMM curve (``"*"`` is the fallback);
    ``gemm_rows_half``: GEMMs with few rows (tokens per pass) run below the curve, by the
    factor rows / (rows + gemm_rows_half) (skinny decode GEMMs); ``gemm_rows_correction``:
    measured ``(rows, factor)`` pairs multiplying that GEMM time where the hyperbola misses
    (kernel switches in the BLAS; interpolated in log rows, held flat past the ends);
    ``attention_compute``:
    the curve of attention kernels (None: the GEMM curve's e_max, no offset);
    ``attention_memory`` scales the memory curve for attention (KV reads are strided and
    less efficient than weight streaming on many devices); ``expert_bytes_per_s`` caps
    the rate of the routed experts' weight reads (grouped GEMMs at a few tokens per
    expert, each touched expert's matrices fetched on their own: planner.serving_params
    ``expert_stream_bytes_per_s``; inf: no cap); ``overlap``: 1 = compute and
    memory traffic overlap perfectly (the roofline's max), 0 = they serialize (their sum),
    as on CPUs without enough outstanding loads; a matrix-vector product (a GEMM of one
    row: batch-1 decode, a prompt's LM head) streams its weights in ``gemv_stream_factor``
    times the memory curve's time and pays ``gemv_row_bytes`` per output row, as bytes at
    the memory curve's rate (its reduction and store: ~90 ns on the 2-core EPYC VM, so
    there a GEMV over 1024-wide rows streams ~30% slower than over 8192-wide ones;
    planner.calibrate.fit_gemv); ``time_scale`` multiplies every pass: the
    end-to-end factor calibration measures on a reference decoder (what kernel
    microbenchmarks miss inside a real forward pass); ``kernel_factor`` maps a compute
    (activation) dtype to a factor on ``kernel_overhead_s`` for the rows computing in it (the
    fixed time per kernel by GEMM path of a device whose kernel time was carried from others:
    planner.kernel_paths; a dtype not in it: factor 1).
    """

    compute: dict[str, Curve]
    memory: Curve
    interconnect: float
    kernel_overhead_s: float
    attention_memory: float = 1.0
    expert_bytes_per_s: float = float("inf")
    gemm_rows_half: float = 0.0
    gemm_rows_correction: tuple[tuple[float, float], ...] = ()
    attention_compute: Curve | None = None
    overlap: float = 1.0
    time_scale: float = 1.0
    gemv_row_bytes: float = 0.0
    gemv_stream_factor: float = 1.0
    peak_flops_override: dict[str, float] = field(default_factory=dict)  # FLOP/s, measured
    peak_bandwidth_override: float | None = None  # bytes/s, measured
    kernel_factor: dict[str, float] = field(default_factory=dict)  # compute dtype -> factor on kernel_overhead_s
    # the same for a checkpoint whose routed experts alone are quantized (attention GEMMs bf16)
    kernel_factor_experts_only: dict[str, float] = field(default_factory=dict)
    source: str = "defaults"

    def kernel_overhead_at(self, dtype: str, experts_only: bool = False) -> float:
        """The fixed time per kernel (s) of a row computing in ``dtype`` (of an experts-only
        checkpoint: planner.kernel_paths)."""
        factors = self.kernel_factor_experts_only if experts_only and self.kernel_factor_experts_only \
            else self.kernel_factor
        key = compute_key(factors, dtype)
        return self.kernel_overhead_s * (factors[key] if key is not None else 1.0)

    def rows_correction(self, rows):
        """The measured correction at ``rows`` rows per pass (1 without measurements)."""
        r = np.asarray(rows, dtype=float)
        if not self.gemm_rows_correction:
            return np.ones_like(r)
        pts = sorted(self.gemm_rows_correction)
        return np.interp(np.log2(r), [np.log2(m) for m, _ in pts], [f for _, f in pts])

    def rows_factor(self, rows):
        """GEMM time multiplier at ``rows`` rows per pass (relative to the flat curve)."""
        r = np.asarray(rows, dtype=float)
        return (1.0 + self.gemm_rows_half / r) * self.rows_correction(r)

    def compute_curve(self, dtype: str) -> Curve:
        key = compute_key(self.compute, dtype)
        if key is not None:
            return self.compute[key]
        return self.compute.get("*", Curve(DEFAULT_COMPUTE_EFFICIENCY))


def default_efficiency(hw) -> Efficiency:
    """The constants of a hardware spec (documented defaults unless the YAML sets them)."""
    return Efficiency(
        compute={"*": Curve(hw.compute_efficiency)},
        memory=Curve(hw.memory_efficiency),
        interconnect=hw.interconnect_efficiency,
        kernel_overhead_s=hw.kernel_overhead_us * 1e-6,
        source="defaults",
    )


# A GEMM's achieved rate falls when its reduction (K) per device is short: each output
# tile pays a fixed prologue and epilogue (pipeline fill, promotion, writing the tile)
# that a short K loop does not amortize. DeepGEMM's published FP8 GEMM table (H800, M =
# 4096; github.com/deepseek-ai/DeepGEMM README, "Normal GEMMs for dense models"): 590
# TFLOPS at K = 512, 990 at 1,536, 1,025 at 2,048, 1,058-1,304 at 7,168, 1,358 at 16,384;
# ``rate = r_max K / (K + K_half)`` fits those six rows within 16% (r_max 1,334 TFLOPS,
# K_half 628), so a GEMM at K runs at ``K / (K + K_half)`` of the long-K rate.
REDUCTION_HALF = 628.0


def reduction_efficiency(k_per_device):
    """Fraction of the long-reduction GEMM rate at reduction length ``k_per_device``
    (:data:`REDUCTION_HALF`). Numpy or float in, same out."""
    return k_per_device / (k_per_device + REDUCTION_HALF)
