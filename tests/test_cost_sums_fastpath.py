"""The numpy fast paths of planner.cost.sums (fewer passes: no np.clip, masks multiplied
instead of np.where) give the numbers of the generic formulas they replace, which stay
the scalar path: the generic code runs here on numpy through a copy of the VECTOR
namespace (same operations, not the same object, so no fast path), and a brute-force
sum over the integer steps checks both."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.cost.ops import VECTOR
from planner.cost.sums import NO_CAP, piecewise_max_sum, sum_max_linear, sum_min

GENERIC = SimpleNamespace(**vars(VECTOR))  # the generic code path, on numpy arrays

coef = st.one_of(st.just(0.0), st.integers(-5, 5).map(float),  # small integers: integer roots, equal slopes
               st.floats(-1e3, 1e3, width=32), st.floats(1e-9, 1e-3).map(lambda v: float(np.float32(v))))
ctx = st.integers(0, 3000)
cap = st.one_of(st.just(float("inf")), st.just(NO_CAP), st.integers(0, 4000).map(float))


@st.composite
def rows(draw, n_coef, n_caps):
    n = draw(st.integers(1, 12))
    cols = [np.array(draw(st.lists(coef, min_size=n, max_size=n))) for _ in range(n_coef)]
    lo = np.array(draw(st.lists(ctx, min_size=n, max_size=n)), dtype=float)
    g = np.array(draw(st.lists(st.integers(0, 2000), min_size=n, max_size=n)), dtype=float)
    caps = [np.array(draw(st.lists(cap, min_size=n, max_size=n))) for _ in range(n_caps)]
    return cols, lo, lo + g, caps


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@settings(max_examples=100, deadline=None)
@given(rows(4, 0), st.sampled_from([np.float64, np.float32]))
def test_sum_max_linear_fast_path_equals_generic(r, dt):
    (a1, b1, a2, b2), lo, hi, _ = r
    args = [v.astype(dt) for v in (a1, b1, a2, b2, lo, hi)]
    with np.errstate(all="ignore"):
        fast, ref = sum_max_linear(*args), sum_max_linear(*args, xp=GENERIC)
    for f, g in zip(fast, ref):
        _same(f, g)


@settings(max_examples=100, deadline=None)
@given(rows(6, 2), st.sampled_from([np.float64, np.float32]))
def test_piecewise_max_sum_fast_path_equals_generic_and_brute_force(r, dt):
    (f0, fg, fs, g0, gg, gs), lo, hi, (cap_g, cap_s) = r
    args = [v.astype(dt) for v in (f0, fg, fs, g0, gg, gs, lo, hi, cap_g, cap_s)]
    with np.errstate(all="ignore"):
        fast, ref = piecewise_max_sum(*args), piecewise_max_sum(*args, xp=GENERIC)
    for f, g in zip(fast, ref):
        _same(f, g)
    if dt is np.float64:  # the closed form against the sum over integer steps
        for i in range(lo.size):
            c = np.arange(lo[i], hi[i])
            f = f0[i] + fg[i] * np.minimum(c, cap_g[i]) + fs[i] * np.minimum(c, cap_s[i])
            g = g0[i] + gg[i] * np.minimum(c, cap_g[i]) + gs[i] * np.minimum(c, cap_s[i])
            total = np.maximum(f, g).sum()
            got = fast[0][i] + fast[1][i]
            assert abs(got - total) <= 1e-9 * max(1.0, np.abs(np.maximum(f, g)).sum()), (i, got, total)


@settings(max_examples=100, deadline=None)
@given(rows(0, 1), st.sampled_from([np.float64, np.float32]))
def test_sum_min_fast_path_equals_generic(r, dt):
    _, lo, hi, (cap,) = r
    args = [v.astype(dt) for v in (lo, hi, cap)]
    with np.errstate(all="ignore"):
        _same(sum_min(*args), sum_min(*args, xp=GENERIC))


def test_float32_evaluation_stays_float32():
    """A float32 evaluation computes in float32 from end to end: one float64 temporary (a
    np.where over two Python floats did it) turns every column after it into float64,
    ~25% of the engine's time. Static and serving rows, sparse and dense attention."""
    from planner.catalog import load_hardware, load_model
    from planner.cost.engine import INPUT_COLUMNS, INPUT_DEFAULTS, evaluate
    from planner.cost.tables import DTYPE_CODE, HardwareTable, ModelTable

    models = [load_model(n) for n in ("qwen3-8b", "gpt-oss-20b", "qwen3-30b-a3b")]
    mt, ht = ModelTable.build(models), HardwareTable.build([load_hardware("h100-sxm")])
    rng = np.random.default_rng(3)
    n = 64
    cols = {k: np.full(n, v) for k, v in INPUT_DEFAULTS.items()}
    cols.update(model=rng.integers(0, 3, n), hardware=np.zeros(n, dtype=int), devices=rng.choice([1.0, 4.0], n),
                batch=rng.choice([1.0, 16.0], n), concurrency=rng.choice([0.0, 8.0], n),
                prompt_len=np.full(n, 1000.0), gen_len=np.full(n, 2000.0), samples=rng.choice([1.0, 4.0], n),
                weight_dtype=np.full(n, DTYPE_CODE["bf16"]), act_dtype=np.full(n, DTYPE_CODE["bf16"]),
                kv_dtype=np.full(n, DTYPE_CODE["fp8"]), kv_budget=rng.choice([0.0, 512.0], n),
                prefix_sharing=np.ones(n, dtype=bool))
    assert set(INPUT_COLUMNS) <= set(cols)
    out = evaluate(cols, mt, ht, precision="float32")
    wide = sorted(k for k, v in out.items() if np.asarray(v).dtype == np.float64)
    assert not wide, wide
