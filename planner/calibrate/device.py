"""Device handling for the calibration benchmarks: pick and check the torch device,
synchronize it, set CPU threads, and read the facts a profile records about it (last-level
cache, memory, CPU model / GPU name).

torch is imported only through :func:`planner.calibrate.require_torch`, when called.
"""

from __future__ import annotations

import os
from typing import Callable

from planner.calibrate import DEVICES, require_torch
from planner.errors import InputError


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


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)


def keep_freed_memory() -> str | None:
    """Have glibc's allocator keep freed memory for reuse instead of returning it to the
    OS, as a tuned CPU deployment does (jemalloc / tcmalloc, as PyTorch's CPU tuning
    guide recommends). Otherwise every large activation tensor comes from fresh pages,
    and on a VM the page faults cost more than the op: ``silu(gate) * up`` on 512 x 8192
    fp32 took 17 ms against 4 ms with memory kept. Returns what was set (None: not glibc)."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return None
    return "glibc malloc: no mmap, no trim" if ok else None


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
