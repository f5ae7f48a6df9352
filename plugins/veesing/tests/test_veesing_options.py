"""Options, template settings, registration, and what is declined before any request."""

from __future__ import annotations

import httpx
import pytest
from notifykit_veesing import (
    VeesingOptions,
    VeesingProvider,
    VeesingSandbox,
    VeesingTemplateOptions,
)
from pydantic import SecretStr, ValidationError

from notifykit import AsyncNotifier, Config
from notifykit.errors import ConfigError, InvalidMessage
from notifykit.models import SmsMessage
from notifykit.plugins import get_plugin_manager, provider_types, sandbox_types

pytestmark = pytest.mark.anyio


def test_registered_through_the_entry_point() -> None:
    pm = get_plugin_manager()
    assert provider_types(pm)["veesing"].cls is VeesingProvider
    assert provider_types(pm)["veesing"].distribution == "notifykit-veesing"
    assert sandbox_types(pm)["veesing"].cls is VeesingSandbox


def test_all_is_sorted_and_complete() -> None:
    import notifykit_veesing

    assert notifykit_veesing.__all__ == sorted(notifykit_veesing.__all__)
    for name in notifykit_veesing.__all__:
        assert hasattr(notifykit_veesing, name)


def test_defaults() -> None:
    options = VeesingOptions(app_id="id", app_key=SecretStr("s3cr3t-value"))
    assert options.base_url == "https://vip.veesing.com"
    assert options.timeout == 10.0
    assert options.callback_timezone == "Asia/Shanghai"
    assert options.variables_param == "code"
    assert "s3cr3t-value" not in repr(options) and "s3cr3t-value" not in str(options)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"callback_timezone": "Asia/Nowhere"}, "callback_timezone"),
        ({"callback_timezone": "Asia"}, "callback_timezone"),
        ({"callback_timezone": "../etc/passwd"}, "callback_timezone"),
        ({"base_url": "vip.veesing.com"}, "base_url"),
        ({"base_url": "ftp://vip.veesing.com"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"app_key": "  "}, "app_key"),
        ({"app_id": ""}, "app_id"),
        ({"variables_param": ""}, "variables_param"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_options_name_the_key_not_the_secret(changes, problem) -> None:
    data = {
        "providers": {"vs": {"type": "veesing", "app_id": "id", "app_key": "TOPSECRET", **changes}}
    }
    with pytest.raises(ConfigError) as caught:
        AsyncNotifier(Config.from_dict(data))
    assert f"providers.vs.{problem}" in caught.value.message
    assert "TOPSECRET" not in caught.value.message


def test_template_id_accepts_a_toml_integer_and_strips() -> None:
    assert VeesingTemplateOptions.model_validate({"template_id": 540}).template_id == "540"
    assert VeesingTemplateOptions.model_validate({"template_id": " 611 "}).template_id == "611"
    with pytest.raises(ValidationError):
        VeesingTemplateOptions.model_validate({"template_id": ""})
    with pytest.raises(ValidationError):
        VeesingTemplateOptions.model_validate({"template_id": "5 40"})


def test_base_url_trailing_slash_is_dropped() -> None:
    options = VeesingOptions(app_id="id", app_key=SecretStr("k"), base_url="http://127.0.0.1:8555/")
    assert options.base_url == "http://127.0.0.1:8555"


@pytest.mark.parametrize(
    ("to", "params", "template", "reason"),
    [
        ("+14155550123", {"code": "1234"}, "verify", "not a Chinese mobile"),
        ("+442079460000", {"code": "1234"}, "verify", "not a Chinese mobile"),
        ("+861012345678", {"code": "1234"}, "verify", "not a Chinese mobile"),  # Beijing landline
        ("+8615612341090", {}, "verify", "'code' is missing"),
        ("+8615612341090", {"code": "1"}, "verify", "2 to 8 ASCII digits"),
        ("+8615612341090", {"code": "123456789"}, "verify", "2 to 8 ASCII digits"),
        ("+8615612341090", {"code": "12a4"}, "verify", "2 to 8 ASCII digits"),
        ("+8615612341090", {"code": "１２３４"}, "verify", "2 to 8 ASCII digits"),
        ("+8615612341090", {"code": "12 34"}, "verify", "2 to 8 ASCII digits"),
        ("+8615612341090", {"code": "1234😀"}, "verify", "2 to 8 ASCII digits"),
        ("+8615612341090", {"code": "1234"}, "welcome", "no [templates.welcome.vs] entry"),
    ],
)
async def test_declined_before_any_request(make_provider, to, params, template, reason) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    provider = make_provider(httpx.MockTransport(handler))
    message = SmsMessage(to=to, template=template, params=params)
    declined = provider.decline(message)
    assert declined is not None and reason in declined
    assert "15612341090" not in declined
    with pytest.raises(InvalidMessage):
        await provider.send(message)
    await provider.aclose()
    assert calls == []


@pytest.mark.parametrize("to", ["+8615612341090", "+8613800138000", "+8619912345678"])
def test_chinese_mobiles_are_taken(make_provider, to) -> None:
    provider = make_provider()
    assert provider.decline(SmsMessage(to=to, template="verify", params={"code": "12"})) is None
    assert (
        provider.decline(SmsMessage(to=to, template="verify", params={"code": "12345678"})) is None
    )


def test_variables_param_is_configurable(make_provider) -> None:
    provider = make_provider(variables_param="otp")
    msg = SmsMessage(to="+8615612341090", template="verify", params={"otp": "5678"})
    assert provider.decline(msg) is None
    assert provider.decline(msg.model_copy(update={"params": {"code": "5678"}})) is not None


async def test_router_skips_veesing_for_a_foreign_number_and_says_why() -> None:
    config = Config.from_dict(
        {
            "providers": {"vs": {"type": "veesing", "app_id": "id", "app_key": "k"}},
            "templates": {"verify": {"vs": {"template_id": "540"}}},
        }
    )
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    async with AsyncNotifier(config, transport=httpx.MockTransport(handler)) as notifier:
        with pytest.raises(InvalidMessage) as caught:
            await notifier.send("+14155550123", template="verify", params={"code": "1234"})
    assert "not a Chinese mobile number" in caught.value.message
    assert caught.value.attempts[0].outcome == "skipped"
    assert calls == []


def test_config_warnings_and_describe(make_provider) -> None:
    provider = make_provider(base_url="http://sms.example.com")
    assert any("clear text" in w for w in provider.config_warnings())
    assert make_provider(base_url="http://127.0.0.1:8555").config_warnings() == []
    described = provider.describe()
    assert described["templates"] == {"verify": "540"}
    assert "app_key" not in described
