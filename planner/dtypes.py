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

# What each storage format is usually computed in when the device has no native unit
# for it: W4A16 math runs in 16-bit, so the compute dtype is the activation dtype.
NOMINAL_BITS = {"fp32": 32, "tf32": 32, "bf16": 16, "fp16": 16, "fp8": 8, "int8": 8, "int4": 4, "fp4": 4}


def bytes_per_value(dtype: str) -> float:
    """Storage bytes per value, quantization scales included."""
    return BITS[dtype] / 8.0


def check_dtype(dtype: str, field: str = "dtype") -> str:
    from planner.errors import InputError

    d = str(dtype).lower()
    if d not in BITS:
        raise InputError(f"unknown dtype (choose from {', '.join(DTYPES)})", field=field, value=dtype)
    return d
