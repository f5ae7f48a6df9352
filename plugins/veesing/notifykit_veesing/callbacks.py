"""Veesing's receipt and reply pushes -> notifykit's unified events.

A push is a form-encoded POST. A receipt carries ``mobile``, ``taskid``, ``status`` and
``receivetime``; a reply carries ``content`` instead of ``status``. ``receivetime`` is
local time without an offset: it is read in the instance's ``callback_timezone``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import ValidationError

from notifykit.errors import CallbackError
from notifykit.events import DeliveryReceipt, InboundMessage, make_event_id
from notifykit.models import DeliveryStatus
from notifykit.provider import CallbackRequest, CallbackResult

__all__ = ["ACK_BODY", "RECEIVETIME_FORMAT", "decode_form", "parse_callback", "phone_from"]

ACK_BODY = b"ok"
"""The acknowledgement: HTTP 200, ``text/plain``, this body (the document names none)."""

RECEIVETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ENCODINGS = ("utf-8", "gb18030")

_STATUSES = {"1": DeliveryStatus.DELIVERED, "0": DeliveryStatus.UNDELIVERED}


def decode_form(body: bytes) -> dict[str, str]:
    """The form fields of ``body``: UTF-8, else GB18030. A field may repeat only with the same
    value. Raises CallbackError."""
    pairs: list[tuple[str, str]] | None = None
    for encoding in ENCODINGS:
        try:
            pairs = _form_pairs(body.decode(encoding), encoding)
        except (UnicodeDecodeError, ValueError):
            continue
        break
    if pairs is None:
        raise CallbackError("body is neither UTF-8 nor GB18030 form data")
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields and fields[key] != value:
            raise CallbackError(f"field {_name(key)} appears twice with different values")
        fields[key] = value
    return fields


def _form_pairs(text: str, encoding: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="strict")``:
    the same pairs, or the same error, with ``unquote`` called only for a part that has
    an escape (a receipt's numbers and ids have none)."""
    pairs = []
    for name_value in text.split("&"):
        if not name_value:
            continue
        name, _, value = name_value.partition("=")
        name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name, encoding=encoding, errors="strict")
        value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value, encoding=encoding, errors="strict")
        pairs.append((name, value))
    return pairs


_MOBILE = re.compile(r"1[0-9]{10}")


def _carrier_prefix() -> re.Pattern[str] | None:
    """China's national prefix for parsing (``0``, or a carrier selection code such as
    ``179xx``), from phonenumbers' public metadata: what ``parse`` may strip first."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    pattern = None if metadata is None else metadata.national_prefix_for_parsing
    return None if pattern is None else re.compile(pattern)


_CARRIER_PREFIX = _carrier_prefix()


def _desc_matcher(desc: Any) -> Callable[[str], bool] | None:
    """Whether a national number matches a number description of phonenumbers' public
    metadata, as phonenumbers matches one: one of its possible lengths (any, when it lists
    none), and its national number pattern in full."""
    pattern = None if desc is None else desc.national_number_pattern
    if not pattern:
        return None
    compiled = re.compile(pattern)
    lengths = frozenset(desc.possible_length or ())

    def matches(number: str) -> bool:
        return (not lengths or len(number) in lengths) and compiled.fullmatch(number) is not None

    return matches


def _cn_mobile() -> Callable[[str], bool] | None:
    """Whether a national number is a Chinese mobile number by phonenumbers' metadata: it
    matches the general description and the mobile one, and so ``is_valid_number`` holds
    (a number is valid when it matches the general description and that of any type)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    if metadata is None:
        return None
    general, mobile = _desc_matcher(metadata.general_desc), _desc_matcher(metadata.mobile)
    if general is None or mobile is None:
        return None
    return lambda number: general(number) and mobile(number)


_CN_MOBILE = _cn_mobile()


def phone_from(mobile: str) -> str | None:
    """E.164 for a Chinese number as Veesing writes it (``15080921234``, maybe ``+86``/``86``);
    None for a masked (``1508092****``) or otherwise unreadable one."""
    text = mobile.strip()
    digits = text.replace("+", "")
    # ASCII digits and "+" only (isdigit alone would take other scripts' digits too).
    if not text or not text.isascii() or (digits and not digits.isdigit()):
        return None
    if _MOBILE.fullmatch(text) and _CARRIER_PREFIX is not None and not _CARRIER_PREFIX.match(text):
        # The usual receipt: an 11-digit national mobile number. ``parse(text, "CN")``
        # would keep every digit as the national number (nothing to strip: no ``0``, no
        # carrier code) under country code 86, so the number is built directly and only
        # validated (public API both; ``parse`` was most of a receipt's cost).
        # A mobile number (what a receipt is for) is known valid from two of the patterns;
        # any other is asked of is_valid_number, which tries every type's.
        if _CN_MOBILE is not None and _CN_MOBILE(text):
            return "+86" + text
        number = phonenumbers.PhoneNumber(country_code=86, national_number=int(text))
        return "+86" + text if phonenumbers.is_valid_number(number) else None
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if parsed.country_code != 86 or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_callback(request: CallbackRequest, *, instance: str, zone: ZoneInfo) -> CallbackResult:
    """One push -> one event, acknowledged with HTTP 200 ``ok``. Raises CallbackError naming
    exactly what is wrong."""
    fields = decode_form(request.body)
    mobile = _required(fields, "mobile")
    # The document spells it taskid here and taskId in the send answer; accept either.
    task_id = _required(
        fields, "taskid" if "taskid" in fields or "taskId" not in fields else "taskId"
    )
    received = _required(fields, "receivetime")
    occurred_at = _utc(received, zone)
    status_given = bool(fields.get("status", "").strip())
    content = fields.get("content")
    if status_given and content is not None and content.strip():
        raise CallbackError(
            "both status and content are present: a push is a receipt or a reply, not both"
        )
    common: dict[str, Any] = {
        "provider": instance,
        "provider_message_id": task_id,
        "phone": phone_from(mobile),
        "occurred_at": occurred_at,
        "raw": fields,  # this call's own dict (validation copies it into the event)
    }
    event: DeliveryReceipt | InboundMessage
    try:
        if status_given:
            vendor_status = fields["status"].strip()
            status = _STATUSES.get(vendor_status)
            if status is None:
                raise CallbackError(
                    f"status {vendor_status[:20]!r} is not a Veesing status (1 delivered, 0 failed)"
                )
            event = DeliveryReceipt(
                event_id=make_event_id(
                    instance, "receipt", task_id, mobile.strip(), vendor_status, received
                ),
                **common,
                status=status,
                vendor_status=vendor_status,
            )
        elif content is not None:
            event = InboundMessage(
                event_id=make_event_id(
                    instance, "reply", task_id, mobile.strip(), content, received
                ),
                **common,
                text=content,
            )
        elif "status" in fields:
            raise CallbackError("field status is empty (expected 1 or 0)")
        else:
            raise CallbackError(
                "neither status (a receipt) nor content (a reply) is present; fields: "
                + ", ".join(sorted(_name(k) for k in fields))[:200]
            )
    except ValidationError as exc:  # defensive: the fields above are already checked
        raise CallbackError(
            f"push does not make a valid event: {exc.error_count()} problem(s)"
        ) from None
    return CallbackResult(events=[event], body=ACK_BODY)


def _required(fields: dict[str, str], key: str) -> str:
    value = fields.get(key)
    if value is None:
        present = ", ".join(sorted(_name(k) for k in fields)) or "none"
        raise CallbackError(f"field {key} is missing (fields present: {present[:200]})")
    if not value.strip():
        raise CallbackError(f"field {key} is empty")
    return value.strip()


_RECEIVETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _utc(received: str, zone: ZoneInfo) -> datetime:
    try:
        if _RECEIVETIME.fullmatch(received):
            # The exact shape Veesing writes: fromisoformat reads it as strptime would
            # (the same fields, the same range checks), at a fraction of strptime's cost.
            local = datetime.fromisoformat(received)
        else:  # anything else (e.g. single-digit fields) as strptime reads it
            local = datetime.strptime(received, RECEIVETIME_FORMAT)
    except ValueError:
        raise CallbackError(
            f"receivetime {received[:40]!r} is not a time of the form yyyy-MM-dd HH:mm:ss"
        ) from None
    try:
        return local.replace(tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):
        raise CallbackError(
            f"receivetime {received[:40]!r} is out of range in {zone.key}"
        ) from None


def _name(key: str) -> str:
    """A field name fit for an error message (arbitrary input: bounded, printable)."""
    return repr(key[:40]) if not key.isidentifier() else key
