"""Options, templates, declining, warnings and the plugin's registration."""

from __future__ import annotations

from typing import Any

import notifykit_twilio
import pytest
from notifykit_twilio import TwilioOptions, TwilioProvider, TwilioSandbox, TwilioTemplate
from pydantic import SecretStr

from notifykit import Config
from notifykit.errors import ConfigError
from notifykit.instances import build_providers
from notifykit.models import SmsMessage
from notifykit.plugins import get_plugin_manager, provider_types, sandbox_types
from notifykit.provider import ProviderContext

ACCOUNT = "AC" + "1234abcd" * 4
TOKEN = "auth-token-never-shown-0042"


def base(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "type": "twilio",
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "public_url": "https://hooks.example.com",
    }
    options.update(overrides)
    return {k: v for k, v in options.items() if v is not None}


@pytest.fixture
def pm() -> Any:
    manager = get_plugin_manager(load_entrypoints=False)
    manager.register(notifykit_twilio, name="twilio")
    return manager


def build(pm: Any, providers: dict[str, Any], templates: dict[str, Any] | None = None) -> Any:
    config = Config.from_dict({"providers": providers, "templates": templates or {}})
    return build_providers(config, provider_types(pm))


def test_registered_through_the_hooks(pm: Any) -> None:
    assert provider_types(pm)["twilio"].cls is TwilioProvider
    assert sandbox_types(pm)["twilio"].cls is TwilioSandbox


def test_public_names_are_complete_and_sorted() -> None:
    assert notifykit_twilio.__all__ == sorted(notifykit_twilio.__all__)
    for name in notifykit_twilio.__all__:
        assert hasattr(notifykit_twilio, name)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"auth_token": None}, "credentials missing"),
        ({"api_key_sid": "SK" + "ab" * 16}, "together"),
        ({"api_key_secret": "x"}, "together"),
        ({"messaging_service_sid": "MG" + "ab" * 16}, "exactly one"),
        ({"from_number": None}, "exactly one"),
        ({"account_sid": "AC123"}, "account SID"),
        ({"api_key_sid": "nope", "api_key_secret": "x"}, "API key SID"),
        ({"from_number": None, "messaging_service_sid": "MGxyz"}, "Messaging Service SID"),
        ({"public_url": "hooks.example.com"}, "public_url must be an http(s) URL"),
        ({"base_url": "ftp://api.twilio.com"}, "base_url must be an http(s) URL"),
        ({"timeout": 0}, "timeout"),
        ({"region": "ie1"}, "region"),
    ],
)
def test_bad_options_name_the_key(pm: Any, overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(pm, {"intl": base(**overrides)})
    assert "providers.intl" in info.value.message
    assert complaint in info.value.message
    assert TOKEN not in info.value.message


def test_api_key_alone_can_send(pm: Any) -> None:
    built = build(
        pm,
        {"intl": base(auth_token=None, api_key_sid="SK" + "ab" * 16, api_key_secret="sec")},
    )
    provider = built["intl"]
    assert provider.describe()["auth"] == "api_key"
    warnings = provider.config_warnings()
    assert len(warnings) == 1 and "callbacks cannot be verified" in warnings[0]


def test_no_public_url_warns_about_callbacks(pm: Any) -> None:
    provider = build(pm, {"intl": base(public_url=None)})["intl"]
    (warning,) = provider.config_warnings()
    assert "no StatusCallback" in warning and "signatures cannot be checked" in warning


def test_fully_configured_has_no_warnings(pm: Any) -> None:
    assert build(pm, {"intl": base()})["intl"].config_warnings() == []


@pytest.mark.parametrize("body", ["Your code is {code.__class__}", "{0}", "{", "}", "{}"])
def test_template_placeholders_must_be_plain_names(pm: Any, body: str) -> None:
    with pytest.raises(ConfigError, match=r"templates\.verify_code\.intl\.body"):
        build(pm, {"intl": base()}, {"verify_code": {"intl": {"body": body}}})


def test_template_entry_needs_a_body(pm: Any) -> None:
    with pytest.raises(ConfigError, match=r"templates\.verify_code\.intl"):
        build(pm, {"intl": base()}, {"verify_code": {"intl": {"template_id": "123"}}})


def provider(body: str = "Your code is {code}, valid {minutes} min. {{ok}}") -> TwilioProvider:
    return TwilioProvider(
        TwilioOptions.model_validate(base(type=None)),
        context=ProviderContext(instance="intl", callback_path=SecretStr("/callbacks/intl")),
        templates={"verify_code": TwilioTemplate(body=body)},
    )


def sms(to: str = "+8615612341090", template: str = "verify_code", **params: str) -> SmsMessage:
    return SmsMessage(to=to, template=template, params=params)


def test_renders_params_and_literal_braces() -> None:
    p = provider()
    assert p.decline(sms(code="1234", minutes="5")) is None
    assert p._render(sms(code="1234", minutes="5")) == "Your code is 1234, valid 5 min. {ok}"


def test_declines_missing_parameter_and_unmapped_template() -> None:
    p = provider()
    reason = p.decline(sms(code="1234"))
    assert reason is not None and "'minutes'" in reason
    reason = p.decline(sms(template="welcome"))
    assert reason is not None and "[templates.welcome.intl]" in reason


def test_declines_bodies_over_1600_characters() -> None:
    p = provider("{text}")
    assert p.decline(sms(text="x" * 1600)) is None
    reason = p.decline(sms(text="x" * 1601))
    assert reason is not None and "1601" in reason and "1600" in reason


def test_declines_an_empty_text() -> None:
    reason = provider("{text}").decline(sms(text="  "))
    assert reason is not None and "empty" in reason


@pytest.mark.parametrize("to", ["+8615612341090", "+14155550123", "+447911123456", "+61412345678"])
def test_serves_every_country(to: str) -> None:
    assert provider().decline(sms(to=to, code="1", minutes="2")) is None
