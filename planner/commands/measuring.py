"""What `planner calibrate` and `planner validate` share on screen: the progress bar (on
stderr) and the warning when other processes used the CPUs while we measured."""

from __future__ import annotations


def progress_bar():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from planner.commands.output import console

    con = console()
    con.stderr = True
    return Progress(TextColumn("{task.description}", style="cyan"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=con, transient=False)


def warn_busy(fraction) -> None:
    import sys

    from planner.calibrate.quiet import BUSY_WARNING

    if fraction is not None and fraction > BUSY_WARNING:
        print(f"planner: warning: other processes used {fraction:.0%} of the CPUs while measuring; "
              "timings may be inflated (re-run on a quiet machine)", file=sys.stderr)
