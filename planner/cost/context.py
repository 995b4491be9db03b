"""The engine's per-row context: model and hardware columns gathered for each
configuration row, bytes per value of each tensor kind, seconds per FLOP and per byte,
and the GEMM row factor, shared by the phase functions of :mod:`planner.cost.engine`.

The same class serves both array namespaces (:mod:`planner.cost.ops`): numpy columns for
the vectorized search, Python floats for one configuration through the API.
"""

from __future__ import annotations

import math

import numpy as np

from planner.cost.expert_parallel import normal_max_z
from planner.cost.gather import Gather, by_device_count, derived, grid_index, per_model_device, table_cache
from planner.cost.interconnect import RESIDUAL_MIN_BYTES_PER_VALUE, allreduce_latency_s, ring_s_per_byte
from planner.cost.ops import SCALAR, VECTOR
from planner.cost.sums import NO_CAP, sum_linear, sum_min
from planner.cost.tables import BYTES_BY_CODE, DTYPE_CODE, HardwareTable, ModelTable

GEMMS_PER_LAYER = 4             # qkv, o, gate/up, down
KERNELS_PER_LAYER = 8           # + 2 norms, rope/attention, activation
# an MoE layer launches more than a dense MLP's gate/up, activation, down: the router
# GEMM, top-k softmax, the token sort by expert (moe_align_block_size) and the weighted
# sum of the k expert outputs (moe_sum) -- vLLM's fused_experts path, fused_moe.py
MOE_EXTRA_KERNELS_PER_LAYER = 4
# DeepSeek sparse attention (DSA) adds the lightning indexer to every layer, a chain of its own
# ahead of the sparse MLA kernel: wq_b, wk and head-weight projections, k LayerNorm, rope on q and
# k, the Hadamard rotation and fp8 quantization of q and k, the indexer-K cache write, the fp8
# paged MQA logits and the top-k (index_topk) selection: "twelve kernels per Indexer"
# (sgl-project/sglang pull 38583, which fuses SGLang's DSA indexer decode chain into four on
# ROCm; its CUDA path, nsa_indexer, runs the same chain). It runs whatever the context, also
# where the context is within index_topk and the top-k keeps every key (SGLang pull 31324 skips
# it there, later and on ROCm only).
DSA_INDEXER_KERNELS_PER_LAYER = 12
SPARSE_BLOCK_TOKENS = 16        # block top-k: one key summary per 16 tokens (Kinetics, Sadhukhan et al. 2025)
_BYTES_LIST = BYTES_BY_CODE.tolist()
_BF16 = DTYPE_CODE["bf16"]
_HW_TABLES = ("peak_flops", "compute_emax", "compute_whalf", "att_emax", "att_whalf", "rows_corr", "kernel_s",
              "kernel_s_eo")


def attention_dtype_code(xp, act, kv, nbytes):
    """Dtype code the attention kernels compute in: the KV cache's where it is wider than
    the GEMMs' inputs, else the GEMMs' (activation) dtype.

    An fp8 (w8a8) model quantizes only the inputs of its linear layers: each quantized
    linear returns its output in the activations' 16-bit dtype (vLLM
    ``w8a8_utils.apply_fp8_linear``: ``cutlass_scaled_mm(..., out_dtype=input.dtype)``), so
    the query reaching attention is bf16, and with the engines' default KV dtype ("auto",
    the model's 16-bit dtype: planner.measured) the attention kernels (FlashAttention,
    FlashInfer, TensorRT-LLM's FMHA / XQA) multiply 16-bit Q, K and V on the 16-bit tensor
    cores. The fp8 attention paths (FlashAttention-3 fp8, TensorRT-LLM's fp8 context FMHA)
    need an fp8 KV cache. Charging attention at the fp8 peak (twice bf16's on Hopper:
    H100/H200 datasheet, 1,979 vs 989 dense TFLOP/s) made an fp8 row's attention twice
    too fast."""
    return xp.where(xp.gather(nbytes, kv) > xp.gather(nbytes, act), kv, act)


def attention_flat_index(peak_flops: np.ndarray) -> np.ndarray:
    """[device, activation dtype, KV dtype] -> flat index into the [device, dtype] tables of
    the dtype attention runs in (:func:`attention_dtype_code`; the activation dtype's where
    the device lacks the KV dtype's units), built once per hardware table."""
    n_dev, n_dt = peak_flops.shape
    nbytes = BYTES_BY_CODE
    codes = np.arange(n_dt)
    attn = attention_dtype_code(VECTOR, codes[:, None], codes[None, :], nbytes)  # [act, kv]
    flat = np.arange(n_dev)[:, None, None] * n_dt + attn[None, :, :]
    own = np.arange(n_dev)[:, None, None] * n_dt + codes[None, :, None]
    return np.where(np.isfinite(peak_flops.ravel()[flat]), flat, own)


def kernels_per_pass(M):
    """Kernels of one forward pass of the model (arrays of model columns, ``M``): ``KERNELS_PER_LAYER`` per
    layer (more with a sparse-attention indexer), ``MOE_EXTRA_KERNELS_PER_LAYER`` more per MoE
    layer, and 2 (embedding, LM head)."""
    per_layer = KERNELS_PER_LAYER + DSA_INDEXER_KERNELS_PER_LAYER * M["has_indexer"]
    return per_layer * M["layers"] + MOE_EXTRA_KERNELS_PER_LAYER * M["moe_layers"] + 2


def _state_bytes_per_seq_all_devices(M):
    return M["linear_layers"] * M["state_elems"] * M["state_value_bytes"]


def _linear_flops_per_token_all_devices(M):
    return M["linear_layers"] * M["linear_flops_tok"]


def _kv_shard_heads(M):  # the KV heads tensor parallelism can split: 1 for MLA's replicated latent
    return np.where(M["is_mla"] > 0, 1.0, M["kv_heads"])


def _kv_shard(x):  # devices >= 1
    return np.minimum(x.devices, derived(x.model, _kv_shard_heads))


def _state_bytes_per_seq(x):
    return (derived(x.model, _state_bytes_per_seq_all_devices)
            / x.xp.maximum(x.xp.minimum(x.devices, x.model["state_heads"]), 1.0))


def _linear_flops_per_token(x):
    return derived(x.model, _linear_flops_per_token_all_devices) / x.devices


def _s_per_byte(H):
    return 1.0 / (H["bandwidth"] * H["mem_emax"])


def _s_per_expert_byte(H):
    """The routed experts' weight stream: the memory curve's rate, at most the ceiling
    (planner.serving_params ``expert_stream_bytes_per_s``). ``max(a, b)`` as ``a +
    relu(b - a)`` with ``relu(d) = (d + |d|) / 2``: exactly ``a`` where the ceiling does
    not bind (so an unfitted table gives :func:`_s_per_byte` bit for bit), and plain
    arithmetic, so a row of Python floats stays Python floats (the scalar path)."""
    a = 1.0 / (H["bandwidth"] * H["mem_emax"])
    d = 1.0 / H["expert_bytes_per_s"] - a
    return a + (d + abs(d)) * 0.5


def _s_per_kv_byte(H):
    return 1.0 / (H["bandwidth"] * H["mem_emax"]) / H["kv_mem_factor"]


class Ctx:
    """Per-row gathered constants shared by the phase functions.

    Attribute names carry units: ``*_bytes_per_*`` sizes, ``s_per_*`` inverse
    throughputs (achieved, i.e. peak x efficiency), ``*_offset_*`` the work a kernel
    adds under the efficiency curve ``e(w) = e_max w / (w + w_half)``; ``model`` and
    ``hw`` hold the gathered table columns (planner.cost.tables)."""

    # every output column; planner.cost.engine.evaluate_block sets False where ``outputs=``
    # asks for none of planner.cost.passes.REPORT_KEYS
    report = True

    @classmethod
    def one(cls, c, mt: ModelTable, ht: HardwareTable) -> "Ctx":
        """The context of one configuration on Python floats (the API's path). Everything
        but the decode-sum cache depends only on the model / device rows, the dtypes, the
        device count and the KV budget: built once per such key and copied."""
        cache = ht.__dict__.setdefault("_casts", {}).setdefault("scalar_ctx", {})
        key = (id(mt), c["model"], c["hardware"], c["act_dtype"], c["weight_dtype"], c["kv_dtype"],
               c["devices"], c["kv_budget"], c.get("ep", 1), c.get("attn_dp", 1), c.get("spec_tokens", 0),
               c.get("spec_accept", 0), c.get("host_request_s", 0), c.get("cascade", 2),
               c.get("cascade_min_prompt", 0), c.get("cascade_min_seqs", 0))
        hit = cache.get(key)
        if hit is None or hit[0] is not mt:
            if len(cache) > 4096:
                cache.clear()
            proto = cls(c, mt, ht, xp=SCALAR)
            hit = cache[key] = (mt, proto.__dict__)
        x = cls.__new__(cls)
        x.__dict__.update(hit[1])
        x._sums = {}
        return x

    def __init__(self, c, mt: ModelTable, ht: HardwareTable, dt=np.float64, xp=VECTOR):
        self.xp, self.dt = xp, dt
        m = xp.index(c["model"])
        h = xp.index(c["hardware"])
        act = xp.index(c["act_dtype"])
        w_code = xp.index(c["weight_dtype"])
        kv_code = xp.index(c["kv_dtype"])
        if xp is SCALAR:  # one row: the table's row as a dict of floats
            htab = ht.lists()
            head_bytes = mt.lists()["head_bytes"]
            dense_bytes = mt.lists()["dense_bytes"]
            nbytes = _BYTES_LIST
            M = self.model = mt.row(m)
            H = self.hw = ht.row(h)
        else:
            mt, ht = mt.cast(dt), ht.cast(dt)
            htab = {f: getattr(ht, f) for f in _HW_TABLES}
            head_bytes = mt.head_bytes
            dense_bytes = mt.dense_bytes
            nbytes = BYTES_BY_CODE.astype(dt)
            M = self.model = Gather(mt.cols, m, xp, table_cache(mt, "derived"))
            H = self.hw = Gather(ht.cols, h, xp, table_cache(ht, "derived"))
        self.h = h
        self.rows_corr = htab["rows_corr"] if ht.has_rows_correction() else None
        self.devices = xp.values(c["devices"], dt)
        lookup = xp.lookup
        if xp is SCALAR:
            attn = attention_dtype_code(xp, act, kv_code, nbytes)
            if not math.isfinite(htab["peak_flops"][h][attn]):  # a device without the KV dtype's units
                attn = act
            at_act = lambda table: table[h][act]  # noqa: E731
            at_attn = lambda table: table[h][attn]  # noqa: E731
        else:  # one flat index for every [device, activation dtype] table (they share their shape)
            flat = h * htab["peak_flops"].shape[1] + act
            at_act = lambda table: table.ravel().take(flat, mode="clip")  # noqa: E731
            idx = table_cache(ht, "attention_index")
            if not idx:
                idx["flat"] = attention_flat_index(htab["peak_flops"]).ravel()
            n_dt = htab["peak_flops"].shape[1]
            flat_attn = idx["flat"].take(flat * n_dt + kv_code, mode="clip")
            at_attn = lambda table: table.ravel().take(flat_attn, mode="clip")  # noqa: E731
        self.peak_flops_per_s = at_act(htab["peak_flops"])
        self.gemm_offset_flops = at_act(htab["compute_whalf"])
        self.weight_bytes_per_param = xp.gather(nbytes, w_code)
        # weights outside the routed experts: 16-bit where only the experts are 4-bit (tables.dense_bytes_per_param)
        self.dense_bytes_per_param = lookup(dense_bytes, m, w_code)
        # a checkpoint quantizing its routed experts only (its other weights stored wider: gpt-oss's MXFP4
        # modules_to_not_convert) runs its attention and router GEMMs unquantized, in bf16
        experts_only = self.dense_bytes_per_param > self.weight_bytes_per_param
        self.act_bytes_per_value = xp.gather(nbytes, act)
        # fixed time per kernel at the row's compute dtype (planner.kernel_paths): a weight-only row
        # (weights narrower than its compute: a dequantizing GEMM, W4A16 / W8A16) runs no tabled GEMM
        # path and keeps the scalar time; else the tabled GEMM path, an experts-only checkpoint's with
        # its attention GEMMs on the bf16 path (where_flags: no pass where every row agrees)
        weight_only = self.weight_bytes_per_param < self.act_bytes_per_value
        self.kernel_s = xp.where(weight_only, H["overhead_s"],
                                 xp.where_flags(experts_only, at_act(htab["kernel_s_eo"]), at_act(htab["kernel_s"])))
        # hidden states (residual stream, all-reduces, the MoE combine): 16-bit at least, as an
        # fp8 / fp4 linear returns bf16 (planner.cost.interconnect.RESIDUAL_MIN_BYTES_PER_VALUE)
        self.hidden_bytes_per_value = xp.maximum(self.act_bytes_per_value, RESIDUAL_MIN_BYTES_PER_VALUE)
        self.kv_bytes_per_value = xp.gather(nbytes, kv_code)
        # embeddings and LM head: 16-bit beside weight-only int4/fp4 (tables.embed_head_bytes_per_param)
        self.head_bytes_per_param = lookup(head_bytes, m, w_code)
        self.kv_bytes_per_token_layer = M["kv_elems"] * self.kv_bytes_per_value
        self._layout(c, xp, dt)
        # (model row, device count) per row where those two alone decide a quantity
        # (:func:`per_model_device`: "row" the grid index, "width" the grid's device counts,
        # "table" the model table); empty: the rows' own evaluation
        row = None if xp is SCALAR or self.layout_beyond_tp else grid_index(m, self.devices)
        self.model_device = {} if row is None else {"row": row[0], "width": row[1], "table": mt}
        # MLA's latent KV is replicated on every device; GQA shards KV heads (at most one per device)
        if xp is SCALAR or not (self.devices >= 1.0).all():
            self.kv_shard = xp.where(M["is_mla"] > 0, 1.0, xp.minimum(self.devices, M["kv_heads"]))
        else:  # the same for t >= 1, without a per-row np.where: MLA's shard count is min(t, 1)
            self.kv_shard = per_model_device(self, _kv_shard)
        # linear-attention layers (planner.cost.recurrent): the state of one sequence, per
        # device (tensor parallelism splits its value heads), and its FLOPs per token
        self.state_bytes_per_seq = per_model_device(self, _state_bytes_per_seq)
        self.linear_flops_per_token = per_model_device(self, _linear_flops_per_token)
        if xp is SCALAR:
            self.s_per_gemm_flop = 1.0 / (self.peak_flops_per_s * at_act(htab["compute_emax"]))
            self.s_per_attn_flop = 1.0 / (at_attn(htab["peak_flops"]) * at_attn(htab["att_emax"]))
        else:  # the same expressions on the [device, dtype] tables (cached), looked up once
            inv = table_cache(ht, "s_per_flop")
            if not inv:
                with np.errstate(all="ignore"):
                    inv["gemm"] = 1.0 / (htab["peak_flops"] * htab["compute_emax"])
                    inv["attn"] = 1.0 / (htab["peak_flops"] * htab["att_emax"])
            self.s_per_gemm_flop = at_act(inv["gemm"])
            self.s_per_attn_flop = at_attn(inv["attn"])
        # the dense GEMMs' time per FLOP: an experts-only checkpoint's at bf16 whatever the experts' path
        # (vLLM and TensorRT-LLM run its attention unquantized); a device without bf16 units: the row's own
        if xp is SCALAR:
            s_bf16 = 1.0 / (htab["peak_flops"][h][_BF16] * htab["compute_emax"][h][_BF16])
            s_bf16 = s_bf16 if math.isfinite(s_bf16) else 0.0
        else:
            s_bf16 = np.nan_to_num(inv["gemm"][:, _BF16].take(h, mode="clip"), nan=0.0, posinf=0.0)
        self.s_per_dense_flop = xp.where(experts_only, xp.maximum(s_bf16, self.s_per_gemm_flop), self.s_per_gemm_flop)
        self.attn_offset_flops = at_attn(htab["att_whalf"])
        self.s_per_byte = derived(H, _s_per_byte)
        self.s_per_kv_byte = derived(H, _s_per_kv_byte)
        # the experts' stream ceiling, where one binds (else the same values: skip the gather)
        self.s_per_expert_byte = derived(H, _s_per_expert_byte) if ht.has_expert_ceiling() else self.s_per_byte
        self.kernels_per_pass = derived(M, kernels_per_pass)
        budget = xp.values(c["kv_budget"], dt)
        self.sparse = budget > 0
        # 1.0 / 0.0 in the row's float type (np.where on two Python floats would give
        # float64 and turn a float32 evaluation into float64 from there on)
        self.sparse_flag = xp.values(self.sparse, dt)
        self.kv_cap_global = xp.where(self.sparse, budget, NO_CAP)
        self.kv_cap_sliding = xp.minimum(M["window"], self.kv_cap_global)
        # no skinny-GEMM curve anywhere (the documented defaults): every row factor is 1
        # (the table's column first: where every device has the default no row needs a gather)
        hcols = H if xp is SCALAR else ht.cols
        self.flat_rows = self.rows_corr is None and (not xp.any(hcols["gemm_rows_half"] != 0.0)
                                                     or not xp.any(H["gemm_rows_half"] != 0.0))
        self.full_overlap = not xp.any(hcols["overlap"] != 1.0) or not xp.any(H["overlap"] != 1.0)
        # no calibrated end-to-end time scale: planner.cost.roofline.scaled multiplies by 1
        self.unit_time_scale = not xp.any(hcols["time_scale"] != 1.0)
        # no GEMV calibration anywhere (stream factor 1, no cost per output row: the
        # documented defaults): gemm_memory_bytes is the weight bytes themselves. Read from
        # the table's columns (no per-row gather)
        self.plain_gemv = (not xp.any(hcols["gemv_stream_factor"] != 1.0)
                           and not xp.any(hcols["gemv_row_bytes"] != 0.0))
        per_count = None if xp is SCALAR else by_device_count(ht, h, self.devices, dt)
        if per_count is None:
            self.ring_s_per_byte = ring_s_per_byte(self)
            self.allreduce_latency_s = allreduce_latency_s(self)
        else:
            self.ring_s_per_byte, self.allreduce_latency_s = per_count
        if self.layout_beyond_tp:
            self.group_ring_s_per_byte = ring_s_per_byte(self, self.group_devices)
            self.group_allreduce_latency_s = allreduce_latency_s(self, self.group_devices)
        self._sums: dict = {}

    def _layout(self, c, xp, dt):
        """Expert parallelism and attention data parallelism (planner.cost.expert_parallel):
        ``ep`` expert groups and ``attn_dp`` attention groups of ``devices`` devices each
        (columns optional: 1 = tensor parallelism alone)."""
        ep = c["ep"] if "ep" in c else 1
        a = c["attn_dp"] if "attn_dp" in c else 1
        self.ep, self.attn_dp = xp.values(ep, dt), xp.values(a, dt)
        self.group_devices = self.devices * self.attn_dp
        # speculative decoding (planner.cost.spec_decode): draft tokens per step and the
        # per-position acceptance; columns optional, 0 drafts = plain decoding
        self.spec_tokens = xp.values(c["spec_tokens"] if "spec_tokens" in c else 0, dt)
        self.spec_accept = xp.values(c["spec_accept"] if "spec_accept" in c else 0, dt)
        self.spec = bool(xp.any(self.spec_tokens > 0))
        # host time per running request per step (planner.cost.steps.step_time; column optional, 0: none)
        self.host_request_s = xp.values(c["host_request_s"] if "host_request_s" in c else 0, dt)
        # when a shared prompt is read once a step (planner.cost.passes.prompt_read_once; columns
        # optional: each request's samples share the read, the generic engine's kernel)
        self.cascade = xp.values(c["cascade"] if "cascade" in c else 2, dt)
        self.cascade_min_prompt = xp.values(c["cascade_min_prompt"] if "cascade_min_prompt" in c else 0, dt)
        self.cascade_min_seqs = xp.values(c["cascade_min_seqs"] if "cascade_min_seqs" in c else 0, dt)
        self.moe_shard = self.group_devices / self.ep  # devices splitting one expert
        self.layout_beyond_tp = xp.any(self.ep != 1.0) or xp.any(self.attn_dp != 1.0)
        self.expert_parallel = xp.any(self.ep != 1.0)
        if self.expert_parallel:
            z = normal_max_z(self.ep)
            self.ep_max_z = z if xp is SCALAR else np.asarray(z, dtype=dt)
            from planner.cost.interconnect import link_bytes_per_s

            bw = link_bytes_per_s(self, self.group_devices)
            self.a2a_s_per_byte = xp.where(bw > 0, 1.0 / xp.where(bw > 0, bw, 1.0), float("inf"))
            self.a2a_latency_s = xp.where(self.group_devices > self.hw["domain_devices"],
                                          self.hw["inter_node_latency_s"], self.hw["allreduce_latency_s"])

    def rows_factor(self, rows):
        """GEMM time multiplier at ``rows`` rows per pass: ``1 + rows_half / rows`` times
        the measured correction (interpolated in log2 rows on the table's grid)."""
        if self.flat_rows:
            return 1.0
        base = 1.0 + self.hw["gemm_rows_half"] / rows
        if self.rows_corr is None:
            return base
        xp = self.xp
        n = len(self.rows_corr[0])
        lg = xp.clip(xp.log2(rows), 0.0, n - 1.0)
        i = xp.minimum(xp.floor(lg), n - 2.0)
        frac = lg - i
        i = xp.index(i)
        tab = self.rows_corr
        return base * (xp.lookup(tab, self.h, i) * (1.0 - frac) + xp.lookup(tab, self.h, i + 1) * frac)

    def decode_sums(self, P, G):
        """Sums over decode contexts c = P .. P+G-1 of c, min(c, cap_global) and
        min(c, cap_sliding). Cached per (P, G) pair of objects: a later call with other
        arguments computes its own sums."""
        key = (id(P), id(G))
        hit = self._sums.get(key)
        if hit is None:
            lo, hi = P, P + G
            xp = self.xp
            hit = (P, G, (sum_linear(0.0, 1.0, lo, hi, xp), sum_min(lo, hi, self.kv_cap_global, xp),
                          sum_min(lo, hi, self.kv_cap_sliding, xp)))
            self._sums[key] = hit  # holds P and G, so their ids stay theirs
        return hit[2]
