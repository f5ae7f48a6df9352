"""Secrets never appear: not in logs at any level, exceptions, reprs, or CLI output."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notifykit import AsyncNotifier, Notifier, load_config
from notifykit.cli import cli
from notifykit.errors import NotifyKitError
from notifykit.plugins import get_plugin_manager

pytestmark = pytest.mark.anyio

API_KEY = "sk_live_9fQ2-leak-canary-key"
TOKEN = "cb-token-7Hx-leak-canary"
SECRETS = (API_KEY, TOKEN)
NUMBER = "+8615612341090"
InstallDist = Callable[..., str]

TOML = """
[providers.vault]
type = "vault"
api_key = "${{LEAK_API_KEY}}"
{vault_extra}
[providers.spare]
type = "memory"
{spare_extra}
[providers.console]
type = "console"

[routing]
providers = ["vault", "spare"]

[callbacks]
token = "${{LEAK_TOKEN}}"
"""


@pytest.fixture
def setup(
    tmp_path: Path, install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., str]:
    monkeypatch.setenv("LEAK_API_KEY", API_KEY)
    monkeypatch.setenv("LEAK_TOKEN", TOKEN)
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", "vault")
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    install_dist("nk-test-vault", "vault")

    def write(vault_extra: str = "", spare_extra: str = "", name: str = "nk.toml") -> str:
        path = tmp_path / name
        path.write_text(TOML.format(vault_extra=vault_extra, spare_extra=spare_extra))
        return str(path)

    return write


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: everything, notifykit or not
    return caplog


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__!r} {r.exc_text or ''}" for r in caplog.records)


async def test_the_library_never_logs_or_shows_a_secret(
    setup: Callable[..., str], all_logs: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    good = load_config(setup())
    pm = get_plugin_manager()
    async with AsyncNotifier(good, plugin_manager=pm) as notifier:
        result = await notifier.send(NUMBER, template="verify_code", params={"code": "1234"})
        seen += [repr(result), result.model_dump_json(), repr(notifier), repr(notifier.config)]
        seen += [repr(p) + repr(p.options) + repr(p.context) for p in notifier.providers.values()]
        seen += [repr(await notifier.balance("vault")), repr(await notifier.health())]
        seen += [repr(notifier.config.callbacks), str(notifier.config.model_dump())]
    failing = load_config(setup("fail = true", 'fail = "AuthenticationError"', "failing.toml"))
    async with AsyncNotifier(failing, plugin_manager=pm) as notifier:
        with pytest.raises(NotifyKitError) as info:
            await notifier.send(NUMBER, template="verify_code", params={"code": "1234"})
        seen += [str(info.value), repr(info.value), repr(info.value.attempts)]
    with Notifier(good, plugin_manager=pm) as sync:
        seen += [repr(sync), repr(sync.send(NUMBER, template="t"))]
    assert_clean(*seen, everything_logged(all_logs))
    assert any(getattr(r, "event", None) == "attempt" for r in all_logs.records)  # logs captured


def test_the_cli_never_prints_a_secret(
    setup: Callable[..., str], all_logs: pytest.LogCaptureFixture
) -> None:
    good = setup()
    failing = setup("fail = true", 'fail = "InsufficientBalance"', "failing.toml")
    crashing = setup("crash = true", 'fail = "InsufficientBalance"', "crashing.toml")
    broken = setup("bogus = 1", name="broken.toml")
    runs = [
        ["send", NUMBER, "-t", "verify_code", "-p", "code=1234", "--config", good],
        ["send", NUMBER, "-t", "verify_code", "--config", good, "--json"],
        ["send", NUMBER, "-t", "verify_code", "--config", failing],
        ["send", NUMBER, "-t", "verify_code", "--config", failing, "--json"],
        ["send", NUMBER, "-t", "verify_code", "--config", crashing],
        ["send", NUMBER, "-t", "verify_code", "--config", broken],
        ["config", "check", "--config", good],
        ["config", "check", "--config", broken],
        ["providers", "--config", good],
        ["providers", "--config", good, "--json"],
        ["balance", "--config", good],
        ["balance", "vault", "--config", good, "--json"],
        ["balance", "--config", failing, "--json"],
    ]
    outputs: list[str] = []
    codes: list[int] = []
    for args in runs:
        result = CliRunner().invoke(cli, ["-vv", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        outputs += [result.stdout, result.stderr]
        codes.append(result.exit_code)
    assert codes == [0, 0, 1, 1, 1, 2, 0, 2, 0, 0, 0, 0, 0]
    joined = "\n".join(outputs)
    assert '"event": "attempt"' in joined  # -vv logs reached the captured stderr
    assert "RuntimeError" in outputs[9]  # the crashing plugin: its type named, not its text
    assert_clean(joined, everything_logged(all_logs))


def test_option_validation_errors_never_echo_a_secret(setup: Callable[..., str]) -> None:
    # api_key given where a table is expected, and a value that fails validation.
    path = Path(setup())
    path.write_text(
        path.read_text().replace('api_key = "${LEAK_API_KEY}"', 'api_key = ["${LEAK_API_KEY}"]')
    )
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "providers.vault.api_key" in result.stderr
    assert_clean(result.stdout, result.stderr)


def test_a_secret_is_hidden_in_every_repr_of_the_config(setup: Callable[..., str]) -> None:
    config = load_config(setup())
    texts: list[Any] = [config, config.providers["vault"], config.callbacks]
    assert_clean(*(repr(t) for t in texts), *(str(t) for t in texts))


def test_an_unexpected_error_quoting_a_secret_is_blanked(
    setup: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def leaky(self: Any) -> Any:
        raise RuntimeError(f"bad key {API_KEY} for token {TOKEN}")

    monkeypatch.setattr("notifykit.notifier.AsyncNotifier.health", leaky)
    result = CliRunner().invoke(cli, ["providers", "--config", setup()])
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: unexpected error: RuntimeError: bad key ********** for token **********\n"
    )
