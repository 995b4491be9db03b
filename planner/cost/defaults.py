"""The defaults of one estimate (``planner estimate``, ``planner.estimate``, the
``estimate:`` checks of ``planner check``): one home, imported by all three.

Plain Python values only, so the CLI can build its options without loading numpy.
"""

from __future__ import annotations

ESTIMATE_DEFAULTS: dict = {
    "model": "qwen3-8b",
    "hardware": "h100-sxm",
    "devices": 1,
    "batch": 1,
    "concurrency": 0,
    "prompt_len": 1024,
    "gen_len": 256,
    "samples": 1,
    "weight_dtype": "bf16",
    "act_dtype": "bf16",
    "kv_dtype": "bf16",
    "kv_budget": 0,
    "prefix_sharing": True,
}
