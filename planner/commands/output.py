"""CLI printing helpers: JSON to stdout, rich consoles at the terminal's width, and the
columns a table keeps at that width (file helpers: planner.files)."""

from __future__ import annotations

import os
from typing import Any

from planner.files import dumps_json


def print_json(obj: Any) -> None:
    print(dumps_json(obj))


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
