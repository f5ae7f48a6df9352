"""Phone numbers, SmsMessage validation, the public surface, events."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import notifykit
from notifykit import DeliveryReceipt, DeliveryStatus, InboundMessage, SmsMessage
from notifykit.errors import InvalidMessage
from notifykit.events import EventAdapter, make_event_id
from notifykit.notifier import build_message
from notifykit.phone import mask_phone, parse_phone, region_of

NUMBER = "+8615612341090"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+8615612341090", NUMBER),
        ("+86 156 1234 1090", NUMBER),
        (" +86-156-1234-1090 ", NUMBER),
        ("+1 (201) 555-0123", "+12015550123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_parse_phone_gives_e164(raw: str, e164: str) -> None:
    assert parse_phone(raw) == e164


def test_a_national_number_needs_a_region() -> None:
    assert parse_phone("156 1234 1090", "CN") == NUMBER
    with pytest.raises(InvalidMessage, match=r"156\*\*\*\*1090 has no country code"):
        parse_phone("15612341090")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("+86156123410901234", "not a valid number for CN (too long)"),
        ("+8615", "not a valid number for CN (too short)"),
        ("+1 800 FLOWERS", "characters other than digits"),
        ("+8615612341090 ext. 12", "characters other than digits"),
        ("+999 1234 5678 9", "not a phone number"),
        ("+86 123 4567 8901", "not a valid number for CN"),
    ],
)
def test_invalid_numbers_say_what_is_wrong_with_the_number_masked(raw: str, why: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_phone(raw)
    message = str(info.value)
    assert message.startswith("to: ") and why in message
    digits = re.sub(r"\D", "", raw)
    if len(digits) >= 8:
        assert digits not in re.sub(r"\D", "", message.split(":", 1)[1].replace("3166", ""))


def test_non_string_number() -> None:
    with pytest.raises(InvalidMessage, match="expected the number as a string, got int"):
        parse_phone(8615612341090)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (NUMBER, "+86156****1090"),
        ("+12015550123", "+1201****0123"),
        ("15612341090", "156****1090"),
        ("12345", "***45"),
        (None, "<none>"),
        ("", "<none>"),
    ],
)
def test_mask_phone(value: str | None, masked: str) -> None:
    assert mask_phone(value) == masked


@given(st.text(max_size=40))
def test_parse_phone_gives_e164_or_invalid_message(text: str) -> None:
    try:
        result = parse_phone(text)
    except InvalidMessage as exc:
        assert exc.message.startswith("to: ")
        assert "\n" not in exc.message
    else:
        assert re.fullmatch(r"\+[1-9]\d{6,14}", result)
        assert parse_phone(result) == result


@given(st.text(alphabet="+0123456789 -", min_size=8, max_size=25))
def test_mask_phone_never_shows_the_middle_digits(text: str) -> None:
    masked = mask_phone(text)
    digits = re.sub(r"\D", "", text)
    assert "****" in masked or len(digits) < 8
    if len(digits) >= 12:
        assert digits not in re.sub(r"\D", "", masked)


def test_region_of() -> None:
    assert region_of(NUMBER) == "CN"
    assert region_of("garbage") is None


# -- SmsMessage -----------------------------------------------------------------------------------


def test_sms_message_keeps_e164() -> None:
    message = SmsMessage(to="+86 156-1234-1090", template="verify_code", params={"code": "1"})
    assert message.to == NUMBER


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"to": "+8615612349999", "template": ""}, "template: String should have at least 1"),
        ({"to": "+8615612349999", "template": "t", "params": {"code": 1}}, "params.code: Input"),
        ({"to": "+8615612349999"}, "template: Field required"),
        ({"to": "+86156123499999999", "template": "t"}, "to: recipient +86156****9999"),
        ({"to": 8615612349999, "template": "t"}, "to: expected the number as a string"),
    ],
)
def test_sms_message_errors_are_invalid_message_with_the_number_masked(
    kwargs: dict[str, object], expected: str
) -> None:
    with pytest.raises(InvalidMessage) as info:
        SmsMessage.model_validate(kwargs)
    assert expected in str(info.value)
    assert "156123499" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"template": " "}, "template: a logical template name is required"),
        ({"template": "t", "params": {"code": None}}, "params.code: expected a string or a number"),
        (
            {"template": "t", "params": {"code": True}},
            "params.code: expected a string or a finite number, got True",
        ),
        (
            {"template": "t", "params": {"n": float("nan")}},
            "params.n: expected a string or a finite number, got nan",
        ),
        (
            {"template": "t", "params": {"n": float("inf")}},
            "params.n: expected a string or a finite number",
        ),
        (
            {"template": "t", "params": {"n": Decimal("NaN")}},
            "params.n: expected a string or a finite number",
        ),
        (
            {"template": "t", "params": {"n": Decimal("sNaN")}},
            "params.n: expected a string or a finite number",
        ),
        ({"template": "t", "params": {"": "x"}}, "params: parameter names must be non-empty"),
        ({"template": "t", "params": ["code"]}, "params: expected a mapping"),
        ({"template": "t", "tags": "urgent"}, "tags: expected a list of tags"),
        ({"template": "t", "tags": ["ok", 3]}, "tags: every tag must be a non-empty string"),
        ({"template": "t", "idempotency_key": ""}, "idempotency_key: expected a non-empty"),
    ],
)
def test_build_message_refuses_bad_arguments(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(InvalidMessage, match=re.escape(expected)):
        build_message(NUMBER, **kwargs)  # type: ignore[arg-type]


def test_build_message_turns_numbers_into_strings() -> None:
    message = build_message(
        NUMBER, template="t", params={"code": 1234, "ttl": 5.5, "fee": Decimal("0.05")}
    )
    assert message.params == {"code": "1234", "ttl": "5.5", "fee": "0.05"}


def test_build_message_validates_through_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``model_construct``: the model's own validators run on every built message, so
    that a rule added to SmsMessage applies to sends too (ledger: docs/benchmarks.md)."""
    import notifykit.models

    checked: list[object] = []
    original = notifykit.models.parse_phone

    def counting(value: object) -> str:
        checked.append(value)
        return original(value)

    monkeypatch.setattr(notifykit.models, "parse_phone", counting)
    message = build_message(NUMBER, template=" t ", params={"code": 7}, tags=["a"])
    assert checked == [NUMBER]
    assert message == SmsMessage(to=NUMBER, template="t", params={"code": "7"}, tags=("a",))
    assert message.model_fields_set == set(SmsMessage.model_fields)


# -- public surface and events --------------------------------------------------------------------


def test_all_is_sorted_complete_and_importable() -> None:
    assert notifykit.__all__ == sorted(notifykit.__all__)
    for name in notifykit.__all__:
        assert getattr(notifykit, name) is not None
    required = {
        "Notifier", "AsyncNotifier", "SmsProvider", "hookimpl", "SmsMessage", "SendResult",
        "Attempt", "Balance", "DeliveryStatus", "DeliveryReceipt", "InboundMessage",
    }  # fmt: skip
    assert required <= set(notifykit.__all__)
    public = {
        name
        for name, value in vars(notifykit).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("notifykit")
    }
    assert public <= set(notifykit.__all__)


def test_errors_all_lists_the_whole_tree() -> None:
    from notifykit import errors

    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.NotifyKitError)
    }
    assert classes == set(errors.__all__)
    assert errors.__all__ == sorted(errors.__all__)


def test_delivery_status_values_are_the_lower_case_names() -> None:
    assert DeliveryStatus.DELIVERED.value == "delivered"
    for status in DeliveryStatus:
        assert status.value == status.name.lower()


def test_events_round_trip_through_the_discriminated_union() -> None:
    at = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    receipt = DeliveryReceipt(
        event_id=make_event_id("primary", "t1", "DELIVRD"),
        provider="primary",
        provider_message_id="t1",
        phone=NUMBER,
        occurred_at=at,
        status=DeliveryStatus.DELIVERED,
        vendor_status="DELIVRD",
        raw={"taskId": "t1"},
    )
    reply = InboundMessage(
        event_id=make_event_id("primary", "reply", 1), provider="primary", occurred_at=at, text="hi"
    )
    for event in (receipt, reply):
        again = EventAdapter.validate_json(event.model_dump_json())
        assert type(again) is type(event) and again == event
    assert make_event_id("primary", "t1", "DELIVRD") == receipt.event_id
    assert make_event_id("backup", "t1", "DELIVRD") != receipt.event_id


def test_event_ids_stay_what_earlier_versions_stored() -> None:
    # A stored id is compared with the id of a push received again: it must never change.
    at = datetime(2024, 5, 1, tzinfo=UTC)
    assert [
        make_event_id("vs", "receipt", "T1", "15080921234", "1", "2024-05-01 17:00:00"),
        make_event_id("vs", "reply", "T1", "15080921234", '收到 "ok"\n', "2024-05-01 17:00:00"),
        make_event_id("p", 1, None, 2.5, {"b": 1, "a": [True]}, at),
    ] == [
        "e60c3786cc5de87a43bcdd83d4ccccbe",
        "64de1c231b388c1aa1fe99c358b16a3c",
        "5ee04ddd0469b8cf23b8f861d9b9759c",
    ]


@given(st.lists(st.text(), min_size=1, max_size=6))
def test_event_ids_of_text_parts_are_those_of_the_general_json_encoding(parts: list[str]) -> None:
    """Text parts take a shorter path than other values: the same JSON, so the same id."""
    import hashlib
    import json

    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    try:
        expected = hashlib.sha256(blob.encode()).hexdigest()[:32]
    except UnicodeEncodeError:  # a lone surrogate: neither path can hash it
        with pytest.raises(UnicodeEncodeError):
            make_event_id(*parts)
        return
    assert make_event_id(*parts) == expected


def test_masking_is_idempotent() -> None:
    assert mask_phone(mask_phone(NUMBER)) == "+86156****1090"


def test_stars_do_not_smuggle_a_number_past_masking() -> None:
    assert mask_phone("*8615612341090") == "861****1090"


def test_event_times_are_aware_and_converted_to_utc() -> None:
    from datetime import timedelta, timezone

    from pydantic import ValidationError

    shanghai = timezone(timedelta(hours=8))
    reply = InboundMessage(
        event_id="e",
        provider="p",
        occurred_at=datetime(2024, 5, 1, 16, 0, tzinfo=shanghai),
        text="",
    )
    assert reply.occurred_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert reply.occurred_at.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="must be timezone-aware"):
        InboundMessage(event_id="e", provider="p", occurred_at=datetime(2024, 5, 1), text="")


def test_text_without_digits_is_not_echoed_by_masking() -> None:
    assert mask_phone("call me\nmaybe") == "***"


def test_reprs_mask_the_number_and_hide_parameter_values() -> None:
    """A model's repr (and str) may reach an application's log: the number is masked as
    in notifykit's own log lines and a parameter (a verification code) never shows."""
    from notifykit.models import MessageRecord, SendResult, VerificationRecord
    from notifykit.verify import Verification

    at = datetime(2026, 11, 30, tzinfo=UTC)
    message = SmsMessage(to=NUMBER, template="verify_code", params={"code": "918273"})
    sent = SendResult(message_id="m", provider="p")
    models: list[object] = [
        message,
        MessageRecord(message_id="m", to=NUMBER, template="t"),
        VerificationRecord(
            verification_id="v", to=NUMBER, purpose="login", code_hash="h", seed="s",
            created_at=0, expires_at=60, updated_at=0,
        ),
        Verification(
            verification_id="v", to=NUMBER, purpose="login", status="pending",
            expires_at=at, resend_after=at, sends=1, send=sent,
        ),
        DeliveryReceipt(
            event_id="e", provider="p", phone=NUMBER, occurred_at=at,
            status=DeliveryStatus.DELIVERED, vendor_status="DELIVRD",
        ),
        InboundMessage(event_id="e", provider="p", phone=NUMBER, occurred_at=at, text="ok"),
    ]  # fmt: skip
    for model in models:
        for text in (repr(model), str(model), f"{model}"):
            assert NUMBER not in text and "+86156****" in text, text
            assert "918273" not in text, text
    assert "params={'code': '***'}" in repr(message)
    assert message.params == {"code": "918273"}  # the values themselves are untouched
