"""Calibration profiles: the YAML file ``planner calibrate`` writes (no torch here).

A profile holds a format tag and version, the hardware name it calibrates, the device
fingerprint (type, name, CPU model or GPU name, cores, memory), torch version, threads,
date, the fitted figures and the raw measurements they were fitted to::

    format: planner-calibration
    version: 1
    hardware: cpu-amd-epyc-2c          # catalog name, or the spec written beside it
    hardware_file: cpu-amd-epyc-2c.hardware.yaml   # optional, relative to the profile
    device: {type: cpu, name: ..., cpu_model: ..., gpu_name: null, cores: 2, memory_gb: 24.1}
    torch_version: 2.13.0+cpu
    threads: 2
    date: '2025-01-01T12:00:00+00:00'
    scale: quick
    fitted:
      peak_flops: {fp32: 1.7e11}       # FLOP/s the compute curves are fractions of
      peak_bandwidth: 2.8e10           # bytes/s the memory curve is a fraction of
      peaks_from: measured             # or spec
      compute: {fp32: {e_max: 1.0, w_half: 3.0e8}}
      memory: {e_max: 0.64, w_half: 1.1e5}
      attention_memory: 0.5
      kernel_overhead_s: 3.8e-5
      ...
    measurements: [{kind: gemm, dtype: fp32, m: 1, k: 1024, n: 4096, flops: ..., bytes: ..., seconds: ...}, ...]
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import InputError

FORMAT = "planner-calibration"
VERSION = 1
REQUIRED = ("format", "version", "hardware", "device", "torch_version", "threads", "date", "fitted")
REQUIRED_FITTED = ("peak_flops", "peak_bandwidth", "compute", "memory", "attention_memory", "kernel_overhead_s")
HARDWARE_SUFFIX = ".hardware.yaml"


@dataclass
class Profile:
    hardware: str
    device: dict
    torch_version: str
    threads: int
    date: str
    fitted: dict
    measurements: list = field(default_factory=list)
    hardware_file: str | None = None
    scale: str = ""
    format: str = FORMAT
    version: int = VERSION
    path: str | None = field(default=None, compare=False)  # where it was loaded from

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("path")
        order = ("format", "version", "hardware", "hardware_file", "device", "torch_version", "threads", "date",
                 "scale", "fitted", "measurements")
        out = {k: d[k] for k in order if d.get(k) is not None}
        return _plain(out)

    def hardware_path(self) -> Path | None:
        """The spec written beside the profile (resolved against the profile's folder)."""
        if not self.hardware_file:
            return None
        p = Path(self.hardware_file)
        if not p.is_absolute() and self.path:
            p = Path(self.path).parent / p
        return p


def _plain(x: Any) -> Any:
    """Plain Python types (numpy scalars -> float/int) for YAML."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, str):
        return str(x)  # str subclasses (torch's TorchVersion) as plain strings
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        return x.item()
    return x


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-") or "device"


def fingerprint_name(device: dict) -> str:
    """A file-friendly name for an uncatalogued device: ``cpu-amd-epyc-2c``, ``cuda-nvidia-h100-80gb-hbm3``."""
    if device.get("type") == "cpu":
        return f"cpu-{slug(device.get('cpu_model') or device.get('name') or 'unknown')}-{device.get('cores', 0)}c"
    return f"{device.get('type', 'gpu')}-{slug(device.get('gpu_name') or device.get('name') or 'unknown')}"


# --------------------------------------------------------------------------------------
# write / load
# --------------------------------------------------------------------------------------
def dumps(profile: Profile) -> str:
    import yaml

    return yaml.safe_dump(profile.to_dict(), sort_keys=False, default_flow_style=None, width=120)


def write_profile(path: str | Path, profile: Profile) -> Path:
    """Write atomically: a temporary file beside ``path`` renamed into place, so an
    interrupted calibration leaves no partial profile."""
    from planner.files import atomic_write_text

    text = dumps(profile)
    atomic_write_text(path, text)
    return Path(path)


def _num(d: dict, key: str, file: str, prefix: str, positive: bool = True, allow_zero: bool = False) -> float:
    v = d.get(key)
    name = f"{prefix}{key}"
    if v is None:
        raise InputError("required field is missing", file=file, field=name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise InputError("must be a finite number", file=file, field=name, value=v)
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise InputError("must be > 0" if not allow_zero else "must be >= 0", file=file, field=name, value=v)
    return float(v)


def _curve(d: Any, file: str, name: str) -> dict:
    if not isinstance(d, dict):
        raise InputError("must be a mapping with e_max and w_half", file=file, field=name, value=d)
    return {"e_max": _num(d, "e_max", file, f"{name}."),
            "w_half": _num(d, "w_half", file, f"{name}.", allow_zero=True)}


def _gemm_tokens(tokens: Any, file: str) -> None:
    """Check the GEMM rows model per dtype: peak and e_max > 0, m_half >= 0, and the row
    corrections a mapping of row counts >= 1 to factors > 0."""
    if tokens is None:
        return
    if not isinstance(tokens, dict):
        raise InputError("must map a dtype to the GEMM rows model", file=file, field="fitted.gemm_tokens", value=tokens)
    for dt, t in tokens.items():
        prefix = f"fitted.gemm_tokens.{dt}."
        if not isinstance(t, dict):
            raise InputError("must be a mapping", file=file, field=prefix[:-1], value=t)
        _num(t, "peak_flops", file, prefix)
        _num(t, "e_max", file, prefix)
        _num(t, "m_half", file, prefix, allow_zero=True)
        corr = t.get("rows_correction") or {}
        if not isinstance(corr, dict):
            raise InputError("must map a row count to a factor", file=file, field=prefix + "rows_correction", value=corr)
        for rows, factor in corr.items():
            try:
                ok = float(rows) >= 1
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError("row counts must be numbers >= 1", file=file, field=prefix + "rows_correction",
                                 value=rows)
            _num(corr, rows, file, prefix + "rows_correction.")


# Physical ranges of fitted parameters (a fit outside them measured a busy machine, not the
# device): an achieved fraction of a measured peak cannot exceed 1; a per-kernel launch
# overhead above 1 ms is 100x what CPU and GPU runtimes show (~5-50 us); an end-to-end
# scale outside [1/4, 4] means the kernel fits do not describe the model's run.
MAX_EFFICIENCY = 1.0 + 1e-9
MAX_KERNEL_OVERHEAD_S = 1e-3
TIME_SCALE_RANGE = (0.25, 4.0)
# a matrix-vector product's cost per output row, in bytes streamed: ~1.7 kB (90 ns) on the
# 2-core EPYC VM; 64 kB (a whole 16k-value fp32 row more per row) would mean a busy machine;
# its streaming rate within 4x of the memory curve's
MAX_GEMV_ROW_BYTES = 65536.0
GEMV_STREAM_RANGE = (0.25, 4.0)


def check_physical(f: dict, file: str) -> None:
    """Refuse a fit outside physical ranges, naming the parameter and the reason."""
    def bad(name, value, reason):
        raise InputError(f"fit outside physical range: {reason}", file=file, field=f"fitted.{name}", value=value)

    curves = [("memory.e_max", (f.get("memory") or {}).get("e_max"))]
    curves += [(f"compute.{dt}.e_max", (c or {}).get("e_max")) for dt, c in (f.get("compute") or {}).items()]
    for name, v in curves:
        if isinstance(v, (int, float)) and v > MAX_EFFICIENCY:
            bad(name, v, "an efficiency is a fraction of the measured peak (<= 1); a busy machine? retake it quiet")
    k = f.get("kernel_overhead_s")
    if isinstance(k, (int, float)) and k > MAX_KERNEL_OVERHEAD_S:
        bad("kernel_overhead_s", k, f"per-kernel overhead above {MAX_KERNEL_OVERHEAD_S * 1e3:g} ms (a busy machine?)")
    g = f.get("gemv") if isinstance(f.get("gemv"), dict) else {}
    r = g.get("row_bytes")
    if isinstance(r, (int, float)) and r > MAX_GEMV_ROW_BYTES:
        bad("gemv.row_bytes", r, f"a matrix-vector cost per output row above {MAX_GEMV_ROW_BYTES:g} bytes "
                                 "(a busy machine?)")
    sf = g.get("stream_factor")
    lo, hi = GEMV_STREAM_RANGE
    if isinstance(sf, (int, float)) and not lo <= sf <= hi:
        bad("gemv.stream_factor", sf, f"matrix-vector streaming time outside [{lo:g}, {hi:g}] x the memory curve's")
    ts = f.get("time_scale")
    lo, hi = TIME_SCALE_RANGE
    if isinstance(ts, (int, float)) and not lo <= ts <= hi:
        bad("time_scale", ts, f"end-to-end scale outside [{lo:g}, {hi:g}]")


# Raw measurements: the fields every one carries, and those of each benchmark kind
# (planner/calibrate/bench.py writes them; --refit reads them back).
_MEASURED = ("seconds", "flops", "bytes")
_KIND_INTS = {"gemm": ("m", "n", "k"), "gemv": ("m", "n", "k"), "stream_read": (), "stream_copy": (),
              "attention": ("batch", "context", "head_dim", "heads", "kv_heads"),
              "prefill_attention": ("batch", "context", "head_dim", "heads", "kv_heads"),
              "decoder": ("batch", "context"), "tiny_op": (), "tiny_decoder": ("layers",)}


def check_measurements(meas: Any, file: str) -> list:
    """Each raw measurement a mapping of its kind's fields, with finite non-negative
    numbers (seconds > 0): what --refit needs, checked before any fit sees it."""
    if not isinstance(meas, list):
        raise InputError("must be a list", file=file, field="measurements", value=type(meas).__name__)
    for i, r in enumerate(meas):
        where = f"measurements[{i}]"
        if not isinstance(r, dict):
            raise InputError("must be a mapping", file=file, field=where, value=r)
        kind = r.get("kind")
        if not isinstance(kind, str) or kind not in _KIND_INTS:
            raise InputError(f"unknown benchmark kind (known: {', '.join(_KIND_INTS)})", file=file,
                             field=f"{where}.kind", value=kind, has_value=True)
        if not isinstance(r.get("dtype"), str):
            raise InputError("must be a dtype name", file=file, field=f"{where}.dtype", value=r.get("dtype"),
                             has_value=True)
        if kind == "decoder" and not isinstance(r.get("phase"), str):
            raise InputError("must be prefill or decode", file=file, field=f"{where}.phase", value=r.get("phase"),
                             has_value=True)
        for key in _MEASURED:
            _num(r, key, file, f"{where}.", allow_zero=key != "seconds")
        for key in ("other_cpu", "contention", "spread", "drift"):
            if r.get(key) is not None:  # drift may be negative: faster than the quiet reference
                _num(r, key, file, f"{where}.", positive=key != "drift", allow_zero=True)
        for key in _KIND_INTS[kind] + (("repeats",) if "repeats" in r else ()):
            v = r.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError("must be an integer >= 1", file=file, field=f"{where}.{key}", value=v,
                                 has_value=True)
    return meas


def profile_from_dict(data: Any, file: str) -> Profile:
    """Validate a parsed profile; every problem is an InputError naming file, field, value."""
    if not isinstance(data, dict):
        raise InputError(f"not a calibration profile (expected a mapping, got {type(data).__name__})", file=file)
    if data.get("format") != FORMAT:
        raise InputError(f"not a calibration profile (format must be '{FORMAT}')", file=file, field="format",
                         value=data.get("format"), has_value=True)
    for key in REQUIRED:
        if key not in data or data[key] is None:
            raise InputError("required field is missing", file=file, field=key)
    if isinstance(data["version"], bool) or data["version"] != VERSION:  # True == 1 in Python
        raise InputError(f"unsupported profile version (this planner reads version {VERSION})", file=file,
                         field="version", value=data["version"])
    if not isinstance(data["hardware"], str) or not data["hardware"]:
        raise InputError("must be a device name", file=file, field="hardware", value=data["hardware"])
    if not isinstance(data["device"], dict) or "type" not in data["device"]:
        raise InputError("must be a mapping with the device type", file=file, field="device", value=data["device"])
    threads = data["threads"]
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError("must be an integer >= 1", file=file, field="threads", value=threads)
    f = data["fitted"]
    if not isinstance(f, dict):
        raise InputError("must be a mapping", file=file, field="fitted", value=f)
    for key in REQUIRED_FITTED:
        if key not in f or f[key] is None:
            raise InputError("required field is missing", file=file, field=f"fitted.{key}")
    if not isinstance(f["peak_flops"], dict) or not f["peak_flops"]:
        raise InputError("must map a dtype to FLOP/s", file=file, field="fitted.peak_flops", value=f["peak_flops"])
    for dt in f["peak_flops"]:
        _num(f["peak_flops"], dt, file, "fitted.peak_flops.")
    _num(f, "peak_bandwidth", file, "fitted.")
    if not isinstance(f["compute"], dict) or not f["compute"]:
        raise InputError("must map a dtype to a curve", file=file, field="fitted.compute", value=f["compute"])
    for dt, c in f["compute"].items():
        _curve(c, file, f"fitted.compute.{dt}")
    _curve(f["memory"], file, "fitted.memory")
    _num(f, "attention_memory", file, "fitted.")
    _num(f, "kernel_overhead_s", file, "fitted.", allow_zero=True)
    if "gemm_rows_half" in f:
        _num(f, "gemm_rows_half", file, "fitted.", allow_zero=True)
    for key in ("time_scale", "overlap", "interconnect_efficiency", "expert_bytes_per_s"):
        if key in f:
            _num(f, key, file, "fitted.")
    if f.get("gemv") is not None:
        if not isinstance(f["gemv"], dict):
            raise InputError("must be a mapping with stream_factor and row_bytes", file=file, field="fitted.gemv",
                             value=f["gemv"])
        _num(f["gemv"], "stream_factor", file, "fitted.gemv.")
        _num(f["gemv"], "row_bytes", file, "fitted.gemv.", allow_zero=True)
    _gemm_tokens(f.get("gemm_tokens"), file)
    check_physical(f, file)
    meas = check_measurements(data.get("measurements") or [], file)
    hw_file = data.get("hardware_file")
    if hw_file is not None and not isinstance(hw_file, str):
        raise InputError("must be a file name", file=file, field="hardware_file", value=hw_file)
    return Profile(hardware=data["hardware"], device=dict(data["device"]), torch_version=str(data["torch_version"]),
                   threads=threads, date=str(data["date"]), fitted=f, measurements=meas, hardware_file=hw_file,
                   scale=str(data.get("scale") or ""), path=file)


def load_profile(path: str | Path) -> Profile:
    """Load and check a profile; corrupt or foreign files raise InputError(file, field, value)."""
    from planner.catalog import read_yaml

    p = Path(path)
    return profile_from_dict(read_yaml(p), str(p))
