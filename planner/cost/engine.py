"""The cost engine: one row per configuration, every quantity an array (or, for one
configuration through the API, a Python float: :mod:`planner.cost.ops`).

A row is a static batch (``concurrency`` 0: ``batch`` requests prefilled together, then
decoded together) or a serving row (``concurrency`` C > 0: continuous batching with C
requests in flight, under an arrival pattern: :mod:`planner.cost.serving`). The kernel
classes and phases of a forward pass live in :mod:`planner.cost.passes`; the Kinetics
figure in :mod:`planner.cost.kinetics`. Nothing loops over rows.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from planner.cost.context import Ctx
from planner.cost.footprint import memory_footprint
from planner.cost.kinetics import kinetics
from planner.cost.passes import REPORT_KEYS, assemble, decode_phase, prefill_phase
from planner.cost.serving import serving_into
from planner.cost.tables import HardwareTable, ModelTable

INPUT_COLUMNS = ("model", "hardware", "devices", "batch", "concurrency", "prompt_len", "gen_len",
                 "samples", "weight_dtype", "act_dtype", "kv_dtype", "kv_budget", "prefix_sharing",
                 "arrival", "rate", "token_budget", "max_running", "chunked", "mixed", "host_step_s", "host_request_s",
                 "wave_sync", "request_overhead_s", "request_overhead_s_per_kernel", "ep", "attn_dp", "kv_reserve",
                 "kv_fraction", "kv_of_free", "dp_rank_budget", "range_ratio", "spec_tokens", "spec_accept",
                 "adp_balance_iters", "recv_interval", "cascade", "cascade_min_prompt", "cascade_min_seqs")
# serving columns (planner.cost.serving): their defaults keep the steady-state serving model
# (arrival 0 = steady; the engine profile's facts only matter for closed / poisson arrivals;
# wave_sync and request_overhead_s are a serving profile's fitted parameters: closed loops only)
INPUT_DEFAULTS = {"arrival": 0, "rate": 0.0, "token_budget": 8192, "max_running": 1 << 30, "chunked": 1,
                  "mixed": 1, "host_step_s": 0.0, "host_request_s": 0.0, "wave_sync": 1.0, "request_overhead_s": 0.0,
                  "request_overhead_s_per_kernel": 0.0,
                  "ep": 1, "attn_dp": 1, "kv_reserve": -1.0,
                  "kv_fraction": -1.0, "kv_of_free": 0.0, "dp_rank_budget": 0, "range_ratio": 1.0,
                  "spec_tokens": 0, "spec_accept": 0.0, "adp_balance_iters": 0,
                  "recv_interval": 1, "cascade": 2, "cascade_min_prompt": 0, "cascade_min_seqs": 0}
ATTENTION_COLUMNS = ("cascade", "cascade_min_prompt", "cascade_min_seqs")
# cascade, cascade_min_prompt, cascade_min_seqs: when a prompt shared by several sequences is read
# once a step (EngineProfile.attention_columns, planner.cost.passes.prompt_read_once); the default,
# each request's samples share the read, is the generic engine's (engines/generic.yaml)
# recv_interval: the decode iterations between the scheduler's polls for new requests (SGLang
# --scheduler-recv-interval; 1: every iteration; planner.cost.waves.recv_wait_steps)
# adp_balance_iters: the engine's attention-DP balancer timeout in iterations (0: none;
# planner.engine_profiles adp_balance_timeout_iters, planner.cost.adp_balance.adp_balance_wait_steps)
# spec_tokens, spec_accept: speculative decoding (MTP) drafts per step and their per-position
# acceptance (planner.cost.spec_decode; 0 drafts = plain decoding)
# range_ratio: the closed-loop benchmark draws each request's lengths from [r L, L]
# (1 = fixed lengths; planner.cost.waves.in_step_share, planner.measured)
# ep: expert-parallel groups (whole experts each); attn_dp: attention data-parallel groups
# of ``devices`` devices each, the experts spread over devices x attn_dp
# (planner.cost.expert_parallel); 1, 1 = tensor parallelism alone
# kv_reserve: the engine's kv_reserve_output (planner.engine_profiles): with the free KV
# memory it caps the requests running at once in the closed loop; < 0: no KV cap (the
# engine's running limit only: what estimate, the simulator and capacity use today);
# kv_fraction, kv_of_free: the engine's KV memory fraction and its basis
# (EngineProfile.kv_columns, planner.cost.footprint.kv_pool_bytes; -1: the runtime reserve)

CHUNK_ROWS = 1 << 15  # rows per block: fewer blocks than 1 << 14, less per-block overhead (Round 14 (S5))


def evaluate(cols: dict, mt: ModelTable, ht: HardwareTable, threads: int | None = None,
             precision: str = "float64", outputs=None) -> dict:
    """Evaluate every configuration row (in cache-sized blocks, on ``threads`` threads;
    numpy releases the GIL inside its array operations). See :func:`evaluate_block`.

    ``precision="float32"`` halves memory traffic for large searches; results agree with
    float64 to about 1e-5 relative (a test checks it). ``outputs``: the output columns
    wanted (default: all); the others are not gathered from the blocks (and the Kinetics
    figure not computed unless asked for)."""
    n = len(next(iter(cols.values())))
    if n <= CHUNK_ROWS:
        out = evaluate_block(cols, mt, ht, precision, outputs)
        return out if outputs is None else {k: out[k] for k in outputs}
    starts = range(0, n, CHUNK_ROWS)
    blocks = [{k: v[s:s + CHUNK_ROWS] for k, v in cols.items()} for s in starts]
    workers = threads or min(4, os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda b: evaluate_block(b, mt, ht, precision, outputs), blocks))
    else:
        parts = [evaluate_block(b, mt, ht, precision, outputs) for b in blocks]
    return {k: np.concatenate([p[k] for p in parts]) for k in (parts[0] if outputs is None else outputs)}


def evaluate_block(cols: dict, mt: ModelTable, ht: HardwareTable, precision: str = "float64",
                   outputs=None) -> dict:
    """Evaluate every configuration row. ``cols`` holds the INPUT_COLUMNS as arrays (dtype
    columns as integer codes of planner.dtypes.DTYPES; model/hardware as table indices).
    Returns a dict of arrays; times in s, bytes per device, FLOPs/bytes by kind for the
    whole run across devices, energy and dollars per request (``outputs``: see
    :func:`evaluate`)."""
    dt = np.dtype(precision).type
    x = Ctx(cols, mt, ht, dt)
    x.cols = cols  # the serving columns, read by planner.cost.serving
    # the static rows skip the per-request work columns when none is asked for (the
    # serving rows compute them all: their later stages read some)
    x.report = outputs is None or any(o in REPORT_KEYS for o in outputs)
    f = lambda k: np.asarray(cols[k], dtype=dt)  # noqa: E731
    batch, C, P, G, k = f("batch"), f("concurrency"), f("prompt_len"), f("gen_len"), f("samples")
    share = np.asarray(cols["prefix_sharing"], dtype=bool)
    serving = C > 0
    out: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):  # rows a device cannot run give NaN and fits=False
        _evaluate_modes(out, x, batch, C, P, G, k, share, serving,
                        kinetics_too=outputs is None or any(o.startswith("kinetics") for o in outputs))
    return out


def evaluate_one(config: dict, mt: ModelTable, ht: HardwareTable) -> dict:
    """One configuration on Python floats (the API's fast path): the same functions as
    :func:`evaluate_block` through the scalar namespace; ``config`` holds the
    INPUT_COLUMNS as scalars (dtype codes, table indices). Assumes a validated row."""
    x = Ctx.one(config, mt, ht)
    C = float(config["concurrency"])
    out: dict = {}
    _evaluate_modes(out, x, float(config["batch"]), C, float(config["prompt_len"]), float(config["gen_len"]),
                    float(config["samples"]), bool(config["prefix_sharing"]), C > 0)
    return out


def _evaluate_modes(out, x, batch, C, P, G, k, share, serving, kinetics_too=True):
    """Static-batch rows (C = 0) and serving rows (C > 0, continuous batching at
    concurrency C), merged by row; then the Kinetics figure."""
    xp = x.xp
    static = xp.logical_not(serving)
    if xp.any(static):
        _static_into(out, x, batch, k, P, G, share)
    if xp.any(serving):
        serving_into(out, x, C, k, P, G, share)
    if xp.any(serving) and xp.any(static):  # both modes present: merge by row
        st, sv = out.pop("_static"), out.pop("_serving")
        out["unbounded"] = serving & sv.pop("unbounded")
        for key in st:
            out[key] = np.where(serving, sv[key], st[key])
    else:
        out.update(out.pop("_static", {}) or out.pop("_serving"))
        if "unbounded" not in out:
            out["unbounded"] = xp.logical_and(serving, False)
    if kinetics_too:  # the Kinetics figure (the paper's counting conventions)
        out.update(kinetics(x, P, G, k, share))


def _static_into(out, x, batch, k, P, G, share):
    """A static batch: ``batch`` requests (k samples each) prefilled together, then
    decoded together: latency = prefill + decode time (s; planner.cost.passes.prefill_phase,
    decode_phase), TTFT = the prefill, TPOT = decode time / G, throughput ``S G / latency``
    tokens/s with ``S = batch k`` sequences (the prompt prefilled once per request with prefix
    sharing, else once per sample). Writes the row's result under ``out["_static"]``."""
    xp = x.xp
    S = batch * k
    n_prompts = xp.where_flags(share, batch, S)
    pre = prefill_phase(x, n_prompts, P)
    dec = decode_phase(x, S, batch, share, P, G)
    pre["F_sel"] = pre["B_sel"] = 0.0
    latency = pre["time"] + dec["time"]
    mem = memory_footprint(x, batch, k, P, G, share, n_prompts * P)
    report = x.report
    tpot = dec["time"] / xp.maximum(G, 1.0) if report else None
    out["_static"] = assemble(x, batch, latency, pre, dec, latency, pre["time"], tpot,
                              S * G / latency if report else None, mem, report)

