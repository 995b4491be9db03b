"""Number formats: storage bits (scales included) and the compute peak each one uses.

Effective bits include the quantization scales a real kernel stores: int4 with one
fp16 scale per group of 128 weights costs 4 + 16/128 = 4.125 bits (GPTQ/AWQ/MARLIN
layout); MXFP4 stores one 8-bit shared exponent per 32 values, 4 + 8/32 = 4.25 bits
(OCP Microscaling spec v1.0). Per-channel or per-tensor fp8/int8 scales are negligible.
"""

from __future__ import annotations

DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")

BITS = {
    "fp32": 32.0,
    "tf32": 32.0,
    "bf16": 16.0,
    "fp16": 16.0,
    "fp8": 8.0,
    "int8": 8.0,
    "int4": 4.0 + 16.0 / 128.0,
    "fp4": 4.0 + 8.0 / 32.0,
}

# fp16 and bf16 run on the same 16-bit tensor units at the same dense peak on every
# device in the catalog (NVIDIA, AMD and Intel datasheets list one figure for both), so a
# spec or a calibration curve given for one stands for the other.
COMPUTE_ALIASES = {"fp16": "bf16", "bf16": "fp16"}


def compute_key(table, dtype: str):
    """The key of ``table`` (peaks or curves by compute dtype) that ``dtype`` uses: itself,
    else its 16-bit alias; None if neither is there."""
    if dtype in table:
        return dtype
    alias = COMPUTE_ALIASES.get(dtype)
    return alias if alias in table else None


def check_dtype(dtype: str, field: str = "dtype") -> str:
    from planner.errors import InputError

    d = str(dtype).lower()
    if d not in BITS:
        raise InputError(f"unknown dtype (choose from {', '.join(DTYPES)})", field=field, value=dtype)
    return d
