"""Two array namespaces for one set of engine formulas.

The engine's functions take their elementwise operations from ``x.xp``: :data:`VECTOR`
(numpy; one row per configuration, what the search uses) or :data:`SCALAR` (plain Python
floats; one configuration, what the Python API uses). The formulas exist once; only the
namespace changes. numpy spends about a microsecond per call on a 1-element array, so a
single configuration through the vector path costs ~0.5 ms, through the scalar one a
few tens of microseconds.

Both namespaces give the same numbers (a test compares them on random configurations at
rtol 1e-9). The scalar one assumes a validated configuration: no NaN peaks, no division
by zero (the engine guards the divisions a valid row can reach).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np


def _gather(col, index):
    # mode="clip" skips numpy's per-element bounds check (~15% of a gather); the engine's
    # indices are table rows and dtype codes, valid by construction
    return col.take(index, mode="clip")


def _lookup(table, row, col):
    """table[row, col] for index arrays (one gather from the flattened table)."""
    return table.ravel().take(row * table.shape[1] + col, mode="clip")


# np.maximum / np.minimum with a Python number as one operand run a loop ~6x slower than
# with two arrays (no SIMD for a broadcast scalar; 18 vs 3 us on 16k float32 rows). The
# engine's bounds are such numbers (max(G, 1), clip to [0, 1], caps): they become read-only
# arrays of the row's shape and dtype, made once per (value, length, dtype). The value is
# cast to the array's dtype exactly as numpy casts the Python number, so the results are
# the same bits.
_CONSTANTS: dict = {}
_MAX_CONSTANTS = 64


def _as_array_like(v, ref):
    key = (v, ref.shape[0], ref.dtype.char)
    c = _CONSTANTS.get(key)
    if c is None:
        if len(_CONSTANTS) >= _MAX_CONSTANTS:
            _CONSTANTS.clear()
        c = np.full(ref.shape, v, dtype=ref.dtype)
        c.flags.writeable = False
        _CONSTANTS[key] = c
    return c


def _number(v) -> bool:
    return type(v) is float or type(v) is int


def _row_floats(a) -> bool:
    return type(a) is np.ndarray and a.ndim == 1 and a.dtype.kind == "f" and a.size > 64


def _binary(ufunc):
    def op(a, b):
        if _number(b) and _row_floats(a):
            b = _as_array_like(b, a)
        elif _number(a) and _row_floats(b):
            a = _as_array_like(a, b)
        return ufunc(a, b)
    op.__name__ = ufunc.__name__
    return op


_maximum = _binary(np.maximum)
_minimum = _binary(np.minimum)


def _clip(v, lo, hi):
    # np.clip's wrapper and loop are ~4x two plain ufunc passes on float32 rows; the same
    # values (NaN propagates through both)
    return _minimum(_maximum(v, lo), hi)


def _argmax_of(parts):
    """Index of the largest part per row, the first on ties and the first NaN where any
    is NaN (np.argmax over the stacked parts, without the stack: argmax along a short
    first axis is a slow strided loop, ~5x the time of these few elementwise passes)."""
    best = parts[0]
    idx = np.zeros(np.shape(best), dtype=np.int8)
    best_nan = np.isnan(best)
    for i in range(1, len(parts)):
        p = parts[i]
        better = p > best
        p_nan = np.isnan(p)
        if p_nan.any():
            better |= p_nan & ~best_nan
            best_nan = best_nan | p_nan
        # idx = i where better: idx + better * (i - idx) in int8 (np.putmask is ~20x an
        # elementwise pass on 16k rows)
        idx += better.view(np.int8) * (np.int8(i) - idx)
        best = np.maximum(best, p)
    return idx


def _where_flags(flags, a, b):
    """``np.where(flags, a, b)`` for a flag column that is often the same in every row
    (prefix sharing is one setting in most searches): then ``a`` or ``b`` itself, without
    np.where's pass (~15 elementwise passes on 16k rows)."""
    if type(flags) is np.ndarray:
        if flags.all():
            return a
        if not flags.any():
            return b
    return np.where(flags, a, b)


VECTOR = SimpleNamespace(
    name="vector",
    where=np.where, where_flags=_where_flags, maximum=_maximum, minimum=_minimum, clip=_clip, exp=np.exp, log2=np.log2,
    floor=np.floor, ceil=np.ceil, isfinite=np.isfinite, logical_not=np.logical_not,
    logical_and=np.logical_and, zeros_like=np.zeros_like,
    values=lambda v, dt: np.asarray(v, dtype=dt), index=lambda v: np.asarray(v, dtype=np.intp),
    flags=lambda v: np.asarray(v, dtype=bool),
    gather=_gather, lookup=_lookup, argmax_of=_argmax_of, any=lambda v: bool(np.any(v)),
)


def _s_where(cond, a, b):
    return a if cond else b


def _s_maximum(a, b):
    return a if a >= b else b


def _s_minimum(a, b):
    return a if a <= b else b


def _s_clip(v, lo, hi):
    return lo if v < lo else (hi if v > hi else v)


_EXACT = 2.0 ** 52  # floats this large are integers already (and math.floor would build a bignum)


def _s_floor(v):
    return float(math.floor(v)) if -_EXACT < v < _EXACT else v


def _s_ceil(v):
    return float(math.ceil(v)) if -_EXACT < v < _EXACT else v


def _s_argmax_of(parts):
    best = 0
    for i in range(1, len(parts)):
        if parts[i] > parts[best]:
            best = i
    return best


SCALAR = SimpleNamespace(
    name="scalar",
    where=_s_where, where_flags=_s_where, maximum=_s_maximum, minimum=_s_minimum, clip=_s_clip, exp=math.exp, log2=math.log2,
    floor=_s_floor, ceil=_s_ceil, isfinite=math.isfinite, logical_not=lambda a: not a,
    logical_and=lambda a, b: bool(a and b), zeros_like=lambda a: 0.0,
    values=lambda v, dt: float(v), index=int, flags=bool,
    gather=lambda col, i: col[i], lookup=lambda table, r, c: table[r][c], argmax_of=_s_argmax_of,
    any=bool,
)
