"""A kernel class's time from its compute and memory sides: the roofline (with the device's
``overlap``), the one-row GEMM's streaming and per-row costs, the kernel launches and the
calibrated end-to-end scale. The building blocks of planner.cost.dense (the dense kernels
of a pass), planner.cost.passes (the phases) and planner.cost.steps (a serving step).

Names carry units: ``_s`` seconds, ``_bytes``. ``x`` is the per-row context
(planner.cost.context.Ctx); every function takes its elementwise operations from ``x.xp``
(:mod:`planner.cost.ops`), so it runs on numpy rows and on Python floats alike.
"""

from __future__ import annotations

BOTTLENECKS = ("compute", "memory", "interconnect", "overhead")
TIME_KEYS = ("time", "t_compute", "t_memory", "t_comm", "t_ovh")


def launch_overhead_s(x, passes):
    """Kernel launches: ``kernels per pass x overhead per kernel`` for each pass (the overhead of
    the row's device at its compute dtype: planner.cost.efficiency.Efficiency.kernel_factor)."""
    return passes * x.kernels_per_pass * x.kernel_s


def gemv_weight(xp, rows):
    """Share of the one-row GEMM (GEMV) costs a GEMM at ``rows`` rows per pass pays:
    ``clip(2 - rows, 0, 1)``, all at one row, none from two, linear in between (also the
    weight the calibration fit gives the GEMV terms: planner.calibrate.fit)."""
    return xp.clip(2.0 - rows, 0.0, 1.0)


def gemm_memory_bytes(x, weight_bytes, out_rows, rows):
    """Bytes-equivalent the memory side charges for GEMMs reading ``weight_bytes`` with
    ``out_rows`` output rows at ``rows`` rows per pass. A one-row GEMM (matrix-vector
    product: batch-1 decode, a prompt's LM head) streams at its own rate
    (``gemv_stream_factor`` times the memory curve's time) and pays a fixed cost per
    output row (``gemv_row_bytes``); from two rows on a GEMM is charged its bytes (linear
    in between). Both are 1 and 0 without calibration."""
    H = x.hw
    w = gemv_weight(x.xp, rows)
    return weight_bytes * (1.0 + w * (H["gemv_stream_factor"] - 1.0)) + out_rows * w * H["gemv_row_bytes"]


def roofline_s(x, compute_s, memory_s):
    """Time of a kernel class from its compute and memory times: the roofline's max when
    they overlap (overlap = 1), their sum when they serialize (overlap = 0). Returns the
    time and its compute and memory parts (they add up to the time)."""
    xp = x.xp
    compute_wins = compute_s >= memory_s
    if x.full_overlap:  # every row overlaps fully (GPUs by default): the plain roofline
        # (x * mask: np.where is ~8x a multiplication; the same values for finite times)
        return xp.maximum(compute_s, memory_s), compute_s * compute_wins, memory_s * xp.logical_not(compute_wins)
    ov = x.hw["overlap"]
    c_part = ov * xp.where(compute_wins, compute_s, 0.0) + (1.0 - ov) * compute_s
    m_part = ov * xp.where(compute_wins, 0.0, memory_s) + (1.0 - ov) * memory_s
    return ov * xp.maximum(compute_s, memory_s) + (1.0 - ov) * (compute_s + memory_s), c_part, m_part


def scaled(x, phase: dict) -> dict:
    """A phase's times times the calibrated end-to-end scale (1 without calibration).

    A phase is a dict: ``time`` and its parts ``t_compute``, ``t_memory``, ``t_comm``,
    ``t_ovh`` (seconds); ``F_lin``, ``F_att``, ``F_sel`` (FLOPs) and ``B_w``, ``B_a``,
    ``B_kv``, ``B_sel`` (bytes: weights, activations, KV cache, sparse selection), per
    device."""
    if x.unit_time_scale:  # every device's scale is 1: the products are the times themselves
        return phase
    s = x.hw["time_scale"]
    for key in TIME_KEYS:
        phase[key] = phase[key] * s
    return phase
