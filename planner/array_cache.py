"""A disk cache of computed numpy arrays, beside the byte cache
(planner.disk_cache.cache_read / cache_write, in ``disk_cache.cache_dir()``).

`planner recommend` spends most of its time in the accuracy model, and a scenario asked
twice asks the same (profile, strategy, grid) again: :func:`cached_array` keeps such
results. The key is a SHA-256 of everything the result depends on: the code that computed
it (:func:`code_stamp`: the sources of the modules it depends on), the caller's
description of its inputs (``key_text``: e.g. an accuracy profile's full content and the
strategy) and every array argument (dtype, shape and bytes). Values are .npy files (no pickles); unreadable or missing entries are
computed again. ``PLANNER_NO_CACHE=1`` turns the cache off.

Data layer: it imports nothing above planner.disk_cache (the callers describe their inputs
as text).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

# Bump when what a cached array means changes without a change of source.
CACHE_VERSION = 1


@lru_cache(maxsize=8)
def code_stamp(sources: tuple[str, ...] | None = None) -> str:
    """SHA-256 of the source of the package's modules that a cached array depends on
    (``sources``: paths relative to the package folder, a folder meaning every module under
    it; None: the whole package), numpy's version, Python's major.minor version and the
    platform: a cached array is reused only by the code that computed it (a few ms once per
    process). Keyed by its own sources only, an entry (and the shipped cache's, made on
    another machine of the same platform) survives edits elsewhere in the package."""
    import hashlib
    import sys

    root = Path(__file__).resolve().parent  # the package folder
    machine = getattr(os, "uname", lambda: None)()
    h = hashlib.sha256(f"{CACHE_VERSION}|{np.__version__}|{sys.version_info[0]}.{sys.version_info[1]}|"
                       f"{sys.platform}|{machine.machine if machine else ''}".encode())
    paths: set[Path] = set()
    for name in sources if sources is not None else ("",):
        p = root / name
        paths.update(p.rglob("*.py") if p.is_dir() else [p])
    for p in sorted(paths):
        h.update(p.relative_to(root).as_posix().encode("utf-8", "surrogateescape"))
        h.update(p.read_bytes())
    return h.hexdigest()


def cached_array(kind: str, compute, key_text: str, arrays, pair: bool = False,
                 sources: tuple[str, ...] | None = None):
    """``compute()``, cached on disk under ``cache_dir()/<kind>/`` (see the module
    docstring). ``compute()`` returns an array, or with ``pair`` a ``(lo, hi)`` pair of
    arrays or None (stored as an empty boolean array). ``sources``: the package's modules
    ``compute`` depends on (:func:`code_stamp`; None: all of them)."""
    import hashlib
    import io

    from planner.disk_cache import cache_dir, cache_read, cache_write

    if cache_dir() is None:
        return compute()
    h = hashlib.sha256(f"{kind}|{code_stamp(sources)}|{key_text}|".encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    key = h.hexdigest() + ".npy"
    raw = cache_read(kind, key)
    if raw is not None:
        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            arr = None
        if arr is not None:
            if pair:
                return None if arr.size == 0 and arr.dtype == bool else (arr[0], arr[1])
            return arr
    out = compute()
    if pair:
        arr = np.zeros(0, dtype=bool) if out is None else np.stack(np.broadcast_arrays(*out))
    else:
        arr = np.asarray(out)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    cache_write(kind, key, buf.getvalue())
    return out
