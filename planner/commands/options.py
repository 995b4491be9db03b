"""Command-line options that several commands take, in one home: the flag, its default and
its help. ``planner estimate`` and ``planner accuracy`` describe one configuration by the
same dtype and sparse-attention flags; the defaults are those of one estimate
(planner.cost.defaults, plain values: importing this loads no numpy)."""

from __future__ import annotations

from typing import Optional

import typer

from planner.cost.defaults import ESTIMATE_DEFAULTS as D


def weight_dtype() -> str:
    return typer.Option(D["weight_dtype"], "--weight-dtype", help="Weight storage dtype.")


def act_dtype(default: Optional[str] = D["act_dtype"],
              help: str = "Activation / compute dtype.") -> Optional[str]:
    return typer.Option(default, "--act-dtype", help=help)


def kv_dtype() -> str:
    return typer.Option(D["kv_dtype"], "--kv-dtype", help="KV-cache dtype.")


def kv_budget() -> int:
    return typer.Option(D["kv_budget"], "--kv-budget", help="Sparse-attention KV budget in tokens (0: dense).")


def json_flag(help: str = "Print JSON.") -> bool:
    return typer.Option(False, "--json", help=help)


def refuse_unused(mode: str, given: dict) -> None:
    """One line naming the first option that ``mode`` does not read, where it was given
    (``given``: flag name -> value; None, False and empty mean not given). Such an option
    was ignored in silence: ``validate --measured F.csv -m qwen3-8b`` replayed every model,
    ``calibrate --refit P --compare A B`` compared nothing."""
    from planner.errors import InputError

    for flag, value in given.items():
        if value is not None and value is not False and value != () and value != []:
            raise InputError(f"is not used with {mode}: leave it out", field=flag, value=value,
                             has_value=not isinstance(value, bool))
