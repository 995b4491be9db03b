"""Torch microbenchmarks: GEMMs, memory streaming, decode attention, kernel overheads.

Every benchmark is timed the same way (:func:`measure`): one untimed call, warm-up
samples, then repeated samples of ``inner`` calls each (enough calls that a sample lasts
a few milliseconds, so timer resolution and launch jitter do not matter) and the median
per call. On cuda/mps the device is synchronized around each sample. Inputs that must
come from memory (weights, KV caches, streamed buffers) rotate over enough copies that
their total exceeds the last-level cache twice over, so a kernel never finds its operand
still cached from the previous call, which is also what happens in a real forward pass.

:func:`run` plans the list of benchmarks for a scale (``tiny`` for tests, ``quick``,
``full``), runs them with an optional progress callback and returns JSON-ready rows:
``{"kind", <shape fields>, "dtype", "flops", "bytes", "seconds", "repeats", "spread"}``.
Quick and full runs go over the plan twice, some tens of seconds apart, and keep the
faster median of each benchmark: on a shared machine another process taking the CPUs
for a few seconds only slows timings down, never speeds them up.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from planner.calibrate import DEVICES, require_torch
from planner.errors import InputError

SCALES = ("tiny", "quick", "full")


# --------------------------------------------------------------------------------------
# device handling
# --------------------------------------------------------------------------------------
def check_device(name: str):
    """``torch.device`` for ``cpu | cuda | mps``; an unknown or absent device is an InputError."""
    torch = require_torch()
    if name not in DEVICES:
        raise InputError(f"unknown device (choose from {', '.join(DEVICES)})", field="device", value=name)
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("no CUDA device is available to torch here", field="device", value=name)
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("no MPS device is available to torch here", field="device", value=name)
    return torch.device(name)


def synchronizer(device) -> Callable[[], None]:
    torch = require_torch()
    if device.type == "cuda":
        return torch.cuda.synchronize
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (default: the CPUs this process may use); returns it."""
    torch = require_torch()
    n = threads or cpu_count()
    if n < 1:
        raise InputError("must be >= 1", field="threads", value=threads)
    torch.set_num_threads(n)
    return torch.get_num_threads()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def last_level_cache_bytes(device) -> int:
    """LLC size: CPU from sysfs (largest cache level), GPU L2 from torch; 32 MiB if unknown."""
    torch = require_torch()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return int(getattr(props, "L2_cache_size", 0) or 50 << 20)
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            try:
                with open(f"{base}/{entry}/size") as fh:
                    s = fh.read().strip().upper()
                mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1], 1)
                best = max(best, int(s.rstrip("KMG")) * mult)
            except (OSError, ValueError):
                continue
    except OSError:
        pass
    return best or 32 << 20


def device_memory_bytes(device) -> int:
    torch = require_torch()
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 8 << 30


# --------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------
@dataclass
class Timing:
    seconds: float      # median time of one call
    repeats: int        # samples taken
    inner: int          # calls per sample
    spread: float       # (p75 - p25) / median of the samples


def measure(fn: Callable[[], object], sync: Callable[[], None], *, warmup: int = 2, repeats: int = 5,
            sample_s: float = 0.004, max_repeats: int | None = None, budget_s: float = 5.0) -> Timing:
    """Median seconds per call of ``fn``. Adds samples (up to ``max_repeats``) while the
    samples spread by more than 20% (another process took the CPU for a moment), within
    ``budget_s`` of timing for this benchmark."""
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    first = max(time.perf_counter() - t0, 1e-9)
    inner = max(1, min(100_000, int(sample_s / first)))
    for _ in range(warmup):
        for _ in range(inner):
            fn()
    sync()
    samples: list[float] = []
    max_repeats = max_repeats or 3 * repeats
    start = time.perf_counter()
    while True:
        sync()
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        samples.append((time.perf_counter() - t) / inner)
        if len(samples) < repeats:
            continue
        med = statistics.median(samples)
        q = statistics.quantiles(samples, n=4) if len(samples) >= 4 else [med, med, med]
        spread = (q[2] - q[0]) / med if med > 0 else 0.0
        if spread <= 0.2 or len(samples) >= max_repeats or time.perf_counter() - start > budget_s:
            return Timing(med, len(samples), inner, spread)


class Rotating:
    """Round-robin over copies of an operand whose total exceeds the cache."""

    def __init__(self, make: Callable[[], object], nbytes: int, cold_bytes: int, max_copies: int = 1024):
        n = 1 if nbytes >= cold_bytes else min(max_copies, math.ceil(cold_bytes / max(nbytes, 1)))
        self.items = [make() for _ in range(max(1, n))]
        self.i = 0

    def next(self):
        self.i = (self.i + 1) % len(self.items)
        return self.items[self.i]


# --------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------
@dataclass
class Job:
    kind: str
    params: dict
    label: str
    weight: float = 1.0  # rough relative cost, for the progress bar


@dataclass
class Plan:
    device: str
    scale: str
    dtypes: list[str]
    jobs: list[Job] = field(default_factory=list)


def default_dtypes(device_type: str) -> list[str]:
    """Compute dtypes to calibrate: CPU math runs in fp32 (bf16 measured too), GPUs in
    bf16/fp16 (fp32 measured too)."""
    if device_type == "cpu":
        return ["fp32", "bf16"]
    if device_type == "mps":
        return ["fp16", "fp32"]
    return ["bf16", "fp16", "fp32"]


def plan(device_type: str, scale: str, dtypes: list[str] | None = None, mem_limit: int = 1 << 30) -> Plan:
    """The benchmarks for a scale. ``mem_limit`` caps one streamed buffer or KV cache."""
    if scale not in SCALES:
        raise InputError(f"unknown scale (choose from {', '.join(SCALES)})", field="scale", value=scale)
    dtypes = dtypes or default_dtypes(device_type)
    main = dtypes[0]
    p = Plan(device_type, scale, dtypes)
    gpu = device_type != "cpu"
    add = p.jobs.append

    # GEMM shapes (K, N) of decoder layers and LM heads; skinny M (decode) and large M (prefill)
    if scale == "tiny":
        kn = [(64, 128)]
        skinny, wide, squares = [1, 4], [32], [64]
        lm = []
    elif scale == "quick":
        kn = [(1024, 4096), (2048, 2048), (4096, 1024), (2048, 8192)]
        skinny, wide, squares = [1, 2, 4, 8, 16, 32, 64], [128, 512], [512, 1024, 2048]
        lm = [(1024, 32768), (2048, 32768)]
    else:
        kn = [(1024, 4096), (2048, 2048), (4096, 1024), (2048, 8192), (4096, 4096), (8192, 2048), (1024, 1024)]
        skinny, wide, squares = [1, 2, 4, 8, 16, 24, 32, 48, 64], [96, 128, 256, 512, 1024, 2048], [256, 512, 1024, 2048, 4096]
        lm = [(1024, 32768), (2048, 32768), (2048, 65536), (4096, 32768)]
    if gpu and scale != "tiny":
        skinny = skinny + [128, 256]
        wide = wide + [4096, 8192]
        squares = squares + [4096, 8192]
    for dt in dtypes:
        sub = dt != main
        if sub and scale == "quick":  # secondary dtypes: a few shapes
            shapes = [(m, 2048, 2048) for m in (1, 16)] + [(512, 512, 512)]
        elif sub and scale == "tiny":
            shapes = [(m, k, n) for (k, n) in kn[:1] for m in (skinny[0], wide[0])]
        elif sub:  # full: a lighter sweep of the secondary dtypes
            shapes = [(m, k, n) for (k, n) in kn[:3] for m in (1, 4, 16, 64, 256)]
            shapes += [(s, s, s) for s in squares[:3]]
        else:
            shapes = [(m, k, n) for (k, n) in kn for m in skinny + wide]
            shapes += [(s, s, s) for s in squares]
            shapes += [(m, k, n) for (k, n) in lm for m in skinny[::2]]
        for m, k, n in shapes:
            add(Job("gemm", {"dtype": dt, "m": m, "k": k, "n": n}, f"gemm {dt} {m}x{k}x{n}",
                    weight=1.0 + 2.0 * m * k * n / 2e10 + 4.0 * k * n / 2e9))

    # memory streaming: read (reduction), copy, and weights through a matrix-vector product
    if scale == "tiny":
        sizes = [1 << 14, 1 << 18]
    elif scale == "quick":
        sizes = [1 << s for s in range(14, 31, 2)]
    else:
        sizes = [1 << s for s in range(12, 33)]
    sizes = [s for s in sizes if s <= mem_limit]
    for s in sizes:
        add(Job("stream_read", {"dtype": "fp32", "bytes": s}, f"read {s >> 10} KiB", weight=1.0 + s / 2e8))
        add(Job("stream_copy", {"dtype": "fp32", "bytes": s}, f"copy {s >> 10} KiB", weight=1.0 + s / 1e8))
    esize = 2 if main in ("bf16", "fp16") else 4
    k_gemv = 64 if scale == "tiny" else 2048
    for s in sizes:
        n = s // (esize * k_gemv)
        if n >= 8:
            add(Job("gemv", {"dtype": main, "m": 1, "k": k_gemv, "n": n}, f"gemv {s >> 10} KiB", weight=1.0 + s / 2e8))

    # decode attention: a batch of queries against a KV cache, over contexts and layouts
    if scale == "tiny":
        layouts, batches, contexts = [(4, 2, 16)], [1, 2], [16, 64]
    elif scale == "quick":
        layouts, batches, contexts = [(16, 8, 128), (32, 8, 64)], [1, 4, 16], [256, 1024, 4096]
    else:
        layouts = [(16, 8, 128), (32, 8, 64), (32, 4, 128), (16, 16, 64)]
        batches, contexts = [1, 2, 4, 8, 16], [128, 512, 1024, 2048, 4096, 8192]
    for H, Hkv, d in layouts:
        for b in batches:
            for c in contexts:
                kv = 2 * b * Hkv * c * d * esize
                if kv <= mem_limit:
                    add(Job("attention", {"dtype": main, "batch": b, "context": c, "heads": H, "kv_heads": Hkv,
                                          "head_dim": d}, f"attention b{b} c{c} {H}/{Hkv}x{d}", weight=1.0 + kv / 2e8))
    # causal prefill attention (recorded for information; the engine times it with the GEMM curve)
    pre = [32] if scale == "tiny" else ([512, 1024] if scale == "quick" else [256, 512, 1024, 2048, 4096])
    for P in pre:
        H, Hkv, d = (4, 2, 16) if scale == "tiny" else (16, 8, 128)
        add(Job("prefill_attention", {"dtype": main, "batch": 1, "context": P, "heads": H, "kv_heads": Hkv,
                                      "head_dim": d}, f"prefill attention {P}", weight=1.0 + P * P / 2e6))

    # overheads: a tiny op, and decoder layers with negligible work (decode step)
    add(Job("tiny_op", {"dtype": main}, "tiny op"))
    for n_layers in (1, 3):
        add(Job("tiny_decoder", {"dtype": main, "layers": n_layers}, f"tiny decoder, {n_layers} layers"))
    return p


# --------------------------------------------------------------------------------------
# the benchmarks
# --------------------------------------------------------------------------------------
def _esize(torch, dt) -> int:
    return torch.empty((), dtype=dt).element_size()


def _bench_gemm(torch, dev, P, cold, opts):
    from planner.calibrate.torch_model import linear, torch_dtype

    dt = torch_dtype(P["dtype"])
    m, k, n = P["m"], P["k"], P["n"]
    es = _esize(torch, dt)
    ws = Rotating(lambda: torch.randn(n, k, device=dev, dtype=dt) / math.sqrt(k), n * k * es, cold)
    x = torch.randn(m, k, device=dev, dtype=dt)
    t = measure(lambda: linear(x, ws.next()), opts["sync"], **opts["timing"])
    return t, 2.0 * m * k * n, float((k * n + m * k + m * n) * es)


def _bench_stream(torch, dev, P, cold, opts, copy: bool):
    n = P["bytes"] // 4
    bufs = Rotating(lambda: torch.ones(n, device=dev, dtype=torch.float32), P["bytes"], cold)
    if copy:
        dst = torch.empty(n, device=dev, dtype=torch.float32)
        t = measure(lambda: dst.copy_(bufs.next()), opts["sync"], **opts["timing"])
        return t, 0.0, 2.0 * P["bytes"]
    t = measure(lambda: bufs.next().sum(), opts["sync"], **opts["timing"])
    return t, float(n), float(P["bytes"])


def _bench_attention(torch, dev, P, cold, opts):
    from planner.calibrate.torch_model import decode_attention, torch_dtype

    dt = torch_dtype(P["dtype"])
    b, c, H, Hkv, d = P["batch"], P["context"], P["heads"], P["kv_heads"], P["head_dim"]
    es = _esize(torch, dt)
    kv_bytes = 2 * b * Hkv * c * d * es

    def make():
        # a cache with room for more tokens, sliced to the context (as in the decoder)
        kc = torch.full((b, Hkv, c + 8, d), 0.01, device=dev, dtype=dt)
        vc = torch.full((b, Hkv, c + 8, d), 0.01, device=dev, dtype=dt)
        return kc[:, :, :c], vc[:, :, :c]

    caches = Rotating(make, kv_bytes, cold)
    q = torch.randn(b, H, d, device=dev, dtype=dt)

    def fn():
        k, v = caches.next()
        return decode_attention(q, k, v)

    t = measure(fn, opts["sync"], **opts["timing"])
    return t, 4.0 * b * H * d * c, float(kv_bytes + 2 * b * H * d * es)


def _bench_prefill_attention(torch, dev, P, cold, opts):
    from planner.calibrate.torch_model import prefill_attention, torch_dtype

    dt = torch_dtype(P["dtype"])
    b, T, H, Hkv, d = P["batch"], P["context"], P["heads"], P["kv_heads"], P["head_dim"]
    q = torch.randn(b, H, T, d, device=dev, dtype=dt)
    k = torch.randn(b, Hkv, T, d, device=dev, dtype=dt)
    v = torch.randn(b, Hkv, T, d, device=dev, dtype=dt)
    t = measure(lambda: prefill_attention(q, k, v), opts["sync"], **opts["timing"])
    es = _esize(torch, dt)
    return t, 4.0 * b * H * d * T * (T + 1) / 2.0, float((2 * b * H * T * d + 2 * b * Hkv * T * d) * es)


def _bench_tiny_op(torch, dev, P, cold, opts):
    x = torch.zeros(16, device=dev, dtype=torch.float32)
    t = measure(lambda: x.add_(1.0), opts["sync"], **opts["timing"])
    return t, 16.0, 128.0


def tiny_model(layers: int):
    """A decoder with negligible work per kernel: its step time is fixed costs only."""
    from planner.specs import Model

    return Model(name="tiny", hidden_size=64, num_layers=layers, num_heads=4, num_kv_heads=2, head_dim=16,
                 intermediate_size=128, vocab_size=256, tie_embeddings=True, qk_norm=True,
                 published_total_params=1e5, sources={})


def _bench_tiny_decoder(torch, dev, P, cold, opts):
    from planner.calibrate.torch_model import TorchDecoder

    dec = TorchDecoder(tiny_model(P["layers"]), device=dev, dtype=P["dtype"], max_batch=1, max_context=32)
    dec.fill_cache(1, 16)
    tok = torch.zeros(1, 1, dtype=torch.long, device=dev)
    t = measure(lambda: dec(tok, 16), opts["sync"], **opts["timing"])
    return t, 0.0, 0.0


BENCHES = {
    "gemm": _bench_gemm,
    "gemv": _bench_gemm,
    "stream_read": lambda *a: _bench_stream(*a, copy=False),
    "stream_copy": lambda *a: _bench_stream(*a, copy=True),
    "attention": _bench_attention,
    "prefill_attention": _bench_prefill_attention,
    "tiny_op": _bench_tiny_op,
    "tiny_decoder": _bench_tiny_decoder,
}


def run(device: str = "cpu", scale: str = "quick", *, threads: int | None = None, dtypes: list[str] | None = None,
        progress: Callable[[float, float, str], None] | None = None, kinds: set[str] | None = None) -> dict:
    """Run the benchmarks of ``plan(device, scale)``; returns ``{"measurements": rows,
    "threads": n, "llc_bytes": ..., "scale": ...}``. ``progress(done, total, label)`` is
    called before each benchmark (weights are rough relative costs)."""
    torch = require_torch()
    dev = check_device(device)
    n_threads = set_threads(threads)
    sync = synchronizer(dev)
    mem = device_memory_bytes(dev)
    mem_limit = min(1 << 30 if scale != "full" else 1 << 32, mem // 16)
    p = plan(dev.type, scale, dtypes, mem_limit)
    jobs = [j for j in p.jobs if kinds is None or j.kind in kinds]
    llc = last_level_cache_bytes(dev)
    cold = 2 * llc if scale != "tiny" else 1 << 20
    if scale == "tiny":
        timing = dict(warmup=1, repeats=3, sample_s=0.001, budget_s=0.5)
    elif scale == "quick":
        timing = dict(warmup=1, repeats=5, sample_s=0.003, budget_s=3.0)
    else:
        timing = dict(warmup=2, repeats=9, sample_s=0.005, budget_s=8.0)
    opts = {"sync": sync, "timing": timing}
    passes = 1 if scale == "tiny" else 2
    retake_budget = {"tiny": 0.0, "quick": 25.0, "full": 120.0}[scale]
    total = passes * sum(j.weight for j in jobs)
    done = 0.0
    best: list[dict | None] = [None] * len(jobs)
    monitor = LoadMonitor()

    def one(i: int, job: Job, label: str) -> None:
        if progress:
            progress(min(done, total), total, label)
        mon = LoadMonitor()
        t, flops, nbytes = BENCHES[job.kind](torch, dev, job.params, cold, opts)
        other = mon.other_fraction()
        row = {"kind": job.kind, **job.params, "flops": flops, "bytes": nbytes, "seconds": t.seconds,
               "repeats": t.repeats, "spread": round(t.spread, 4),
               "other_cpu": None if other is None else round(other, 3)}
        prev = best[i]
        if prev is None or row["seconds"] < prev["seconds"]:
            if prev is not None:
                row["repeats"] += prev["repeats"]
            best[i] = row
        else:
            prev["repeats"] += t.repeats
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    with torch.inference_mode():
        for pas in range(passes):
            for i, job in enumerate(jobs):
                one(i, job, job.label + (f" (pass {pas + 1}/{passes})" if passes > 1 else ""))
                done += job.weight
        # retake what another process disturbed (its CPU share while we timed it)
        start = time.perf_counter()
        for _ in range(3):
            busy = [i for i, r in enumerate(best) if r and (r["other_cpu"] or 0.0) > CONTENDED]
            if not busy or time.perf_counter() - start > retake_budget:
                break
            for i in busy:
                if time.perf_counter() - start > retake_budget:
                    break
                wait_for_quiet(min(5.0, retake_budget / 4))
                one(i, jobs[i], jobs[i].label + " (retake: the CPU was shared)")
    rows = [r for r in best if r is not None]
    if progress:
        progress(total, total, "done")
    other = monitor.other_fraction()
    return {"measurements": rows, "threads": n_threads, "llc_bytes": llc, "scale": scale, "passes": passes,
            "dtypes": p.dtypes, "device_type": dev.type, "other_cpu_fraction": other}


def cpu_model_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_fingerprint(device: str) -> dict:
    """What the profile records about the device: type, name, CPU model / GPU name, cores, memory."""
    torch = require_torch()
    dev = check_device(device)
    fp = {"type": dev.type, "name": "", "cpu_model": cpu_model_name(), "gpu_name": None,
          "cores": cpu_count(), "memory_gb": round(device_memory_bytes(torch.device("cpu")) / 1e9, 3)}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        fp.update(gpu_name=props.name, name=props.name, memory_gb=round(props.total_memory / 1e9, 3),
                  multiprocessors=int(props.multi_processor_count))
    elif dev.type == "mps":
        import platform

        fp.update(gpu_name=f"Apple GPU ({platform.machine()})", name=f"Apple GPU ({platform.machine()})")
    else:
        fp["name"] = fp["cpu_model"]
    return fp


CONTENDED = 0.15  # other processes' CPU share above which a measurement is retaken


def wait_for_quiet(max_s: float, threshold: float = 0.10, window_s: float = 0.5) -> bool:
    """Wait (at most ``max_s``) until other processes use under ``threshold`` of the CPUs."""
    end = time.perf_counter() + max_s
    while True:
        mon = LoadMonitor()
        time.sleep(window_s)
        f = mon.other_fraction()
        if f is None or f < threshold:
            return True
        if time.perf_counter() >= end:
            return False


class LoadMonitor:
    """How much CPU other processes used while we measured (Linux /proc; None elsewhere).

    ``other_fraction`` = CPU time of everything but this process / (wall time x CPUs).
    Timings taken while it is high are inflated by contention; the commands warn."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as fh:
                parts = fh.readline().split()[1:]
            vals = [int(x) for x in parts]
            busy = sum(vals) - vals[3] - (vals[4] if len(vals) > 4 else 0)  # minus idle and iowait
            t = os.times()
            return time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), t.user + t.system
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def other_fraction(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        if wall <= 0:
            return None
        other = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, other) / (wall * (os.cpu_count() or 1))
