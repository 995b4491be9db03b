"""Shared printing helpers: JSON to stdout, rich tables, atomic file writes."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _clean(x: Any) -> Any:
    """Make numpy scalars/arrays JSON-safe; NaN/inf become null rather than invalid JSON."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if np is not None:
        if isinstance(x, np.ndarray):
            return _clean(x.tolist())
        if isinstance(x, np.generic):
            x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def print_json(obj: Any) -> None:
    print(json.dumps(_clean(obj), indent=2))


def dumps_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2)


def console():
    """A rich console; when output is not a terminal use a fixed 150 columns so tables in
    logs and the README are readable and the output is deterministic."""
    import sys

    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=150, color_system=None)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it into place."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def fmt_si(x: float, unit: str = "", digits: int = 3) -> str:
    """1.23e-3 -> '1.23 m' + unit."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")]
    ax = abs(x)
    for scale, p in prefixes:
        if ax >= scale:
            return f"{x / scale:.{digits}g} {p}{unit}".strip()
    return f"{x:.{digits}g} {unit}".strip()
