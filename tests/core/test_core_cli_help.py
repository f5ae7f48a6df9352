"""What a newcomer sees first: help for a bare group, whole summaries, aligned listings."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from notifykit.cli import cli
from notifykit.cli.common import summary


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)


def _groups() -> list[tuple[list[str], click.Group]]:
    ctx = click.Context(cli, info_name="notifykit")
    found: list[tuple[list[str], click.Group]] = [([], cli)]
    for name in cli.list_commands(ctx):
        sub = cli.get_command(ctx, name)
        if isinstance(sub, click.Group):
            found.append(([name], sub))
    return found


def _group_paths() -> list[list[str]]:
    return [path for path, _ in _groups()]


@pytest.mark.parametrize("args", _group_paths(), ids=lambda v: " ".join(v) or "root")
def test_a_bare_group_prints_its_help_and_exits_0(args: list[str]) -> None:
    """Every group, the ones added later (verify, store) included."""
    result = CliRunner().invoke(cli, args, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert "\nCommands:\n" in result.stdout
    assert "Error" not in result.stdout + result.stderr


# 78: what click's formatter gets on a real 80-column terminal (it keeps 2 columns free).
@pytest.mark.parametrize("width", [78, 80, 160])
@pytest.mark.parametrize(
    ("path", "group"), _groups(), ids=lambda v: " ".join(v) or "root" if isinstance(v, list) else ""
)
def test_help_lists_every_summary_whole(path: list[str], group: click.Group, width: int) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=width)
    assert result.exit_code == 0, result.output
    listing = result.stdout.split("\nCommands:\n", 1)[1]
    assert "..." not in listing
    flat = " ".join(listing.split())
    ctx = click.Context(group, info_name=path[-1] if path else "notifykit")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        assert " ".join(summary(command).split()) in flat, name
        assert all(len(line) <= width for line in listing.splitlines())


def test_a_summary_is_the_whole_first_paragraph() -> None:
    command = click.Command("x", help="Send to PHONE (E.164, e.g. +86156).\n\nMore words.")
    assert summary(command) == "Send to PHONE (E.164, e.g. +86156)."


def test_providers_columns_line_up(tmp_path: Path) -> None:
    (tmp_path / "nk.toml").write_text(
        '[providers.a]\ntype = "memory"\n[providers.long_name]\ntype = "console"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["providers", "--config", str(tmp_path / "nk.toml")])
    assert result.exit_code == 0, result.output
    types_part, instances_part = result.stdout.split("Instances", 1)
    for block in (types_part, instances_part):
        rows = [line for line in block.splitlines() if line.startswith("  ")]
        assert len(rows) >= 2
        # every column after the first starts at the same offset in every row
        starts = {
            tuple(
                i
                for i in range(1, len(r))
                if r[i - 1] == " " and r[i] != " " and r[i - 2 : i] == "  "
            )
            for r in rows
        }
        assert len(starts) == 1, rows
