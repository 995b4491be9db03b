"""The routed experts' grouped GEMMs at their per-device shape: a published per-shape curve.

An MoE layer runs its routed experts as one grouped GEMM (vLLM / SGLang ``fused_moe``,
TensorRT-LLM's CUTLASS MoE, DeepGEMM's ``m_grouped`` kernels): every expert a GEMM of
``rows`` tokens (the tokens routed to it: :func:`planner.cost.weights.tokens_per_expert`),
an output width ``N`` and a reduction ``K``. Per device under tensor parallelism a gated
expert's gate/up GEMM is ``rows x (2 I / t) x h`` and its down projection
``rows x h x (I / t)`` (``I`` the expert width, ``h`` the hidden size, ``t`` the devices
splitting the expert).

The source is DeepGEMM's published FP8 table (H800, github.com/deepseek-ai/DeepGEMM README,
2025, "Grouped GEMMs for MoE models", contiguous and masked layouts; :data:`DEEPGEMM_GROUPED`):
the achieved rate at ``rows`` per group and reduction ``K`` is

    rate(rows, K) = r_max x K / (K + K_half) x rows / (rows + rows_half)

with ``K_half`` = 628 (:data:`planner.cost.efficiency.REDUCTION_HALF`, fitted on the same
README's dense M = 4096 rows) and ``rows_half`` = 102 tokens (:data:`GROUPED_ROWS_HALF`:
least squares in log rate over the table's ten grouped rows with ``K_half`` held, ``r_max``
1,428 TFLOPS; every row within 8%). Each group of a few hundred rows pays its own pipeline
fill and weight loads (256 rows per group run at 73% of the long-M rate, 1,024 at 91%).
Below the table's least 256 rows per group the curve is held flat at its 256-row value
(:data:`GROUPED_ROWS_MIN`; as planner.cost.efficiency.Efficiency.rows_correction holds a
measured curve flat past its ends): the hyperbola extrapolated to decode's few tokens per
expert would charge a one-token expert 103 rows of tensor-core time, where the kernels run
a small-M tile and stream the weights (memory-bound: the roofline's memory side, with every
touched expert read whole, already sets those steps).

The output width ``N`` has no term of its own: the table's groups are all N >= 4,096, and a
grouped GEMM's many groups keep every SM busy (the tiles are ``groups x rows / BM x N / BN``),
so a narrow per-device ``N`` costs nothing beyond its FLOPs; the width enters through the down
projection's reduction ``I / t`` (the ``K`` term), which is where tensor parallelism narrows the
expert. The compute efficiency the serving fit gives a device is the dense GEMMs' (long rows,
``K = h``), so the experts' compute time is the dense rate's times :func:`expert_gemm_factor`.
"""

from __future__ import annotations

from planner.cost.efficiency import reduction_efficiency

# github.com/deepseek-ai/DeepGEMM README (2025), FP8 on H800:
# (layout, groups, rows per group, N, K, TFLOPS)
DEEPGEMM_GROUPED = (
    ("contiguous", 4, 8192, 4096, 7168, 1297), ("contiguous", 4, 8192, 7168, 2048, 1099),
    ("contiguous", 8, 4096, 4096, 7168, 1288), ("contiguous", 8, 4096, 7168, 2048, 1093),
    ("masked", 1, 1024, 4096, 7168, 1233), ("masked", 1, 1024, 7168, 2048, 925),
    ("masked", 2, 512, 4096, 7168, 1040), ("masked", 2, 512, 7168, 2048, 916),
    ("masked", 4, 256, 4096, 7168, 932), ("masked", 4, 256, 7168, 2048, 815),
)
GROUPED_ROWS_HALF = 102.0  # tokens per group at which a grouped GEMM runs at half its long-M rate
GROUPED_RATE_MAX_TFLOPS = 1428.0  # the fit's r_max on H800 FP8 (only the ratios are used)
GROUPED_ROWS_MIN = 256.0  # the table's least rows per group: the curve is held flat below


def grouped_rows_efficiency(rows):
    """Fraction of the long-M grouped-GEMM rate at ``rows`` tokens per group:
    ``rows / (rows + GROUPED_ROWS_HALF)``. Numpy or float in, same out."""
    return rows / (rows + GROUPED_ROWS_HALF)


def grouped_rate_tflops(rows, k):
    """The curve's rate (TFLOPS, DeepGEMM's H800 FP8 scale) at ``rows`` per group and
    reduction ``k``: what the tests compare with the published table."""
    return GROUPED_RATE_MAX_TFLOPS * reduction_efficiency(k) * grouped_rows_efficiency(rows)


def expert_gemm_factor(xp, rows, k_down, hidden):
    """Compute-time multiplier of a gated expert's GEMMs over the dense layers' rate (long
    rows, reduction ``hidden``): gate and up (2/3 of its FLOPs) reduce over ``hidden``, the
    down projection (1/3) over ``k_down`` = ``I / t`` per device, all at ``rows`` tokens per
    expert: ``(2 + e_K(h) / e_K(k_down)) / 3 / e_rows(max(rows, GROUPED_ROWS_MIN))``. Tends to
    1 at long rows and ``k_down = hidden``; never rises with the rows or with the width
    ``k_down``. ``xp``: the elementwise operations (numpy, or planner.cost.ops)."""
    slow_down = reduction_efficiency(hidden) / reduction_efficiency(k_down)
    return (2.0 + slow_down) / 3.0 / grouped_rows_efficiency(xp.maximum(rows, GROUPED_ROWS_MIN))
