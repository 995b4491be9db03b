"""File helpers shared by the library and the CLI: atomic writes and JSON text.

A data-layer module (it imports nothing from planner), so that library modules that
write profiles, reports or fitted files never import the CLI layer.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def json_safe(x: Any) -> Any:
    """Make numpy scalars/arrays JSON-safe; NaN/inf become null rather than invalid JSON."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if np is not None:
        if isinstance(x, np.ndarray):
            return json_safe(x.tolist())
        if isinstance(x, np.generic):
            x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def dumps_json(obj: Any) -> str:
    return json.dumps(json_safe(obj), indent=2)


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
