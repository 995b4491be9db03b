"""Closed-form sums over decode steps, vectorized over configurations.

A decode step at context ``c`` costs ``max(f(c), g(c))`` where ``f`` (compute time) and
``g`` (memory time) are piecewise linear in ``c``: linear in the tokens attended,
``min(c, cap)`` for a sliding window or a sparse KV budget. Between breakpoints both are
linear, so their difference changes sign at most once and the sum over integer steps has
a closed form. No loop over tokens; the only Python loop is over the (at most three)
segments between breakpoints, each an array expression over every configuration.
"""

from __future__ import annotations

import numpy as np

from planner.cost.ops import VECTOR


def sum_linear(a, b, lo, hi, xp=VECTOR):
    """sum_{c=lo}^{hi-1} (a + b*c) for integer c; zero when hi <= lo."""
    n = xp.maximum(hi - lo, 0.0)
    return n * a + b * n * (lo + hi - 1.0) * 0.5


def sum_min(lo, hi, cap, xp=VECTOR):
    """sum_{c=lo}^{hi-1} min(c, cap) for integer c (cap may be inf)."""
    if xp is VECTOR:
        return _sum_min_np(lo, hi, cap)
    split = xp.clip(cap, lo, hi)  # c < split: c itself; c >= split: cap
    n_above = hi - split  # >= 0; zero whenever cap >= hi (also for an infinite cap)
    return sum_linear(0.0, 1.0, lo, split, xp) + n_above * xp.where(n_above > 0, cap, 0.0)


def sum_max_linear(a1, b1, a2, b2, lo, hi, xp=VECTOR):
    """sum_{c=lo}^{hi-1} max(a1 + b1 c, a2 + b2 c), split into the part where the first
    function dominates (``s1``) and the part where the second does (``s2``).

    The first dominates where d(c) = (a1 - a2) + (b1 - b2) c >= 0: a single interval
    [lo1, hi1) since d is linear."""
    if xp is VECTOR:
        return _sum_max_linear_np(a1, b1, a2, b2, lo, hi)
    da = a1 - a2
    db = b1 - b2
    safe = xp.where(db == 0, 1.0, db)
    root = -da / safe
    up = db > 0
    flat = db == 0
    lo1 = xp.where(up, xp.clip(xp.ceil(root), lo, hi), lo)
    hi1 = xp.where(up, hi, xp.clip(xp.floor(root) + 1.0, lo, hi))
    hi1 = xp.where(flat, xp.where(da >= 0, hi, lo), hi1)
    lo1 = xp.where(flat, lo, lo1)
    s1 = sum_linear(a1, b1, lo1, hi1, xp)
    s2 = sum_linear(a2, b2, lo, hi, xp) - sum_linear(a2, b2, lo1, hi1, xp)
    return s1, s2


NO_CAP = 1e30  # "no cap": a finite stand-in for infinity keeps 0 * cap = 0


def piecewise_max_sum(f0, f_g, f_s, g0, g_g, g_s, lo, hi, cap_g, cap_s, xp=VECTOR):
    """sum over integer c in [lo, hi) of max(f(c), g(c)) where
    ``f(c) = f0 + f_g * min(c, cap_g) + f_s * min(c, cap_s)`` and likewise ``g``
    (caps >= NO_CAP mean no cap).

    Returns ``(sum_f_dominant, sum_g_dominant)``: the parts of the total where ``f`` resp.
    ``g`` was the larger (used to name the bottleneck).
    """
    if xp is VECTOR:
        return _piecewise_max_sum_np(f0, f_g, f_s, g0, g_g, g_s, lo, hi, cap_g, cap_s)
    cap_g = xp.minimum(cap_g, NO_CAP)
    cap_s = xp.minimum(cap_s, NO_CAP)
    b1 = xp.clip(xp.minimum(cap_g, cap_s), lo, hi)
    b2 = xp.clip(xp.maximum(cap_g, cap_s), lo, hi)
    # three segments between the two caps (a fixed, tiny loop); a segment empty in every
    # row adds nothing (no cap: one segment). Below both caps min(c, cap) = c for both
    # terms; above both it is the cap for both (f and g constant); in between only the
    # larger cap is still open.
    s_f, s_g = sum_max_linear(f0, f_g + f_s, g0, g_g + g_s, lo, b1, xp)
    if xp.any(b2 > b1):
        in_g = cap_g >= b2
        in_s = cap_s >= b2
        cg = xp.where(in_g, 0.0, cap_g)
        cs = xp.where(in_s, 0.0, cap_s)
        fg = xp.where(in_g, f_g, 0.0)
        fs = xp.where(in_s, f_s, 0.0)
        gg = xp.where(in_g, g_g, 0.0)
        gs = xp.where(in_s, g_s, 0.0)
        x1, x2 = sum_max_linear(f0 + f_g * cg + f_s * cs, fg + fs, g0 + g_g * cg + g_s * cs, gg + gs, b1, b2, xp)
        s_f = s_f + x1
        s_g = s_g + x2
    n_top = hi - b2  # >= 0: both caps below the step's context (both terms constant)
    if xp.any(n_top > 0):
        # the constants only where the segment is not empty (a cap of NO_CAP there
        # would scale a slope by 1e30 for nothing)
        top = n_top > 0
        f_top = f0 + f_g * xp.where(top, cap_g, 0.0) + f_s * xp.where(top, cap_s, 0.0)
        g_top = g0 + g_g * xp.where(top, cap_g, 0.0) + g_s * xp.where(top, cap_s, 0.0)
        f_wins = f_top >= g_top
        s_f = s_f + xp.where(f_wins, n_top * f_top, 0.0)
        s_g = s_g + xp.where(f_wins, 0.0, n_top * g_top)
    return s_f, s_g


# --- numpy fast paths ----------------------------------------------------------------
# The same sums as above on numpy rows, in fewer passes over memory: clip as
# minimum(maximum()) (np.clip is ~4x slower on float32 rows), no np.where for a choice a
# multiplication by a 0/1 mask makes exactly (finite operands), the sums over the
# first-dominant interval sharing their count and midpoint, the flat rows (equal slopes)
# fixed up only where there are any. Results are those of the generic code above
# (tests/test_cost_sums_fastpath.py compares them on random rows, NaN and infinite
# values included); the generic code stays the scalar path and the reference.


_clip = VECTOR.clip  # minimum(maximum()): planner.cost.ops
_max, _min = VECTOR.maximum, VECTOR.minimum  # fast with a Python number operand


def _sum_min_np(lo, hi, cap):
    """:func:`sum_min` on numpy rows: ``sum_{c=lo}^{hi-1} min(c, cap)`` (the comment above)."""
    split = _clip(cap, lo, hi)
    n_above = hi - split
    n = _max(split - lo, 0.0)
    # sum_linear(0, 1, lo, split) without its exact no-ops (n * 0 + 1 * ...); the rows above
    # the cap add n_above * cap, and minimum(cap, hi) is cap wherever n_above > 0 (zero
    # times a finite hi elsewhere, where np.where kept an infinite cap out)
    return n * (lo + split - 1.0) * 0.5 + n_above * _min(cap, hi)


def _sum_max_linear_np(a1, b1, a2, b2, lo, hi):
    """:func:`sum_max_linear` on numpy rows: ``sum_{c=lo}^{hi-1} max(a1 + b1 c, a2 + b2 c)``, split
    at the one crossing of the two lines (the comment above)."""
    da = a1 - a2
    db = b1 - b2
    with np.errstate(all="ignore"):
        root = -da / db  # where db == 0 (flat rows) fixed up below
    up = db > 0
    # first-dominant interval: [ceil(root), hi) where d rises, [lo, floor(root) + 1) where it
    # falls; ceil(root) = floor(root) + 1 but at an integer root (adding an exact 0 or 1:
    # the same values as the two roundings, without an np.where)
    fl = np.floor(root)
    split = _clip(fl + ~(up & (fl == root)), lo, hi)
    # lo1 = split where d rises, else lo; hi1 = hi where it rises, else split: with
    # 0 <= lo <= split <= hi (contexts are not negative) a maximum with a masked term
    # picks the same value as np.where, a NaN split stays NaN (but below)
    lo1 = np.maximum(lo, split * up)
    hi1 = np.maximum(split, hi * up)
    flat = db == 0
    if flat.any():  # equal slopes: all of [lo, hi) or none of it (and 0/0 gave a NaN split)
        hi1 = np.where(flat, np.where(da >= 0, hi, lo), hi1)
        lo1 = np.where(flat, lo, lo1)
    n1 = _max(hi1 - lo1, 0.0)
    mid1 = lo1 + hi1 - 1.0
    s1 = n1 * a1 + b1 * n1 * mid1 * 0.5
    s2 = sum_linear(a2, b2, lo, hi, VECTOR) - (n1 * a2 + b2 * n1 * mid1 * 0.5)
    return s1, s2


def _piecewise_max_sum_np(f0, f_g, f_s, g0, g_g, g_s, lo, hi, cap_g, cap_s):
    """:func:`piecewise_max_sum` on numpy rows: the sum over the (at most three) segments the
    caps ``cap_g``, ``cap_s`` cut [lo, hi) into, each a :func:`sum_max_linear` (the comment above)."""
    cap_g = _min(cap_g, NO_CAP)
    cap_s = _min(cap_s, NO_CAP)
    b1 = _clip(np.minimum(cap_g, cap_s), lo, hi)
    b2 = _clip(np.maximum(cap_g, cap_s), lo, hi)
    s_f, s_g = _sum_max_linear_np(f0, f_g + f_s, g0, g_g + g_s, lo, b1)
    mid = b2 > b1
    n_mid = np.count_nonzero(mid)
    if 0 < n_mid <= mid.size // 2 and mid.ndim == 1 and np.shape(s_f) == mid.shape:
        # the segment between the caps is empty in most rows (only rows whose two caps
        # differ and fall inside [lo, hi): a sliding window beside a longer global
        # context): computed on those rows alone, the same elementwise values, and added
        # where it is not empty (elsewhere it adds an exact zero)
        rows = np.flatnonzero(mid)
        sub = [_rows_of(v, rows, mid.size) for v in (f0, f_g, f_s, g0, g_g, g_s, b1, b2, cap_g, cap_s)]
        x1, x2 = _middle_segment(*sub)
        s_f[rows] += x1
        s_g[rows] += x2
    elif n_mid:
        x1, x2 = _middle_segment(f0, f_g, f_s, g0, g_g, g_s, b1, b2, cap_g, cap_s)
        s_f = s_f + x1
        s_g = s_g + x2
    n_top = hi - b2
    top = n_top > 0
    if top.any():
        cg = cap_g * top
        cs = cap_s * top
        f_top = f0 + f_g * cg + f_s * cs
        g_top = g0 + g_g * cg + g_s * cs
        f_wins = f_top >= g_top
        s_f = s_f + n_top * f_top * f_wins
        s_g = s_g + n_top * g_top * ~f_wins
    return s_f, s_g


def _rows_of(v, rows, n):
    """``v`` on the rows ``rows`` (a number, or a column of another length, as it is)."""
    return v.take(rows) if type(v) is np.ndarray and v.ndim == 1 and v.shape[0] == n else v


def _middle_segment(f0, f_g, f_s, g0, g_g, g_s, b1, b2, cap_g, cap_s):
    """The sums over [b1, b2), between the two caps: only the larger cap is still open."""
    in_g = cap_g >= b2
    in_s = cap_s >= b2
    cg = cap_g * ~in_g  # the caps are finite here (at most NO_CAP): x * mask is exact
    cs = cap_s * ~in_s
    fg = f_g * in_g  # (a NaN slope gives NaN where np.where gave 0: such a row's sum is NaN anyway)
    fs = f_s * in_s
    gg = g_g * in_g
    gs = g_s * in_s
    return _sum_max_linear_np(f0 + f_g * cg + f_s * cs, fg + fs, g0 + g_g * cg + g_s * cs, gg + gs, b1, b2)
