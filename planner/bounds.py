"""Physical bounds of a configuration's counts: one home for the limits every entry point
(flags, scenario files, checks) enforces before any arithmetic.

The limits are far above anything a real deployment uses and far below where float64
arithmetic on them loses meaning (bytes = tokens x layers x heads x dims stays < 1e30):

- tokens (prompt, generation, KV budget): 10 million, the longest context any released
  model accepts (Llama 4 Scout, 10M tokens, Meta model card 2025-04);
- requests in flight (batch, concurrency): 1 million;
- samples per prompt: 1 million (Large Language Monkeys, Brown et al. 2024, go to 10,000);
- devices in one tensor-parallel group: 1,024 (checked again against the device's own
  ``max_devices``).
"""

from __future__ import annotations

from typing import Any

from planner.errors import InputError

MAX_TOKENS = 10_000_000
MAX_REQUESTS = 1_000_000
MAX_SAMPLES = 1_000_000
MAX_DEVICES = 1024

UPPER = {"devices": MAX_DEVICES, "batch": MAX_REQUESTS, "concurrency": MAX_REQUESTS, "prompt_len": MAX_TOKENS,
         "gen_len": MAX_TOKENS, "samples": MAX_SAMPLES, "kv_budget": MAX_TOKENS, "top": MAX_REQUESTS}


def check_count(field: str, value: Any, lo: int, file: str | None = None) -> int:
    """An integer in [lo, UPPER[field]]; else an InputError naming the field and value."""
    hi = UPPER.get(field, MAX_REQUESTS)
    name = field.replace("_", "-")
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputError(f"must be an integer >= {lo}", file=file, field=name, value=value)
    if value < lo:
        raise InputError(f"must be an integer >= {lo}", file=file, field=name, value=value)
    if value > hi:
        raise InputError(f"must be <= {hi:,}", file=file, field=name, value=value)
    return int(value)
