"""The Twilio webhook builders (notifykit_twilio.testing): Twilio's documented signature
example and field shapes, then the plugin verifying and reading them through the receiver."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from notifykit_twilio.signature import compute_signature, verify_signature
from notifykit_twilio.testing import (
    twilio_callback_url,
    twilio_inbound_message,
    twilio_settings,
    twilio_signature,
    twilio_status_callback,
)
from pydantic import SecretStr

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus, Event
from notifykit.errors import ConfigError
from notifykit.testing import CallbackPush, deliver

pytestmark = pytest.mark.anyio

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-not-real"


def fields_of(push: CallbackPush) -> list[tuple[str, str]]:
    return parse_qsl(push.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


def test_twilio_signature_matches_the_documented_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    # Order of the given fields does not matter; a pair list works as a mapping does.
    assert twilio_signature("12345", url, list(reversed(params.items()))) == (
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert twilio_signature("12346", url, params) != "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_twilio_signature_repeated_names_keep_their_order() -> None:
    a = twilio_signature("k", "https://x.test/", [("B", "2"), ("A", "1"), ("A", "0")])
    b = twilio_signature("k", "https://x.test/", [("A", "1"), ("A", "0"), ("B", "2")])
    c = twilio_signature("k", "https://x.test/", [("A", "0"), ("A", "1"), ("B", "2")])
    assert a == b != c


def test_twilio_status_callback_fields_and_signature() -> None:
    url = "https://example.test/callbacks/intl"
    push = twilio_status_callback(
        "SM" + "a" * 32,
        "undelivered",
        url=url,
        auth_token=AUTH_TOKEN,
        to="+14155550100",
        account_sid=ACCOUNT_SID,
        error_code=30003,
        extra={"RawDlrDoneDate": "2401011230"},
    )
    fields = dict(fields_of(push))
    assert fields["MessageSid"] == fields["SmsSid"] == "SM" + "a" * 32
    assert fields["MessageStatus"] == "undelivered" and fields["ErrorCode"] == "30003"
    assert (fields["To"], fields["AccountSid"]) == ("+14155550100", ACCOUNT_SID)
    assert fields["ApiVersion"] == "2010-04-01" and fields["RawDlrDoneDate"] == "2401011230"
    assert push.headers["content-type"] == "application/x-www-form-urlencoded"
    assert push.headers["x-twilio-signature"] == twilio_signature(AUTH_TOKEN, url, fields_of(push))


def test_twilio_inbound_message_fields_and_unsigned_variant() -> None:
    push = twilio_inbound_message("STOP 停止", url="u", auth_token=None, from_="+14155550100")
    fields = dict(fields_of(push))
    assert fields["Body"] == "STOP 停止" and fields["SmsStatus"] == "received"
    assert fields["From"] == "+14155550100" and fields["NumMedia"] == "0"
    assert fields["MessageSid"].startswith("SM") and len(fields["MessageSid"]) == 34
    assert "x-twilio-signature" not in push.headers


def test_twilio_callback_url_and_settings_come_from_the_configuration() -> None:
    config = Config.from_dict(
        {
            "providers": {
                "intl": {
                    "type": "twilio",
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "public_url": "https://example.test/hooks/",
                },
                "mem": {"type": "memory"},
            },
            "callbacks": {"token": "tok123"},
        }
    )
    assert twilio_callback_url(config, "intl") == "https://example.test/hooks/callbacks/intl/tok123"
    settings = twilio_settings(config, "intl")
    assert settings["url"].endswith("/tok123") and settings["account_sid"] == ACCOUNT_SID
    assert AUTH_TOKEN not in repr(settings), "the token is kept as a SecretStr"
    with pytest.raises(ConfigError, match=r"providers\.mem\.public_url"):
        twilio_callback_url(config, "mem")
    with pytest.raises(ConfigError, match="unknown provider"):
        twilio_callback_url(config, "nope")


async def _collect(notifier: AsyncNotifier) -> list[Event]:
    seen: list[Event] = []
    notifier.subscribe(seen.append)
    return seen


def _twilio_config(**extra: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "intl": {
                    "type": "twilio",
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "from_number": "+15005550006",
                    "public_url": "https://example.test/hooks",
                }
            },
            **extra,
        }
    )


async def test_the_twilio_plugin_accepts_signed_pushes_and_refuses_others() -> None:
    async with AsyncNotifier(_twilio_config(callbacks={"token": "tok123"})) as notifier:
        seen = await _collect(notifier)
        settings = twilio_settings(notifier, "intl")
        status = twilio_status_callback("SM" + "b" * 32, "delivered", to="+14155550100", **settings)
        assert (await deliver(notifier, "intl", status))[0] == 200
        inbound = twilio_inbound_message("hello", from_="+14155550100", **settings)
        code, headers, body = await deliver(notifier, "intl", inbound)
        assert code == 200 and headers["content-type"].startswith("text/xml")
        assert b"<Response" in body
        forged = twilio_status_callback(
            "SM" + "c" * 32,
            "delivered",
            to="+14155550100",
            **{**settings, "auth_token": "not-the-token"},
        )
        assert (await deliver(notifier, "intl", forged))[0] == 403
        unsigned = twilio_status_callback(
            "SM" + "d" * 32, "failed", to="+14155550100", **{**settings, "auth_token": None}
        )
        assert (await deliver(notifier, "intl", unsigned))[0] == 403
    assert [(e.kind, e.provider_message_id) for e in seen] == [
        ("receipt", "SM" + "b" * 32),
        ("reply", inbound_sid(inbound)),
    ]
    receipt = seen[0]
    assert isinstance(receipt, DeliveryReceipt) and receipt.status is DeliveryStatus.DELIVERED


def inbound_sid(push: CallbackPush) -> str:
    return dict(fields_of(push))["MessageSid"]


def test_the_builders_sign_with_the_code_the_receiver_verifies_with() -> None:
    url = "https://example.test/callbacks/intl"
    fields = [("To", "+14155550100"), ("Body", "hi"), ("To", "+14155550101")]
    signature = twilio_signature(SecretStr(AUTH_TOKEN), url, fields)
    assert signature == compute_signature(AUTH_TOKEN, url, fields)
    assert verify_signature(AUTH_TOKEN, url, fields, signature)
    assert not verify_signature(AUTH_TOKEN, url + "x", fields, signature)


async def test_without_its_own_public_url_the_instance_uses_the_callbacks_one() -> None:
    config = Config.from_dict(
        {
            "providers": {
                "intl": {
                    "type": "twilio",
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "from_number": "+15005550006",
                }
            },
            "callbacks": {"public_url": "https://hooks.example.test/base", "token": "tok9"},
        }
    )
    assert twilio_callback_url(config, "intl") == (
        "https://hooks.example.test/base/callbacks/intl/tok9"
    )
    async with AsyncNotifier(config) as notifier:
        settings = twilio_settings(notifier, "intl")
        push = twilio_status_callback("SM" + "e" * 32, "sent", to="+14155550100", **settings)
        # The receiver checks the signature over the URL it was configured with: the same.
        assert (await deliver(notifier, "intl", push))[0] == 200
