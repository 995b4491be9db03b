"""A row subset of a vectorized engine context (planner.cost.context.Ctx), for iterations
that keep working on the rows still moving (planner.cost.open_loop.poisson's fixed point).

The subset holds the same per-row values, indexed: every one-dimensional array with one
entry per row, at the top level, in a dict of columns (``cols``, the serving columns
planner.cost.engine attaches) and among a :class:`~planner.cost.gather.Gather`'s
gathered columns and its row index. Shared as they are: the tables (a Gather's source
columns and its derived-column cache, the row-correction table ``rows_corr``), the array
namespace ``xp`` and float type ``dt``, and the whole-context switches
(:data:`WHOLE_CONTEXT_SWITCHES`: each chooses a formula branch for every row). The
switches keep the full context's values even where the subset's rows alone would flip
one (say, no row of the subset calibrated): the branch taken is the full context's, so a
row evaluates bit for bit as it does there (tests/test_row_subset.py checks it on mixed
calibrated / default devices and expert-parallel layouts). The decode-sum cache
(``_sums``, keyed by the ids of the full context's arrays) starts empty.
"""

from __future__ import annotations

import numpy as np

from planner.cost.context import Ctx
from planner.cost.gather import Gather

# the flags planner.cost.context.Ctx sets for the whole context (report: planner.cost.engine)
WHOLE_CONTEXT_SWITCHES = ("flat_rows", "full_overlap", "unit_time_scale", "plain_gemv", "layout_beyond_tp",
                          "expert_parallel", "spec", "report")


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
            g = Gather(v._table, part(v._index), x.xp, v._derived)
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
