"""A row subset of a vectorized engine context (planner.cost.context.Ctx), for iterations
that keep working on the rows still moving (planner.cost.open_loop.poisson's fixed point).

The subset holds the same per-row values, indexed; tables (a Gather's source columns, the
row-correction table) and the whole-context switches (``flat_rows``, ``full_overlap``,
``layout_beyond_tp``: they choose formula branches for every row) are shared, so a row
evaluates bit for bit as it does in the full context (a test checks it). Every per-row
value of a context is a one-dimensional array with one entry per row; anything else
(scalars, flags, 2-D tables, the namespaces) is carried over as it is.
"""

from __future__ import annotations

import numpy as np

from planner.cost.context import Ctx, Gather


def n_rows(x: Ctx) -> int:
    """The number of rows of a vectorized context (1 for the scalar one)."""
    return int(np.size(x.devices))


def take_rows(x: Ctx, idx: np.ndarray) -> Ctx:
    """The context of rows ``idx`` (an integer index array) of ``x``."""
    n = n_rows(x)

    def part(v):
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.shape[0] == n:
            return v[idx]
        return v

    y = Ctx.__new__(Ctx)
    for key, v in x.__dict__.items():
        if isinstance(v, Gather):
            g = Gather(v._table, part(v._index), x.xp)
            g.update({k: part(c) for k, c in v.items()})
            v = g
        elif key == "_sums":
            v = {}
        elif isinstance(v, dict):
            v = {k: part(c) for k, c in v.items()}
        else:
            v = part(v)
        setattr(y, key, v)
    return y
