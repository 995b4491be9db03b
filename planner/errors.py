"""User-facing input errors: one line naming the file, the field and the value.

The CLI turns a :class:`InputError` into that line on stderr and exit code 2; library
callers can catch it like any ValueError.
"""

from __future__ import annotations

from typing import Any


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
            parts.append(str(self.file))
        if self.field:
            parts.append(f"field '{self.field}'")
        if self.has_value:
            shown = repr(self.value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            parts.append(f"value {shown}")
        where = ": ".join([", ".join(parts)]) if parts else ""
        text = f"{where}: {self.reason}" if where else self.reason
        return " ".join(text.split())  # guarantee a single line


class CheckFailed(RuntimeError):
    """A regression check did not hold (exit code 1)."""
