"""Twilio's pushes: status callbacks and inbound messages, verified then normalised.

Every push is checked against ``X-Twilio-Signature`` before anything is read from it. A
status callback (``MessageStatus`` present) becomes a :class:`DeliveryReceipt`; an inbound
message (``SmsStatus=received`` or a ``Body`` without ``MessageStatus``) becomes an
:class:`InboundMessage`, acknowledged with empty TwiML. Twilio's callbacks carry no event
time, so ``occurred_at`` is the time the push was received.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from notifykit.errors import CallbackError, InvalidMessage, InvalidSignature
from notifykit.events import DeliveryReceipt, InboundMessage, make_event_id
from notifykit.models import DeliveryStatus, utcnow
from notifykit.phone import parse_phone
from notifykit.provider import CallbackRequest, CallbackResult
from notifykit_twilio.signature import SIGNATURE_HEADER, verify_signature

__all__ = ["EMPTY_TWIML", "STATUS_MAP", "parse_push", "signed_url"]

STATUS_MAP: dict[str, DeliveryStatus] = {
    "queued": DeliveryStatus.ACCEPTED,
    "accepted": DeliveryStatus.ACCEPTED,
    "scheduled": DeliveryStatus.ACCEPTED,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "partially_delivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.REJECTED,
}
"""Twilio's ``MessageStatus`` values and the notifykit status each one means."""

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
# Fields whose repetition would make the push ambiguous.
_SINGLE = ("MessageSid", "MessageStatus", "ErrorCode", "SmsStatus", "To", "From", "AccountSid")


def signed_url(receiver_url: str, request_url: str) -> str:
    """The URL Twilio signed: this instance's public receiver URL plus the query string the
    request arrived with (the scheme, host and path the receiver saw are ignored, since
    behind a proxy they are not the ones Twilio called)."""
    query = urlsplit(request_url).query if request_url else ""
    return f"{receiver_url}?{query}" if query else receiver_url


def _authenticate(
    request: CallbackRequest, auth_token: str | None, receiver_url: str | None
) -> list[tuple[str, str]]:
    if auth_token is None:
        raise InvalidSignature(
            "cannot verify X-Twilio-Signature: no auth_token is configured "
            "(an API key cannot verify Twilio's signatures)"
        )
    if receiver_url is None:
        raise InvalidSignature(
            "cannot verify X-Twilio-Signature: no public_url is configured, "
            "so the URL Twilio signed is unknown"
        )
    signature = request.header(SIGNATURE_HEADER)
    if not signature:
        raise InvalidSignature("missing X-Twilio-Signature header")
    try:
        params = request.form()
    except CallbackError as exc:
        # An unreadable body cannot have been signed by Twilio: refuse, do not quarantine.
        raise InvalidSignature(f"cannot verify X-Twilio-Signature: {exc.message}") from None
    if not verify_signature(auth_token, signed_url(receiver_url, request.url), params, signature):
        raise InvalidSignature(
            "X-Twilio-Signature does not match (check auth_token, and that public_url is "
            "the URL Twilio calls)"
        )
    return params


def _fields(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in params:
        if name in fields and name in _SINGLE and fields[name] != value:
            raise CallbackError(f"field {name} appears twice with different values")
        fields[name] = value
    return fields


def _message_sid(fields: dict[str, str]) -> str:
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    if not sid:
        raise CallbackError("MessageSid is missing")
    if not _MESSAGE_SID.match(sid):
        raise CallbackError("MessageSid is not a Twilio message SID (SM or MM + 32 hex)")
    return sid


def _phone(value: str | None) -> str | None:
    """E.164, or None for a short code, channel address or unreadable number (kept in raw)."""
    if not value:
        return None
    try:
        return parse_phone(value)
    except InvalidMessage:
        return None


def parse_push(
    request: CallbackRequest,
    *,
    instance: str,
    account_sid: str,
    auth_token: str | None,
    receiver_url: str | None,
) -> CallbackResult:
    """Verify and normalise one Twilio push for provider instance ``instance``.

    Raises :class:`InvalidSignature` before reading anything when the push cannot be
    verified, :class:`CallbackError` naming the problem when it cannot be understood.
    """
    params = _authenticate(request, auth_token, receiver_url)
    fields = _fields(params)
    pushed_account = fields.get("AccountSid")
    if pushed_account and pushed_account != account_sid:
        raise CallbackError("AccountSid is not this instance's account")
    sid = _message_sid(fields)
    received = utcnow()
    if "MessageStatus" in fields:
        vendor_status = fields["MessageStatus"]
        status = STATUS_MAP.get(vendor_status)
        if status is None:
            raise CallbackError(
                f"unknown MessageStatus {vendor_status[:40]!r} "
                f"(known: {', '.join(sorted(STATUS_MAP))})"
            )
        error_code = fields.get("ErrorCode") or None
        if error_code is not None and not error_code.isdigit():
            raise CallbackError("ErrorCode is not a number")
        receipt = DeliveryReceipt(
            event_id=make_event_id(instance, sid, vendor_status, error_code),
            provider=instance,
            provider_message_id=sid,
            phone=_phone(fields.get("To")),
            occurred_at=received,
            received_at=received,
            raw=fields,
            status=status,
            vendor_status=vendor_status,
            error_code=error_code,
        )
        return CallbackResult(events=[receipt], headers={"content-type": "text/plain"}, body=b"")
    if fields.get("SmsStatus") == "received" or "Body" in fields:
        if not fields.get("From"):
            raise CallbackError("inbound message without From")
        reply = InboundMessage(
            event_id=make_event_id(instance, "inbound", sid),
            provider=instance,
            provider_message_id=sid,
            phone=_phone(fields["From"]),
            occurred_at=received,
            received_at=received,
            raw=fields,
            text=fields.get("Body", ""),
        )
        return CallbackResult(
            events=[reply], headers={"content-type": "text/xml; charset=utf-8"}, body=EMPTY_TWIML
        )
    raise CallbackError(
        "neither a status callback (no MessageStatus) nor an inbound message "
        "(no Body, SmsStatus is not 'received')"
    )
