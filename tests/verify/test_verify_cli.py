"""``notifykit verify start`` and ``verify check``: output, JSON, exit status, and never the
code (docs/cli.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from notifykit.cli import cli
from notifykit.testing import Outbox

from .conftest import PHONE, SECRET

CONFIG = """
[providers.memory]
type = "memory"

[store]
url = "sqlite:///{db}"

[verify]
secret = "${{NK_VERIFY_SECRET}}"
{extra}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NK_VERIFY_SECRET", SECRET)
    path = tmp_path / "nk.toml"
    path.write_text(CONFIG.format(db=tmp_path / "nk.db", extra=""))
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def clean(result: Result, code: str) -> None:
    """Neither stream shows the code or the secret."""
    for text in (result.stdout, result.stderr):
        assert not re.search(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", text), text
        assert SECRET not in text


def test_start_then_check_through_a_shared_store(config: Path, sms_outbox: Outbox) -> None:
    started = run("verify", "start", PHONE, "--purpose", "login", "--config", str(config))
    assert started.exit_code == 0, started.stderr
    code = sms_outbox.last_code(PHONE, purpose="login")
    assert "Code sent to +86156****1090 for 'login' via memory" in started.stdout
    assert "sends:           1" in started.stdout and PHONE not in started.stdout
    assert "memory://" not in started.stderr  # a shared store: no note
    wrong = "".join(str((int(d) + 1) % 10) for d in code)
    missed = run("verify", "check", PHONE, wrong, "--purpose", "login", "--config", str(config))
    assert (missed.exit_code, missed.stdout) == (1, "incorrect (attempts left: 4)\n")
    other = run("verify", "check", PHONE, code, "--config", str(config))  # purpose default
    assert (other.exit_code, other.stdout) == (1, "not_found (attempts left: 0)\n")
    ok = run("verify", "check", PHONE, code, "--purpose", "login", "--config", str(config))
    assert (ok.exit_code, ok.stdout) == (0, "approved (attempts left: 4)\n")
    replay = run("verify", "check", PHONE, code, "--purpose", "login", "--config", str(config))
    assert (replay.exit_code, replay.stdout) == (1, "not_found (attempts left: 0)\n")
    for result in (started, missed, other, ok, replay):
        clean(result, code)


def test_json_documents(config: Path, sms_outbox: Outbox) -> None:
    started = run("verify", "start", PHONE, "--json", "--config", str(config))
    assert started.exit_code == 0, started.stderr
    document = json.loads(started.stdout)
    assert set(document) == {
        "verification_id",
        "to",
        "purpose",
        "status",
        "expires_at",
        "resend_after",
        "sends",
        "send",
    }
    assert (document["status"], document["sends"], document["send"]["provider"]) == (
        "pending",
        1,
        "memory",
    )
    code = sms_outbox.last_code(PHONE)
    checked = run("verify", "check", PHONE, code, "--json", "--config", str(config))
    assert checked.exit_code == 0
    assert json.loads(checked.stdout) == {
        "status": "approved",
        "attempts_left": 5,
        "verification_id": document["verification_id"],
    }
    limited = run("verify", "start", PHONE, "--json", "--config", str(config))
    assert limited.exit_code == 1
    failure = json.loads(limited.stdout)
    assert failure["error_type"] == "VerificationRateLimited"
    assert 0 < failure["retry_after"] <= 60 and failure["attempts"] == []
    assert limited.stderr.startswith(
        "Error: VerificationRateLimited: no code sent to +86156****1090"
    )
    for result in (started, checked, limited):
        clean(result, code)


def test_bad_input_and_configuration_exit_2(config: Path, tmp_path: Path) -> None:
    bad_code = run("verify", "check", PHONE, "12ab56", "--config", str(config))
    assert bad_code.exit_code == 2
    assert bad_code.stderr == "Error: code: expected 6 digits (verify.code_length)\n"
    assert "12ab56" not in bad_code.stderr
    abroad = tmp_path / "cn.toml"
    abroad.write_text(CONFIG.format(db=tmp_path / "nk.db", extra='allowed_countries = ["CN"]'))
    refused = run("verify", "start", "+14155550100", "--config", str(abroad))
    assert refused.exit_code == 2 and "outside verify.allowed_countries" in refused.stderr
    bare = tmp_path / "bare.toml"
    bare.write_text('[providers.memory]\ntype = "memory"\n')
    missing = run("verify", "start", PHONE, "--config", str(bare))
    assert (missing.exit_code, missing.stderr) == (
        2,
        "Error: verify.secret: required to use verification (see docs/verify.md)\n",
    )
    short = tmp_path / "short.toml"
    short.write_text('[verify]\nsecret = "short"\ncode_length = 9\n')
    invalid = run("verify", "start", PHONE, "--config", str(short))
    assert invalid.exit_code == 2
    assert "verify.secret: must be at least 16 characters" in invalid.stderr
    assert "verify.code_length: Input should be less than or equal to 8" in invalid.stderr
    assert "short" not in invalid.stderr.replace("short.toml", "")


def test_the_console_provider_prints_the_sms_on_stderr_never_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NK_VERIFY_SECRET", SECRET)
    path = tmp_path / "console.toml"
    path.write_text(
        '[providers.console]\ntype = "console"\nshow_params = true\n'
        '[verify]\nsecret = "${NK_VERIFY_SECRET}"\n'
    )
    result = run("verify", "start", PHONE, "--config", str(path))
    assert result.exit_code == 0, result.stderr
    sms = re.search(r"SMS to \+86156\*\*\*\*1090: verify_code code=(\d{6})", result.stderr)
    assert sms is not None, result.stderr  # the console's SMS: the one place the code shows
    assert sms.group(1) not in result.stdout and "Code sent to" in result.stdout
    # No [store]: memory://, gone with the command; it says a later check cannot find it.
    assert "`notifykit verify check` will not find this verification" in result.stderr
