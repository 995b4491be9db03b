"""Measured rows that their stated deployment cannot produce on the datasheet.

A measured row says: this model, at this precision, on these devices in this layout, at
these lengths and this many requests in flight, measured this TTFT and TPOT. Some rows
are faster than that deployment can physically be (a prefix cache the benchmark hit,
shorter prompts than written, speculative decoding the row does not record, a layout
column that means something else). Such a row is still predicted and scored, but a fit
must not read it (planner.serving_fit), and a user replaying their benchmarks is told.

Every test here is a STRICT lower bound on the work, against the datasheet (never a
fitted efficiency), so a row a real deployment could produce is never flagged:

* ``weights-exceed-memory`` (:func:`weights_per_device_bytes`): the weights cannot be
  stored in fewer bytes per device than the attention weights over the ``tp x pp``
  devices of one attention group plus all other weights over every device of the
  instance (``tp x pp x attention_dp``), each at the weight dtype's bits (planner.dtypes
  BITS: the narrowest part of a checkpoint; 16-bit embeddings or heads only add). The
  device memory is the datasheet figure read in GiB (2^30 bytes), above what the devices
  expose: ``nvidia-smi`` reports 81,559 MiB (79.6 GiB) on an "80 GB" H100 SXM and 143,771
  MiB (140.4 GiB) on a "141 GB" H200.
* ``prefill-above-peak`` (:func:`request_flops`, :func:`flag_rows`): in a closed loop of
  C requests in flight, Little's law gives C / (TTFT + (osl - 1) TPOT) requests per
  second: the mean end-to-end time of a request is its TTFT plus ``osl - 1`` TPOTs, and
  the benchmark holds C requests at every moment (its fixed concurrency; only the
  ramp-down of a finite run holds fewer, a share of about C / number of requests of the
  run, which the bound ignores). Each request needs at least the matrix
  FLOPs of its tokens (2 x matmul weights per token, top-k experts only, embedding
  lookup excluded, the LM head on the ``osl`` tokens that are sampled) and the causal
  attention FLOPs of its global-attention layers (``isl (isl + 1) / 2`` query-key pairs
  in prefill, ``(osl - 1) isl + osl (osl - 1) / 2`` in decode). Their sum over the
  instance's devices at the datasheet's dense peak must fit in one second per second.
  Disaggregated rows count only the prefill work on the prefill workers, and are
  skipped without worker counts (their deployment is assumed). Rows whose lengths are
  drawn per request (``range_ratio < 1``) are skipped: the mean TPOT times the mean
  output length is then not the mean decode time.
* ``tpot-below-weight-stream`` (:func:`stream_floor_s`): every decode step reads at
  least the attention weights over the ``tp`` devices of the request's attention group,
  and the other always-read weights (dense MLPs, shared experts, routers, LM head) plus
  the top-k routed experts of ONE token per MoE layer over every device of a stage
  (``tp x attention_dp``); pipeline stages run in turn for a token, so ``pp`` does not
  divide. At the datasheet bandwidth that is a floor on the step, and a request gains one
  token per step: TPOT is at least the floor. Rows with speculative decoding
  (``spec_decode_tokens`` > 0) legitimately beat it and are not tested.
* ``decode-memory-above-bandwidth`` (:func:`flag_rows`): the same closed loop, in memory
  traffic. Each of the C client slots runs its requests one after another, each needing
  ``osl - 1`` decode steps, so every device steps at least ``(osl - 1) / (TTFT + (osl - 1)
  TPOT)`` times a second (an instance's attention groups step together for their MoE
  layers), each step reading its share of the step's weights (the floor above, over the
  ``pp`` stages); and every decode token reads the KV cache of its context once (its
  ``isl + j`` tokens in every global-attention layer, at the row's KV dtype), spread at
  best over all the instance's devices. Their sum per device must fit in the datasheet
  bandwidth. A disaggregated row does it on its decode workers (each holds
  ``decode_batch_size`` of the clients, so each steps as often; the KV reads spread over
  all decode devices), and is skipped without worker counts; speculative and drawn-length
  rows are skipped (a draft, the mean decode time are then not known).

:func:`flag_rows` is the pure, vectorized test; :func:`row_flags` gathers its columns
from a prepared replay (planner.replay.Prepared) and the catalog and words each reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHTS = "weights-exceed-memory"
PREFILL = "prefill-above-peak"
STREAM = "tpot-below-weight-stream"
MEMORY = "decode-memory-above-bandwidth"
REASONS = (WEIGHTS, PREFILL, STREAM, MEMORY)
GIB = float(2 ** 30)  # the datasheet's "GB" read as GiB: above the memory the device exposes


def weights_per_device_bytes(total_bytes, attention_bytes, tp, attention_dp, pp):
    """Fewest weight bytes one device can hold: ``A / (tp pp) + (W - A) / (tp pp dp)``,
    the attention weights ``A`` whole on every attention group of ``tp x pp`` devices, the
    rest of the weights ``W`` spread over all ``tp x pp x attention_dp`` devices."""
    group = np.asarray(tp, dtype=float) * np.asarray(pp, dtype=float)
    return attention_bytes / group + (total_bytes - attention_bytes) / (group * attention_dp)


def request_flops(isl, osl, body_flops_per_token, head_flops_per_token, attn_flops_per_pair, decode_attn_per_pair,
                  prefill_only):
    """Fewest FLOPs one request needs: prefill ``body x isl + head + a_p isl (isl + 1) / 2``
    and, unless ``prefill_only``, decode ``(osl - 1) (body + head) + a_d ((osl - 1) isl +
    osl (osl - 1) / 2)`` (``body``: 2 x matmul weights of a token through the layers,
    top-k experts; ``head``: 2 x the LM head; ``a_p`` / ``a_d``: attention FLOPs per
    query-key pair over the global-attention layers, planner.params ``attn_flops_per_ctx_*``)."""
    isl, osl = np.asarray(isl, dtype=float), np.asarray(osl, dtype=float)
    prefill = body_flops_per_token * isl + head_flops_per_token + attn_flops_per_pair * isl * (isl + 1.0) / 2.0
    d = np.maximum(osl - 1.0, 0.0)
    decode = d * (body_flops_per_token + head_flops_per_token) + decode_attn_per_pair * decode_pairs(isl, osl)
    return prefill + np.where(prefill_only, 0.0, decode)


def decode_pairs(isl, osl):
    """Query-key pairs of one request's decode: its ``osl - 1`` decode tokens at contexts
    ``isl + 1 .. isl + osl - 1``: ``(osl - 1) isl + osl (osl - 1) / 2``."""
    isl, osl = np.asarray(isl, dtype=float), np.asarray(osl, dtype=float)
    d = np.maximum(osl - 1.0, 0.0)
    return d * isl + osl * d / 2.0


def stream_floor_s(attention_bytes, other_bytes, tp, attention_dp, bandwidth_bytes_per_s):
    """Shortest decode step: ``(A / tp + R / (tp dp)) / B``, with ``A`` the attention weights
    (read by the request's attention group), ``R`` the other always-read weights and one
    token's top-k experts, ``B`` the datasheet memory bandwidth of one device."""
    tp = np.asarray(tp, dtype=float)
    return (attention_bytes / tp + other_bytes / (tp * attention_dp)) / bandwidth_bytes_per_s


def flag_rows(*, ttft_s, tpot_s, osl, in_flight, weight_bytes_per_device, memory_bytes, flops_per_request,
              compute_devices, peak_flops_per_s, tpot_floor_s, test_rate, test_stream, step_bytes_per_device=0.0,
              kv_bytes_per_request=0.0, bandwidth_bytes_per_s=np.inf, test_memory=False, memory_devices=None) -> dict:
    """Per reason (:data:`REASONS`), the rows the datasheet rules out, and the implied
    figures: ``need_flops_per_s`` = ``C / (TTFT + (osl - 1) TPOT) x flops_per_request``
    over the deployment, against ``peak_flops_per_s x compute_devices``; per device
    ``need_bytes_per_s`` = ``(osl - 1) / cycle x step_bytes_per_device + C / cycle x
    kv_bytes_per_request / memory_devices`` (default: the compute devices) against
    ``bandwidth_bytes_per_s``. NaN measurements (a row predicted only) flag nothing."""
    osl = np.asarray(osl, dtype=float)
    memory_devices = compute_devices if memory_devices is None else memory_devices
    with np.errstate(divide="ignore", invalid="ignore"):
        cycle_s = ttft_s + np.maximum(osl - 1.0, 0.0) * tpot_s
        per_s = np.where(cycle_s > 0, 1.0 / cycle_s, np.nan)
        need = in_flight * per_s * flops_per_request
        need_bytes = (np.maximum(osl - 1.0, 0.0) * per_s * step_bytes_per_device
                      + in_flight * per_s * kv_bytes_per_request / memory_devices)
    have = peak_flops_per_s * compute_devices
    return {WEIGHTS: np.asarray(weight_bytes_per_device > memory_bytes),
            PREFILL: np.asarray(test_rate & (need > have)),
            STREAM: np.asarray(test_stream & (tpot_s < tpot_floor_s)),
            MEMORY: np.asarray(test_memory & (need_bytes > bandwidth_bytes_per_s)),
            "need_flops_per_s": need, "peak_flops_per_s": have, "need_bytes_per_s": need_bytes}


@dataclass
class Plausibility:
    """What :func:`row_flags` found: the masks and figures of :func:`flag_rows` (full
    length, False / NaN on rows not predicted) and each row's worded reasons."""
    masks: dict
    flags: list               # per row: list of "<reason>: <why>" strings
    weight_bytes_per_device: np.ndarray
    tpot_floor_s: np.ndarray

    @property
    def flagged(self) -> np.ndarray:
        return np.logical_or.reduce([self.masks[r] for r in REASONS])


def _model_facts(name: str) -> dict:
    from planner.catalog import load_model
    from planner.params import attention_params, count

    m = load_model(name)
    c = count(m)
    head = float(m.vocab_size * m.hidden_size)
    attn = attention_params(m)
    return {"total": c.total_params, "attention": attn, "head": head,
            "body": c.matmul_params_active - head,  # matmul weights a token meets in the layers (top-k experts)
            "other_read": c.read_params_fixed - attn + c.num_moe_layers * c.experts_per_token * c.expert_params,
            "a_p": c.attn_flops_per_ctx_prefill * c.num_global_layers,
            "a_d": c.attn_flops_per_ctx_decode * c.num_global_layers,
            "kv_elems": c.kv_elems_per_token_layer * c.num_global_layers}  # one token's KV, global layers


def row_flags(prep) -> Plausibility:
    """The datasheet test of every predictable row of a prepared replay (its layout as the
    replay reads it, planner.replay_rows / planner.measured_layouts), worded for the user."""
    from planner.dtypes import BITS, DTYPES

    runs, n, idx = prep.runs, len(prep.runs), prep.idx
    masks = {r: np.zeros(n, dtype=bool) for r in REASONS}
    masks.update(need_flops_per_s=np.full(n, np.nan), peak_flops_per_s=np.full(n, np.nan),
                 need_bytes_per_s=np.full(n, np.nan))
    w_dev, floor = np.full(n, np.nan), np.full(n, np.nan)
    flags = [[] for _ in range(n)]
    if not idx.size:
        return Plausibility(masks, flags, w_dev, floor)
    facts = {m: _model_facts(m) for m in set(prep.model[idx].tolist())}
    f = {k: np.array([facts[m][k] for m in prep.model[idx]]) for k in next(iter(facts.values()))}
    hws = [prep.hw[g] for g in prep.group[idx]]
    name = lambda key: [DTYPES[c] for c in prep.cols[key].tolist()]  # noqa: E731 (engine codes -> dtype names)
    wdt, adt, kdt = name("weight_dtype"), name("act_dtype"), name("kv_dtype")
    wb = np.array([BITS[d] / 8.0 for d in wdt])
    # the fastest dense peak the row's GEMMs and attention could use: its compute and KV dtypes, and fp8
    # where the weights are 8 bits or fewer and the device has fp8 (a 4-bit checkpoint's 8-bit parts)
    peak = np.array([max(h.peak_flops(a), h.peak_flops(k) if h.has_dtype(k) else 0.0,
                         h.peak_flops("fp8") if BITS[w] <= 8 and h.has_dtype("fp8") else 0.0)
                     for h, w, a, k in zip(hws, wdt, adt, kdt)])
    mem = np.array([h.memory_gb * GIB for h in hws])
    bw = np.array([h.mem_bandwidth_gbps * 1e9 for h in hws])
    dis = prep.dis
    tp, dp = prep.cols["devices"].astype(float), prep.cols["attn_dp"].astype(float)
    pp = np.where(dis, 1.0, prep.pp)
    dec_tp, dec_dp = tp.copy(), dp.copy()
    comp = tp * dp * pp
    w_store = weights_per_device_bytes(f["total"] * wb, f["attention"] * wb, tp, dp, pp)
    counted = np.zeros(idx.size, dtype=bool)
    mem_devices = comp.copy()  # the devices the decode's KV reads spread over
    if dis.any():
        side = prep.sides
        p_tp, p_dp = side["prefill"]["devices"].astype(float), side["prefill"]["attn_dp"].astype(float)
        d_tp, d_dp = side["decode"]["devices"].astype(float), side["decode"]["attn_dp"].astype(float)
        dec_tp[dis], dec_dp[dis] = d_tp, d_dp
        w_store[dis] = np.maximum(weights_per_device_bytes(f["total"][dis] * wb[dis], f["attention"][dis] * wb[dis],
                                                           p_tp, p_dp, 1.0),
                                  weights_per_device_bytes(f["total"][dis] * wb[dis], f["attention"][dis] * wb[dis],
                                                           d_tp, d_dp, 1.0))
        workers = prep.workers["prefill"]
        counted[dis] = np.isfinite(workers)
        comp[dis] = p_tp * p_dp * np.where(np.isfinite(workers), workers, 1.0)
        dec_workers = prep.workers["decode"]
        mem_devices[dis] = d_tp * d_dp * np.where(np.isfinite(dec_workers), dec_workers, 1.0)
    spread = runs.range_ratio[idx] < 1.0
    flops = request_flops(prep.isl, prep.osl, 2.0 * f["body"], 2.0 * f["head"], f["a_p"], f["a_d"], dis)
    fl = stream_floor_s(f["attention"] * wb, f["other_read"] * wb, dec_tp, dec_dp, bw)
    kvb = np.array([BITS[d] / 8.0 for d in kdt])
    spec = runs.spec_tokens[idx] > 0
    got = flag_rows(ttft_s=runs.measured_ttft_s[idx], tpot_s=runs.measured_tpot_s[idx], osl=prep.osl,
                    in_flight=prep.C.astype(float), weight_bytes_per_device=w_store, memory_bytes=mem,
                    flops_per_request=flops, compute_devices=comp, peak_flops_per_s=peak, tpot_floor_s=fl,
                    test_rate=(~dis | counted) & ~spread, test_stream=~spec,
                    step_bytes_per_device=fl * bw / pp, bandwidth_bytes_per_s=bw,
                    kv_bytes_per_request=decode_pairs(prep.isl, prep.osl) * f["kv_elems"] * kvb,
                    test_memory=(~dis | counted) & ~spread & ~spec, memory_devices=mem_devices)
    for key, v in got.items():
        masks[key][idx] = v
    w_dev[idx], floor[idx] = w_store, fl
    for j in np.flatnonzero(np.logical_or.reduce([got[r] for r in REASONS])):
        i, h = idx[j], hws[j]
        if got[WEIGHTS][j]:
            flags[i].append(f"{WEIGHTS}: at least {w_store[j] / 1e9:.0f} GB of {wdt[j]} weights per device, "
                            f"{h.name} holds {h.memory_gb:g} GB: the layout as written cannot hold the model")
        if got[PREFILL][j]:
            flags[i].append(f"{PREFILL}: measured faster than {comp[j]:.0f} x {h.name} can serve it as written "
                            f"(needs {got['need_flops_per_s'][j] / 1e15:.2f} PFLOP/s, datasheet "
                            f"{got['peak_flops_per_s'][j] / 1e15:.2f}): prefix caching? shorter prompts?")
        if got[STREAM][j]:
            flags[i].append(f"{STREAM}: TPOT {runs.measured_tpot_s[i] * 1e3:.3g} ms below the "
                            f"{fl[j] * 1e3:.3g} ms one decode step needs to read its weights on "
                            f"{dec_tp[j] * dec_dp[j]:.0f} x {h.name} at the datasheet bandwidth: speculative "
                            "decoding (MTP)? smaller weights?")
        if got[MEMORY][j]:
            flags[i].append(f"{MEMORY}: the decode steps and KV reads the measured times imply need "
                            f"{got['need_bytes_per_s'][j] / 1e12:.2f} TB/s per device, {h.name}'s datasheet "
                            f"{bw[j] / 1e12:.2f} ({kdt[j]} KV cache): a KV cache in fewer bits? prefix caching? "
                            "shorter prompts or outputs?")
    return Plausibility(masks, flags, w_dev, floor)
