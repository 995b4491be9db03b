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
    def bad(field, value, reason):
        raise InputError(f"fit outside physical range: {reason}", file=file, field=f"fitted.{field}", value=value)

    curves = [("memory.e_max", (f.get("memory") or {}).get("e_max"))]
    curves += [(f"compute.{dt}.e_max", (c or {}).get("e_max")) for dt, c in (f.get("compute") or {}).items()]
    for field, v in curves:
        if isinstance(v, (int, float)) and v > MAX_EFFICIENCY:
            bad(field, v, "an efficiency is a fraction of the measured peak (<= 1); a busy machine? retake it quiet")
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


def user_dir() -> Path:
    """Where ``planner calibrate`` writes by default: $PLANNER_CALIBRATION_DIR, else
    $XDG_CONFIG_HOME/planner/calibration (~/.config/planner/calibration)."""
    import os

    env = os.environ.get("PLANNER_CALIBRATION_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser() / "planner" / "calibration"


def check_output_path(path: str | Path) -> None:
    """Commands never write into the shipped calibration folder or the installed package."""
    from planner.catalog import builtin_dir

    target = Path(path).expanduser().resolve()
    package = Path(__file__).resolve().parent.parent
    for guarded in (builtin_dir("calibration").resolve(), package):
        if target == guarded or guarded in target.parents:
            raise InputError(f"refusing to write into {guarded} (shipped files): write with -o elsewhere, "
                             f"default {user_dir()}", file=str(path), field="output")


def machine_mismatch(profile: "Profile") -> str | None:
    """Why a profile was not made on this machine (None when it was): CPU model, core count,
    memory (within 2%) and torch version must match; a GPU profile applies only when named."""
    import importlib.metadata

    from planner.calibrate.device import cpu_count, cpu_model_name

    dev = profile.device
    if dev.get("type") != "cpu":
        return f"a {dev.get('type')} profile applies only when named with --calibration"
    if dev.get("cpu_model") != cpu_model_name():
        return f"CPU model {dev.get('cpu_model')!r} is not this machine's"
    if dev.get("cores") != cpu_count():
        return f"{dev.get('cores')} cores, this machine has {cpu_count()}"
    import os

    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        mem_gb = None
    if mem_gb is None or not isinstance(dev.get("memory_gb"), (int, float)) or \
            abs(dev["memory_gb"] - mem_gb) > 0.02 * mem_gb:
        return f"memory {dev.get('memory_gb')} GB differs from this machine's"
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "torch is not installed here"
    if str(profile.torch_version).split("+")[0] != torch_version.split("+")[0]:
        return f"torch {profile.torch_version}, this machine has {torch_version}"
    return None


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
    if data["version"] != VERSION:
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
    for key in ("time_scale", "overlap", "interconnect_efficiency"):
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


# --------------------------------------------------------------------------------------
# to the engine
# --------------------------------------------------------------------------------------
def profile_to_efficiency(profile: Profile, hardware=None):
    """The engine's :class:`~planner.cost.efficiency.Efficiency` from a profile.

    The fitted curves are fractions of the profile's reference peaks, so those peaks are
    passed as overrides (for a catalog device they are the spec's own figures). Dtypes
    the profile did not measure fall back to the main curve on the spec's peak."""
    from planner.cost.efficiency import Curve, Efficiency
    from planner.specs import DEFAULT_INTERCONNECT_EFFICIENCY

    f = profile.fitted
    compute = {dt: Curve(float(c["e_max"]), float(c["w_half"])) for dt, c in f["compute"].items()}
    peaks = {dt: float(v) for dt, v in f["peak_flops"].items()}
    main = f.get("main_dtype") or next(iter(f["compute"]))
    info = f.get("info") or {}
    rows_half, attention, correction = 0.0, None, ()
    tokens = (f.get("gemm_tokens") or {}).get(main)
    if tokens:
        # GEMM efficiency as a function of rows per pass (the better fit on CPUs): the GEMM
        # curve becomes flat at the row-fit's peak; attention kernels keep the curve in FLOPs
        # measured against the old peak, scaled by how prefill attention compares with it.
        old_peak = peaks[main]
        new_peak = float(tokens["peak_flops"]) * float(tokens["e_max"])
        rows_half = float(tokens["m_half"])
        correction = tuple(sorted((float(m), float(v)) for m, v in (tokens.get("rows_correction") or {}).items()))
        c = f["compute"][main]
        ratio = float(info.get("prefill_attention_vs_gemm_curve", 1.0))
        attention = Curve(min(1.0, float(c["e_max"]) * old_peak / new_peak * ratio), float(c["w_half"]))
        compute[main] = Curve(1.0, 0.0)
        peaks[main] = new_peak
    if main in compute:
        compute.setdefault("*", compute[main])
    interconnect = hardware.interconnect_efficiency if hardware is not None else DEFAULT_INTERCONNECT_EFFICIENCY
    if "interconnect_efficiency" in f:  # fitted on measured serving runs (planner.serving_params.link_efficiency)
        interconnect = float(f["interconnect_efficiency"])
    return Efficiency(
        compute=compute,
        memory=Curve(float(f["memory"]["e_max"]), float(f["memory"]["w_half"])),
        interconnect=interconnect,
        kernel_overhead_s=float(f["kernel_overhead_s"]),
        attention_memory=float(f["attention_memory"]),
        gemm_rows_half=rows_half,
        gemm_rows_correction=correction,
        attention_compute=attention,
        overlap=float(f.get("overlap", 1.0)),
        time_scale=float(f.get("time_scale", 1.0)),
        gemv_row_bytes=float((f.get("gemv") or {}).get("row_bytes", 0.0)),
        gemv_stream_factor=float((f.get("gemv") or {}).get("stream_factor", 1.0)),
        peak_flops_override=peaks,
        peak_bandwidth_override=float(f["peak_bandwidth"]),
        source=f"calibration:{profile.path or profile.hardware}",
    )


# --------------------------------------------------------------------------------------
# comparing two profiles
# --------------------------------------------------------------------------------------
FLAG_THRESHOLD = 0.10


def _rate(c: dict, peak: float, w: float) -> float:
    e = float(c["e_max"]) * (w / (w + float(c["w_half"])) if float(c["w_half"]) > 0 else 1.0)
    return peak * e


def effective_figures(profile: Profile) -> dict[str, tuple[float, str, bool]]:
    """Figures a user feels, each ``(value, unit, higher_is_better)``: achieved FLOP/s of
    small and large GEMMs per dtype, achieved bandwidth for 1 MiB and 256 MiB kernels,
    decode-attention bandwidth, per-kernel overhead."""
    f = profile.fitted
    out: dict[str, tuple[float, str, bool]] = {}
    for dt, c in sorted(f["compute"].items()):
        peak = float(f["peak_flops"].get(dt, 0.0))
        if peak <= 0:
            continue
        out[f"peak FLOP/s {dt}"] = (peak * float(c["e_max"]), "FLOP/s", True)
        out[f"GEMM FLOP/s {dt} at 100 MFLOP"] = (_rate(c, peak, 1e8), "FLOP/s", True)
        out[f"GEMM FLOP/s {dt} at 10 GFLOP"] = (_rate(c, peak, 1e10), "FLOP/s", True)
    bw = float(f["peak_bandwidth"])
    out["peak bandwidth"] = (bw, "B/s", True)
    out["streaming B/s at 1 MiB"] = (_rate(f["memory"], bw, 1 << 20), "B/s", True)
    out["streaming B/s at 256 MiB"] = (_rate(f["memory"], bw, 256 << 20), "B/s", True)
    out["decode attention B/s at 64 MiB"] = (_rate(f["memory"], bw, 64 << 20) * float(f["attention_memory"]), "B/s", True)
    out["attention memory factor"] = (float(f["attention_memory"]), "", True)
    out["kernel overhead"] = (float(f["kernel_overhead_s"]), "s", False)
    return out


def compare_profiles(old: Profile, new: Profile, threshold: float = FLAG_THRESHOLD) -> list[dict]:
    """Rows ``{figure, unit, old, new, change, verdict, flagged}``: ``change`` = new/old - 1;
    ``verdict`` is slower/faster from the user's side; ``flagged`` when |change| > threshold."""
    a, b = effective_figures(old), effective_figures(new)
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        if key not in a or key not in b:
            va = a.get(key, (None, "", True))[0]
            vb = b.get(key, (None, "", True))[0]
            rows.append({"figure": key, "unit": (a.get(key) or b.get(key))[1], "old": va, "new": vb,
                         "change": None, "verdict": "only in one", "flagged": True})
            continue
        (va, unit, higher_better), (vb, _, _) = a[key], b[key]
        change = vb / va - 1.0 if va else float("inf")
        if abs(change) <= 1e-12:
            verdict = "same"
        else:
            better = (change > 0) == higher_better
            verdict = "faster" if better else "slower"
        rows.append({"figure": key, "unit": unit, "old": va, "new": vb, "change": change, "verdict": verdict,
                     "flagged": abs(change) > threshold})
    return rows


# --------------------------------------------------------------------------------------
# a hardware spec for an uncatalogued device
# --------------------------------------------------------------------------------------
CPU_WATTS_PER_CORE = 10.0          # assumption, see the sources entry
CPU_IDLE_WATTS_PER_CORE = 2.0
CPU_USD_PER_CORE_HOUR = 0.024


def hardware_spec(name: str, device: dict, fitted: dict, date: str) -> dict:
    """A valid :class:`planner.specs.Hardware` mapping for a measured device: peaks and
    bandwidth measured (asymptotes of the fits), memory from the system, power and price
    stated assumptions. Every number has a ``sources`` entry."""
    day = date[:10]
    measured = f"measured by planner calibrate on {day}"
    peaks = {dt: round(float(v) / 1e12, 6) for dt, v in fitted["peak_flops"].items()}
    kind = "cpu" if device.get("type") == "cpu" else "gpu"
    model = device.get("cpu_model") if kind == "cpu" else device.get("gpu_name")
    vendor = (model or "unknown").split()[0]
    cores = int(device.get("cores") or 1)
    spec: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "vendor": vendor,
        "description": f"{model or device.get('name')} ({cores} cores as seen by this process), measured with torch "
                       f"{device.get('torch_version', '')}".strip(),
        "peak_tflops": peaks,
        "memory_gb": round(float(device.get("memory_gb") or 1.0), 3),
        "mem_bandwidth_gbps": round(float(fitted["peak_bandwidth"]) / 1e9, 3),
        "sources": {
            "peak_tflops": f"{measured}: asymptote of the GEMM efficiency fit ({device.get('threads', '?')} threads)",
            "memory_gb": f"{measured}: system memory reported by the OS",
            "mem_bandwidth_gbps": f"{measured}: asymptote of a streaming read (tensor reduction) fit",
        },
    }
    if kind == "cpu":
        spec["idle_power_w"] = CPU_IDLE_WATTS_PER_CORE * cores
        spec["max_power_w"] = CPU_WATTS_PER_CORE * cores
        spec["price_per_hour_usd"] = round(CPU_USD_PER_CORE_HOUR * cores, 4)
        spec["sources"].update({
            "idle_power_w": f"assumption: {CPU_IDLE_WATTS_PER_CORE:g} W per core idle (server CPU share, not measured)",
            "max_power_w": f"assumption: {CPU_WATTS_PER_CORE:g} W per core under load (server CPU TDP / cores)",
            "price_per_hour_usd": f"assumption: {CPU_USD_PER_CORE_HOUR} USD per vCPU-hour "
                                  "(on-demand general-purpose cloud instances, 2025)",
        })
    else:
        spec["idle_power_w"] = 50.0
        spec["max_power_w"] = 400.0
        spec["price_per_hour_usd"] = 2.0
        spec["sources"].update({
            "idle_power_w": "assumption: 50 W idle for a datacenter GPU (not measured)",
            "max_power_w": "assumption: 400 W board power (not measured; edit to the datasheet TDP)",
            "price_per_hour_usd": "assumption: 2 USD per GPU-hour (edit to your rental price)",
        })
    return spec


def hardware_spec_text(spec: dict, path: str | Path = "<hardware spec>") -> str:
    """The spec as YAML, validated against planner.specs.Hardware first."""
    import yaml

    from planner.catalog import parse_spec
    from planner.specs import Hardware

    parse_spec(Hardware, spec, str(path))
    return yaml.safe_dump(_plain(spec), sort_keys=False, width=120)


def write_hardware_spec(path: str | Path, spec: dict) -> Path:
    """Validate against planner.specs.Hardware, then write atomically."""
    from planner.files import atomic_write_text

    atomic_write_text(path, hardware_spec_text(spec, path))
    return Path(path)
