"""The engine's per-row context: model and hardware columns gathered for each
configuration row, dtype byte sizes, seconds per FLOP and per byte, and the GEMM row
factor, shared by the phase functions of :mod:`planner.cost.engine`."""

from __future__ import annotations

import numpy as np

from planner.cost.sums import NO_CAP, sum_linear, sum_min
from planner.cost.tables import BYTES_BY_CODE, HardwareTable, ModelTable

GEMMS_PER_LAYER = 4             # qkv, o, gate/up, down
KERNELS_PER_LAYER = 8           # + 2 norms, rope/attention, activation


class Gather(dict):
    """Table columns gathered per row on first use (only what the phases need)."""

    def __init__(self, table: dict, index: np.ndarray):
        super().__init__()
        self._table, self._index = table, index

    def __missing__(self, key):
        v = self[key] = self._table[key].take(self._index)
        return v


class Ctx:
    """Per-row gathered constants shared by the phase functions."""

    def __init__(self, c, mt: ModelTable, ht: HardwareTable, dt=np.float64):
        mt, ht = mt.cast(dt), ht.cast(dt)
        self.dt = dt
        m = np.asarray(c["model"], dtype=np.intp)
        h = np.asarray(c["hardware"], dtype=np.intp)
        act = np.asarray(c["act_dtype"], dtype=np.intp)
        M = Gather(mt.cols, m)
        H = Gather(ht.cols, h)
        self.M, self.H = M, H
        self.h = h
        self.rows_corr = ht.rows_corr if (ht.rows_corr != 1.0).any() else None
        self.t = np.asarray(c["devices"], dtype=dt)
        flat = h * ht.peak_flops.shape[1] + act
        self.peak = ht.peak_flops.ravel().take(flat)
        self.emax_c = ht.compute_emax.ravel().take(flat)
        self.whalf_c = ht.compute_whalf.ravel().take(flat)
        nbytes = BYTES_BY_CODE.astype(dt)
        self.wb = nbytes.take(np.asarray(c["weight_dtype"], dtype=np.intp))
        self.ab = nbytes.take(act)
        self.kvb_val = nbytes.take(np.asarray(c["kv_dtype"], dtype=np.intp))
        self.kvb = M["kv_elems"] * self.kvb_val  # bytes per token per layer
        self.kv_shard = np.where(M["is_mla"] > 0, 1.0, np.minimum(self.t, M["kv_heads"]))
        self.fx = 1.0 / (self.peak * self.emax_c)              # seconds per GEMM FLOP
        self.ax = 1.0 / (self.peak * ht.att_emax.ravel().take(flat))  # per attention FLOP
        self.awhalf = ht.att_whalf.ravel().take(flat)
        self.bx = 1.0 / (H["bandwidth"] * H["mem_emax"])       # seconds per byte
        self.bx_att = self.bx / H["att_mem"]
        L = M["layers"]
        self.n_kern = KERNELS_PER_LAYER * L + 2
        T = np.asarray(c["kv_budget"], dtype=dt)
        self.sparse = T > 0
        self.cap_g = np.where(self.sparse, T, NO_CAP)
        self.cap_s = np.minimum(M["window"], self.cap_g)

    def rows_factor(self, rows):
        """GEMM time multiplier at ``rows`` rows per pass: ``1 + rows_half / rows`` times
        the measured correction (interpolated in log2 rows on the table's grid)."""
        base = 1.0 + self.H["rows_half"] / rows
        if self.rows_corr is None:
            return base
        n = self.rows_corr.shape[1]
        lg = np.clip(np.log2(rows), 0.0, n - 1.0)
        i = np.minimum(np.floor(lg), n - 2.0).astype(np.intp)
        frac = lg - i
        flat = self.h * n + i
        tab = self.rows_corr.ravel()
        return base * (tab.take(flat) * (1.0 - frac) + tab.take(flat + 1) * frac)

    def decode_sums(self, P, G):
        """Sums over decode contexts c = P .. P+G-1 of c, min(c, cap_g), min(c, cap_s)."""
        if not hasattr(self, "_sums"):
            lo, hi = P, P + G
            self._sums = (sum_linear(0.0, 1.0, lo, hi), sum_min(lo, hi, self.cap_g), sum_min(lo, hi, self.cap_s))
        return self._sums
