"""The README's command blocks and lists against what the CLI accepts today.

Cheap, stable checks only (no timing, no cost-model numbers, which the integrator
regenerates): every ``$ planner ...`` line in README.md names a command and flags that
command's ``--help`` lists, and the lists the README spells out (the engines of
``--engine``, the objectives, the order in which a narrow terminal drops columns) are
the shipped ones. A renamed flag or a new engine then fails here instead of leaving the
README behind.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _planner_lines() -> list[list[str]]:
    """The argument lists of every ``$ planner ...`` line (env assignments, comments,
    pipes and the ``[...]`` of optional parts left out)."""
    out = []
    for line in README.splitlines():
        if not line.startswith("$ "):
            continue
        cmd = re.split(r"\s+#", line[2:], maxsplit=1)[0].split("|")[0]
        words = shlex.split(cmd.replace("[", " ").replace("]", " "))
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words.pop(0)
        if words and words[0] == "planner":
            out.append(words[1:])
    return out


LINES = _planner_lines()


def _help(capsys, command: list[str]) -> str:
    capsys.readouterr()
    rc = main([*command, "--help"])
    assert rc in (0, None)
    return capsys.readouterr().out


def test_the_readme_shows_planner_commands():
    assert len(LINES) >= 20
    assert {w[0] for w in LINES} >= {"recommend", "estimate", "fit", "accuracy", "calibrate", "validate",
                                     "report", "check"}


@pytest.mark.parametrize("command", sorted({w[0] for w in LINES}))
def test_every_flag_a_readme_command_uses_is_in_its_help(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = _help(capsys, [command])
    offered = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))
    used = {w.split("=")[0] for words in LINES if words[0] == command for w in words[1:] if w.startswith("-")}
    assert used, command
    assert not used - offered, f"README uses flags `planner {command} --help` does not list: {used - offered}"


def test_the_engines_the_readme_lists_are_the_shipped_ones():
    from planner.engine_profiles import engine_names

    listed = re.search(r"`--engine ([a-z|]+)`", README).group(1).split("|")
    assert sorted(listed) == sorted(engine_names())


def test_the_objectives_the_readme_lists_are_the_searchs():
    from planner.frontier import OBJECTIVES

    para = README[README.index("`--objective`") + len("`--objective`"):]
    para = para[:para.index(")")]
    assert re.findall(r"`([a-z-]+)`", para) == list(OBJECTIVES)


def test_the_column_drop_order_the_readme_gives_is_the_tables():
    from planner.commands.recommend import DROP_ORDER

    m = re.search(r"drop in this order until the table fits: ([^.]+?), and the title", README.replace("\n", " "))
    assert tuple(c.strip() for c in m.group(1).split(",")) == DROP_ORDER


def _heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, characters other than
    word characters, hyphens and spaces dropped, spaces as hyphens, a repeat suffixed -1, -2
    (headings inside code fences are not headings)."""
    seen: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
    return {s if i == 0 else f"{s}-{i}" for s, n in seen.items() for i in range(n)}


def test_every_link_in_the_readme_and_docs_reaches_a_file_and_heading():
    """A `](file#anchor)` or `](#anchor)` link in README.md or docs/*.md names a file that exists
    and a heading in it: a renamed or moved heading fails here instead of leaving a dead link."""
    dead = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, anchor in re.findall(r"\]\(([^)\s#:]*)(?:#([^)\s]+))?\)", path.read_text(encoding="utf-8")):
            if (not target and not anchor) or (target and "." not in target):
                continue  # not a link to a file: text such as H[n](pi)
            dest = path if not target else (path.parent / target)
            if not dest.exists():
                dead.append(f"{path.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _heading_anchors(dest.read_text(encoding="utf-8")):
                dead.append(f"{path.name}: {target}#{anchor}")
    assert not dead, dead
