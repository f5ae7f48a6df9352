"""Falling back to the console is loud; serve refuses it; the console masks parameters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifykit.cli import cli
from notifykit.config import Config, ConsoleFallbackWarning, load_config
from notifykit.notifier import AsyncNotifier, Notifier

NUMBER = "+8615612341090"


@pytest.fixture(autouse=True)
def _nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)


def test_no_configuration_warns_naming_where_it_looked(tmp_path: Path) -> None:
    with pytest.warns(ConsoleFallbackWarning) as caught:
        config = load_config()
    assert config.source == "built-in default"
    text = str(caught[0].message)
    assert "$NOTIFYKIT_CONFIG is not set" in text
    assert f"no notifykit.toml in {tmp_path}" in text
    assert "never sent" in text


def test_a_notifier_built_without_configuration_warns(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(ConsoleFallbackWarning), Notifier() as sms:
        sms.send(NUMBER, template="verify_code", params={"code": "778899"})
    out = capsys.readouterr().out
    assert "code=****" in out and "778899" not in out


def test_a_named_file_does_not_warn(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    path = tmp_path / "nk.toml"
    path.write_text('[providers.c]\ntype = "console"\n', encoding="utf-8")
    load_config(path)
    assert not [w for w in recwarn if issubclass(w.category, ConsoleFallbackWarning)]


def test_the_console_shows_parameters_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config.from_dict({"providers": {"c": {"type": "console", "show_params": True}}})

    async def go() -> None:
        async with AsyncNotifier(config) as sms:
            await sms.send(NUMBER, template="verify_code", params={"code": "778899"})

    asyncio.run(go())
    assert "code=778899" in capsys.readouterr().out


def test_the_cli_prints_the_fallback_as_one_warning_line() -> None:
    result = CliRunner().invoke(cli, ["send", NUMBER, "-t", "verify_code", "-p", "code=5"])
    assert result.exit_code == 0
    (warning,) = [line for line in result.stderr.splitlines() if "configuration" in line]
    assert warning.startswith("Warning: no notifykit configuration found")


def test_serve_refuses_the_console_default() -> None:
    """One line, the refusal, naming where it looked; not also the fallback's warning that
    messages will be printed (serve runs no fallback at all)."""
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: serve needs a configuration file naming the vendor instances whose receipts "
        "it receives and a store they are kept in: none found (no --config FILE; "
        f"$NOTIFYKIT_CONFIG is not set; no notifykit.toml in {Path.cwd()})"
    ], result.stderr


def test_a_store_given_without_configuration_is_refused(tmp_path: Path) -> None:
    from notifykit.errors import ConfigError
    from notifykit.store import MemoryStore

    with (
        pytest.warns(ConsoleFallbackWarning),
        pytest.raises(ConfigError, match="a store was given") as caught,
    ):
        AsyncNotifier(store=MemoryStore())
    assert f"no notifykit.toml in {tmp_path}" in caught.value.message
    assert "$NOTIFYKIT_CONFIG is not set" in caught.value.message


def test_a_non_default_template_does_not_run_on_the_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from notifykit.errors import ConfigError

    with pytest.warns(ConsoleFallbackWarning), Notifier() as sms:
        with pytest.raises(ConfigError, match="template 'order_shipped'") as caught:
            sms.send(NUMBER, template="order_shipped", params={"order": "A-778899"})
        assert f"no notifykit.toml in {tmp_path}" in caught.value.message
        # The default template still runs: the quick start's try-out.
        assert sms.send(NUMBER, template="verify_code", params={"code": "4321"}).provider == (
            "console"
        )
    out = capsys.readouterr().out
    assert "order_shipped" not in out and "A-778899" not in out


def test_a_console_instance_named_in_a_file_takes_any_template(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    path = tmp_path / "nk.toml"
    path.write_text('[providers.c]\ntype = "console"\n', encoding="utf-8")
    with Notifier(path) as sms:
        assert sms.send(NUMBER, template="order_shipped", params={"n": "1"}).provider == "c"


@pytest.mark.parametrize(
    "command", [["log"], ["events"], ["store", "status"], ["store", "migrate"]], ids=" ".join
)
def test_a_reading_command_says_what_the_fallback_means_for_reading(
    command: list[str], tmp_path: Path
) -> None:
    """Commands that only read the store warn that there is nothing to read (the default
    store is memory://), not that messages are never sent; ``send`` still says that."""
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stderr.splitlines() if line.startswith("Warning:"))
    assert f"no notifykit.toml in {tmp_path}" in warning
    assert "memory://, which keeps nothing to read" in warning
    assert "never sent" not in result.stderr
    sent = CliRunner().invoke(cli, ["send", NUMBER, "-t", "verify_code", "-p", "code=1"])
    assert "never sent" in sent.stderr
