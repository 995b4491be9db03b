"""`planner estimate` (filled in with the engine)."""
import typer


def register(app: typer.Typer) -> None:
    pass
