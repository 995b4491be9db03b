"""A block of rows on one model and one device (the search's blocks: its grid puts the
model axis outermost) reads the model and device columns by a fill instead of a gather
(planner.cost.gather.Gather). The oracle: the same rows evaluated among rows of other
models and devices (gathered) give the same bits, in every output column."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog import all_hardware, all_models
from planner.cost.gather import Gather, _one_row
from planner.cost.engine import evaluate
from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable


def _rows(n, n_models, n_hw, rng):
    return {
        "model": rng.integers(0, n_models, n), "hardware": rng.integers(0, n_hw, n),
        "devices": rng.choice([1, 2, 4, 8], n).astype(float), "batch": rng.choice([1, 4, 16, 64], n).astype(float),
        "concurrency": rng.choice([0.0, 0.0, 8.0], n), "prompt_len": rng.choice([150, 1024, 4096], n).astype(float),
        "gen_len": rng.choice([1024, 4096, 16384], n).astype(float), "samples": rng.choice([1, 4, 16], n).astype(float),
        "weight_dtype": rng.choice([DTYPE_CODE[d] for d in ("bf16", "fp8", "int8", "int4")], n),
        "act_dtype": np.full(n, DTYPE_CODE["bf16"]),
        "kv_dtype": rng.choice([DTYPE_CODE[d] for d in ("bf16", "fp8")], n),
        "kv_budget": rng.choice([0, 256, 4096], n).astype(float), "prefix_sharing": rng.random(n) < 0.5,
    }


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_one_model_block_equals_mixed_block(precision):
    models, hardware = all_models(), all_hardware()
    mt, ht = ModelTable.build(models), HardwareTable.build(hardware)
    rng = np.random.default_rng(3)
    cols = _rows(3000, len(models), len(hardware), rng)
    checked = 0
    for m, h in {(int(a), int(b)) for a, b in zip(cols["model"][:40], cols["hardware"][:40])}:
        at = (cols["model"] == m) & (cols["hardware"] == h)
        if at.sum() < 2:
            continue
        mixed = evaluate(cols, mt, ht, precision=precision)
        alone = evaluate({k: v[at] for k, v in cols.items()}, mt, ht, precision=precision)
        for key, v in alone.items():
            want = np.asarray(mixed[key])[at]
            assert v.dtype == want.dtype and np.array_equal(v, want, equal_nan=True), (key, m, h)
        checked += 1
    assert checked >= 3


def test_fill_only_where_every_row_names_one_table_row():
    assert _one_row(np.array([2, 2, 2]))
    assert not _one_row(np.array([2, 3, 2]))
    assert not _one_row(np.array([2, 2, 3]))
    assert not _one_row(np.array([4]))          # one row: a gather is as cheap
    table = {"a": np.array([1.5, 2.5, 3.5], dtype=np.float32), "t": np.arange(6.0).reshape(3, 2)}
    idx = np.array([1, 1, 1, 1])
    got = Gather(table, idx)
    assert got["a"].dtype == np.float32 and np.array_equal(got["a"], table["a"].take(idx))
    assert np.array_equal(got["t"], table["t"].take(idx))           # 2-D columns: numpy's take
