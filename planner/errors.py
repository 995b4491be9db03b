"""User-facing input errors: one line naming the file, the field and the value.

The CLI turns a :class:`InputError` into that line on stderr and exit code 2; library
callers can catch it like any ValueError.
"""

from __future__ import annotations

import reprlib
from typing import Any

MAX_VALUE_CHARS = 80
MAX_REASON_CHARS = 200
MAX_FILE_CHARS = 120


class _ShortRepr(reprlib.Repr):
    """repr that visits a bounded part of a value: a YAML alias bomb or a 401-digit
    integer costs microseconds (reprlib caps depth and items; huge ints are not converted)."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple = 3, 4, 6, 6
        self.maxset = self.maxfrozenset = self.maxdeque = 6
        self.maxstring = self.maxother = self.maxlong = MAX_VALUE_CHARS

    def repr_int(self, x, level):
        if x.bit_length() > 200:
            return f"<integer of ~{int(x.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(x, level)

    def repr_str(self, x, level):
        return super().repr_str(x[: self.maxstring * 2], level)


_SHORT = _ShortRepr()


def short_repr(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A one-line repr of at most ``limit`` characters that never walks a huge value."""
    try:
        shown = _SHORT.repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails is still reported
        shown = f"<{type(value).__name__}>"
    shown = " ".join(shown.split())
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputError(ValueError):
    """Bad user input (a file, a flag, a field): reported in one line, exit code 2."""

    def __init__(self, reason: str, *, file: str | None = None, field: str | None = None,
                 value: Any = None, has_value: bool | None = None):
        self.reason = reason
        self.file = file
        self.field = field
        self.value = value
        self.has_value = has_value if has_value is not None else value is not None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.file:
            f = str(self.file)
            parts.append(f if len(f) <= MAX_FILE_CHARS else "..." + f[-(MAX_FILE_CHARS - 3):])
        if self.field:
            parts.append(f"field '{_clip(self.field, MAX_VALUE_CHARS)}'")
        if self.has_value:
            parts.append(f"value {short_repr(self.value)}")
        where = ": ".join([", ".join(parts)]) if parts else ""
        reason = _clip(self.reason, MAX_REASON_CHARS)
        text = f"{where}: {reason}" if where else reason
        return " ".join(text.split())  # guarantee a single line


# How an error names a field: as the user typed it. One rule, two spellings: raised without
# a file, a field is the command line's flag without its dashes (``spec-tokens`` for
# ``--spec-tokens``: :func:`flag_name`, what planner.bounds.check_count and every command
# name); attributed to a file by :func:`in_file`, a flag-named field becomes that file's key
# (``spec_tokens``: :func:`file_key`); a field read from a file (a YAML path, a CSV column)
# keeps the file's spelling.


def flag_name(field: str) -> str:
    """A parameter's name as its command-line flag spells it, without the leading dashes."""
    return field.replace("_", "-")


def file_key(field: str) -> str:
    """A flag-named field as a YAML file spells the key: underscores. A dotted path is a
    file's already (its segments may be names, as a device's ``h100-sxm``) and is kept."""
    return field if "." in field else field.replace("-", "_")


def in_file(exc: InputError, file: str, prefix: str = "") -> InputError:
    """The same error attributed to ``file`` (and its field, as the file spells it, put
    under ``prefix``) when it was raised without a file: a field deep in a scenario or
    checks file names the file."""
    if exc.file is not None:
        return exc
    key = file_key(exc.field) if exc.field else None
    field = f"{prefix}{key}" if prefix and key else (key or (prefix.rstrip(".") or None))
    return InputError(exc.reason, file=file, field=field, value=exc.value, has_value=exc.has_value)


class CheckFailed(RuntimeError):
    """A regression check did not hold (exit code 1)."""
