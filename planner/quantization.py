"""Quantization presets and the dtype a preset computes in on a given device.

A preset names (weight storage dtype, activation dtype wanted): W8A8 runs its math in
the 8-bit format where the device has a unit for it (H100: fp8 and int8 tensor cores),
else it falls back to weight-only (W8A16: 8-bit weights dequantized into 16-bit math);
W4A16 always computes in 16-bit. The one home of that rule is :func:`act_dtype_for`;
the search, fleet sizing and the accuracy model all take the activation dtype from it.
A data-layer module: it imports nothing above planner.errors.
"""

from __future__ import annotations

from typing import Optional

QUANTIZATIONS = {
    "bf16": ("bf16", "bf16"),
    "fp8": ("fp8", "fp8"),
    "int8": ("int8", "int8"),
    "int4": ("int4", "bf16"),
}


def quantization_error(name: str) -> Optional[str]:
    """Why ``name`` is not a preset (one line), or None if it is one."""
    if name in QUANTIZATIONS:
        return None
    return f"unknown quantization '{name}' (choose from {', '.join(QUANTIZATIONS)})"


def weight_dtype(name: str) -> str:
    """The storage dtype of a preset's weights."""
    return QUANTIZATIONS[name][0]


def default_act_dtype(weight_dtype: str) -> str:
    """The activation dtype wanted with weights stored in ``weight_dtype`` when none is
    given: the preset's (W8A8 for 8-bit weights), else 16-bit (weight-only quantization)."""
    wanted = {w: a for w, a in QUANTIZATIONS.values()}
    return wanted.get(weight_dtype, "bf16")


def act_dtype_for(hardware, name: str) -> Optional[str]:
    """The compute dtype preset ``name`` runs in on ``hardware``: the wanted activation
    dtype where the device has it, else 16-bit (bf16, or fp32 on parts without bf16),
    None when the device has neither (the configuration is infeasible)."""
    want = QUANTIZATIONS[name][1]
    if hardware.has_dtype(want):
        return want
    if hardware.has_dtype("bf16"):
        return "bf16"
    if hardware.has_dtype("fp32"):
        return "fp32"
    return None
