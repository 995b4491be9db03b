"""CLI printing helpers: JSON to stdout and rich consoles (file helpers: planner.files)."""

from __future__ import annotations

from typing import Any

from planner.files import dumps_json


def print_json(obj: Any) -> None:
    print(dumps_json(obj))


def console():
    """A rich console; when output is not a terminal use a fixed 150 columns so tables in
    logs and the README are readable and the output is deterministic."""
    import sys

    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=150, color_system=None)
