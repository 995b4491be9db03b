"""Per-row gathers of the model and hardware tables, and the grids that compute a
quantity once per (table row, device count) and gather it: the cost engine context's
(planner.cost.context) fast paths. Each gives the rows' own evaluation's values bit for
bit (tests/test_fast_path_equivalence.py).
"""

from __future__ import annotations

import numpy as np

from planner.cost.interconnect import allreduce_latency_s, ring_s_per_byte
from planner.cost.ops import VECTOR
from planner.cost.tables import HardwareTable, ModelTable


class Gather(dict):
    """Table columns gathered per row on first use (only what the phases need).
    ``derived``: a cache of columns computed from the table's (see :func:`derived`)."""

    def __init__(self, table: dict, index, xp=VECTOR, derived: dict | None = None):
        super().__init__()
        self._table, self._index, self._gather = table, index, xp.gather
        self._derived = {} if derived is None else derived
        if xp is VECTOR and _one_row(index):  # a block of one model (device): a fill, not a gather
            self._gather = _Fill(int(index[0]), index.shape, xp.gather)

    def __missing__(self, key):
        v = self[key] = self._gather(self._table[key], self._index)
        return v


def _one_row(index) -> bool:
    """Whether every row of an index column names the same table row (the search's
    blocks: its grid puts the model axis outermost, so a block of 16k rows is one model
    on one device)."""
    return (isinstance(index, np.ndarray) and index.ndim == 1 and index.size > 1
            and index[0] == index[-1] and bool((index == index[0]).all()))


class _Fill:
    """``col.take(index)`` where every index is ``row``: ``col[row]`` repeated (a fill, ~10x
    fewer instructions than a gather), the same values and dtype; 2-D columns gather."""

    def __init__(self, row: int, shape: tuple, gather):
        self.row, self.shape, self.gather = row, shape, gather

    def __call__(self, col, index):
        if col.ndim != 1:
            return self.gather(col, index)
        return np.full(self.shape, col[self.row], dtype=col.dtype)


def derived(cols, fn):
    """``fn(cols)`` for each row, ``fn`` an elementwise expression of the table's columns
    (a module-level function: it is the cache key). For gathered rows (a :class:`Gather`)
    it runs once on the table's columns (a few entries; cached with the table) and its
    result is gathered: one pass over the rows where the expression made one per
    operation and operand, the same values bit for bit (the same operations in the same
    order and dtype, per element). For one row (a dict of floats) it runs on the row."""
    if type(cols) is not Gather:
        return fn(cols)
    v = cols.get(fn)
    if v is None:
        col = cols._derived.get(fn)
        if col is None:
            col = cols._derived[fn] = fn(cols._table)
        v = cols[fn] = cols._gather(col, cols._index)
    return v


class _DeviceCountGrid:
    """A context over every (hardware row, device count 0..n-1) pair: what the collectives'
    per-row factors read (``xp``, ``hw``, ``devices``)."""

    def __init__(self, ht: HardwareTable, n_counts: int, dt):
        n_hw = len(next(iter(ht.cols.values())))
        self.xp = VECTOR
        self.hw = Gather(ht.cols, np.repeat(np.arange(n_hw, dtype=np.intp), n_counts))
        self.devices = np.tile(np.arange(n_counts, dtype=dt), n_hw)


_MAX_DEVICE_COUNT = 256  # the grid's size: hardware rows x this, at most


def by_device_count(ht: HardwareTable, h, devices, dt):
    """(ring_s_per_byte, allreduce_latency_s) per row, computed once per (hardware row,
    device count) and gathered: both depend on nothing else, and a block has a few device
    counts (1, 2, 4, 8) over thousands of rows. The grid runs the same elementwise
    formulas in the same dtype, so the values are those of the rows' own evaluation, bit
    for bit. None (evaluate per row) for non-integer or large counts."""
    at = grid_index(h, devices)
    if at is None:
        return None
    idx, width = at
    cache = table_cache(ht, "device_count_grid")
    key = (np.dtype(dt).char, width)
    hit = cache.get(key)
    if hit is None:
        grid = _DeviceCountGrid(ht, width, dt)
        with np.errstate(all="ignore"):  # device count 0: never gathered
            hit = cache[key] = (ring_s_per_byte(grid), allreduce_latency_s(grid))
    return hit[0].take(idx, mode="clip"), hit[1].take(idx, mode="clip")


def table_cache(table, name: str) -> dict:
    """A cache dict kept with a (cast) table: planner.cost.tables caches there too."""
    return table.__dict__.setdefault("_casts", {}).setdefault(name, {})


class _ModelDeviceGrid:
    """A context over every (model row, device count 0..n-1) pair, tensor parallelism
    alone: what :func:`per_model_device`'s functions read (``xp``, ``dt``, ``model``,
    ``devices``, ``group_devices``, ``moe_shard``)."""

    layout_beyond_tp = False

    def __init__(self, mt: ModelTable, n_counts: int, dt):
        n_models = len(next(iter(mt.cols.values())))
        self.xp, self.dt = VECTOR, dt
        self.model = Gather(mt.cols, np.repeat(np.arange(n_models, dtype=np.intp), n_counts), VECTOR,
                            table_cache(mt, "derived"))
        self.devices = np.tile(np.arange(n_counts, dtype=dt), n_models)
        self.group_devices = self.moe_shard = self.devices
        self.model_device: dict = {}


def grid_index(rows, devices):
    """(flat index into a [table row, device count 0..top] grid, the grid's width ``top +
    1``) per row, ``rows`` the rows' table index; None (evaluate per row) where the device
    counts are not whole numbers in 1..256 or the rows are few (the grid would not pay)."""
    if not (type(devices) is np.ndarray and devices.ndim == 1 and devices.size > 64
            and np.shape(rows) == devices.shape):
        return None
    counts = devices.astype(np.intp)
    top = int(counts.max())
    if top > _MAX_DEVICE_COUNT or int(counts.min()) < 1 or not np.array_equal(counts, devices):
        return None
    return rows * (top + 1) + counts, top + 1


def per_model_device(x, fn):
    """``fn(x)`` for each row, ``fn`` an elementwise function of the context's model columns
    and device count alone (tensor parallelism: ``devices``, ``group_devices`` and
    ``moe_shard`` are the same count), a module-level function (the cache key). On rows
    with a (model, device count) index (``x.model_device``) it runs once on the grid
    of every model row and device count (a few hundred entries, cached with the model
    table) and its result is gathered: one gather where the rows' own evaluation made a
    pass per operation and a gather per column read, the same values bit for bit (the
    same operations in the same dtype per element, as :func:`by_device_count`)."""
    md = x.model_device
    if not md:
        return fn(x)
    idx, width, mt = md["row"], md["width"], md["table"]
    cache = table_cache(mt, "model_device_grid")
    key = (fn, np.dtype(x.dt).char, width)
    col = cache.get(key)
    if col is None:
        grid = cache.get(("grid", np.dtype(x.dt).char, width))
        if grid is None:
            grid = cache[("grid", np.dtype(x.dt).char, width)] = _ModelDeviceGrid(mt, width, x.dt)
        with np.errstate(all="ignore"):  # device count 0: never gathered
            col = cache[key] = np.asarray(fn(grid), dtype=x.dt)
    return col.take(idx, mode="clip")
