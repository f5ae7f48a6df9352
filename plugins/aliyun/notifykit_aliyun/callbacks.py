"""Alibaba's HTTP batch pushes (fact sheet §9): a JSON array of ``SmsReport`` (receipts)
or ``SmsUp`` (replies) per request, and the receipts QuerySendDetails gives (§7).

Each item becomes its own event. ``event_id`` is deterministic: a receipt's is built from
``biz_id``, ``out_id`` (notifykit's message id; the number when there is none), the
outcome and ``err_code`` — the same for a pushed and a polled receipt, so the reconciler
and a later push de-duplicate each other; a reply's from ``sequence_id`` (a string or a
number: both accepted), the number and the time. Masked numbers (``1381111****``) are kept
in ``raw`` and the event's ``phone`` is None. Times carry no zone: they are read in
``vendor_timezone`` (Beijing time by default, unconfirmed by Alibaba) and kept raw.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from notifykit.errors import CallbackError
from notifykit.events import DeliveryReceipt, InboundMessage, make_event_id
from notifykit.models import DeliveryStatus
from notifykit.provider import CallbackResult

__all__ = [
    "ACK_BODY",
    "CHECK_BODY",
    "parse_batch",
    "parse_time",
    "phone_from",
    "receipt_event_id",
]

ACK_BODY = json.dumps({"code": 0, "msg": "接收成功"}, ensure_ascii=False).encode()
"""The acknowledgement of a push (DOC-REPORT, DOC-UP)."""
CHECK_BODY = json.dumps({"code": 0, "msg": "成功"}, ensure_ascii=False).encode()
"""The answer to Alibaba's GET check of the URL (document_detail/3041841)."""
JSON_HEADERS = {"content-type": "application/json; charset=utf-8"}

_MAINLAND = re.compile(r"^(?:\+?86|0086)?(1[3-9][0-9]{9})$")
_TIME = "%Y-%m-%d %H:%M:%S"


def phone_from(value: object) -> str | None:
    """E.164 for an unmasked mainland number (with or without +86/0086/86); None for a
    masked, foreign or unreadable one (the raw value stays in ``raw``)."""
    if not isinstance(value, str):
        return None
    match = _MAINLAND.match(value.strip())
    return f"+86{match.group(1)}" if match else None


def parse_time(value: object, zone: ZoneInfo, field: str) -> datetime:
    """``yyyy-MM-dd HH:mm:ss`` in ``zone`` as an aware datetime; CallbackError otherwise."""
    if not isinstance(value, str):
        raise CallbackError(f"{field} is missing or not a string")
    try:
        return datetime.strptime(value.strip(), _TIME).replace(tzinfo=zone)
    except ValueError:
        raise CallbackError(f"{field} is not yyyy-MM-dd HH:mm:ss") from None


def receipt_event_id(
    instance: str, biz_id: str, out_id: str | None, phone: str | None, delivered: bool, code: str
) -> str:
    """The id shared by a pushed SmsReport and a polled QuerySendDetails record."""
    return make_event_id(instance, "report", biz_id, out_id or phone or "", delivered, code)


def _text(item: dict[str, Any], field: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value.strip():
        raise CallbackError(f"{field} is missing or not a string")
    return value.strip()


def _report(item: dict[str, Any], instance: str, zone: ZoneInfo) -> DeliveryReceipt:
    biz_id = _text(item, "biz_id")
    success = item.get("success")
    if isinstance(success, str) and success.lower() in ("true", "false"):
        success = success.lower() == "true"  # tolerated: a string where a boolean belongs
    if not isinstance(success, bool):
        raise CallbackError("success is not a boolean")
    err_code = item.get("err_code")
    code = err_code.strip() if isinstance(err_code, str) and err_code.strip() else ""
    raw_phone = item.get("phone_number")
    out_id = item.get("out_id") if isinstance(item.get("out_id"), str) else None
    occurred = parse_time(item.get("report_time") or item.get("send_time"), zone, "report_time")
    return DeliveryReceipt(
        event_id=receipt_event_id(
            instance,
            biz_id,
            out_id or None,
            raw_phone if isinstance(raw_phone, str) else None,
            success,
            code,
        ),
        provider=instance,
        provider_message_id=biz_id,
        phone=phone_from(raw_phone),
        occurred_at=occurred,
        raw=item,
        status=DeliveryStatus.DELIVERED if success else DeliveryStatus.UNDELIVERED,
        vendor_status="DELIVERED" if success else (code or "FAILED"),
        error_code=None if success else (code or None),
    )


def _sequence_id(value: object) -> str:
    if isinstance(value, bool) or value is None:
        raise CallbackError("sequence_id is missing or not a string or integer")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise CallbackError("sequence_id is missing or not a string or integer")


def _reply(item: dict[str, Any], instance: str, zone: ZoneInfo) -> InboundMessage:
    content = item.get("content")
    if not isinstance(content, str):
        raise CallbackError("content is missing or not a string")
    sequence = _sequence_id(item.get("sequence_id"))
    raw_phone = item.get("phone_number")
    if not isinstance(raw_phone, str) or not raw_phone.strip():
        raise CallbackError("phone_number is missing or not a string")
    occurred = parse_time(item.get("send_time"), zone, "send_time")
    return InboundMessage(
        event_id=make_event_id(instance, "up", sequence, raw_phone.strip(), item.get("send_time")),
        provider=instance,
        phone=phone_from(raw_phone),
        occurred_at=occurred,
        raw=item,
        text=content,
    )


def parse_item(item: object, instance: str, zone: ZoneInfo) -> DeliveryReceipt | InboundMessage:
    """One array item: an SmsReport (has ``biz_id``/``success``) or an SmsUp (``content``)."""
    if not isinstance(item, dict):
        raise CallbackError("item is not a JSON object")
    if "biz_id" in item or "success" in item:
        return _report(item, instance, zone)
    if "content" in item or "sequence_id" in item:
        return _reply(item, instance, zone)
    raise CallbackError("neither an SmsReport (biz_id, success) nor an SmsUp (content)")


def parse_batch(body: bytes, instance: str, zone: ZoneInfo) -> CallbackResult:
    """A push body -> its events, acknowledged with ``{"code":0,"msg":"接收成功"}``.

    Items that cannot be read are named in ``quarantine_reason`` (the core stores the
    others and quarantines the request); a body that is not a JSON array at all gives no
    events and the reason. Either way the answer is the acknowledgement: Alibaba retries
    anything else three times, and what cannot parse now never will.
    """
    events: list[DeliveryReceipt | InboundMessage] = []
    problems: list[str] = []
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(f"body is not JSON: {type(exc).__name__}")
        data = None
    if data is not None and not isinstance(data, list):
        problems.append("body is not a JSON array")
    elif isinstance(data, list):
        for index, item in enumerate(data):
            try:
                events.append(parse_item(item, instance, zone))
            except CallbackError as exc:
                problems.append(f"item {index}: {exc.message}")
            except ValueError as exc:  # a model refused a value
                problems.append(f"item {index}: {type(exc).__name__}")
    reason = None
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        reason = f"{len(problems)} unreadable: {shown}"
    return CallbackResult(
        events=events, headers=dict(JSON_HEADERS), body=ACK_BODY, quarantine_reason=reason
    )
