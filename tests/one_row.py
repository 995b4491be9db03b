"""A cost-engine context of one configuration, for tests that call the serving algebra
directly (planner.cost.disagg, planner.cost.steps) instead of through planner.cost.api."""

from __future__ import annotations

from planner.cost.api import columns
from planner.cost.context import Ctx
from planner.cost.tables import HardwareTable, ModelTable


def one_row_ctx(model, hw, devices: int, P: int, G: int, dtype: str = "bf16") -> Ctx:
    """``model`` on ``devices`` x ``hw`` (catalog objects), prompt ``P``, output ``G``,
    weights, activations and KV cache in ``dtype``, one request."""
    mt, ht = ModelTable.build([model]), HardwareTable.build([hw])
    cols = columns(1, model=0, hardware=0, devices=devices, batch=1, concurrency=1, prompt_len=P, gen_len=G,
                   samples=1, weight_dtype=dtype, act_dtype=dtype, kv_dtype=dtype, kv_budget=0,
                   prefix_sharing=False)
    return Ctx(cols, mt, ht)
