"""The vectorized cost engine: one row per configuration, every quantity an array.

Per pass (a prefill, or one decode step) the work splits into kernel classes, each timed
by its own roofline (README "Cost model"):

* **linear** (the layers' GEMMs): ``max(F / (peak * e_c), B / (bw * e_m))`` with ``B`` =
  weights read (MoE: the experts the tokens actually touch);
* **LM head**: the same roofline on its own (it runs only where logits are needed, so in
  a prefill it is a memory-bound GEMV that the layers' compute does not hide);
* **elementwise** (norms, residual adds, activation): their activation bytes / bandwidth;
* **attention**: the same with KV-cache bytes, and for a sparse KV budget the selection
  cost (block top-k reads one key summary per block);
* **interconnect**: two ring all-reduces per layer under tensor parallelism;
* **overhead**: a fixed cost per kernel launch.

An efficiency curve ``e(w) = e_max * w / (w + w_half)`` on the work ``w`` per kernel makes
``F / e(F / n) = (F + n * w_half) / e_max``: calibration adds a work offset per kernel.
Decode steps are summed in closed form (planner.cost.sums). Nothing loops over rows.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from planner.cost.context import GEMMS_PER_LAYER, KERNELS_PER_LAYER, Ctx
from planner.cost.footprint import PREFILL_CHUNK_TOKENS, energy_cost, memory_footprint
from planner.cost.sums import piecewise_max_sum, sum_max_linear, sum_min
from planner.cost.tables import HardwareTable, ModelTable

SPARSE_BLOCK_TOKENS = 16        # block top-k: one key summary per 16 tokens (Kinetics)
KINETICS_INTENSITY = 562.5      # FLOP per byte: B200 4.5 PFLOP/s / 8 TB/s (Kinetics)

BOTTLENECKS = ("compute", "memory", "interconnect", "overhead")

INPUT_COLUMNS = ("model", "hardware", "devices", "batch", "concurrency", "prompt_len", "gen_len",
                 "samples", "weight_dtype", "act_dtype", "kv_dtype", "kv_budget", "prefix_sharing",
                 "arrival", "rate", "token_budget", "max_running", "chunked", "mixed", "host_step_s")
# serving columns (planner.cost.serving): their defaults keep the steady-state serving model
# (arrival 0 = steady; the engine profile's facts only matter for closed / poisson arrivals)
INPUT_DEFAULTS = {"arrival": 0, "rate": 0.0, "token_budget": 8192, "max_running": 1 << 30, "chunked": 1,
                  "mixed": 1, "host_step_s": 0.0}


def _touched_experts(n_tokens, E, log_miss):
    """Expected distinct experts hit by n tokens each routing top-k of E uniformly:
    E * (1 - (1 - k/E)^n). Dense models (E = 0) touch none."""
    return E * (1.0 - np.exp(n_tokens * log_miss))


def _roof(x: Ctx, tc, tm):
    """Time of a kernel class from its compute and memory times: the roofline's max when
    they overlap (overlap = 1), their sum when they serialize (overlap = 0). Returns the
    time and its compute and memory parts (they add up to the time)."""
    ov = x.H["overlap"]
    top = np.maximum(tc, tm)
    c_part = ov * np.where(tc >= tm, tc, 0.0) + (1.0 - ov) * tc
    m_part = ov * np.where(tc >= tm, 0.0, tm) + (1.0 - ov) * tm
    return ov * top + (1.0 - ov) * (tc + tm), c_part, m_part


def _linear(x: Ctx, n_tok, passes, logit_tokens, head_passes=1.0):
    """Time of the dense kernels for ``n_tok`` tokens in ``passes`` forward passes.

    Three rooflines, since these kernels run one after another and do not hide each
    other: the layers' GEMMs; the LM head, only for the ``logit_tokens`` positions that
    need logits, in ``head_passes`` calls (in a prefill a memory-bound GEMV); and the
    elementwise kernels (norms, residuals, activation), whose activation traffic is pure
    memory time."""
    M, t = x.M, x.t
    head = M["lm_head"]
    rows = n_tok / passes  # tokens per GEMM: skinny GEMMs run below the curve
    F_body = 2.0 * (M["matmul_active"] - head) * n_tok / t
    w_params = (M["read_fixed"] - head
                + _touched_experts(rows, M["num_experts"], M["log_miss"]) * M["expert_params_per"])
    Bw_body = w_params * x.wb * passes / t
    n_body = GEMMS_PER_LAYER * M["layers"]
    tc = (F_body * x.rows_factor(rows) + passes * n_body * x.whalf_c) * x.fx
    tm = (Bw_body + passes * n_body * x.H["mem_whalf"]) * x.bx
    t_body, c_body, m_body = _roof(x, tc, tm)
    F_head = 2.0 * head * logit_tokens / t
    Bw_head = head * x.wb * head_passes / t
    tc = (F_head * x.rows_factor(logit_tokens / head_passes) + head_passes * x.whalf_c) * x.fx
    tm = (Bw_head + head_passes * x.H["mem_whalf"]) * x.bx
    t_head, c_head, m_head = _roof(x, tc, tm)
    Ba = M["act_elems"] * n_tok * x.ab / t
    t_act = (Ba + passes * (KERNELS_PER_LAYER - GEMMS_PER_LAYER) * M["layers"] * x.H["mem_whalf"]) * x.bx
    return (t_body + t_head + t_act, c_body + c_head, m_body + m_head + t_act, F_body + F_head,
            Bw_body + Bw_head, Ba)


def _scaled(x: Ctx, phase: dict) -> dict:
    """A phase's times times the calibrated end-to-end scale (1 without calibration)."""
    s = x.H["time_scale"]
    for key in ("time", "t_compute", "t_memory", "t_comm", "t_ovh"):
        phase[key] = phase[key] * s
    return phase


def _allreduce(x: Ctx, n_tok, passes):
    """Two ring all-reduces per layer of the hidden states, per pass."""
    t = x.t
    bytes_per = n_tok / passes * x.M["hidden"] * x.ab
    ring = 2.0 * (t - 1.0) / t
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(t > 1, ring * bytes_per / x.H["link_bw"] + 2.0 * (t - 1.0) * x.H["link_lat"], 0.0)
    return 2.0 * x.M["layers"] * passes * per


def _prefill(x: Ctx, n_prompts, P):
    """Static prefill of ``n_prompts`` prompts of ``P`` tokens (chunked)."""
    M = x.M
    n_tok = n_prompts * P
    passes = np.maximum(np.ceil(n_tok / PREFILL_CHUNK_TOKENS), 1.0)
    t_lin, lin_c, lin_m, F_lin, Bw, Ba = _linear(x, n_tok, passes, n_prompts, np.minimum(passes, n_prompts))
    # causal attention: sum over positions of min(position, window) per layer
    ctx = M["global_layers"] * P * (P + 1.0) * 0.5 + M["sliding_layers"] * sum_min(1.0, P + 1.0, M["window"])
    F_att = n_prompts * M["attn_pre"] * ctx / x.t
    B_att = 2.0 * n_tok * x.kvb * M["layers"] / x.kv_shard  # KV written, then read by the kernel
    ta_c = (F_att + passes * M["layers"] * x.awhalf) * x.ax
    ta_m = (B_att + passes * M["layers"] * x.H["mem_whalf"]) * x.bx
    t_att, att_c, att_m = _roof(x, ta_c, ta_m)
    t_comm = _allreduce(x, n_tok, passes)
    t_ovh = passes * x.n_kern * x.H["overhead_s"]
    total = t_lin + t_att + t_comm + t_ovh
    return _scaled(x, {
        "time": total, "F_lin": F_lin, "F_att": F_att, "B_w": Bw, "B_a": Ba, "B_kv": B_att,
        "t_compute": lin_c + att_c, "t_memory": lin_m + att_m, "t_comm": t_comm, "t_ovh": t_ovh,
    })


def _attention_coeffs(x: Ctx, S, n_req, share):
    """Per-step decode attention as f0 + f_g*min(c,cap_g) + f_s*min(c,cap_s) + f_u*c
    for FLOPs (f) and bytes (g), per device; prompt KV shared across samples if ``share``."""
    M, t = x.M, x.t
    ng, ns = M["global_layers"], M["sliding_layers"]
    per_seq_flop = M["attn_dec"] / t
    f_g = S * ng * per_seq_flop
    f_s = S * ns * per_seq_flop
    kvb = x.kvb / x.kv_shard
    dense_share = share & ~x.sparse
    # shared prompt (dense, global layers): the prompt's P tokens are read once per request
    g_g = S * ng * kvb
    g_s = S * ns * kvb
    g0_share = np.where(dense_share, (n_req - S) * ng * kvb, 0.0)  # times P, added by caller
    # block top-k selection (sparse only): key summaries, one per block, half of K+V
    sel = np.where(x.sparse, 1.0, 0.0) / SPARSE_BLOCK_TOKENS
    f_u = sel * S * ng * 0.5 * per_seq_flop
    g_u = sel * S * ng * 0.5 * kvb
    g0_sel = np.where(share, (n_req - S), 0.0) * sel * ng * 0.5 * kvb  # times P
    return f_g, f_s, f_u, g_g, g_s, g_u, g0_share, g0_sel


def _decode_static(x: Ctx, S, n_req, share, P, G):
    """Sum of G decode steps at contexts P..P+G-1 for S sequences (closed form)."""
    M = x.M
    t_lin, lin_c, lin_m, F_lin, Bw, Ba = _linear(x, S, 1.0, S)
    f_g, f_s, f_u, g_g, g_s, g_u, g0_share, g0_sel = _attention_coeffs(x, S, n_req, share)
    L = M["layers"]
    fx, bx = x.ax, x.bx_att
    f0 = L * x.awhalf * fx
    g0 = (P * g0_share + L * x.H["mem_whalf"]) * bx
    lo, hi = P, P + G
    sf1, sg1 = piecewise_max_sum(f0, f_g * fx, f_s * fx, g0, g_g * bx, g_s * bx, lo, hi, x.cap_g, x.cap_s)
    # block top-k selection is a kernel of its own (scoring one key summary per block):
    # its own roofline, max of two lines in c, summed in closed form
    sel_c, sel_m = sum_max_linear(0.0, f_u * fx, P * g0_sel * bx, g_u * bx, lo, hi)
    sum_c, sum_g, sum_s = x.decode_sums(P, G)
    F_att = f_g * sum_g + f_s * sum_s
    F_sel = f_u * sum_c
    B_kv = g_g * sum_g + g_s * sum_s + G * P * g0_share
    B_sel = g_u * sum_c + G * P * g0_sel
    # overlap < 1: part of the max becomes the sum of compute and memory times
    ov = x.H["overlap"]
    sum_f = G * f0 + F_att * fx + F_sel * fx
    sum_m = G * g0 + (B_kv - G * P * g0_share) * bx + B_sel * bx
    att_c = ov * (sf1 + sel_c) + (1.0 - ov) * sum_f
    att_m = ov * (sg1 + sel_m) + (1.0 - ov) * sum_m
    t_comm = G * _allreduce(x, S, 1.0)
    t_ovh = G * x.n_kern * x.H["overhead_s"]
    total = G * t_lin + att_c + att_m + t_comm + t_ovh
    return _scaled(x, {
        "time": total, "F_lin": G * F_lin, "F_att": F_att, "F_sel": F_sel,
        "B_w": G * Bw, "B_a": G * Ba, "B_kv": B_kv, "B_sel": B_sel,
        "t_compute": G * lin_c + att_c, "t_memory": G * lin_m + att_m,
        "t_comm": t_comm, "t_ovh": t_ovh,
    })


CHUNK_ROWS = 1 << 14  # rows per block: keeps the temporaries in cache


def evaluate(cols: dict, mt: ModelTable, ht: HardwareTable, threads: int | None = None,
             precision: str = "float64") -> dict:
    """Evaluate every configuration row (in cache-sized blocks, on ``threads`` threads;
    numpy releases the GIL inside its array operations). See :func:`evaluate_block`.

    ``precision="float32"`` halves memory traffic for large searches; results agree with
    float64 to about 1e-5 relative (a test checks it)."""
    n = len(next(iter(cols.values())))
    if n <= CHUNK_ROWS:
        return evaluate_block(cols, mt, ht, precision)
    starts = range(0, n, CHUNK_ROWS)
    blocks = [{k: v[s:s + CHUNK_ROWS] for k, v in cols.items()} for s in starts]
    workers = threads or min(4, os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda b: evaluate_block(b, mt, ht, precision), blocks))
    else:
        parts = [evaluate_block(b, mt, ht, precision) for b in blocks]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def evaluate_block(cols: dict, mt: ModelTable, ht: HardwareTable, precision: str = "float64") -> dict:
    """Evaluate every configuration row. ``cols`` holds the INPUT_COLUMNS as arrays (dtype
    columns as integer codes of planner.dtypes.DTYPES; model/hardware as table indices).
    Returns a dict of arrays; times in s, bytes per device, FLOPs/bytes by kind for the
    whole run across devices, energy and dollars per request."""
    dt = np.dtype(precision).type
    x = Ctx(cols, mt, ht, dt)
    x.cols = cols  # the serving columns, read by planner.cost.serving
    f = lambda k: np.asarray(cols[k], dtype=dt)  # noqa: E731
    B, C, P, G, k = f("batch"), f("concurrency"), f("prompt_len"), f("gen_len"), f("samples")
    share = np.asarray(cols["prefix_sharing"], dtype=bool)
    serving = C > 0
    out: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):  # rows a device cannot run give NaN and fits=False
        _evaluate_modes(out, x, B, C, P, G, k, share, serving)
    return out


def _evaluate_modes(out, x, B, C, P, G, k, share, serving):
    if (~serving).any():
        _static_into(out, x, B, k, P, G, share)
    if serving.any():
        from planner.cost.serving import serving_into

        serving_into(out, x, C, k, P, G, share)
    if serving.any() and (~serving).any():  # both modes present: merge by row
        st, sv = out.pop("_static"), out.pop("_serving")
        out["unbounded"] = serving & sv.pop("unbounded")
        for key in st:
            out[key] = np.where(serving, sv[key], st[key])
    else:
        out.update(out.pop("_static", {}) or out.pop("_serving"))
        out.setdefault("unbounded", np.zeros(len(C), dtype=bool))
    # kinetics figure (the paper's counting conventions)
    from planner.cost.kinetics import kinetics

    out.update(kinetics(x, P, G, k, share))


def _assemble(x, per, seconds, pre, dec, latency, ttft, tpot, throughput, mem):
    """Collect outputs. ``seconds`` is the wall time the device group spends, ``pre``/``dec``
    hold per-device work over that time, and ``per`` requests share it."""
    weights, kv, acts, reserve, total, capacity = mem
    t = x.t
    Fl = pre["F_lin"] + dec["F_lin"]
    Fa = pre["F_att"] + dec["F_att"]
    Fs = dec["F_sel"]
    Bw = pre["B_w"] + dec["B_w"]
    Bk = pre["B_kv"] + dec["B_kv"]
    Ba = pre["B_a"] + dec["B_a"]
    Bs = dec["B_sel"]
    energy, usd = energy_cost(x, seconds, Fl + Fa + Fs, Bw + Bk + Ba + Bs)
    times = np.stack([pre["t_compute"] + dec["t_compute"], pre["t_memory"] + dec["t_memory"],
                      pre["t_comm"] + dec["t_comm"], pre["t_ovh"] + dec["t_ovh"]])
    tp = t / per  # per-device work -> per-request work across the device group
    return {
        "prefill_s": pre["time"], "decode_s": dec["time"], "ttft_s": ttft, "tpot_s": tpot,
        "latency_s": latency, "throughput_tok_s": throughput,
        "energy_j": energy / per, "cost_usd": usd / per, "device_seconds": t * seconds / per,
        "flops_linear": Fl * tp, "flops_attention": Fa * tp, "flops_selection": Fs * tp,
        "bytes_weights": Bw * tp, "bytes_kv": Bk * tp, "bytes_activations": Ba * tp, "bytes_selection": Bs * tp,
        "t_compute": times[0], "t_memory": times[1], "t_interconnect": times[2], "t_overhead": times[3],
        "bottleneck": np.argmax(times, axis=0).astype(np.int8),
        "weights_bytes": weights, "kv_cache_bytes": kv, "activations_bytes": acts,
        "reserve_bytes": reserve, "total_bytes": total, "capacity_bytes": capacity,
        "fits": (total <= capacity) & np.isfinite(x.peak),
    }


def _static_into(out, x, B, k, P, G, share):
    """A static batch: B requests (k samples each) prefilled together, then decoded together."""
    S = B * k
    n_prompts = np.where(share, B, S)
    pre = _prefill(x, n_prompts, P)
    dec = _decode_static(x, S, B, share, P, G)
    pre["F_sel"] = pre["B_sel"] = 0.0
    latency = pre["time"] + dec["time"]
    mem = memory_footprint(x, B, k, P, G, share, n_prompts * P)
    out["_static"] = _assemble(x, B, latency, pre, dec, latency, pre["time"],
                               dec["time"] / np.maximum(G, 1.0), S * G / latency, mem)
