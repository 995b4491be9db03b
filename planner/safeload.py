"""Bounded readers for every input file: YAML, JSON and JSONL, and CSV's text and header
(:func:`read_text`, :func:`check_header`; planner.measured reads the rows).

One home for the limits any input must respect before a spec sees it:

- size: at most :data:`MAX_FILE_BYTES` (:data:`MAX_LOG_BYTES` for JSONL/CSV logs);
- structure: nesting at most :data:`MAX_DEPTH` deep, at most :data:`MAX_NODES` values;
- YAML aliases (``*name``, ``<<: *name``) may expand the document to at most
  :data:`MAX_YAML_VALUES` values: beyond, it is refused before it is built (a 500-byte
  "billion laughs" file expands to gigabytes); python tags are refused by the safe loader;
- numbers: finite and at most :data:`MAX_ABS_NUMBER` in magnitude (1e18: above any count,
  byte size or FLOP rate the planner models in its units), so an infinity, a NaN or a
  401-digit integer never reaches arithmetic deeper in;
- strings: at most :data:`MAX_STRING_CHARS` characters;
- text: UTF-8; any OS error (missing, unreadable, a folder, a name too long) is an
  :class:`~planner.errors.InputError` naming the file and the reason.

Each violation is a one-line :class:`InputError` naming the file and the field path.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator

from planner.errors import InputError

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_LOG_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 24
MAX_NODES = 1_000_000
MAX_YAML_VALUES = 100_000
MAX_ABS_NUMBER = 1e18
MAX_STRING_CHARS = 4_000


def os_reason(exc: OSError) -> str:
    """A short reason for an OS error: 'No such file or directory', 'File name too long'..."""
    return exc.strerror or type(exc).__name__


def read_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes; every OS error and an oversized file become an InputError."""
    p = str(path)
    try:
        with open(p, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > limit:
                raise InputError(f"file larger than {limit // (1024 * 1024)} MiB", file=p)
            data = fh.read(limit + 1)
    except IsADirectoryError:
        raise InputError("is a folder, not a file", file=p) from None
    except FileNotFoundError:
        raise InputError("file not found", file=p) from None
    except OSError as exc:
        raise InputError(f"cannot read: {os_reason(exc)}", file=p) from None
    if len(data) > limit:  # /proc-like files report size 0
        raise InputError(f"file larger than {limit // (1024 * 1024)} MiB", file=p)
    return data


def decode_text(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=file) from None


def read_text(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    return decode_text(read_bytes(path, limit), str(path))


def _field(path: list) -> str | None:
    return ".".join(str(x) for x in path) or None


def check_tree(data: Any, file: str, prefix: tuple = ()) -> Any:
    """Walk parsed data once (iteratively) and enforce the depth, size, number and string
    limits; returns ``data`` unchanged."""
    stack: list[tuple[Any, list, int]] = [(data, list(prefix), 0)]
    nodes = 0
    while stack:
        value, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InputError(f"more than {MAX_NODES:,} values", file=file)
        if depth > MAX_DEPTH:
            raise InputError(f"nested deeper than {MAX_DEPTH} levels", file=file, field=_field(path[:MAX_DEPTH]))
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            if abs(value) > MAX_ABS_NUMBER:
                raise InputError(f"number too large (limit {MAX_ABS_NUMBER:g})", file=file, field=_field(path),
                                 value=value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InputError("must be a finite number", file=file, field=_field(path), value=value)
            if abs(value) > MAX_ABS_NUMBER:
                raise InputError(f"number too large (limit {MAX_ABS_NUMBER:g})", file=file, field=_field(path),
                                 value=value)
        elif isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                raise InputError(f"text longer than {MAX_STRING_CHARS:,} characters", file=file,
                                 field=_field(path), value=value)
        elif isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, (str, int)) or isinstance(k, bool):
                    raise InputError("keys must be text", file=file, field=_field(path), value=k)
                if isinstance(k, str) and len(k) > MAX_STRING_CHARS:
                    raise InputError("key too long", file=file, field=_field(path), value=k)
                stack.append((v, path + [k], depth + 1))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                stack.append((v, path + [i], depth + 1))
    return data


# --------------------------------------------------------------------------- YAML

# YAML 1.2 core-schema floats in exponent form that YAML 1.1 (PyYAML's resolver) reads as
# text: an exponent without a dot (``1e-3``, ``1E5``, ``-2e+3``) or without a sign
# (``1.5e3``). YAML 1.2.2 spec, section 10.3.2 (core schema, tag resolution): float is
# ``[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?``. Forms YAML 1.1
# already reads as numbers keep its reading; integers stay integers.
YAML12_EXP_FLOAT = r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"

_LOADER = None


def yaml_loader():
    """The one loader every YAML input goes through: the safe loader (libyaml's when
    available: ~10x faster) whose resolver also reads :data:`YAML12_EXP_FLOAT` as floats,
    so ``range_ratio: 1e-3`` is a number in every field and every file (a subclass: the
    yaml module's own loaders are left alone)."""
    global _LOADER
    if _LOADER is None:
        import re

        import yaml

        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loader = type("PlannerLoader", (base,), {})
        loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(YAML12_EXP_FLOAT),
                                     list("-+.0123456789"))
        _LOADER = loader
    return _LOADER


def _yaml_guard(text: str, file: str) -> None:
    """From the event stream, before anything is built: refuse nesting deeper than
    MAX_DEPTH, aliases that expand the document beyond MAX_YAML_VALUES values (a
    "billion laughs" bomb is refused in microseconds; ordinary anchors for reuse pass) and
    a key written twice in one mapping (the YAML 1.2 spec, section 3.2.1.1: "the content of
    a mapping node is an unordered set of key/value node pairs, with the restriction that
    each of the keys is unique"; PyYAML keeps the last one in silence, so ``name:`` written
    twice renamed a device)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    sizes: dict[str, int] = {}  # anchor -> values in the anchored node, aliases expanded
    # open collections: [anchor, values so far, keys seen (None: a sequence), children, child's label]
    frames: list[list] = [[None, 0, None, 0, ""]]
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            parent = frames[-1]
            if parent[2] is None:
                parent[4] = str(parent[3])
            elif parent[3] % 2 == 0:  # a key of the mapping
                key = event.value if isinstance(event, yaml.ScalarEvent) else None
                if key is not None and key in parent[2]:
                    mark = getattr(event, "start_mark", None)
                    where = f" (line {mark.line + 1})" if mark is not None else ""
                    raise InputError(f"key written twice in one mapping{where}: YAML keeps only one of them",
                                     file=file, field=".".join([f[4] for f in frames[1:-1]] + [key]))
                if key is not None:
                    parent[2].add(key)
                parent[4] = key if key is not None else "?"
            parent[3] += 1
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            frames.append([event.anchor, 1, set() if isinstance(event, yaml.MappingStartEvent) else None, 0, ""])
            if len(frames) - 1 > MAX_DEPTH:
                raise InputError(f"nested deeper than {MAX_DEPTH} levels", file=file)
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, n = frames.pop()[:2]
            if anchor is not None:
                sizes[anchor] = n
        elif isinstance(event, yaml.ScalarEvent):
            n = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            n = sizes.get(event.anchor, 1)
        else:
            continue
        frames[-1][1] += n
        if frames[-1][1] > MAX_YAML_VALUES:
            raise InputError(f"YAML aliases expand to more than {MAX_YAML_VALUES:,} values", file=file)


def loads_yaml(text: str, file: str, check: bool = True) -> Any:
    """Parse YAML text under the limits above; every problem is one InputError.
    ``check=False`` leaves :func:`check_tree`'s walk to the caller (planner.catalog.parse_spec
    runs it before validation), the event-stream guard runs always."""
    import yaml

    try:
        _yaml_guard(text, file)
        data = yaml.load(text, Loader=yaml_loader())
    except InputError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"malformed YAML{where}: {exc.problem}", file=file) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=file) from None
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a timestamp out of range
        raise InputError(f"malformed YAML: {type(exc).__name__}: {exc}", file=file) from None
    return check_tree(data, file) if check else data


def read_yaml(path: str | Path) -> Any:
    return loads_yaml(read_text(path), str(path))


# --------------------------------------------------------------------------- JSON / JSONL

def _no_constant(name: str):
    raise ValueError(f"{name} is not a number here")


def loads_json(text: str, file: str, one_line: bool = False) -> Any:
    """Parse one JSON document: no NaN/Infinity, bounded nesting and numbers."""
    import json

    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if one_line else f"line {exc.lineno}, column {exc.colno}"
        raise InputError(f"malformed JSON: {exc.msg} ({where})", file=file) from None
    except RecursionError:
        raise InputError(f"malformed JSON: nested deeper than {MAX_DEPTH} levels", file=file) from None
    except ValueError as exc:  # NaN/Infinity, an integer of more than 4300 digits
        raise InputError(f"malformed JSON: {str(exc)[:80]}", file=file) from None
    return check_tree(data, file)


def read_json(path: str | Path) -> Any:
    return loads_json(read_text(path), str(path))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSONL file."""
    p = str(path)
    text = read_text(path, MAX_LOG_BYTES)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line:
            yield lineno, loads_json(line, f"{p}:{lineno}", one_line=True)


# --------------------------------------------------------------------------- CSV

def check_header(header, file: str) -> list[str]:
    """A CSV header line's column names; a name written twice is an InputError naming it
    (a dict reader keeps the last column of that name in silence, so a second ``isl``
    column replaced the first one's lengths)."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError("line 1: column written twice in the header", file=file, field=name)
        seen.add(name)
    return list(header)


def is_file(path: str | Path) -> bool:
    """Path.is_file that answers False (not OSError) for a name too long or a NUL byte."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False
