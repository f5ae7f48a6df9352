"""Receipt and reply pushes -> unified events, per the vendor's document."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes, urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notifykit_veesing.callbacks import parse_callback

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus, InboundMessage
from notifykit.errors import CallbackError
from notifykit.provider import CallbackRequest, CallbackResult

pytestmark = pytest.mark.anyio

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORM = {"content-type": "application/x-www-form-urlencoded;charset=utf-8"}

# The document's two examples, verbatim (masked number included).
DOC_RECEIPT = {
    "mobile": "1508092****",
    "taskid": "123",
    "status": "1",
    "receivetime": "2019-07-23 17:00:00",
}
DOC_REPLY = {
    "mobile": "1508092****",
    "taskid": "123",
    "content": "收到",
    "receivetime": "2019-07-23 17:00:00",
}


def push(
    fields: dict[str, str] | list[tuple[str, str]], encoding: str = "utf-8"
) -> CallbackRequest:
    body = urlencode(fields, encoding=encoding).encode("ascii")
    return CallbackRequest(
        method="POST", url="http://127.0.0.1/callbacks/vs", headers=FORM, body=body
    )


def parse(request: CallbackRequest, zone: ZoneInfo = SHANGHAI) -> CallbackResult:
    return parse_callback(request, instance="vs", zone=zone)


def test_documented_receipt() -> None:
    result = parse(push(DOC_RECEIPT))
    assert result.status_code == 200 and result.body == b"ok"
    assert result.headers["content-type"].startswith("text/plain")
    (event,) = result.events
    assert isinstance(event, DeliveryReceipt)
    assert event.status is DeliveryStatus.DELIVERED and event.vendor_status == "1"
    assert event.provider == "vs" and event.provider_message_id == "123"
    assert event.phone is None  # masked in the document: kept in raw, not guessed
    assert event.raw == DOC_RECEIPT
    assert event.occurred_at == datetime(2019, 7, 23, 9, 0, 0, tzinfo=UTC)


def test_documented_reply() -> None:
    (event,) = parse(push(DOC_REPLY)).events
    assert isinstance(event, InboundMessage)
    assert event.text == "收到"
    assert event.provider_message_id == "123" and event.phone is None
    assert event.raw == DOC_REPLY
    assert event.occurred_at == datetime(2019, 7, 23, 9, 0, 0, tzinfo=UTC)


def test_undelivered_receipt_and_a_whole_number() -> None:
    fields = {**DOC_RECEIPT, "mobile": "15080921234", "status": "0"}
    (event,) = parse(push(fields)).events
    assert isinstance(event, DeliveryReceipt)
    assert event.status is DeliveryStatus.UNDELIVERED
    assert event.phone == "+8615080921234"


@pytest.mark.parametrize("mobile", ["+8615080921234", "8615080921234", " 15080921234 "])
def test_number_forms(mobile) -> None:
    (event,) = parse(push({**DOC_RECEIPT, "mobile": mobile})).events
    assert event.phone == "+8615080921234"
    assert event.raw["mobile"] == mobile


@pytest.mark.parametrize("mobile", ["1508092****", "150-8092-1234", "12345", "abc", "+14155550123"])
def test_unreadable_numbers_keep_the_event(mobile) -> None:
    (event,) = parse(push({**DOC_RECEIPT, "mobile": mobile})).events
    assert event.phone is None and event.raw["mobile"] == mobile


@pytest.mark.parametrize(
    "text",
    [
        "收到，谢谢！",
        "好的👍🏽",
        "👨‍👩‍👧 家人",
        "Ça marche — ok",
        "  leading and trailing  ",
        "a+b=c&d",
    ],
)
def test_reply_text_survives_intact(text) -> None:
    (event,) = parse(push({**DOC_REPLY, "content": text})).events
    assert isinstance(event, InboundMessage) and event.text == text


def test_gb18030_body_is_accepted() -> None:
    request = push({**DOC_REPLY, "content": "收到，谢谢"}, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):  # the escaped bytes are GB18030, not UTF-8
        unquote_to_bytes(request.body.decode("ascii")).decode("utf-8")
    (event,) = parse(request).events
    assert isinstance(event, InboundMessage) and event.text == "收到，谢谢"


def test_raw_gb18030_bytes_are_accepted() -> None:
    body = "mobile=15080921234&taskid=9&content=收到&receivetime=2019-07-23 17:00:00".encode(
        "gb18030"
    )
    (event,) = parse(CallbackRequest("POST", "", FORM, body)).events
    assert isinstance(event, InboundMessage) and event.text == "收到"


def test_receivetime_in_the_configured_zone() -> None:
    (utc_event,) = parse(push(DOC_RECEIPT), zone=ZoneInfo("UTC")).events
    assert utc_event.occurred_at == datetime(2019, 7, 23, 17, 0, 0, tzinfo=UTC)
    (event,) = parse(push({**DOC_RECEIPT, "receivetime": "2024-01-01 03:00:00"})).events
    assert event.occurred_at == datetime(2023, 12, 31, 19, 0, 0, tzinfo=UTC)


def test_task_id_spelled_as_in_the_send_answer_is_accepted() -> None:
    fields = {k: v for k, v in DOC_RECEIPT.items() if k != "taskid"} | {"taskId": "77"}
    (event,) = parse(push(fields)).events
    assert event.provider_message_id == "77"


def test_event_id_is_deterministic() -> None:
    first = parse(push(DOC_RECEIPT)).events[0]
    again = parse(push(dict(reversed(list(DOC_RECEIPT.items()))))).events[0]
    assert first.event_id == again.event_id
    others = [
        {**DOC_RECEIPT, "status": "0"},
        {**DOC_RECEIPT, "taskid": "124"},
        {**DOC_RECEIPT, "receivetime": "2019-07-23 17:00:01"},
        {**DOC_RECEIPT, "mobile": "15080921234"},
    ]
    ids = {parse(push(fields)).events[0].event_id for fields in others}
    assert first.event_id not in ids and len(ids) == len(others)
    assert parse(push(DOC_REPLY)).events[0].event_id != first.event_id
    other_instance = parse_callback(push(DOC_RECEIPT), instance="vs2", zone=SHANGHAI)
    assert other_instance.events[0].event_id != first.event_id


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({k: v for k, v in DOC_RECEIPT.items() if k != "mobile"}, "field mobile is missing"),
        ({k: v for k, v in DOC_RECEIPT.items() if k != "taskid"}, "field taskid is missing"),
        (
            {k: v for k, v in DOC_RECEIPT.items() if k != "receivetime"},
            "field receivetime is missing",
        ),
        ({**DOC_RECEIPT, "taskid": " "}, "field taskid is empty"),
        ({**DOC_RECEIPT, "status": "2"}, "status '2' is not a Veesing status"),
        ({**DOC_RECEIPT, "status": "DELIVRD"}, "status 'DELIVRD' is not a Veesing status"),
        ({**DOC_RECEIPT, "status": ""}, "field status is empty"),
        (
            {**DOC_RECEIPT, "receivetime": "2019-07-23T17:00:00Z"},
            "receivetime '2019-07-23T17:00:00Z'",
        ),
        ({**DOC_RECEIPT, "receivetime": "2019-02-30 17:00:00"}, "is not a time of the form"),
        ({**DOC_RECEIPT, "receivetime": "1563872400"}, "is not a time of the form"),
        ({**DOC_RECEIPT, "receivetime": "0001-01-01 00:00:00"}, "out of range"),
        ({**DOC_RECEIPT, "content": "收到"}, "both status and content"),
        ({k: v for k, v in DOC_RECEIPT.items() if k != "status"}, "neither status"),
    ],
)
def test_malformed_pushes_say_what_is_wrong(fields, problem) -> None:
    with pytest.raises(CallbackError) as caught:
        parse(push(fields))
    assert problem in caught.value.message


def test_conflicting_repeated_field() -> None:
    with pytest.raises(CallbackError, match="status appears twice"):
        parse(push([*DOC_RECEIPT.items(), ("status", "0")]))
    (event,) = parse(push([*DOC_RECEIPT.items(), ("status", "1")])).events
    assert event.status is DeliveryStatus.DELIVERED  # type: ignore[union-attr]


def test_undecodable_body() -> None:
    with pytest.raises(CallbackError, match="neither UTF-8 nor GB18030"):
        parse(CallbackRequest("POST", "", FORM, b"mobile=\xff\xff\xff&taskid=1"))


def test_blank_status_with_a_reply_is_a_reply_and_blank_content_with_status_a_receipt() -> None:
    (reply,) = parse(push({**DOC_REPLY, "status": ""})).events
    assert isinstance(reply, InboundMessage)
    (receipt,) = parse(push({**DOC_RECEIPT, "content": ""})).events
    assert isinstance(receipt, DeliveryReceipt)


@given(
    st.dictionaries(
        st.sampled_from(["mobile", "taskid", "taskId", "status", "content", "receivetime"])
        | st.text(max_size=8),
        st.sampled_from(["1", "0", "", "2019-07-23 17:00:00", "15080921234", "1508092****"])
        | st.text(max_size=30),
        max_size=7,
    )
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_form_gives_events_or_callback_error(fields) -> None:
    try:
        body = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode("ascii")
    except UnicodeEncodeError:
        return
    try:
        result = parse(CallbackRequest("POST", "", FORM, body))
    except CallbackError:
        return
    assert isinstance(result, CallbackResult) and len(result.events) == 1


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_events_or_callback_error(body) -> None:
    try:
        result = parse(CallbackRequest("POST", "", FORM, body))
    except CallbackError:
        return
    assert isinstance(result, CallbackResult)


async def test_duplicates_are_stored_once_through_the_notifier() -> None:
    config = Config.from_dict(
        {"providers": {"vs": {"type": "veesing", "app_id": "id", "app_key": "k"}}}
    )
    seen: list[object] = []
    async with AsyncNotifier(config) as notifier:
        notifier.subscribe(seen.append)
        body = push({**DOC_RECEIPT, "mobile": "15080921234"}).body
        answers = [await notifier.handle_callback("vs", "POST", FORM, body) for _ in range(3)]
        await notifier.callbacks.drain()
        events = await notifier.store.list_events()
    assert answers == [(200, {"content-type": "text/plain; charset=utf-8"}, b"ok")] * 3
    assert len(events) == 1 and len(seen) == 1
