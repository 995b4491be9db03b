"""The fixed time per kernel by GEMM path, from NVIDIA's published kernel tables, for a device nobody measured.

The carried ``kernel_time_s`` (planner.serving_carry, :data:`~planner.serving_carry.CARRY_RULE`) is
the median of the fitted Hopper devices' values, a mean over the GEMM paths of the rows they were
fitted on. NVIDIA's measured TensorRT-LLM kernel tables (aiconfigurator-core 0.12.0, TensorRT-LLM
1.3.0rc20; ``benchmarks/published_kernels.py``, data ``tests/data/aiconfigurator-kernels.csv``,
docs/serving-experiments.md "Round 15 (S1b)") show that fixed time depends on the path: a quantized
GEMM pays its activation's quantization (fp8 per-tensor ~2x bf16's, nvfp4 ~1.6x), on every system.

:data:`COMPOSITE_US` is that script's "layer composite" per system and path: the mean fixed time of
the kernels a tensor-parallel decode layer runs that the tables hold, (4 GEMM t0 + one decode
attention floor + 2 all-reduce floors) / 7, in us (``published_kernels.layer_kernel_mean_s``;
tests/test_kernel_paths.py recomputes it from the CSV).

The carried time on a row of compute dtype ``d`` is (:func:`kernel_factors`)::

    carried x T(path(d)) / sum_p w_p T(p)

with ``T`` the composite of the target device's family (the mean of its family's tables)
and ``w`` the fitted rows' shares by path: the mix a fit records (:func:`gemm_mix`, written into
each serving profile's provenance as ``gemm_mix`` and carried with the kernel time by
planner.serving_carry.carried_over). The level is the fit's (the carry
rule: the fixed time per kernel is the vendor's libraries', and the fit is 1.06-1.27x the tables'
composite on Hopper, so the tables' absolute level is not what the fit measures); the path
dependence is the target's own table. A device or a compute dtype without a table keeps the
scalar (factor 1), and so does a weight-only row (weights narrower than its compute: W4A16, W8A16,
a dequantizing GEMM the tables do not hold; planner.cost.context): round 15 (S1d), scaling those
rows by the bf16 path worsened leave-one-device-out TPOT on the dev file's int4 / MXFP4 rows
(Kimi-K2.5 19% -> 30%, gpt-oss-120b 15% -> 21% with h200 held out).

A checkpoint that quantizes its routed experts only (``Model.quantized_experts_only``: gpt-oss's
MXFP4 ``modules_to_not_convert`` keeps attention in bf16) runs two of the composite's four GEMMs,
QKV and O, on the bf16 path whatever the experts' path: its composite is (:func:`table_of`)::

    T_eo(p) = T(p) - 2 (t0(p) - t0(bf16)) / 7

with ``t0`` the tables' decode-GEMM floor (:data:`GEMM_T0_US`). It equals ``T(p)`` on the bf16
path and changes nothing on a weight-only row (the scalar) or a fitted device (no factors).
"""

from __future__ import annotations

SOURCE = ("NVIDIA aiconfigurator-core 0.12.0 kernel tables (TensorRT-LLM 1.3.0rc20), "
          "benchmarks/published_kernels.py layer composite")

# system -> GEMM path -> layer composite (us), benchmarks/published_kernels.py on
# tests/data/aiconfigurator-kernels.csv (Round 15 (S1b) table, 2 decimals)
COMPOSITE_US = {
    "h100_sxm": {"bfloat16": 4.48, "fp8": 9.64, "fp8_block": 5.65},
    "h200_sxm": {"bfloat16": 5.13, "fp8": 9.87, "fp8_block": 5.80},
    "b200_sxm": {"bfloat16": 5.78, "fp8": 11.84, "fp8_block": 6.97, "nvfp4": 9.49},
    "gb200": {"bfloat16": 4.95, "fp8": 11.30, "fp8_block": 6.54, "nvfp4": 9.02},
    "b300_sxm": {"bfloat16": 5.70, "fp8": 11.41, "fp8_block": 6.58, "nvfp4": 8.78},
}
# system -> GEMM path -> the decode GEMM's fixed time t0 (us): benchmarks/published_kernels.py's
# "decode GEMM m<=16, t = t0 + bytes/(f x BW)" line fit on the same CSV (1 decimal, as it prints)
GEMM_T0_US = {
    "h100_sxm": {"bfloat16": 4.0, "fp8": 13.1, "fp8_block": 6.1},
    "h200_sxm": {"bfloat16": 5.2, "fp8": 13.5, "fp8_block": 6.4},
    "b200_sxm": {"bfloat16": 4.6, "fp8": 15.2, "fp8_block": 6.7, "nvfp4": 11.1},
    "gb200": {"bfloat16": 3.5, "fp8": 14.6, "fp8_block": 6.2, "nvfp4": 10.6},
    "b300_sxm": {"bfloat16": 4.6, "fp8": 14.6, "fp8_block": 6.2, "nvfp4": 10.0},
}
# an experts-only checkpoint's GEMMs of the composite's 7 kernels that stay on the bf16 path:
# attention's QKV and O (gpt-oss config.json quantization_config.modules_to_not_convert: self_attn)
EXPERTS_ONLY_BF16_GEMMS, COMPOSITE_KERNELS = 2, 7
# the architecture family each tabled system belongs to, and the dies (hardware/*.yaml ``die``) of
# each family: a device takes the mean of its family's tables. One table per family, not per system or
# die: the systems of a family run the same kernel library builds, and their composites differ by less
# than their spread across paths (GB200 bf16 4.95 against B200 5.78 and B300 5.70, fp8 11.30 against
# 11.84 / 11.41), so per-system shapes would make a part that dominates another on every datasheet
# figure (GB300 over GB200 over B200) pay more per kernel on some path (tests/test_blackwell_rows.py)
FAMILIES = {"Hopper": ("h100_sxm", "h200_sxm"), "Blackwell": ("b200_sxm", "gb200", "b300_sxm")}
FAMILY_OF_DIE = {"GH100": "Hopper", "GB100": "Blackwell", "Blackwell Ultra": "Blackwell"}
# the compute (activation) dtype of a row -> the tabled GEMM path it runs. The dtype code does not
# tell fp8 per-tensor from fp8 block scales apart; "fp8" is what the measured files label their fp8
# rows (gemm_quant_mode fp8: 734 of the dev file's 868 fp8 rows, 10 of the 47 InferenceX Blackwell rows).
PATH_OF_COMPUTE = {"bf16": "bfloat16", "fp16": "bfloat16", "fp8": "fp8", "fp4": "nvfp4"}


def gemm_mix(weight_dtypes, compute_dtypes) -> dict[str, int]:
    """Compute dtype -> rows, over the rows of dtypes (``weight_dtypes[i]``, ``compute_dtypes[i]``)
    whose compute dtype has a tabled GEMM path (:data:`PATH_OF_COMPUTE`) and whose weights are
    not narrower than it (planner.dtypes.BITS): the mix a fitted kernel time is a mean over.
    A weight-only row (W4A16, W8A16: a dequantizing GEMM that no table holds, and which keeps the
    carried scalar in the cost engine, planner.cost.context) enters neither side of the ratio.
    On the dev file (1,294 rows on h100-sxm and h200): bf16 246, fp8 868 (fp8 and fp8_block); its
    180 weight-only rows (int4_wo 30; nvfp4 150: Hopper has no fp4 units, so they dequantize to
    bf16) are left out (tests/test_kernel_paths.py counts them from the CSV's precision column)."""
    from planner.dtypes import BITS

    out: dict[str, int] = {}
    for w, a in zip(weight_dtypes, compute_dtypes):
        if a in PATH_OF_COMPUTE and BITS[w] >= BITS[a]:
            out[a] = out.get(a, 0) + 1
    return dict(sorted(out.items()))


def composite_us(system: str, path: str, experts_only: bool = False) -> float:
    """A system's layer composite on ``path`` (us); for an experts-only checkpoint with QKV and O at
    the bf16 GEMM's floor (module docstring: ``T - 2 (t0(p) - t0(bf16)) / 7``)."""
    t = COMPOSITE_US[system][path]
    if experts_only:
        t0 = GEMM_T0_US[system]
        t -= EXPERTS_ONLY_BF16_GEMMS * (t0[path] - t0["bfloat16"]) / COMPOSITE_KERNELS
    return t


def table_of(hw, experts_only: bool = False) -> dict | None:
    """The composite table (path -> us) of device ``hw``: the mean over the tabled systems of its
    family (:data:`FAMILY_OF_DIE` by its die) of each path they all hold (of an experts-only
    checkpoint's layer with ``experts_only``); None for a device of another die (or vendor)."""
    systems = FAMILIES.get(FAMILY_OF_DIE.get(getattr(hw, "die", "") or "", ""))
    if not systems:
        return None
    paths = set.intersection(*(set(COMPOSITE_US[s]) for s in systems))
    return {p: sum(composite_us(s, p, experts_only) for s in systems) / len(systems) for p in sorted(paths)}


def kernel_factors(hw, mix: dict[str, float], experts_only: bool = False) -> dict[str, float]:
    """Compute dtype -> factor on a carried ``kernel_time_s`` for device ``hw``: T(path) over the
    mean of T weighted by ``mix`` (compute dtype -> rows the carried time was fitted on:
    :func:`gemm_mix`; module docstring; the numerator an experts-only checkpoint's layer with
    ``experts_only``, the reference the fitted rows'); {} (the scalar everywhere) without a table,
    without a mix, or with a mix on a path the table lacks."""
    table = table_of(hw)
    if not table or not mix or sum(mix.values()) <= 0 or any(PATH_OF_COMPUTE[d] not in table for d in mix):
        return {}
    ref = sum(n * table[PATH_OF_COMPUTE[d]] for d, n in sorted(mix.items())) / sum(mix.values())
    own = table_of(hw, experts_only) if experts_only else table
    return {d: own[p] / ref for d, p in PATH_OF_COMPUTE.items() if p in own}
