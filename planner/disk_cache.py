"""The planner's on-disk byte cache: the user's folder (:func:`cache_dir`) and the shipped,
read-only layer beneath it (:func:`shipped_cache_dir`), read and written by kind and key
(:func:`cache_read`, :func:`cache_write`; atomic writes, at most ``CACHE_MAX_ENTRIES`` a
kind). It only ever saves time: a cache that cannot be read or written is skipped. Its
users: planner.catalog.read_yaml (parsed YAML) and planner.array_cache (computed arrays).

Data layer: it imports planner.errors, planner.locations and (lazily) planner.files.
"""

from __future__ import annotations

import os
from pathlib import Path

from planner.errors import InputError
from planner.locations import builtin_dir


def cache_dir() -> Path | None:
    """The folder of the planner's on-disk caches: ``$PLANNER_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/planner``, else ``~/.cache/planner``; None (no caching) where
    ``PLANNER_NO_CACHE`` is set to anything but "" or "0"."""
    if os.environ.get("PLANNER_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = os.environ.get("PLANNER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "planner"


# The shipped, read-only layer of the cache (top-level ``precomputed/``, installed as
# ``planner_data.precomputed``): entries keyed exactly as the user's, written by
# `make precompute` (the default scenario's parsed YAML and accuracy arrays), never by a
# command. ``PLANNER_NO_SHIPPED_CACHE=1`` skips it (`make precompute` itself).
SHIPPED_CACHE = "precomputed"


def shipped_cache_dir() -> Path | None:
    """The shipped cache's folder, or None where it is off (``PLANNER_NO_CACHE`` or
    ``PLANNER_NO_SHIPPED_CACHE`` set to anything but "" or "0")."""
    if os.environ.get("PLANNER_NO_SHIPPED_CACHE", "") not in ("", "0") or cache_dir() is None:
        return None
    return builtin_dir(SHIPPED_CACHE)


def cache_read(kind: str, key: str) -> bytes | None:
    """The bytes cached under ``kind/key``: the user's cache, else the shipped one (a fresh
    install's first run); None where neither has it (or caching is off, or unreadable)."""
    d = cache_dir()
    if d is None:
        return None
    for folder in (d, shipped_cache_dir()):
        if folder is None:
            continue
        try:
            return (folder / kind / key).read_bytes()
        except (OSError, ValueError):
            continue
    return None


def cache_write(kind: str, key: str, data: bytes) -> None:
    """Store ``data`` under ``kind/key`` atomically (planner.files); a cache that cannot be
    written is skipped silently: it only ever saves time."""
    d = cache_dir()
    if d is None:
        return
    from planner.files import atomic_write_bytes

    try:
        atomic_write_bytes(d / kind / key, data)
        _evict(d / kind)
    except (InputError, OSError):
        pass


# Entries kept per cache kind; beyond, the least recently written quarter goes.
CACHE_MAX_ENTRIES = 4096


def _evict(folder: Path) -> None:
    """Keep ``folder`` at most CACHE_MAX_ENTRIES files: the oldest (by modification time)
    are removed first, down to three quarters of the limit."""
    with os.scandir(folder) as it:
        entries = [e for e in it if e.is_file() and not e.name.startswith(".")]
    if len(entries) <= CACHE_MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for e in entries[:len(entries) - CACHE_MAX_ENTRIES * 3 // 4]:
        try:
            os.unlink(e.path)
        except OSError:
            pass
