"""``notifykit config check``: the rules as well as the default route, and the warnings each
provider type's metadata implies, for every vendor alike (issue 15 item 15)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from notifykit.cli import cli

CONFIG = """
[providers.primary]
type = "veesing"
app_id = "a"
app_key = "veesing-app-key"

[providers.backup]
type = "aliyun"
access_key_id = "ak"
access_key_secret = "aliyun-secret"
sign_name = "签名"

[providers.intl]
type = "twilio"
account_sid = "AC00000000000000000000000000000de0"
auth_token = "twilio-auth-token"
from_number = "+14155550100"
public_url = "https://example.com/hooks"

[templates.verify_code.primary]
template_id = "540"
[templates.verify_code.backup]
template_code = "SMS_1"
[templates.welcome.primary]
template_id = "541"

[[routing.rules]]
country = ["CN"]
template = ["verify_code"]
providers = ["primary", "backup"]

[[routing.rules]]
tags = ["bulk"]
providers = ["backup", "primary"]
strategy = "weighted"
weights = { backup = 3, primary = 1 }

[routing]
providers = ["intl"]
"""


def _check(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "notifykit.toml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    for secret in ("veesing-app-key", "aliyun-secret", "twilio-auth-token"):
        assert secret not in result.output
    return result.output.splitlines()


def test_rules_then_the_default_route(tmp_path: Path) -> None:
    lines = _check(tmp_path, CONFIG)
    at = lines.index("Routes:")
    assert lines[at + 1 : at + 4] == [
        "  rule 1: country CN and template verify_code -> primary -> backup",
        "  rule 2: tags bulk -> backup (3), primary (1) (weighted)",
        "  otherwise: intl",
    ]


def test_warnings_come_from_each_types_metadata(tmp_path: Path) -> None:
    text = "\n".join(_check(tmp_path, CONFIG))
    # Unsigned pushes without a token: Veesing and Alibaba alike; Twilio signs its own.
    assert "providers.primary: no [callbacks] token: veesing signs nothing" in text
    assert "providers.backup: no [callbacks] token: aliyun signs nothing" in text
    assert "providers.intl: no [callbacks] token" not in text
    # A template an instance needs an entry for: per template, for every vendor.
    assert "providers.backup: no [templates.welcome.backup] entry" in text
    assert "providers.intl: no [templates.<name>.intl] entry: twilio needs one" in text
    assert "providers.primary: no [templates" not in text


def test_a_token_and_complete_templates_leave_no_warning(tmp_path: Path) -> None:
    complete = CONFIG + (
        '\n[callbacks]\ntoken = "a-long-callbacks-token"\n'
        '[templates.welcome.backup]\ntemplate_code = "SMS_2"\n'
        '[templates.verify_code.intl]\nbody = "Your code is {code}"\n'
        '[templates.welcome.intl]\nbody = "Welcome"\n'
    )
    lines = _check(tmp_path, complete)
    assert not [line for line in lines if "warning:" in line], lines


def test_a_rule_without_conditions_hides_the_rules_after_it(tmp_path: Path) -> None:
    """A rule that sets no country, template or tags matches every message: config check
    says which rules (and the default route) it leaves unused; none when it is last."""
    first = CONFIG.replace('country = ["CN"]\ntemplate = ["verify_code"]\n', "", 1)
    lines = _check(tmp_path, first)
    at = lines.index("Routes:")
    assert lines[at + 1] == "  rule 1: every message -> primary -> backup"
    assert lines[at + 4] == (
        "  warning: rule 1 sets no country, template or tags: it matches every message, "
        "so rule 2 and the default route are never used"
    )
    last = CONFIG.replace('tags = ["bulk"]\n', "", 1)
    assert (
        "  warning: rule 2 sets no country, template or tags: it matches every message, "
        "so the default route is never used"
    ) in _check(tmp_path, last)
    assert not [line for line in _check(tmp_path, CONFIG) if "matches every message" in line]
