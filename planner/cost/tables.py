"""Specs turned into arrays once: one row per model / device, gathered per configuration.

Column names carry their units (``_bytes``, ``_per_s``, ``_s``, ``_params``); counts of
weights are numbers of values, not bytes (planner.params)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from planner.cost.efficiency import Efficiency, default_efficiency
from planner.cost.interconnect import INTER_NODE_GBPS_PER_DEVICE, INTER_NODE_LATENCY_US
from planner.dtypes import BITS, DTYPES
from planner.params import count

DTYPE_CODE = {d: i for i, d in enumerate(DTYPES)}
BYTES_BY_CODE = np.array([BITS[d] / 8.0 for d in DTYPES])
ROWS_GRID = 2.0 ** np.arange(17)  # 1 .. 65536 rows per pass: where GEMM row corrections are tabulated


def _lists(table) -> dict:
    """The table's columns (and its 2-D tables) as Python lists, for the scalar path (cached)."""
    cache = table.__dict__.setdefault("_casts", {})
    if "lists" not in cache:
        d = {k: v.tolist() for k, v in table.cols.items()}
        d["head_bytes"] = table.head_bytes.tolist()
        d["dense_bytes"] = table.dense_bytes.tolist()
        cache["lists"] = d
    return cache["lists"]


EMBED_HEAD_BYTES_PER_PARAM = 2.0  # 16-bit embeddings / LM head beside int4/fp4 weights
WEIGHT_ONLY_4BIT = ("int4", "fp4")


def embed_head_bytes_per_param(model, weight_dtype: str) -> float:
    """Bytes per value of the embedding table and LM head: weight-only int4/fp4
    checkpoints keep them in 16-bit (GPTQ and AWQ leave them unquantized; gpt-oss's
    MXFP4 covers the MoE weights only, per its model card) unless the model says
    ``quantized_embeddings``; other formats store them like the other weights."""
    b = BITS[weight_dtype] / 8.0
    if weight_dtype in WEIGHT_ONLY_4BIT and not model.quantized_embeddings:
        return max(b, EMBED_HEAD_BYTES_PER_PARAM)
    return b


def dense_bytes_per_param(model, weight_dtype: str) -> float:
    """Bytes per value of the weights outside the routed experts (attention, routers,
    shared experts, dense layers): like the other weights, except in an MoE model whose
    int4/fp4 weight-only checkpoint quantizes the routed experts only
    (``quantized_experts_only``: gpt-oss's MXFP4 config.json lists ``self_attn``, the
    router, the embeddings and the LM head in ``modules_to_not_convert``; Kimi-K2's INT4
    quantization-aware training covers the MoE experts), where they stay 16-bit."""
    b = BITS[weight_dtype] / 8.0
    if weight_dtype in WEIGHT_ONLY_4BIT and model.moe is not None and model.quantized_experts_only:
        return max(b, EMBED_HEAD_BYTES_PER_PARAM)
    return b


def _row(table, i: int) -> dict:
    """Row ``i`` of the table as a dict of Python floats (scalar path; cached)."""
    cache = table.__dict__.setdefault("_casts", {})
    key = ("row", i)
    if key not in cache:
        cache[key] = {k: v[i] for k, v in table.lists().items()}
    return cache[key]


def _cast(table, dt):
    """The table with float columns in dtype ``dt`` (cached on the table)."""
    cache = table.__dict__.setdefault("_casts", {})
    if dt not in cache:
        conv = {k: v.astype(dt) for k, v in table.cols.items()}
        extra = {f: getattr(table, f).astype(dt) for f in ("peak_flops", "compute_emax", "compute_whalf",
                                                           "att_emax", "att_whalf", "rows_corr", "head_bytes",
                                                           "kernel_s", "kernel_s_eo", "dense_bytes")
                 if hasattr(table, f)}
        cache[dt] = table if dt is np.float64 else replace(table, cols=conv, **extra)
    return cache[dt]


@dataclass(frozen=True)
class ModelTable:
    """Per-model counts as arrays (index = position in ``names``)."""

    names: tuple[str, ...]
    cols: dict[str, np.ndarray]
    head_bytes: np.ndarray      # [model, weight dtype code] bytes per embedding / LM-head value
    dense_bytes: np.ndarray     # [model, weight dtype code] bytes per value outside the routed experts

    def cast(self, dt) -> "ModelTable":
        return _cast(self, dt)

    def lists(self) -> dict:
        return _lists(self)

    def row(self, i: int) -> dict:
        return _row(self, i)

    @classmethod
    def build(cls, models: Sequence) -> "ModelTable":
        """One row per model: the counts of planner.params.count (parameters, FLOPs per token
        and per (query, key) pair, KV values per token and layer) as float columns, the units
        in the column names (README "How the cost model works", *Per model*)."""
        rows = [count(m) for m in models]

        def col(f):
            return np.array([f(c, m) for c, m in zip(rows, models)], dtype=float)

        def active_inter(c, m):
            if m.moe is None:
                return float(m.num_layers * m.intermediate_size)
            e = m.moe
            per_moe = e.experts_per_token * e.expert_intermediate_size + e.num_shared_experts * e.shared_expert_intermediate_size
            return float(e.first_dense_layers * m.intermediate_size + c.num_moe_layers * per_moe)

        def gemm_out_rows(c, m):
            """Output features of the layers' dense (not routed) GEMMs, all layers: what a
            matrix-vector product pays per row (planner.cost.roofline.gemm_memory_bytes)."""
            gate = 2 if m.mlp_gated else 1
            if m.mla is not None:
                a = m.mla
                q = m.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim) + (a.q_lora_rank or 0)
                kv = a.kv_lora_rank + a.qk_rope_head_dim + m.num_heads * (a.qk_nope_head_dim + a.v_head_dim)
            else:
                q, kv = m.num_heads * m.head_dim, 2 * m.num_kv_heads * m.head_dim
            attn = m.num_layers * (q + kv + m.hidden_size)
            if m.moe is None:
                return float(attn + m.num_layers * (gate * m.intermediate_size + m.hidden_size))
            e = m.moe
            dense = e.first_dense_layers * (gate * m.intermediate_size + m.hidden_size)
            shared = (gate * e.shared_expert_intermediate_size + m.hidden_size) * e.num_shared_experts
            return float(attn + dense + c.num_moe_layers * (shared + e.num_experts))

        cols = {
            "total_params": col(lambda c, m: c.total_params),
            # the input embedding and a stored (untied) LM head: kept in 16-bit under
            # weight-only 4-bit quantization unless the model says they are quantized too
            "embed_head_params": col(lambda c, m: c.embedding_params
                                     + (0.0 if m.tie_embeddings else m.vocab_size * m.hidden_size)),
            "matmul_active": col(lambda c, m: c.matmul_params_active),
            "read_fixed": col(lambda c, m: c.read_params_fixed),
            "expert_params_per": col(lambda c, m: c.expert_params * c.num_moe_layers),  # one expert, all MoE layers
            "num_experts": col(lambda c, m: c.num_experts),
            # log P(an expert is missed by one token) = log(1 - k/E); 0 for dense models
            "log_miss": col(lambda c, m: 0.0 if c.num_experts == 0 else (
                float(np.log1p(-c.experts_per_token / c.num_experts))
                if c.experts_per_token < c.num_experts else -1e30)),
            "experts_per_token": col(lambda c, m: c.experts_per_token),
            "moe_layers": col(lambda c, m: c.num_moe_layers),
            "layers": col(lambda c, m: c.num_layers),
            "global_layers": col(lambda c, m: c.num_global_layers),
            "sliding_layers": col(lambda c, m: c.num_sliding_layers),
            "window": col(lambda c, m: min(c.sliding_window, 1e30)),
            "kv_elems": col(lambda c, m: c.kv_elems_per_token_layer),
            # layers that cache KV (full and sliding attention); linear-attention layers keep
            # a fixed-size state instead (planner.cost.recurrent)
            "kv_layers": col(lambda c, m: c.num_global_layers + c.num_sliding_layers),
            "linear_layers": col(lambda c, m: c.num_linear_layers),
            "state_elems": col(lambda c, m: c.state_elems_per_seq_layer),
            "state_heads": col(lambda c, m: c.state_heads),
            "state_value_bytes": col(lambda c, m: (BITS[m.linear_attention.state_dtype] / 8.0
                                                   if m.linear_attention is not None else 0.0)),
            "linear_flops_tok": col(lambda c, m: c.linear_flops_per_token_layer),
            "attn_dec": col(lambda c, m: c.attn_flops_per_ctx_decode),
            "attn_pre": col(lambda c, m: c.attn_flops_per_ctx_prefill),
            "hidden": col(lambda c, m: c.hidden_size),
            "kv_heads": col(lambda c, m: c.num_kv_heads),
            "is_mla": col(lambda c, m: 1.0 if m.mla is not None else 0.0),
            # DeepSeek sparse attention: every layer runs the lightning indexer (planner.cost.context)
            "has_indexer": col(lambda c, m: 1.0 if m.mla is not None and m.mla.index_topk is not None else 0.0),
            "vocab": col(lambda c, m: m.vocab_size),
            "lm_head": col(lambda c, m: m.vocab_size * m.hidden_size),
            "gemm_out_rows": col(gemm_out_rows),
            # activation values moved per token (norm in/out, qkv, attention out, residuals,
            # MLP gate/up/act): ~10 h + 3 I per layer
            "act_elems": col(lambda c, m: 10.0 * m.hidden_size * m.num_layers + 3.0 * active_inter(c, m)),
        }
        head = np.array([[embed_head_bytes_per_param(m, d) for d in DTYPES] for m in models])
        head = head.reshape(len(models), len(DTYPES))
        dense = np.array([[dense_bytes_per_param(m, d) for d in DTYPES] for m in models])
        dense = dense.reshape(len(models), len(DTYPES))
        return cls(tuple(m.name for m in models), cols, head, dense)


@dataclass(frozen=True)
class HardwareTable:
    """Per-device peaks, efficiencies, power and price as arrays."""

    names: tuple[str, ...]
    cols: dict[str, np.ndarray]
    peak_flops: np.ndarray      # [device, dtype code] FLOP/s, nan where the device lacks it
    compute_emax: np.ndarray    # [device, dtype code]
    compute_whalf: np.ndarray   # [device, dtype code]
    att_emax: np.ndarray        # [device, dtype code] attention-kernel compute curve
    att_whalf: np.ndarray
    rows_corr: np.ndarray       # [device, ROWS_GRID] measured GEMM-time correction at 2^i rows
    efficiency_sources: tuple[str, ...]
    kernel_s: np.ndarray        # [device, dtype code] fixed time per kernel of a row computing in that dtype
    kernel_s_eo: np.ndarray     # the same for a checkpoint quantizing its routed experts only

    def cast(self, dt) -> "HardwareTable":
        return _cast(self, dt)

    def has_rows_correction(self) -> bool:
        """Whether any device has a measured GEMM row correction (cached)."""
        cache = self.__dict__.setdefault("_casts", {})
        if "has_rows" not in cache:
            cache["has_rows"] = bool((self.rows_corr != 1.0).any())
        return cache["has_rows"]

    def has_expert_ceiling(self) -> bool:
        """Whether any device's routed-expert stream ceiling is below its memory curve's rate
        (planner.serving_params ``expert_stream_bytes_per_s``; cached): else the experts
        stream at the memory rate and the engine skips the column."""
        cache = self.__dict__.setdefault("_casts", {})
        if "has_ceiling" not in cache:
            c = self.cols
            cache["has_ceiling"] = bool((c["expert_bytes_per_s"] < c["bandwidth"] * c["mem_emax"]).any())
        return cache["has_ceiling"]

    def lists(self) -> dict:
        """Columns and the [device, dtype] tables as Python lists (scalar path; cached)."""
        cache = self.__dict__.setdefault("_casts", {})
        if "lists" not in cache:
            d = {k: v.tolist() for k, v in self.cols.items()}
            for f in ("peak_flops", "compute_emax", "compute_whalf", "att_emax", "att_whalf", "rows_corr", "kernel_s",
                      "kernel_s_eo"):
                d[f] = getattr(self, f).tolist()
            cache["lists"] = d
        return cache["lists"]

    def row(self, i: int) -> dict:
        return _row(self, i)

    @classmethod
    def build(cls, hardware: Sequence, efficiencies: Sequence[Efficiency | None] | None = None) -> "HardwareTable":
        """One row per device: its datasheet peaks (FLOP/s per compute dtype, HBM and link
        bytes/s, from hardware/*.yaml with their sources) and the achieved fractions of them its
        efficiency gives (planner.cost.efficiency.Efficiency: a calibration or serving profile,
        else the documented defaults), with the fixed time per kernel (s) at each compute dtype
        (``kernel_s``: Efficiency.kernel_overhead_at)."""
        effs = list(efficiencies) if efficiencies is not None else [None] * len(hardware)
        effs = [e if e is not None else default_efficiency(h) for h, e in zip(hardware, effs)]
        nd = len(DTYPES)
        peak = np.full((len(hardware), nd), np.nan)
        emax = np.ones((len(hardware), nd))
        whalf = np.zeros((len(hardware), nd))
        a_emax = np.ones((len(hardware), nd))
        a_whalf = np.zeros((len(hardware), nd))
        for i, (h, e) in enumerate(zip(hardware, effs)):
            for j, d in enumerate(DTYPES):
                if d in e.peak_flops_override:
                    peak[i, j] = e.peak_flops_override[d]
                elif h.has_dtype(d):
                    peak[i, j] = h.peak_flops(d)
                curve = e.compute_curve(d)
                emax[i, j] = curve.e_max
                whalf[i, j] = curve.w_half
                att = e.attention_compute or type(curve)(curve.e_max)
                a_emax[i, j] = att.e_max
                a_whalf[i, j] = att.w_half

        def col(f):
            return np.array([f(h, e) for h, e in zip(hardware, effs)], dtype=float)

        cols = {
            "bandwidth": col(lambda h, e: e.peak_bandwidth_override or h.mem_bandwidth_gbps * 1e9),
            # the datasheet's GB as 1e9 bytes: 7% below the binary capacity a driver reports (a conservative
            # KV pool; GiB was tried and fitted no better: docs/serving-experiments.md, Round 22)
            "capacity": col(lambda h, e: h.memory_gb * 1e9),
            "link_bytes_per_s": col(lambda h, e: h.interconnect_gbps * 1e9 * e.interconnect),
            "allreduce_latency_s": col(lambda h, e: h.interconnect_latency_us * 1e-6),
            "domain_devices": col(lambda h, e: h.max_devices),
            # between NVLink domains: the spec's network figures, else the documented defaults
            "inter_node_bytes_per_s": col(lambda h, e: (h.inter_node_gbps or INTER_NODE_GBPS_PER_DEVICE) * 1e9),
            "inter_node_latency_s": col(lambda h, e: (h.inter_node_latency_us if h.inter_node_latency_us is not None
                                                      else INTER_NODE_LATENCY_US) * 1e-6),
            "idle_w": col(lambda h, e: h.idle_power_w),
            "max_w": col(lambda h, e: h.max_power_w),
            "hourly_usd": col(lambda h, e: h.hourly_usd),
            "owned": col(lambda h, e: 1.0 if h.price_per_hour_usd is None else 0.0),
            "mem_emax": col(lambda h, e: e.memory.e_max),
            "mem_offset_bytes": col(lambda h, e: e.memory.w_half),
            "gemv_row_bytes": col(lambda h, e: e.gemv_row_bytes),
            "gemv_stream_factor": col(lambda h, e: e.gemv_stream_factor),
            "kv_mem_factor": col(lambda h, e: e.attention_memory),
            "expert_bytes_per_s": col(lambda h, e: e.expert_bytes_per_s),
            "gemm_rows_half": col(lambda h, e: e.gemm_rows_half),
            "overlap": col(lambda h, e: e.overlap),
            "time_scale": col(lambda h, e: e.time_scale),
            "overhead_s": col(lambda h, e: e.kernel_overhead_s),
        }
        rows = np.stack([e.rows_correction(ROWS_GRID) for e in effs]) if effs else np.ones((0, ROWS_GRID.size))
        kernel = np.array([[e.kernel_overhead_at(d) for d in DTYPES] for e in effs]).reshape(len(effs), nd)
        kernel_eo = np.array([[e.kernel_overhead_at(d, True) for d in DTYPES] for e in effs]).reshape(len(effs), nd)
        return cls(tuple(h.name for h in hardware), cols, peak, emax, whalf, a_emax, a_whalf, rows,
                   tuple(e.source for e in effs), kernel, kernel_eo)
