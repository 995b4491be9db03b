"""`planner <command>` builds only its command's module (planner.cli.COMMAND_MODULES):
the same commands, help and errors as the full app (the oracle: typer's command built
from every module), and nothing else imported."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from planner import cli


def _help(command, args):
    try:
        command.main(args=args, prog_name="planner", standalone_mode=False)
    except (typer.Exit, SystemExit):
        pass


def test_the_module_map_names_every_command_of_the_full_app():
    full = typer.main.get_command(cli.build_app())
    assert sorted(full.commands) == sorted(n for names in cli.COMMAND_MODULES.values() for n in names)
    for module, names in cli.COMMAND_MODULES.items():
        assert sorted(typer.main.get_command(cli.build_app((module,))).commands) == sorted(names)
    assert cli.app.registered_commands or cli.app.registered_groups  # planner.cli.app: the full app


@pytest.mark.parametrize("name", [n for names in cli.COMMAND_MODULES.values() for n in names])
def test_one_command_app_prints_the_full_apps_help(name, capsys):
    module = next(m for m, names in cli.COMMAND_MODULES.items() if name in names)
    outs = []
    for app in (cli.build_app(), cli.build_app((module,))):
        _help(typer.main.get_command(app), [name, "--help"])
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and f"Usage: planner {name}" in outs[0]


def test_errors_and_root_options_go_through_the_full_app(capsys):
    assert cli.main(["--version"]) == 0
    assert "planner" in capsys.readouterr().out
    assert cli.main(["recomend"]) == 2                    # a typo: the full app's usage error
    assert "No such command" in capsys.readouterr().err
    assert cli.main(["recommend", "--no-such-flag"]) == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_a_command_imports_only_its_module():
    code = ("import sys; from planner.cli import main; main(['estimate', '--help'])")
    out = subprocess.run([sys.executable, "-c", code + "\n"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: planner estimate" in out.stdout
    probe = ("import sys, contextlib, io\nfrom planner.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    main(['estimate', '--help'])\n"
             "print(sorted(m for m in sys.modules if m.startswith('planner.commands.')))")
    got = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "planner.commands.estimate" in got and "planner.commands.recommend" not in got
