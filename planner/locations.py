"""Where the package's data files live and what a command may write: the shipped folders
(:func:`builtin_dir`: the checkout's top-level folders, else the installed ``planner_data``
package), the search path of a kind of spec (:func:`search_dirs`: ``$PLANNER_PATH``, then
the shipped folder), and the guards that keep a command from writing over a shipped file
(:func:`refuse_shipped`) or over its own input (:func:`refuse_input`). Each refusal is an
:class:`InputError` naming the file and the field (exit 2).

Data layer: it imports nothing of the package but planner.errors (planner.catalog finds
and loads specs along these folders; planner.disk_cache keeps its shipped layer in one).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from planner.errors import InputError


@lru_cache(maxsize=None)
def builtin_dir(kind: str) -> Path:
    """The shipped directory for ``kind``: the checkout's top-level folder, else the
    installed ``planner_data`` package (a non-editable install). Found once per process
    (the package does not move while it runs)."""
    checkout = Path(__file__).resolve().parent.parent / kind
    if checkout.is_dir():
        return checkout
    import importlib.util

    try:
        spec = importlib.util.find_spec(f"planner_data.{kind}")
    except ModuleNotFoundError:  # pragma: no cover - broken install
        return checkout
    if spec is None or not spec.submodule_search_locations:
        return checkout
    return Path(list(spec.submodule_search_locations)[0])


SHIPPED_KINDS = ("hardware", "models", "engines", "tasks", "calibration", "examples")


def refuse_shipped(path: str | Path, field: str = "output", hint: str = "write elsewhere",
                   new_files_ok: bool = False) -> None:
    """Nothing the package ships is overwritten by a command: a write into a shipped folder
    (:data:`SHIPPED_KINDS`, checkout or installed ``planner_data``) or into the installed
    package itself is a one-line error (exit 2); ``new_files_ok`` lets a command add a new
    file there (``planner models import -o models/my.yaml`` adds a model to a checkout) but
    still never replace one. Maintainer scripts under ``benchmarks/`` and ``make
    refit-serving`` regenerate shipped files on purpose and do not call this."""
    target = Path(path).expanduser().resolve()
    if new_files_ok and not target.exists():
        return
    package = Path(__file__).resolve().parent
    for guarded in (*(builtin_dir(k).resolve() for k in SHIPPED_KINDS), package):
        if target == guarded or guarded in target.parents:
            raise InputError(f"refusing to write into {guarded} (shipped files): {hint}", file=str(path), field=field)


def refuse_input(path: str | Path, inputs, field: str = "output") -> None:
    """A command never writes over a file it reads (``planner fit log.jsonl -o log.jsonl``
    replaced the eval log with the profile): an output that is one of ``inputs`` (the same
    file, through links too) is a one-line error (exit 2) before anything runs."""
    target = Path(path).expanduser().resolve()
    for given in inputs:
        if given is not None and Path(given).expanduser().resolve() == target:
            raise InputError(f"refusing to write over an input of this command ({given}): write elsewhere",
                             file=str(path), field=field)


def search_dirs(kind: str) -> list[Path]:
    dirs: list[Path] = []
    for entry in os.environ.get("PLANNER_PATH", "").split(os.pathsep):
        if entry:
            p = Path(entry).expanduser()
            dirs.append(p / kind if (p / kind).is_dir() else p)
    dirs.append(builtin_dir(kind))
    return dirs
