"""CLI command modules. Each exposes ``register(app)`` and keeps module-level imports to
typer and the standard library, so ``planner --help`` starts fast."""
