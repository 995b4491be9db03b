"""Measured serving runs: the CSV schema ``planner validate --measured`` reads.

The columns are those of NVIDIA aiconfigurator's public silicon sample (repository
ai-dynamo/aiconfigurator, ``silicon_sample.csv``; see README "Measured serving runs").
Required (the header must have them): ``model_path``, ``system``, ``backend``,
``precision``, ``mode``, ``isl``, ``osl``, ``batch_size``, ``tp_size``,
``silicon_ttft_ms``, ``silicon_tpot_ms``. Optional: ``id`` (default ``row-N``),
``pp_size``, ``attention_dp_size``, ``moe_tp_size``, ``moe_ep_size`` (default 1; an empty
or 0 value means "not used" = 1), ``gemm_quant_mode``, ``moe_quant_mode``,
``backend_version``, ``kv_cache_dtype``, ``spec_decode_tokens``, ``scheduler_recv_interval``, and the disaggregated
layout ``prefill_*`` / ``decode_*``. Extra
columns are ignored. A row whose measured columns are empty is predicted only.

The benchmark's total concurrency (requests in flight over the whole deployment) is read
from a ``concurrency`` column when the file has one, else from the
``silicon_concurrency=N`` entry of ``silicon_data_source`` (the sample's provenance
string; on every dev-file disaggregated row with worker counts it equals
``decode_batch_size x decode_num_workers x decode_attention_dp_size``). A disaggregated row
without worker counts is predicted from it (planner.cost.disagg.derive_workers).

Rows are held as columns (numpy arrays), never as a list of objects: the replay hands
them to the vectorized engine as they are. Standard-library ``csv`` reads the file
(1,300 rows in a few ms; pandas would add ~0.3 s of import to every start).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from planner.bounds import MAX_DEVICES, MAX_REQUESTS, MAX_TOKENS, check_range_ratio
from planner.engine_profiles import engine_name
from planner.errors import InputError
from planner.harness import harness_kv_dtype, harness_range_ratio, harness_sets_recv
from planner.safeload import MAX_LOG_BYTES, check_header, read_text

REQUIRED_COLUMNS = ("model_path", "system", "backend", "precision", "mode", "isl", "osl",
                    "batch_size", "tp_size", "silicon_ttft_ms", "silicon_tpot_ms")
LAYOUT_COLUMNS = ("pp_size", "attention_dp_size", "moe_tp_size", "moe_ep_size")
DISAGG_FIELDS = ("batch_size", "num_workers", "tp_size", "pp_size", "attention_dp_size", "moe_tp_size",
                 "moe_ep_size")
MODES = ("agg", "disagg")
# the mode column's spellings -> MODES: aiconfigurator writes agg / disagg; its docs and
# InferenceX's configs also say aggregated / disaggregated. Any other value is that row's
# "unsupported: unknown mode 'X'" (planner.replay), the rest of the file is predicted.
MODE_NAMES = {"agg": "agg", "aggregated": "agg", "disagg": "disagg", "disaggregated": "disagg"}

# precision / gemm_quant_mode -> (weight dtype, activation (compute) dtype, KV dtype).
# fp8 checkpoints (per-tensor or block scales) run fp8 GEMMs; weight-only int4 (int4_wo)
# computes in bf16 (W4A16); fp4/nvfp4/mxfp4 computes in fp4 where the device has fp4
# units (Blackwell) and in bf16 elsewhere (Hopper runs them weight-only): the replay
# resolves "fp4-or-bf16" against the device. KV stays bf16: the engines' default
# kv-cache dtype "auto" is the model's activation dtype (vLLM --kv-cache-dtype,
# SGLang --kv-cache-dtype, TensorRT-LLM kv_cache_config.dtype), and the sample does not
# say otherwise.
FP4_OR_BF16 = "fp4-or-bf16"
PRECISIONS = {
    "": ("bf16", "bf16", "bf16"),
    "bf16": ("bf16", "bf16", "bf16"),
    "fp16": ("fp16", "fp16", "fp16"),
    "fp8": ("fp8", "fp8", "bf16"),
    "fp8_block": ("fp8", "fp8", "bf16"),
    "int8": ("int8", "int8", "bf16"),
    "int4": ("int4", "bf16", "bf16"),
    "int4_wo": ("int4", "bf16", "bf16"),
    "w4a16": ("int4", "bf16", "bf16"),
    "fp4": ("fp4", FP4_OR_BF16, "bf16"),
    "nvfp4": ("fp4", FP4_OR_BF16, "bf16"),
    "mxfp4": ("fp4", FP4_OR_BF16, "bf16"),
    "w4a8_mxfp4_fp8": ("fp4", "fp8", "bf16"),
    # the rest of NVIDIA aiconfigurator's GEMM / MoE quant modes (its common.py,
    # GEMMQuantMode and MoEQuantMode: memory bytes per weight, compute 1 = 16-bit,
    # 2 = 8-bit, 4 = fp4), which its silicon sample's quant columns carry
    "float16": ("fp16", "fp16", "fp16"),
    "bfloat16": ("bf16", "bf16", "bf16"),
    "int8_wo": ("int8", "bf16", "bf16"),          # w8a16
    "sq": ("int8", "int8", "bf16"),               # SmoothQuant w8a8 (int8)
    "fp8_static": ("fp8", "fp8", "bf16"),
    "fp8_ootb": ("fp8", "fp8", "bf16"),
    "w4afp8": ("int4", "fp8", "bf16"),            # int4 weights, fp8 activations
    "w4a16_mxfp4": ("fp4", "bf16", "bf16"),       # gpt-oss's native format, 16-bit math
    "w4a8_mxfp4_mxfp8": ("fp4", "fp8", "bf16"),   # mxfp4 weights, mxfp8 activations
    "w4a8_mxfp4_mxfp8_trtllm": ("fp4", "fp8", "bf16"),
}


@dataclass
class MeasuredRuns:
    """Column arrays, one entry per CSV data row (``line`` = its line in the file)."""

    file: str
    ids: np.ndarray
    line: np.ndarray
    model: np.ndarray
    system: np.ndarray
    engine: np.ndarray
    engine_version: np.ndarray
    precision: np.ndarray          # the precision column ('' -> 'bf16')
    quant: np.ndarray              # gemm_quant_mode, else precision: what the dtypes follow
    mode: np.ndarray
    isl: np.ndarray
    osl: np.ndarray
    concurrency: np.ndarray        # batch_size (requests in flight per worker); 0 on disagg rows
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray                 # attention data parallel
    moe_tp: np.ndarray
    ep: np.ndarray                 # expert parallel
    measured_ttft_s: np.ndarray    # NaN where not measured
    measured_tpot_s: np.ndarray
    total_concurrency: np.ndarray  # requests in flight over the deployment (NaN where the row does not say)
    range_ratio: np.ndarray        # lengths drawn per request from [r L, L] (1: fixed; harness_range_ratio)
    kv_dtype: np.ndarray           # the deployment's KV-cache dtype ("" = the engine's default; kv_cache_dtype)
    spec_tokens: np.ndarray        # speculative (MTP) draft tokens per step (0 = none; SPEC_TOKENS_COLUMN)
    recv_interval: np.ndarray      # iterations between the scheduler's request polls (RECV_INTERVAL_COLUMN; 1: default)
    kv_fp8_on_blackwell: np.ndarray  # bool: the harness's fp4 launch, fp8 KV on Blackwell (resolve_kv_dtype)
    recv_by_harness: np.ndarray    # bool: the harness's poll interval, by device and concurrency (resolve_recv_interval)
    disagg: dict = field(default_factory=dict)  # "prefill_tp_size" -> array (NaN where empty)

    def __len__(self) -> int:
        return len(self.ids)

    def deployments(self) -> np.ndarray:
        """Each row's deployment, as a group number (:func:`group_ids`): rows equal in every fact
        the replay reads (:func:`fact_columns`) but the requests in flight (:data:`IN_FLIGHT`)
        share one. The dev file's README kept "every concurrency of a deployment" together when
        it split the source into a development and a held-out share, so a cross-validation that
        holds out whole deployments (benchmarks/serving_fidelity.py) mirrors that split."""
        return group_ids(fact_columns(self), drop=IN_FLIGHT)

    def take(self, index) -> "MeasuredRuns":
        """The rows at ``index`` (a boolean mask or integer positions)."""
        kw = {k: (v[index] if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()
              if k not in ("disagg",)}
        kw["disagg"] = {k: v[index] for k, v in self.disagg.items()}
        return MeasuredRuns(**kw)


# MeasuredRuns fields that label a row or hold its measurement, not a fact the replay reads
NOT_FACTS = ("file", "ids", "line", "measured_ttft_s", "measured_tpot_s", "disagg")
# the facts that follow a deployment's requests in flight (its sweep), not the deployment: the
# concurrency columns, the sides' batch sizes, and the poll interval the harness sets by
# concurrency (resolve_recv_interval)
IN_FLIGHT = ("concurrency", "total_concurrency", "recv_interval", "prefill_batch_size", "decode_batch_size")


def fact_columns(runs: MeasuredRuns) -> dict[str, np.ndarray]:
    """Every parsed column a replay reads, by name: the fields of MeasuredRuns but the
    labels and the measured times (NOT_FACTS), and each disaggregated column. Taken from
    the dataclass, so a fact added to the reader joins the key by itself."""
    cols = {f.name: getattr(runs, f.name) for f in fields(MeasuredRuns) if f.name not in NOT_FACTS}
    cols.update({k: runs.disagg[k] for k in sorted(runs.disagg)})
    return cols


def group_ids(columns: dict[str, np.ndarray], drop: tuple[str, ...] = ()) -> np.ndarray:
    """A group number per row: rows share one iff they are equal in every column (bar
    ``drop``); NaN equals NaN (an empty cell). Numbered in order of the sorted keys."""
    codes = []
    for name, col in columns.items():
        if name in drop:
            continue
        c = np.asarray(col)
        if c.dtype.kind == "f":
            c = np.where(np.isnan(c), -np.inf, c)  # every value read is >= 0: -inf is "empty"
        codes.append(np.unique(c, return_inverse=True)[1].ravel())
    if not codes:
        return np.zeros(len(next(iter(columns.values()))), dtype=np.int64)
    return np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)[1].ravel().astype(np.int64)


def most_of(column: str) -> int:
    """The largest whole number a count column may hold (planner.bounds): tokens for the
    lengths, devices for a layout's sizes and worker counts, requests for the rest
    (batch sizes, concurrencies, draft tokens). A row beyond is a typing error, not a
    deployment (``isl`` 1e30 was read and scored)."""
    if column in ("isl", "osl"):
        return MAX_TOKENS
    if column.endswith(("_size", "_workers")) and "batch" not in column:
        return MAX_DEVICES
    return MAX_REQUESTS


def _number(text: str | None, file: str, line: int, column: str, *, whole: bool, empty_ok: bool,
            default: float = np.nan, minimum: float = 0.0) -> float:
    t = (text or "").strip()  # None: a short row (fewer cells than the header)
    if not t:
        if empty_ok:
            return default
        raise InputError(f"line {line}: a value is required", file=file, field=column)
    try:
        v = float(t)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise InputError(f"line {line}: must be {kind}", file=file, field=column, value=text) from None
    if not np.isfinite(v) or v < minimum or (whole and v != int(v)):
        kind = f"a whole number >= {minimum:g}" if whole else f"a finite number >= {minimum:g}"
        raise InputError(f"line {line}: must be {kind}", file=file, field=column, value=text)
    if whole and v > most_of(column):
        raise InputError(f"line {line}: must be <= {most_of(column):,}", file=file, field=column, value=text)
    return v


def read_measured(path: str | Path) -> MeasuredRuns:
    """Read and check a measured-runs CSV. Bad input raises one InputError naming the
    file, the line and the column."""
    file = str(path)
    text = read_text(path, MAX_LOG_BYTES)  # a folder, a missing file, not UTF-8: one InputError
    if not text.strip():
        raise InputError("file is empty (expected a CSV header line)", file=file)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = check_header(reader.fieldnames or [], file)
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise InputError(f"line 1: required column is missing (required: {', '.join(REQUIRED_COLUMNS)})",
                             file=file, field=missing[0])
        rows = list(reader)
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=file) from None
    n = len(rows)
    s = {k: [] for k in ("ids", "model", "system", "engine", "engine_version", "precision", "quant", "mode",
                         "kv_dtype")}
    num = {k: np.zeros(n) for k in ("isl", "osl", "concurrency", "tp", "pp", "dp", "moe_tp", "ep",
                                    "measured_ttft_s", "measured_tpot_s", "total_concurrency", "range_ratio",
                                    "spec_tokens", "recv_interval")}
    flags = {k: np.zeros(n, dtype=bool) for k in ("kv_fp8_on_blackwell", "recv_by_harness")}  # harness rules
    engine_names: dict[str, str] = {}  # the backend column's spellings -> the engine (engines/*.yaml aliases)
    dis_cols = [f"{side}_{f}" for side in ("prefill", "decode") for f in DISAGG_FIELDS]
    disagg = {c: np.full(n, np.nan) for c in dis_cols if c in header}
    for i, r in enumerate(rows):
        line = i + 2
        if None in r:  # more cells than the header
            raise InputError(f"line {line}: more cells than the header has columns", file=file)
        get = lambda c: (r.get(c) or "").strip()  # noqa: E731
        mode = MODE_NAMES.get(get("mode").lower(), get("mode"))
        if not mode:
            raise InputError(f"line {line}: a value is required (one of {', '.join(MODES)})", file=file,
                             field="mode")
        for c in ("model_path", "system", "backend"):
            if not get(c):
                raise InputError(f"line {line}: a value is required", file=file, field=c)
        s["ids"].append(get("id") or f"row-{i + 1}")
        s["model"].append(get("model_path"))
        s["system"].append(get("system"))
        s["engine"].append(engine_names.setdefault(get("backend"), engine_name(get("backend"))))
        s["engine_version"].append(get("backend_version"))
        prec = get("precision").lower() or "bf16"
        s["precision"].append(prec)
        s["quant"].append(get("gemm_quant_mode").lower() or prec)
        s["mode"].append(mode)
        kv = kv_cache_dtype(get(KV_DTYPE_COLUMN), get("silicon_data_source"), s["engine"][-1],
                            get("gemm_quant_mode") or get("precision"), file, line)
        s["kv_dtype"].append(kv or "")
        flags["kv_fp8_on_blackwell"][i] = kv is None
        num["isl"][i] = _number(r["isl"], file, line, "isl", whole=True, empty_ok=False, minimum=1)
        num["osl"][i] = _number(r["osl"], file, line, "osl", whole=True, empty_ok=False, minimum=1)
        agg = mode == "agg"
        num["concurrency"][i] = _number(r["batch_size"], file, line, "batch_size", whole=True, empty_ok=not agg,
                                        default=0.0)
        num["tp"][i] = _number(r["tp_size"], file, line, "tp_size", whole=True, empty_ok=not agg, default=1.0)
        for c, key in zip(LAYOUT_COLUMNS, ("pp", "dp", "moe_tp", "ep")):
            v = _number(r.get(c) or "", file, line, c, whole=True, empty_ok=True, default=1.0)
            num[key][i] = max(v, 1.0)  # 0 / empty: not used
        ms_t = _number(r["silicon_ttft_ms"], file, line, "silicon_ttft_ms", whole=False, empty_ok=True)
        ms_p = _number(r["silicon_tpot_ms"], file, line, "silicon_tpot_ms", whole=False, empty_ok=True)
        num["measured_ttft_s"][i] = ms_t * 1e-3
        num["measured_tpot_s"][i] = ms_p * 1e-3
        for c in disagg:
            disagg[c][i] = _number(r.get(c) or "", file, line, c, whole=True, empty_ok=True)
        num["total_concurrency"][i] = _total_concurrency(r, file, line)
        num["spec_tokens"][i] = _number(r.get(SPEC_TOKENS_COLUMN) or "", file, line, SPEC_TOKENS_COLUMN, whole=True,
                                        empty_ok=True, default=0.0)
        every = recv_interval(r.get(RECV_INTERVAL_COLUMN) or "", get("silicon_data_source"), s["engine"][-1], file, line)
        num["recv_interval"][i] = 1.0 if every is None else every
        flags["recv_by_harness"][i] = every is None
        num["range_ratio"][i] = harness_range_ratio(get("silicon_data_source"))
        if get(RANGE_RATIO_COLUMN):  # the row says it: that wins over the harness's default
            v = _number(r[RANGE_RATIO_COLUMN], file, line, RANGE_RATIO_COLUMN, whole=False, empty_ok=False)
            try:  # the one rule (planner.bounds), the row's line and cell named
                num["range_ratio"][i] = check_range_ratio(v)
            except InputError as exc:
                raise InputError(f"line {line}: {exc.reason}", file=file, field=RANGE_RATIO_COLUMN,
                                 value=r[RANGE_RATIO_COLUMN]) from None
    arr = {k: np.array(v, dtype=object if k == "ids" else str) if v else np.array([], dtype=str)
           for k, v in s.items()}
    return MeasuredRuns(file=file, line=np.arange(2, n + 2), disagg=disagg, **arr, **num, **flags)


# The benchmark's random range ratio: input and output lengths drawn per request,
# uniformly from [r L, L]. An optional column gives it per row; otherwise the harness's
# (planner.harness.harness_range_ratio: 0.8 for its rows, 1 = fixed lengths for the rest).
# Read by planner.cost.waves.in_step_share.
RANGE_RATIO_COLUMN = "random_range_ratio"


def mean_length(length, range_ratio):
    """The mean of lengths drawn uniformly from the whole numbers in ``[int(r L), L]``:
    ``(int(r L) + L) / 2`` (``L`` at ``r = 1``); arrays broadcast."""
    L = np.asarray(length, dtype=float)
    return 0.5 * (np.floor(L * np.asarray(range_ratio, dtype=float) + 1e-9) + L)


def mean_tokens(length, range_ratio):
    """:func:`mean_length` as the cost model takes it: whole tokens (numpy's rounding), at
    least 1 (a 1-token length at r < 1 has mean 0.5, which rounds to 0: a request of no
    tokens, no finite time); arrays broadcast. The replay (planner.replay) and the
    mean-field entry points (planner.cost.spread) both use it."""
    return np.maximum(np.round(mean_length(length, range_ratio)), 1.0)


# Speculative decoding: the draft tokens per step a row's deployment ran with (TensorRT-LLM
# speculative_config num_nextn_predict_layers, SGLang --speculative-num-steps; DeepSeek's MTP
# module), from the optional column ``spec_decode_tokens`` (empty: none). No provenance
# reading: the dev file's DeepSeek-R1 sweeps ran with and without MTP at the same engine,
# version, layout and concurrency (benchmarks/dsr1_decode_bound.py lists the twins), so no
# fact of a row without the column says which it was.
SPEC_TOKENS_COLUMN = "spec_decode_tokens"

# The deployment's KV-cache dtype. An optional column gives it per row (``kv_cache_dtype``:
# fp8 / fp8_e4m3 / fp8_e5m2, bf16, fp16, or auto / empty for the engine's default, the
# engines' own spellings: vLLM and SGLang --kv-cache-dtype, TensorRT-LLM
# kv_cache_config.dtype). Otherwise the harness's setting (planner.harness.harness_kv_dtype;
# its fp4 launches' depends on the device: read as None, resolved by
# planner.harness.resolve_kv_dtype). Rows of other sources take the engine's default
# (engines/*.yaml kv_dtype_auto).
KV_DTYPE_COLUMN = "kv_cache_dtype"
KV_DTYPE_SPELLINGS = {"": "", "auto": "", "fp8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "bf16": "bf16",
                      "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16", "half": "fp16"}


def kv_cache_dtype(given: str, source: str, engine: str, quant: str, file: str = "", line: int = 0) -> str | None:
    """A row's KV-cache dtype ("" = the engine's default): the ``kv_cache_dtype`` column
    where given, else the harness's setting (planner.harness.harness_kv_dtype; None: fp8
    on a Blackwell-class part, planner.harness.resolve_kv_dtype)."""
    g = (given or "").strip().lower()
    if g:
        if g not in KV_DTYPE_SPELLINGS:
            raise InputError(f"line {line}: must be one of {', '.join(k for k in KV_DTYPE_SPELLINGS if k)}",
                             file=file, field=KV_DTYPE_COLUMN, value=given)
        return KV_DTYPE_SPELLINGS[g]
    d = dtypes_for(quant or "")
    return harness_kv_dtype(source, engine, d[0] if d is not None else None)


# How often the engine's scheduler polls for new requests, in decode iterations (SGLang
# --scheduler-recv-interval N: planner.cost.waves.recv_wait_steps). An optional column gives it
# per row (``scheduler_recv_interval``; 1 = every iteration, the engine's default). Otherwise
# the harness's rule, by device and concurrency (planner.harness.harness_sets_recv: read as
# None, resolved by planner.harness.resolve_recv_interval).
RECV_INTERVAL_COLUMN = "scheduler_recv_interval"


def recv_interval(given: str, source: str, engine: str, file: str = "", line: int = 0) -> float | None:
    """A row's scheduler poll interval (iterations): the column where given, else None for
    a row whose harness chose it (planner.harness.resolve_recv_interval), else 1."""
    if (given or "").strip():
        return _number(given, file, line, RECV_INTERVAL_COLUMN, whole=True, empty_ok=False, minimum=1)
    return None if harness_sets_recv(source, engine) else 1.0


SOURCE_CONCURRENCY = re.compile(r"(?:^|[;\s])silicon_concurrency=([^;\s]*)")


def _total_concurrency(r: dict, file: str, line: int) -> float:
    """Requests in flight over the whole deployment: the ``concurrency`` column, else the
    ``silicon_concurrency=N`` entry of ``silicon_data_source``; NaN when neither is given."""
    if (r.get("concurrency") or "").strip():
        return _number(r["concurrency"], file, line, "concurrency", whole=True, empty_ok=False, minimum=1)
    m = SOURCE_CONCURRENCY.search(r.get("silicon_data_source") or "")
    if m is None:
        return np.nan
    return _number(m.group(1), file, line, "silicon_data_source", whole=True, empty_ok=False, minimum=1)


def dtypes_for(quant: str) -> tuple[str, str, str] | None:
    """(weight, activation, KV) dtype names for a precision / quant mode, None if unknown.
    The activation may be :data:`FP4_OR_BF16` (resolved against the device)."""
    return PRECISIONS.get(quant.strip().lower())
