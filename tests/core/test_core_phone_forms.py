"""One rule for a number typed by a user, everywhere: ``send``, ``log --phone``, the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from notifykit.cli import cli
from notifykit.errors import InvalidMessage
from notifykit.notifier import build_message
from notifykit.phone import parse_phone

FORMS = ["+8615612341094", "+86 156 1234 1094", "0086 15612341094", "008615612341094"]


@pytest.mark.parametrize("text", FORMS)
def test_the_international_prefix_00_is_a_plus(text: str) -> None:
    assert parse_phone(text) == "+8615612341094"
    assert build_message(text, template="t").to == "+8615612341094"


@pytest.fixture
def store_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "nk.toml"
    path.write_text(
        f'[providers.m]\ntype = "memory"\n[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n',
        encoding="utf-8",
    )
    sent = CliRunner().invoke(
        cli, ["send", "0086 15612341094", "-t", "verify_code", "--config", str(path)]
    )
    assert sent.exit_code == 0, sent.output
    return path


@pytest.mark.parametrize("text", FORMS)
def test_log_phone_reads_what_send_reads(store_config: Path, text: str) -> None:
    found = CliRunner().invoke(cli, ["log", "--phone", text, "--config", str(store_config)])
    assert found.exit_code == 0, found.output
    assert "+86156****1094" in found.stdout


@pytest.mark.parametrize("text", ["15612341090", "8615612341090", "not-a-number", "+1 555"])
def test_log_phone_and_send_refuse_alike(store_config: Path, text: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_phone(text)
    reason = info.value.message.removeprefix("to: ")
    runner = CliRunner()
    log = runner.invoke(cli, ["log", "--phone", text, "--config", str(store_config)])
    send = runner.invoke(cli, ["send", text, "-t", "x", "--config", str(store_config)])
    assert log.exit_code == send.exit_code == 2
    assert log.stderr == f"Error: --phone: {reason}\n"
    assert reason in send.stderr
    assert "No messages" not in log.stdout
