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


def console(wide: bool = False):
    """A rich console. In a terminal: its width (or $COLUMNS). When output is not a terminal:
    $COLUMNS if set, else a fixed 150 columns so tables in logs and the README are readable
    and deterministic. ``wide``: no width limit (tables show every column, uncut)."""
    import sys

    from rich.console import Console

    width = None
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and 20 <= int(cols) <= 10_000:
        width = int(cols)
    if wide:
        return Console(width=1000, color_system=None if not sys.stdout.isatty() else "auto", soft_wrap=True)
    if sys.stdout.isatty():
        return Console(width=width)
    return Console(width=width or 150, color_system=None)


def fit_columns(columns: list[str], rows: list[list[str]], width: int, drop_order: tuple[str, ...],
                gap: int = 2) -> list[str]:
    """The columns to show so a table of ``rows`` fits ``width`` characters: columns in
    ``drop_order`` are dropped first to last until it fits; the others are never dropped
    (and never cut: they are rendered no_wrap at their full width)."""
    widths = {c: max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)}
    shown = list(columns)
    for name in drop_order:
        if sum(widths[c] for c in shown) + gap * (len(shown) - 1) <= width:
            break
        if name in shown:
            shown.remove(name)
    return shown


# Temporary files and folders being written now: removed by the signal handler that
# planner.cli installs (SIGTERM, SIGHUP) and by the except clauses below.
_LIVE_TEMPS: set[str] = set()


def _write_error(exc: OSError, path: str | Path):
    """An OS error on a write as a one-line input error naming the path and the reason."""
    from planner.errors import InputError

    reason = exc.strerror or str(exc)[:80] or type(exc).__name__
    if isinstance(exc, IsADirectoryError):
        reason = "is a folder, not a file"
    elif isinstance(exc, (FileExistsError, NotADirectoryError)):
        reason = "a parent folder is a file"
    return InputError(f"cannot write: {reason}", file=str(path))


def remove_live_temps() -> None:
    """Delete every temporary file or folder still being written (signal handlers)."""
    import shutil

    for tmp in list(_LIVE_TEMPS):
        _LIVE_TEMPS.discard(tmp)
        try:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.unlink(tmp)
        except OSError:
            pass


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it into place."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _target(path: str | Path) -> Path:
    """Check the target can be written to: its folder exists (created if missing) and it
    is not itself a folder; every failure is an InputError naming the path."""
    p = Path(path)
    try:
        if p.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(p))
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(exc, p) from None
    return p


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in one piece: a temporary file beside it, fsync, rename.
    OS errors (a missing or read-only folder, a folder as target, a name too long, a disk
    full midway) become InputErrors naming the path; the temporary file never stays."""
    p = _target(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:60]}.", suffix=".tmp", dir=str(p.parent))
        _LIVE_TEMPS.add(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        _LIVE_TEMPS.discard(tmp)
    except BaseException as exc:
        if tmp is not None:
            _LIVE_TEMPS.discard(tmp)
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise _write_error(exc, p) from None
        raise


def atomic_write_files(files: dict[str | Path, str | bytes]) -> None:
    """Write several files that belong together (a Markdown report and its plots): all are
    written into a temporary folder beside the first, then renamed into place at the end,
    so an error or a signal midway leaves none of them half-written and no temp folder."""
    import shutil

    if not files:
        return
    targets = [(_target(path), data) for path, data in files.items()]
    first = targets[0][0]
    tmpdir = None
    try:
        tmpdir = tempfile.mkdtemp(prefix=f".{first.name[:60]}.", suffix=".tmp", dir=str(first.parent))
        _LIVE_TEMPS.add(tmpdir)
        umask = os.umask(0)
        os.umask(umask)
        staged = []
        for i, (p, data) in enumerate(targets):
            tmp = os.path.join(tmpdir, f"{i}.part")
            with open(tmp, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~umask)
            staged.append((tmp, p))
        for tmp, p in staged:
            os.replace(tmp, p)
    except OSError as exc:
        raise _write_error(exc, first) from None
    finally:
        if tmpdir is not None:
            _LIVE_TEMPS.discard(tmpdir)
            shutil.rmtree(tmpdir, ignore_errors=True)


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
