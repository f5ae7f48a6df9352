"""Commands contributed through the ``register_commands`` hook, and config-relative stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifykit.cli import cli
from notifykit.config import load_config

COMMANDS_MODULE = """
import click
from notifykit import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command()
    @click.argument("who")
    def hello(who):
        \"\"\"Greet WHO.\"\"\"
        click.echo(f"hello {who}")

    @cli.command(name="send")
    def not_the_real_send():
        click.echo("hijacked")
"""


@pytest.fixture
def fresh_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    # The group caches plugin commands once per process; each test starts without them.
    monkeypatch.setattr(cli, "_plugin_commands", None)


def test_a_plugin_command_is_added_and_cannot_replace_a_built_in(
    install_dist: object, fresh_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_dist("nk-test-commands", "greeter", COMMANDS_MODULE)  # type: ignore[operator]
    monkeypatch.delenv("NOTIFYKIT_LOAD_PLUGINS", raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["hello", "world"])
    assert result.exit_code == 0, result.output
    assert "hello world" in result.output
    listing = runner.invoke(cli, ["--help"])
    assert "hello" in listing.output and "Greet WHO." in listing.output
    send_help = runner.invoke(cli, ["send", "--help"])
    assert "hijacked" not in send_help.output and "--template" in send_help.output


def test_plugin_commands_respect_notifykit_load_plugins(
    install_dist: object, fresh_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_dist("nk-test-commands", "greeter", COMMANDS_MODULE)  # type: ignore[operator]
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "")
    result = CliRunner().invoke(cli, ["hello", "world"])
    assert result.exit_code == 2
    assert "hello world" not in result.output


BROKEN_COMMANDS_MODULE = """
from notifykit import hookimpl


@hookimpl(tryfirst=True)
def register_commands(cli):
    raise RuntimeError("token=sk-live-abcdef0123456789")
"""


def test_a_plugin_whose_register_commands_raises_keeps_no_other_plugin_from_its_commands(
    install_dist: object, fresh_cli: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tryfirst: the broken plugin is called before the good one, as one hook call would
    install_dist("nk-test-broken", "broken", BROKEN_COMMANDS_MODULE)  # type: ignore[operator]
    install_dist("nk-test-commands", "greeter", COMMANDS_MODULE)  # type: ignore[operator]
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "broken,greeter")
    result = CliRunner().invoke(cli, ["hello", "world"])
    assert result.exit_code == 0, result.output
    assert "hello world" in result.stdout
    assert (
        "Warning: plugin commands not loaded: plugin 'nk-test-broken' failed in "
        "register_commands: RuntimeError" in result.stderr
    )
    assert "sk-live" not in result.output


def test_a_relative_sqlite_path_is_read_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "conf" / "notifykit.toml"
    config_file.parent.mkdir()
    config_file.write_text('[store]\nurl = "sqlite:///data/notifykit.sqlite3"\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    url = load_config(config_file).store.url
    assert url == "sqlite:///" + str((config_file.parent / "data" / "notifykit.sqlite3").resolve())
    assert os.path.isabs(url.removeprefix("sqlite:///"))
    absolute = tmp_path / "abs.toml"
    absolute.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/x.sqlite3"\n', encoding="utf-8")
    assert load_config(absolute).store.url == f"sqlite:///{tmp_path}/x.sqlite3"
