"""Where every row of a block has the same flag (more than one device or not, prefix
sharing or not, expert parallel or not), the engine skips np.where and computes one
branch (the where_flags of planner.cost.ops.VECTOR: in the all-reduce and the KV cache,
among others).
A row's numbers must not depend on its neighbours: the rows of a uniform block evaluate
bit for bit as the same rows inside a block where the flag is mixed (the np.where path).

Oracle: the engine on the mixed block (no shortcut can apply there)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import load_hardware, load_model
from planner.cost.api import columns
from planner.cost.engine import evaluate_block
from planner.cost.tables import HardwareTable, ModelTable

MODELS = ["qwen3-8b", "qwen3-30b-a3b", "deepseek-v3", "gemma-2-9b", "llama-3.1-70b"]
DEVICES = ["h100-sxm", "mi300x", "l40s", "raspberry-pi-5"]  # the last has no device link
TABLES = (ModelTable.build([load_model(m) for m in MODELS]), HardwareTable.build([load_hardware(h) for h in DEVICES]))

# the flag under test: the values of its uniform side and of the rows mixed in
FLAGS = {
    "one device vs more": ("devices", [2.0, 4.0, 8.0], [1.0]),
    "more devices vs one": ("devices", [1.0], [2.0, 8.0]),
    "prefix sharing on vs off": ("prefix_sharing", [True], [False]),
    "prefix sharing off vs on": ("prefix_sharing", [False], [True]),
    "expert parallel vs not": ("ep", [2.0, 4.0], [1.0]),
    "not expert parallel vs ep": ("ep", [1.0], [2.0]),
}


def _rows(rng: np.random.Generator, n: int, key: str, values: list) -> dict:
    vals = {"devices": rng.choice([1.0, 2.0, 4.0, 8.0], n), "prefix_sharing": rng.random(n) < 0.5,
            "ep": rng.choice([1.0, 2.0], n), "attn_dp": np.full(n, 2.0)}  # attn_dp 2: layouts beyond TP on every row
    vals[key] = rng.choice(np.array(values), n)
    return dict(model=rng.integers(0, len(MODELS), n), hardware=rng.integers(0, len(DEVICES), n),
                batch=rng.choice([1.0, 8.0, 64.0], n), concurrency=np.where(rng.random(n) < 0.3, 32.0, 0.0),
                prompt_len=rng.integers(1, 9000, n).astype(float), gen_len=rng.integers(1, 9000, n).astype(float),
                samples=rng.choice([1.0, 4.0], n), kv_budget=rng.choice([0.0, 256.0], n),
                weight_dtype=rng.choice(["bf16", "fp8", "int4"], n), act_dtype="bf16",
                kv_dtype=rng.choice(["bf16", "fp8"], n), **vals)


@pytest.mark.parametrize("case", sorted(FLAGS))
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), precision=st.sampled_from(["float64", "float32"]))
def test_a_uniform_block_evaluates_as_inside_a_mixed_one(case, seed, n, precision):
    key, uniform, other = FLAGS[case]
    rng = np.random.default_rng(seed)
    a = _rows(rng, n, key, uniform)
    b = _rows(rng, n, key, other)
    mixed = {k: np.concatenate([np.broadcast_to(a[k], (n,)), np.broadcast_to(b[k], (n,))]) for k in a}
    alone = evaluate_block(columns(n, **a), *TABLES, precision)
    inside = evaluate_block(columns(2 * n, **mixed), *TABLES, precision)
    for name, v in alone.items():
        np.testing.assert_array_equal(np.broadcast_to(v, (n,)), np.broadcast_to(inside[name], (2 * n,))[:n],
                                      err_msg=f"{case}: {name}")
