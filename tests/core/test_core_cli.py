"""The ``notifykit`` command line: output, JSON, exit codes, one-line errors, logging."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from notifykit.cli import cli
from notifykit.default_plugins.memory import MemoryProvider
from notifykit.errors import ProviderUnavailable

NUMBER = "+8615612341090"
MASKED = "+86156****1090"
InstallDist = Callable[..., str]

MEMORY_TOML = """
[providers.primary]
type = "memory"
{primary}
[providers.backup]
type = "memory"
{backup}
[providers.console]
type = "console"

[routing]
providers = ["primary", "backup"]
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)


def config_file(tmp_path: Path, primary: str = "", backup: str = "", text: str = "") -> str:
    path = tmp_path / "nk.toml"
    path.write_text(text or MEMORY_TOML.format(primary=primary, backup=backup), encoding="utf-8")
    return str(path)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


# -- send -------------------------------------------------------------------------------------------


def test_send_without_a_config_goes_to_the_console() -> None:
    result = run("send", NUMBER, "--template", "verify_code", "--param", "code=1234")
    assert result.exit_code == 0, result.stderr
    assert f"[console] SMS to {MASKED}: verify_code code=****" in result.stdout
    assert "1234" not in result.stdout
    assert result.stderr.startswith("Warning: no notifykit configuration found")
    assert f"Sent to {MASKED} via console" in result.stdout
    assert "15612341090" not in result.stdout + result.stderr


def test_send_json_keeps_stdout_for_the_document(tmp_path: Path) -> None:
    result = run(
        "send", NUMBER, "-t", "verify_code", "-p", "code=1", "--tag", "otp", "--json",
        "--idempotency-key", "k-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["provider"] == "console"
    assert document["attempts"][0]["outcome"] == "accepted"
    assert set(document) == {
        "message_id", "provider", "provider_message_id", "remaining_credits", "attempts",
        "replayed",
    }  # fmt: skip
    assert document["replayed"] is False
    assert "[console] SMS to" in result.stderr


def test_send_through_a_config_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, primary='fail = "ProviderUnavailable"')
    result = run("send", NUMBER, "-t", "t", "--config", path)
    assert result.exit_code == 0, result.stderr
    assert "via backup" in result.stdout
    assert "primary: failed (ProviderUnavailable" in result.stdout
    assert "remaining credits:   999" in result.stdout


def test_config_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFYKIT_CONFIG", config_file(tmp_path))
    result = run("send", NUMBER, "-t", "t")
    assert result.exit_code == 0 and "via primary" in result.stdout


def test_a_missing_file_named_by_the_environment_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale $NOTIFYKIT_CONFIG is the usual cause when no --config was typed: say so."""
    monkeypatch.setenv("NOTIFYKIT_CONFIG", str(tmp_path / "gone.toml"))
    result = run("send", NUMBER, "-t", "t")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"Error: cannot read configuration file {tmp_path / 'gone.toml'} "
        "(from $NOTIFYKIT_CONFIG): No such file or directory"
    )
    result = run("send", NUMBER, "-t", "t", "--config", str(tmp_path / "typed.toml"))
    assert "$NOTIFYKIT_CONFIG" not in one_error_line(result)


def test_a_failed_send_exits_1_with_the_attempts(tmp_path: Path) -> None:
    path = config_file(tmp_path, 'fail = "InsufficientBalance"', 'fail = "QuotaExceeded"')
    result = run("send", NUMBER, "-t", "t", "--config", path)
    assert result.exit_code == 1
    assert one_error_line(result).startswith("Error: AllProvidersFailed: ")
    assert "  primary: failed (InsufficientBalance" in result.stderr
    assert "  backup: failed (QuotaExceeded" in result.stderr


def test_the_error_a_send_stopped_on_is_said_once(tmp_path: Path) -> None:
    """docs/cli.md: the attempts follow the error line, each said once: the attempt that
    raised the error routing stopped on does not repeat its message."""
    path = config_file(tmp_path, 'fail = "InvalidRecipient"')
    result = run("send", NUMBER, "-t", "t", "--config", path)
    assert result.exit_code == 1
    error = one_error_line(result).removeprefix("Error: InvalidRecipient: ")
    assert result.stderr.count(error) == 1, result.stderr
    assert "  primary: failed (the error above) in " in result.stderr


def test_a_failed_send_in_json_gives_the_attempts(tmp_path: Path) -> None:
    path = config_file(tmp_path, 'fail = "InvalidRecipient"')
    result = run("send", NUMBER, "-t", "t", "--config", path, "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["error_type"] == "InvalidRecipient"
    assert [a["provider"] for a in document["attempts"]] == ["primary"]  # stops: no failover
    assert one_error_line(result).startswith("Error: InvalidRecipient: ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["send", "12345", "-t", "t"], "Error: to: recipient ***45 has no country code"),
        (["send", "+861561234109099", "-t", "t"], "is not a valid number for CN"),
        (["send", NUMBER], "Missing option '-t' / '--template'"),
        (["send", NUMBER, "-t", "t", "-p", "novalue"], "expected KEY=VALUE, got 'novalue'"),
        (["send", NUMBER, "-t", "t", "-p", "a=1", "-p", "a=2"], "parameter 'a' given twice"),
        (["send", NUMBER, "-t", "t", "--config", "missing.toml"], "cannot read configuration"),
        (["send"], "Missing argument 'PHONE'"),
        (["sned"], "No such command 'sned'"),
        (["--bogus"], "No such option '--bogus'"),
        (["config", "check", "--config", "missing.toml"], "cannot read configuration file"),
        (["balance", "ghost"], "unknown provider 'ghost'"),
    ],
)
def test_usage_and_config_errors_exit_2_with_one_line(args: list[str], expected: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert expected in one_error_line(result)
    assert "15612341090" not in result.stderr


def test_a_bad_option_in_the_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = config_file(tmp_path, primary='balance = "lots"')
    for args in (["send", NUMBER, "-t", "t"], ["config", "check"], ["providers"], ["balance"]):
        result = run(*args, "--config", path)
        assert result.exit_code == 2, (args, result.output)
        assert "providers.primary.balance: Input should be a valid integer" in one_error_line(
            result
        )


def test_an_unexpected_exception_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: Any) -> Any:
        raise RuntimeError("something broke")

    monkeypatch.setattr("notifykit.notifier.AsyncNotifier.health", explode)
    result = run("providers", "--config", config_file(tmp_path))
    assert result.exit_code == 1
    assert one_error_line(result) == "Error: unexpected error: RuntimeError: something broke"


# -- balance, providers, config check -----------------------------------------------------------------


def test_balance_of_one_provider(tmp_path: Path) -> None:
    path = config_file(tmp_path, primary="balance = 42")
    result = run("balance", "primary", "--config", path)
    assert (result.exit_code, result.stdout) == (0, "primary: 42 credits\n")
    result = run("balance", "primary", "--config", path, "--json")
    assert json.loads(result.stdout) == {
        "provider": "primary",
        "remaining": "42",
        "unit": "credits",
    }


def test_balance_of_a_provider_without_a_query_exits_1(tmp_path: Path) -> None:
    result = run("balance", "console", "--config", config_file(tmp_path))
    assert result.exit_code == 1
    assert one_error_line(result).startswith("Error: NotSupported: ")


def test_balance_of_every_instance(tmp_path: Path) -> None:
    result = run("balance", "--config", config_file(tmp_path, primary="balance = 5"))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "primary  5 credits",
        "backup   1000 credits",
        "console  n/a (no balance query)",
    ]


def test_balance_exits_1_when_a_query_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(self: MemoryProvider) -> Any:
        raise ProviderUnavailable(f"{self.instance}: HTTP 503 from the vendor")

    monkeypatch.setattr(MemoryProvider, "balance", down)
    result = run("balance", "--config", config_file(tmp_path), "--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows[0] == {
        "provider": "primary",
        "remaining": None,
        "unit": None,
        "error_type": "ProviderUnavailable",
        "error": "primary: HTTP 503 from the vendor",
    }


def test_providers_lists_types_with_distributions_and_instances(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = run("providers", "--config", path, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    types = {t["name"]: t["distribution"] for t in report["types"]}
    assert types["memory"] == "notifykit" and types["veesing"] == "notifykit-veesing"
    instances = {i["name"]: (i["type"], i["health"]["state"]) for i in report["instances"]}
    assert instances == {
        "primary": ("memory", "closed"),
        "backup": ("memory", "closed"),
        "console": ("console", "closed"),
    }
    human = run("providers", "--config", path)
    lines = [line.split() for line in human.stdout.splitlines()]
    assert ["memory", "notifykit", "(notifykit.default_plugins.memory.MemoryProvider)"] in lines
    assert ["primary", "type=memory", "breaker=closed"] in lines


def test_config_check_builds_instances_and_prints_warnings(
    tmp_path: Path, install_dist: InstallDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_KEY", "k" * 20)
    install_dist("nk-test-vault", "vault")
    text = '[providers.v]\ntype = "vault"\napi_key = "${VAULT_KEY}"\n'
    result = run("config", "check", "--config", config_file(tmp_path, text=text))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "Routes:",
        "  every message: v",
        "Instances:",
        "  v (vault)",
        "    warning: providers.v: this is a test provider",
    ]
    broken = text + "colour = 1\n"
    result = run("config", "check", "--config", config_file(tmp_path, text=broken))
    assert result.exit_code == 2
    assert "providers.v.colour: unknown key (known: api_key, fail, crash)" in one_error_line(result)


def test_config_check_refuses_a_file_without_providers(tmp_path: Path) -> None:
    result = run("config", "check", "--config", config_file(tmp_path, text="[routing]\n"))
    assert result.exit_code == 2
    assert "no [providers.<name>] section" in one_error_line(result)


def test_config_check_of_the_built_in_default() -> None:
    result = run("config", "check")
    assert result.exit_code == 0
    assert result.stdout.startswith("Configuration OK: built-in default\n")


# -- logging --------------------------------------------------------------------------------------


def test_verbose_logs_one_json_event_per_attempt(tmp_path: Path) -> None:
    path = config_file(tmp_path, primary='fail = "ProviderUnavailable"')
    result = run("-v", "send", NUMBER, "-t", "t", "--config", path, "--json")
    assert result.exit_code == 0, result.stderr
    message_id = json.loads(result.stdout)["message_id"]
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    attempts = [e for e in events if e.get("event") == "attempt"]
    assert [(e["provider"], e["outcome"]) for e in attempts][-1] == ("backup", "accepted")
    assert {e["message_id"] for e in attempts} == {message_id}
    assert all("duration_ms" in e and "error_type" in e for e in attempts)
    assert "15612341090" not in result.stderr


def test_quiet_by_default(tmp_path: Path) -> None:
    result = run("send", NUMBER, "-t", "t", "--config", config_file(tmp_path))
    assert '"event"' not in result.stderr


def test_the_cli_leaves_the_hosts_logging_as_it_was(tmp_path: Path) -> None:
    logger = logging.getLogger("notifykit")
    before = (list(logger.handlers), logger.level, logger.propagate)
    run("-vv", "send", NUMBER, "-t", "t", "--config", config_file(tmp_path))
    assert (list(logger.handlers), logger.level, logger.propagate) == before


# -- the real script ------------------------------------------------------------------------------


def script() -> str:
    path = Path(sys.executable).parent / "notifykit"
    assert path.exists(), path
    return str(path)


def test_the_installed_script_sends_and_exits_0(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFYKIT_CONFIG"}
    done = subprocess.run(
        [script(), "send", NUMBER, "--template", "verify_code", "--param", "code=1234"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"[console] SMS to {MASKED}: verify_code code=****" in done.stdout


def test_the_installed_script_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    path = config_file(tmp_path, text='[providers.x]\ntype = "nosuch"\n')
    done = subprocess.run(
        [script(), "-v", "config", "check", "--config", path],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "providers.x.type: unknown provider type 'nosuch'" in done.stderr


def test_a_repeated_idempotency_key_says_nothing_was_sent(tmp_path: Path) -> None:
    """The second send with a key reads as what it is: the first send's result, no SMS."""
    config = tmp_path / "notifykit.toml"
    config.write_text(
        '[providers.console]\ntype = "console"\n\n[store]\nurl = "sqlite:///nk.db"\n',
        encoding="utf-8",
    )
    args = ["send", "+8615612341090", "-t", "verify_code", "-p", "code=4321"]
    args += ["--idempotency-key", "signup-7", "--config", str(config)]
    first, again = CliRunner().invoke(cli, args), CliRunner().invoke(cli, args)
    assert first.exit_code == 0 and again.exit_code == 0, (first.output, again.output)
    assert "Sent to +86156****1090 via console" in first.stdout.splitlines()
    assert again.stdout.splitlines()[0].startswith("Already sent to +86156****1090 via console")
    assert "nothing sent now" in again.stdout
    assert first.output.count("[console] SMS to") == 1
    assert "[console] SMS to" not in again.output  # no second SMS
    ids = [line for line in (first.stdout + again.stdout).splitlines() if "message id:" in line]
    assert len(ids) == 4 and ids[0] == ids[2]  # the same message (and vendor) ids
