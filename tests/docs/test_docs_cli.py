"""docs/cli.md documents every command of the ``notifykit`` tool and every option.

The click group is walked recursively (plugin sandboxes included, as the installed plugins
contribute them); each command needs a heading ``notifykit <path>``, and under it every
option name and argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import click
import pytest

from notifykit.cli import cli

DOC = "cli.md"
HELP = {"-h", "--help"}


def walk(
    command: click.Command, path: tuple[str, ...], ctx: click.Context
) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(("notifykit", *path)), command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from walk(sub, (*path, name), click.Context(sub, parent=ctx, info_name=name))


COMMANDS = dict(walk(cli, (), click.Context(cli, info_name="notifykit")))


def names_of(command: click.Command, *, root: bool) -> list[str]:
    """Every option string (``-t``, ``--template``, ``--no-locked``) and argument name."""
    found: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            found.append(param.human_readable_name)
        else:
            found.extend(param.opts)
            found.extend(param.secondary_opts)
    if root:
        found.extend(HELP)
    return [name for name in found if root or name not in HELP]


def mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_the_walk_sees_every_kind_of_command() -> None:
    assert {"notifykit send", "notifykit config check", "notifykit sandbox veesing"} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_command_is_documented(path: str, sections: Any) -> None:
    found = sections(DOC)
    assert path in found, f"docs/{DOC}: no heading '{path}'"
    text = found[path].text
    missing = [
        name
        for name in names_of(COMMANDS[path], root=path == "notifykit")
        if not mentions(text, name)
    ]
    assert not missing, f"docs/{DOC}, section '{path}': undocumented {missing}"


def test_every_documented_command_exists(sections: Any) -> None:
    documented = {t for t in sections(DOC) if t.startswith("notifykit")}
    assert documented <= set(COMMANDS), documented - set(COMMANDS)


def test_exit_status_is_stated_for_each_command_that_runs(sections: Any) -> None:
    found = sections(DOC)
    for path, command in COMMANDS.items():
        if isinstance(command, click.Group) or path.startswith("notifykit sandbox "):
            continue  # groups only dispatch; sandboxes share the section of `sandbox`
        assert "Exit status" in found[path].text, path
