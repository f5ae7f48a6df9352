"""The Veesing push builders (notifykit_veesing.testing): the documented shapes, then the
plugin reading them through the receiver's own path."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
from notifykit_veesing.testing import (
    veesing_mobile,
    veesing_receipt,
    veesing_receivetime,
    veesing_reply,
)

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus, Event, InboundMessage
from notifykit.errors import InvalidMessage
from notifykit.testing import CallbackPush, deliver

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"


def fields_of(push: CallbackPush) -> list[tuple[str, str]]:
    return parse_qsl(push.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)


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


async def _collect(notifier: AsyncNotifier) -> list[Event]:
    seen: list[Event] = []
    notifier.subscribe(seen.append)
    return seen


async def test_the_veesing_plugin_reads_both_pushes() -> None:
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
