"""The ``planner`` command line (typer). Start-up stays light: command modules import
only typer at module level and load numpy, pydantic or torch inside the command."""

from __future__ import annotations

import sys

import typer

_SETTINGS = dict(
    name="planner",
    help="Hardware-aware cost simulator and inference planner for LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# the command modules (planner.commands.<module>.register), in the order `planner --help`
# lists them, and the commands each registers: a run of one command imports and builds
# only its module (the others cost ~25 ms of imports and signature inspection)
COMMAND_MODULES = {
    "catalog": ("hardware", "models"), "estimate": ("estimate",), "recommend": ("recommend",),
    "accuracy": ("fit", "accuracy"), "calibrate": ("calibrate",), "validate": ("validate",),
    "report": ("report",), "check": ("check",),
}


def _version(value: bool) -> None:
    if value:
        from planner import __version__

        print(f"planner {__version__}")
        raise typer.Exit(0)


def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                       callback=_version, is_eager=True)) -> None:
    """Hardware-aware cost simulator and inference planner for LLMs."""


def _on_signal(signum, frame) -> None:  # pragma: no cover - exercised by a subprocess test
    """SIGTERM/SIGHUP: remove temporary files being written, then die of the signal."""
    import os
    import signal

    from planner.files import remove_live_temps

    remove_live_temps()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    import signal

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            try:
                signal.signal(sig, _on_signal)
            except (ValueError, OSError):  # not the main thread
                pass


def build_app(modules=tuple(COMMAND_MODULES)) -> typer.Typer:
    """The typer app with the commands of ``modules`` (default: all of them)."""
    import importlib

    app = typer.Typer(**_SETTINGS)
    app.callback()(_root)
    for name in modules:
        importlib.import_module(f"planner.commands.{name}").register(app)
    return app


def _full_app() -> typer.Typer:
    if "app" not in globals():
        globals()["app"] = build_app()
    return globals()["app"]


def __getattr__(name: str):
    """``planner.cli.app``: the full app, built on first use."""
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_COMMANDS: dict = {}


def _command(args: list[str]):
    """The click command for ``args``: the app of the named command's module alone where
    the first argument names a command, else the full app (help, --version, errors).
    Built once per process and module (~25 ms of signature inspection for the full app):
    in-process callers (tests, the fuzzer) run main() many times."""
    module = next((m for m, names in COMMAND_MODULES.items() if args and args[0] in names), None)
    if module not in _COMMANDS:
        _COMMANDS[module] = _refuse_empty_text(typer.main.get_command(build_app((module,)) if module else _full_app()))
    return _COMMANDS[module]


def _refuse_empty_text(group):
    """Every text option of every command refuses an empty value, in one place: a name or a
    path given as ``""`` (``--scenario ""``, ``--models ""``, ``--arrival=``) ran the
    default in silence, or failed naming the folder ``.``; now one line naming the flag."""
    from planner.errors import InputError

    def guard(callback):
        def check(ctx, param, value):
            given = value if isinstance(value, (list, tuple)) else (value,)
            if any(isinstance(v, str) and not v.strip() for v in given):
                raise InputError("must not be empty", field=max(param.opts, key=len).lstrip("-"), value=value)
            return callback(ctx, param, value) if callback is not None else value
        return check

    def takes_text(param) -> bool:
        if param.param_type_name != "option" or getattr(param, "is_flag", False):
            return False
        desc = getattr(param, "type_descriptor", None)  # typer >= 0.29; click's ParamType before
        if desc is None:
            return getattr(getattr(param, "type", None), "name", "") == "text"
        ann = desc.annotation
        return ann is str or bool(getattr(ann, "__args__", None)) and all(a in (str, type(None)) for a in ann.__args__)

    stack = [group]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        for param in cmd.params:
            if takes_text(param):
                param.callback = guard(param.callback)
    return group


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_FREED_BYTES = 1 << 30
_MMAP_FROM_BYTES = 32 << 20  # glibc's largest allowed threshold on 64-bit (HEAP_MAX_SIZE / 2)


def _tune_allocator() -> None:
    """A command's process keeps the memory it frees for its next arrays (glibc only).

    By default glibc serves every allocation above 128 KiB with a fresh mmap and gives it
    back on free (the threshold adapts only partly), so each of the search's temporary
    arrays is faulted in and zeroed page by page again: a cold default `planner recommend`
    spent 0.56 s of system time, 0.24 s with this (medians back to back, 2-core VM;
    peak memory 216 -> 240 MB: docs/benchmarks-history.md). Arrays up to 32 MiB now come
    from the heap and freed memory stays there for reuse (RSS stays near the peak until
    exit, which a command reaches anyway). Only for the ``planner`` process itself (main() with no
    argv), never for a library caller; a no-op where libc.so.6 is not glibc's."""
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
        mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES)
        mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM_BYTES)
    except (OSError, AttributeError, ImportError):  # pragma: no cover - not glibc
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    if argv is None:
        _tune_allocator()
    try:  # typer >= 0.29 vendors click as typer._click; older typer depends on click
        from typer import _click as click
    except ImportError:  # pragma: no cover
        import click

    from planner.errors import CheckFailed, InputError

    # the vendored click has no Exit/Abort of its own (typer's are the ones raised then)
    exit_types = (typer.Exit, getattr(click.exceptions, "Exit", typer.Exit))
    abort_types = (typer.Abort, getattr(click.exceptions, "Abort", typer.Abort))
    import warnings

    # numeric warnings (overflow, 0/0) never reach the user: inputs are bounded at the edge
    # (planner.safeload, spec validators) and outputs are checked finite where they are made
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    if argv is None:
        _install_signal_handlers()
    args = list(argv if argv is not None else sys.argv[1:])
    command = _command(args)
    try:
        rc = command.main(args=args, prog_name="planner",
                          standalone_mode=False)
    except InputError as exc:
        print(f"planner: error: {exc.one_line()}", file=sys.stderr)
        rc = 2
    except CheckFailed as exc:
        print(f"planner: {exc}", file=sys.stderr)
        rc = 1
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message() if hasattr(exc, "format_message") else str(exc))
        rc = 0
    except click.exceptions.UsageError as exc:
        msg = " ".join(exc.format_message().split())
        print(f"planner: error: {msg}", file=sys.stderr)
        rc = 2
    except exit_types as exc:
        rc = getattr(exc, "exit_code", 0)
    except abort_types:
        print("planner: aborted", file=sys.stderr)
        rc = 130
    except KeyboardInterrupt:
        print("planner: interrupted", file=sys.stderr)
        rc = 130
    except BrokenPipeError:
        rc = 0
    except OSError as exc:  # a read or write the command did not anticipate: path and reason
        where = f"{str(exc.filename)[:120]}: " if exc.filename else ""
        print(f"planner: error: {where}{exc.strerror or type(exc).__name__}", file=sys.stderr)
        rc = 2
    if rc is None or not isinstance(rc, int):
        rc = 0
    if argv is None:
        sys.exit(rc)
    return rc


if __name__ == "__main__":  # pragma: no cover
    main()
