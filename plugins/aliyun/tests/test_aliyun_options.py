"""Options and templates: clear errors before any request; the config check warning."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from notifykit_aliyun import AliyunOptions, AliyunProvider, AliyunTemplate
from pydantic import SecretStr, ValidationError

from notifykit.cli import cli
from notifykit.models import SmsMessage
from notifykit.provider import ProviderContext


def provider(path: str = "/callbacks/ali") -> AliyunProvider:
    return AliyunProvider(
        AliyunOptions(access_key_id="ak", access_key_secret=SecretStr("sk"), sign_name="签名"),
        context=ProviderContext(instance="ali", callback_path=SecretStr(path)),
        templates={"verify": AliyunTemplate(template_code="SMS_1", param_names={"otp": "code"})},
    )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"template_code": "540"}, '"SMS_" and digits'),
        ({"template_code": "SMS_1", "param_names": {"a": "x y"}}, "template variable"),
        ({"template_code": "SMS_1", "param_names": {"a": "x", "b": "x"}}, "same template"),
    ],
)
def test_bad_template_is_named(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        AliyunTemplate.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"sign_name": " 签名"}, "whitespace"),
        ({"sign_name": "签名", "endpoint": "dysmsapi.aliyuncs.com"}, "http"),
        ({"sign_name": "签名", "vendor_timezone": "Mars/Base"}, "unknown time zone"),
    ],
)
def test_bad_options_are_named(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        AliyunOptions.model_validate({"access_key_id": "ak", "access_key_secret": "s", **fields})


def test_secret_never_in_repr() -> None:
    options = AliyunOptions(
        access_key_id="ak", access_key_secret=SecretStr("sk-9f8e"), sign_name="s"
    )
    assert "sk-9f8e" not in repr(options) and "sk-9f8e" not in str(options.model_dump())


def test_decline_non_mainland_and_missing_params() -> None:
    p = provider()
    assert p.decline(SmsMessage(to="+14155550123", template="verify", params={"otp": "1"}))
    missing = p.decline(SmsMessage(to="+8615612341090", template="verify", params={}))
    assert missing is not None and "otp" in missing
    assert (
        p.decline(SmsMessage(to="+8615612341090", template="verify", params={"otp": "1"})) is None
    )
    assert p.decline(SmsMessage(to="+8615612341090", template="other")) is not None


def test_template_param_is_a_json_object_of_strings_under_vendor_names() -> None:
    p = provider()
    message = SmsMessage(to="+8615612341090", template="verify", params={"otp": "0042", "x": "是"})
    template = p.templates["verify"]
    assert isinstance(template, AliyunTemplate)
    assert p._template_param(message, template) == '{"code":"0042","x":"是"}'


def test_alibaba_pushes_are_declared_unsigned() -> None:
    """``config check`` warns about an Alibaba instance without a [callbacks] token from this
    declaration (notifykit.config_check), as for any unsigned vendor."""
    assert type(provider("/callbacks/ali")).signs_callbacks is False


def test_config_check_prints_the_warning(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    toml = tmp_path / "notifykit.toml"
    toml.write_text(
        '[providers.ali]\ntype = "aliyun"\naccess_key_id = "ak"\naccess_key_secret = "sk-long"\n'
        'sign_name = "签名"\n\n[templates.verify.ali]\ntemplate_code = "SMS_1"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(toml)])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "token" in result.output
    assert "sk-long" not in result.output
