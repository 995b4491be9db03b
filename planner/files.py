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


def mtimes(paths) -> tuple:
    """The modification time (ns) of each path, None where it cannot be read: a key for
    memos of lookups along folders (a file created, renamed or removed in a folder moves
    the folder's time; planner.engine_profiles, planner.calibrate.lookup)."""
    out = []
    for p in paths:
        try:
            out.append(os.stat(p).st_mtime_ns)
        except OSError:
            out.append(None)
    return tuple(out)


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
    is not itself a folder, nor a device, pipe or socket (``-o /dev/full`` replaced the
    device with a file); every failure is an InputError naming the path. A symbolic link
    is followed: the file it names is replaced and the link stays (planner.catalog.
    refuse_shipped judges that file, so a link may not carry a write into a shipped
    folder, nor one in a shipped folder be replaced)."""
    from planner.errors import InputError

    p = Path(path)
    try:
        if p.is_symlink():
            p = Path(os.path.realpath(p))
        if p.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(p))
        if p.exists() and not p.is_file():
            raise InputError("cannot write: not a regular file (a device, a pipe or a socket)", file=str(path))
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
