"""Every documented code's error class (table-driven), and the batch push parser: masked
numbers, string-or-number ``sequence_id``, Beijing time, partly bad batches, the GET check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from notifykit_aliyun.callbacks import ACK_BODY, CHECK_BODY, parse_batch
from notifykit_aliyun.errors import ERROR_TABLE, MEANINGS, error_class_for, error_for

from notifykit.errors import (
    AuthenticationError,
    InsufficientBalance,
    InvalidRecipient,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RecipientRateLimited,
    TemplateError,
)
from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import DeliveryStatus

BEIJING = ZoneInfo("Asia/Shanghai")

# The fact sheet's §4.1 and §4.2, row by row, with the class each category means.
DOCUMENTED = [
    ("isv.SMS_SIGNATURE_SCENE_ILLEGAL", TemplateError),
    ("isv.EXTEND_CODE_ERROR", TemplateError),
    ("isv.SIGN_STATE_ILLEGAL", TemplateError),
    ("isv.DOMESTIC_NUMBER_NOT_SUPPORTED", TemplateError),
    ("isv.DENY_IP_RANGE", AuthenticationError),
    ("isv.DAY_LIMIT_CONTROL", QuotaExceeded),
    ("isv.MONTH_LIMIT_CONTROL", QuotaExceeded),
    ("isv.SMS_CONTENT_ILLEGAL", TemplateError),
    ("isv.SMS_SIGN_ILLEGAL", TemplateError),
    ("isp.RAM_PERMISSION_DENY", AuthenticationError),
    ("isv.OUT_OF_SERVICE", InsufficientBalance),
    ("isv.PRODUCT_UN_SUBSCRIPT", AuthenticationError),
    ("isv.PRODUCT_UNSUBSCRIBE", AuthenticationError),
    ("isv.ACCOUNT_NOT_EXISTS", AuthenticationError),
    ("isv.ACCOUNT_ABNORMAL", AuthenticationError),
    ("isv.SMS_TEMPLATE_ILLEGAL", TemplateError),
    ("isv.SMS_SIGNATURE_ILLEGAL", TemplateError),
    ("isv.INVALID_PARAMETERS", ProviderError),
    ("isp.SYSTEM_ERROR", ProviderUnavailable),
    ("isv.MOBILE_NUMBER_ILLEGAL", InvalidRecipient),
    ("isv.MOBILE_COUNT_OVER_LIMIT", ProviderError),
    ("isv.TEMPLATE_MISSING_PARAMETERS", TemplateError),
    ("isv.BUSINESS_LIMIT_CONTROL", RecipientRateLimited),
    ("isv.INVALID_JSON_PARAM", TemplateError),
    ("isv.BLACK_KEY_CONTROL_LIMIT", TemplateError),
    ("isv.PARAM_LENGTH_LIMIT", TemplateError),
    ("isv.PARAM_NOT_SUPPORT_URL", TemplateError),
    ("isv.AMOUNT_NOT_ENOUGH", InsufficientBalance),
    ("isv.TEMPLATE_PARAMS_ILLEGAL", TemplateError),
    ("InvalidAccessKeyId.NotFound", AuthenticationError),
    ("InvalidAccessKeyId.Inactive", AuthenticationError),
    ("SignatureDoesNotMatch", AuthenticationError),
    ("InvalidTimeStamp.Expired", AuthenticationError),
    ("InvalidTimeStamp.Format", ProviderError),
    ("SignatureNonceUsed", ProviderUnavailable),
    ("InvalidSignatureMethod", ProviderError),
    ("InvalidParameter.Format", ProviderError),
    ("InvalidVersion", ProviderError),
    ("InvalidAction.NotFound", ProviderError),
    ("InvalidApi.NotFound", ProviderError),
    ("MissingSignName", ProviderError),
    ("MissingPhoneNumbers", ProviderError),
    ("Throttling.User", ProviderUnavailable),
    ("Throttling.Api", ProviderUnavailable),
]


@pytest.mark.parametrize(("code", "cls"), DOCUMENTED, ids=[c for c, _ in DOCUMENTED])
def test_every_documented_code_has_its_class(code: str, cls: type[ProviderError]) -> None:
    assert error_class_for(code) is cls
    error = error_for(code, "msg", provider="ali", action="send", http_status=200)
    assert type(error) is cls
    assert error.vendor_code == code and error.provider == "ali"


def test_the_table_holds_exactly_the_documented_codes() -> None:
    documented = {c for c, _ in DOCUMENTED if not c.startswith("Missing")}
    assert set(ERROR_TABLE) == documented


def test_what_to_check_is_said_for_signature_and_clock_errors() -> None:
    sig = error_for("SignatureDoesNotMatch", "x", provider="ali", action="send", http_status=400)
    assert "access_key_secret" in sig.message and "HTTP 400" in sig.message
    clock = error_for(
        "InvalidTimeStamp.Expired", None, provider="ali", action="send", http_status=400
    )
    assert "clock" in clock.message
    limited = error_for(
        "isv.BUSINESS_LIMIT_CONTROL",
        "触发天级流控Permits:10",
        provider="ali",
        action="send",
        http_status=200,
    )
    assert "触发天级流控Permits:10" in limited.message


def test_retryable_only_where_a_fresh_request_may_pass() -> None:
    assert error_for("Throttling.User", "", provider="a", action="s", http_status=400).retryable  # type: ignore[attr-defined]
    assert error_for("SignatureNonceUsed", "", provider="a", action="s", http_status=400).retryable  # type: ignore[attr-defined]
    assert error_for("isp.SYSTEM_ERROR", "", provider="a", action="s", http_status=200).retryable  # type: ignore[attr-defined]


REPORT = {
    "phone_number": "1381111****",
    "send_time": "2017-01-01 00:00:00",
    "report_time": "2017-01-01 00:00:05",
    "success": True,
    "err_code": "DELIVERED",
    "err_msg": "用户接收成功",
    "sms_size": "1",
    "biz_id": "12345",
    "out_id": "67890",
}


def parse(items: object) -> tuple[list[DeliveryReceipt | InboundMessage], str | None]:
    result = parse_batch(json.dumps(items, ensure_ascii=False).encode(), "ali", BEIJING)
    assert result.status_code == 200 and result.body == ACK_BODY
    return result.events, result.quarantine_reason


def test_report_with_masked_number_in_beijing_time() -> None:
    (event,), reason = parse([REPORT])
    assert reason is None and isinstance(event, DeliveryReceipt)
    assert event.phone is None and event.raw["phone_number"] == "1381111****"
    assert event.occurred_at == datetime(2016, 12, 31, 16, 0, 5, tzinfo=UTC)
    assert (event.status, event.provider_message_id, event.error_code) == (
        DeliveryStatus.DELIVERED,
        "12345",
        None,
    )


def test_failed_report_and_unmasked_number() -> None:
    item = {**REPORT, "success": False, "err_code": "MK:0001", "phone_number": "13811112222"}
    (event,), _ = parse([item])
    assert isinstance(event, DeliveryReceipt)
    assert (event.status, event.error_code, event.phone) == (
        DeliveryStatus.UNDELIVERED,
        "MK:0001",
        "+8613811112222",
    )


def test_zone_is_configurable() -> None:
    result = parse_batch(json.dumps([REPORT]).encode(), "ali", ZoneInfo("UTC"))
    assert result.events[0].occurred_at == datetime(2017, 1, 1, 0, 0, 5, tzinfo=UTC)


def test_batch_items_are_separate_events_with_deterministic_ids() -> None:
    second = {**REPORT, "biz_id": "99999", "out_id": "m2"}
    first_run, _ = parse([REPORT, second])
    again, _ = parse([second, REPORT])
    assert len({e.event_id for e in first_run}) == 2
    assert {e.event_id for e in first_run} == {e.event_id for e in again}


@pytest.mark.parametrize("sequence", [1234567890, "1234567890"], ids=["number", "string"])
def test_reply_sequence_id_string_or_number_gives_the_same_event(sequence: object) -> None:
    up = {
        "phone_number": "13811112222",
        "content": "收到",
        "send_time": "2017-09-01 00:00:00",
        "dest_code": "1234",
        "sequence_id": sequence,
    }
    (event,), reason = parse([up])
    assert reason is None and isinstance(event, InboundMessage)
    assert (event.text, event.phone) == ("收到", "+8613811112222")
    other, _ = parse([{**up, "sequence_id": "1234567890", "sign_name": "签名"}])
    assert other[0].event_id == event.event_id


def test_partly_bad_batch_keeps_good_items_and_names_the_bad() -> None:
    bad = {**REPORT, "success": "maybe"}
    events, reason = parse([REPORT, bad, 7, {**REPORT, "biz_id": "2"}])
    assert [e.provider_message_id for e in events] == ["12345", "2"]
    assert reason is not None and "item 1: success" in reason and "item 2" in reason


@pytest.mark.parametrize("body", [b"{not json", b'{"a":1}', b"\xff\xfe"])
def test_body_that_can_never_parse_is_acknowledged_with_a_reason(body: bytes) -> None:
    result = parse_batch(body, "ali", BEIJING)
    assert result.events == [] and result.quarantine_reason
    assert result.body == ACK_BODY


def test_check_body_is_the_documented_one() -> None:
    assert json.loads(CHECK_BODY) == {"code": 0, "msg": "成功"}
    assert json.loads(ACK_BODY) == {"code": 0, "msg": "接收成功"}


@given(st.binary(max_size=300))
def test_any_body_gives_a_result(body: bytes) -> None:
    result = parse_batch(body, "ali", BEIJING)
    assert result.status_code == 200


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from([*sorted(REPORT), "content", "sequence_id"]),
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12)),
        ),
        max_size=5,
    )
)
def test_any_items_give_events_or_reasons(items: list[dict[str, object]]) -> None:
    result = parse_batch(json.dumps(items).encode(), "ali", BEIJING)
    readable = len(result.events)
    assert readable == len(items) or result.quarantine_reason is not None


@pytest.mark.parametrize("code", sorted(c for c in ERROR_TABLE if c.startswith(("isv.", "isp."))))
def test_every_business_code_keeps_the_vendor_text_and_adds_english(code: str) -> None:
    """The business codes' Message is Chinese (fact sheet §4.1): the error keeps it and says
    what it means beside it."""
    vendor_text = "账户余额不足"
    error = error_for(code, vendor_text, provider="ali", action="send", http_status=200)
    assert f"{code}: {vendor_text} (" in error.message
    assert MEANINGS[code] in error.message
    assert error.vendor_message == vendor_text


def test_a_meaning_and_a_hint_share_one_bracket() -> None:
    error = error_for(
        "isv.BUSINESS_LIMIT_CONTROL",
        "触发分钟级流控Permits:1",
        provider="ali",
        action="send",
        http_status=200,
    )
    assert error.message == (
        "ali: Alibaba Cloud refused the send: isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1 "
        "(too many messages to this number (per-number flow control); the default limits are "
        "1/min, 5/h, 10/day per number)"
    )
