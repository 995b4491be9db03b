"""`planner accuracy` (not yet implemented; the module is replaced by its owner)."""
import typer


def register(app: typer.Typer) -> None:
    pass
