"""Push builders: the request shapes themselves, then the real plugins reading them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus, Event, InboundMessage
from notifykit.errors import ConfigError, InvalidMessage
from notifykit.testing import (
    CallbackPush,
    deliver,
    twilio_callback_url,
    twilio_inbound_message,
    twilio_settings,
    twilio_signature,
    twilio_status_callback,
    veesing_mobile,
    veesing_receipt,
    veesing_receivetime,
    veesing_reply,
)

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-not-real"


def fields_of(push: CallbackPush) -> list[tuple[str, str]]:
    return parse_qsl(push.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


# -- Veesing: the documented push shapes ---------------------------------------------------


def test_veesing_receipt_has_the_documented_fields_in_order() -> None:
    push = veesing_receipt("3313746", PHONE, receivetime="2019-07-23 17:00:00")
    headers, body = push
    assert headers == {"content-type": "application/x-www-form-urlencoded;charset=utf-8"}
    assert body == b"mobile=15612341090&taskid=3313746&status=1&receivetime=2019-07-23+17%3A00%3A00"
    assert fields_of(veesing_receipt("1", PHONE, delivered=False))[2] == ("status", "0")
    assert fields_of(veesing_receipt("1", PHONE, status=" 1 "))[2] == ("status", " 1 ")


def test_veesing_reply_keeps_chinese_and_emoji_as_utf8() -> None:
    push = veesing_reply("123", "1508092****", "收到 👍", receivetime="2019-07-23 17:00:00")
    assert fields_of(push) == [
        ("mobile", "1508092****"),
        ("taskid", "123"),
        ("content", "收到 👍"),
        ("receivetime", "2019-07-23 17:00:00"),
    ]
    assert "收到".encode() not in push.body, "percent-encoded, as a form body is"
    assert "%E6%94%B6%E5%88%B0" in push.body.decode()


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2019, 7, 23, 9, 0, tzinfo=UTC), "2019-07-23 17:00:00"),
        (datetime(2019, 7, 23, 20, 30, 5, tzinfo=UTC), "2019-07-24 04:30:05"),
        (datetime(2019, 7, 23, 17, 0), "2019-07-23 17:00:00"),  # naive: already local
        ("whenever", "whenever"),  # a string as given, to test bad times
    ],
)
def test_veesing_receivetime_is_shanghai_local_time(when: datetime | str, expected: str) -> None:
    assert veesing_receivetime(when) == expected


def test_veesing_receivetime_in_another_zone_and_now() -> None:
    when = datetime(2019, 7, 23, 9, 0, tzinfo=UTC)
    assert veesing_receivetime(when, "Europe/London") == "2019-07-23 10:00:00"
    now = datetime.strptime(veesing_receivetime(None), "%Y-%m-%d %H:%M:%S")
    assert abs((now - datetime.now(UTC).replace(tzinfo=None)).total_seconds() - 8 * 3600) < 60


@pytest.mark.parametrize(
    ("phone", "mobile"),
    [(PHONE, "15612341090"), ("+86 156 1234 1090", "15612341090"), ("15612341090", "15612341090")],
)
def test_veesing_mobile_is_the_national_form(phone: str, mobile: str) -> None:
    assert veesing_mobile(phone) == mobile


def test_veesing_mobile_refuses_other_countries_without_echoing_the_number() -> None:
    with pytest.raises(InvalidMessage) as caught:
        veesing_mobile("+14155550100")
    assert "4155550100" not in str(caught.value)


# -- Twilio: signature and the documented shapes --------------------------------------------


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


# -- against the real plugins ---------------------------------------------------------------


async def _collect(notifier: AsyncNotifier) -> list[Event]:
    seen: list[Event] = []
    notifier.subscribe(seen.append)
    return seen


async def test_the_veesing_plugin_reads_both_pushes() -> None:
    pytest.importorskip("notifykit_veesing")
    config = Config.from_dict(
        {"providers": {"primary": {"type": "veesing", "app_id": "id", "app_key": "key"}}}
    )
    async with AsyncNotifier(config) as notifier:
        seen = await _collect(notifier)
        when = datetime(2019, 7, 23, 9, 0, tzinfo=UTC)
        response = await deliver(
            notifier, "primary", veesing_receipt("3313746", PHONE, receivetime=when)
        )
        assert response[0] == 200
        await deliver(notifier, "primary", veesing_reply("3313746", PHONE, "收到 👍"))
        # The same push again is stored once.
        await deliver(notifier, "primary", veesing_receipt("3313746", PHONE, receivetime=when))
    receipt, reply = seen
    assert isinstance(receipt, DeliveryReceipt) and isinstance(reply, InboundMessage)
    assert (receipt.provider_message_id, receipt.phone, receipt.status) == (
        "3313746",
        PHONE,
        DeliveryStatus.DELIVERED,
    )
    assert receipt.occurred_at == when
    assert reply.text == "收到 👍" and reply.phone == PHONE


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
    pytest.importorskip("notifykit_twilio")
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
