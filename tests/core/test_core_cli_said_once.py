"""A failed send says each attempt, and each reason, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from notifykit.cli import cli

NUMBER = "+8615612341090"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def send(tmp_path: Path, text: str, *flags: str) -> tuple[int, str]:
    path = tmp_path / "nk.toml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, [*flags, "send", NUMBER, "-t", "t", "--config", str(path)])
    return result.exit_code, result.stderr


FAILING = (
    '[providers.a]\ntype = "memory"\nfail = "ProviderUnavailable"\n'
    '[providers.b]\ntype = "memory"\nfail = "InsufficientBalance"\n'
)


def test_a_failover_lists_each_attempt_once(tmp_path: Path) -> None:
    code, err = send(tmp_path, FAILING)
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 3, err  # the error, then each attempt once
    assert [line.split()[0] for line in lines[1:]] == ["a:", "b:"]
    assert '"event"' not in err and "attempt a failed" not in err


def test_verbose_still_logs_each_attempt_as_it_happens(tmp_path: Path) -> None:
    code, err = send(tmp_path, FAILING, "-v")
    assert code == 1
    assert err.count('"event": "attempt"') == 2


def test_every_instance_declining_gives_each_reason_once(tmp_path: Path) -> None:
    code, err = send(
        tmp_path,
        '[providers.a]\ntype = "memory"\ncountries = ["US"]\n'
        '[providers.b]\ntype = "memory"\ncountries = ["GB"]\n',
    )
    assert code == 2
    assert err.count("serves US") == 1 and err.count("serves GB") == 1
    assert err.startswith("Error: no provider can take this message: a: ")
