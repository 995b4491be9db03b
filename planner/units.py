"""Units: calendar constants and SI-prefixed formatting (shared by specs, sizing, reports
and the CLI tables).

A data-layer module (it imports nothing from planner).
"""

from __future__ import annotations

import math

# The Julian year, 365.25 days (IAU definition; leap years included on average).
HOURS_PER_YEAR = 365.25 * 24.0          # 8766
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0  # 730.5
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * SECONDS_PER_HOUR
JOULES_PER_KWH = 3.6e6


def fmt_si(x: float, unit: str = "", digits: int = 3) -> str:
    """1.23e-3 -> '1.23 m' + unit."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")]
    ax = abs(x)
    for scale, p in prefixes:
        if ax >= scale:
            return f"{x / scale:.{digits}g} {p}{unit}".strip()
    return f"{x:.{digits}g} {unit}".strip()
