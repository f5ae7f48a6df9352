"""Twilio's answers, translated into the notifykit exception tree.

Twilio answers a refused request with HTTP 4xx/5xx and a JSON body
``{"code": 21211, "message": "...", "more_info": "...", "status": 400}``. The code decides
the class; where the code is unknown, the HTTP status does. Twilio's messages can quote the
recipient number, so every vendor message is scrubbed of phone numbers before it is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from notifykit.errors import (
    AuthenticationError,
    InvalidRecipient,
    ProviderError,
    ProviderUnavailable,
    TemplateError,
)
from notifykit.http import Answer, status_error
from notifykit.phone import mask_phone

__all__ = [
    "CALLBACK_ERROR_CODES",
    "ERROR_CODES",
    "CodeRule",
    "error_for_response",
    "read_error_body",
    "scrub",
]


@dataclass(frozen=True)
class CodeRule:
    """How one Twilio error code is reported."""

    error: type[ProviderError]
    meaning: str
    retryable: bool = False
    hint: str = ""


ERROR_CODES: dict[int, CodeRule] = {
    20003: CodeRule(
        AuthenticationError, "authentication failed (account SID, auth token or API key)"
    ),
    20403: CodeRule(AuthenticationError, "the account may not use the API (suspended or closed)"),
    20404: CodeRule(ProviderError, "resource not found (check account_sid)"),
    20429: CodeRule(
        ProviderUnavailable, "too many concurrent requests; safe to retry", retryable=True
    ),
    21211: CodeRule(InvalidRecipient, "invalid 'To' phone number"),
    21408: CodeRule(
        ProviderError,
        "permission to send to this region is not enabled",
        hint="another provider may serve this destination",
    ),
    21602: CodeRule(TemplateError, "message body is required"),
    21603: CodeRule(ProviderError, "a 'From' number or MessagingServiceSid is required"),
    21604: CodeRule(ProviderError, "a 'To' number is required"),
    21606: CodeRule(
        ProviderError,
        "the 'From' number cannot send to this destination",
        hint="another provider may serve this destination",
    ),
    21608: CodeRule(
        ProviderError,
        "trial account: the 'To' number is not verified",
        hint="another provider may serve this recipient",
    ),
    21610: CodeRule(
        InvalidRecipient,
        "the recipient has unsubscribed (replied STOP)",
        hint="the person opted out, so no other provider may text them either: no failover",
    ),
    21612: CodeRule(
        ProviderError,
        "the 'To'/'From' combination cannot be routed",
        hint="another provider may serve this destination",
    ),
    21614: CodeRule(InvalidRecipient, "the 'To' number is not a mobile number"),
    21617: CodeRule(TemplateError, "the message body exceeds 1,600 characters"),
    21635: CodeRule(InvalidRecipient, "the 'To' number is a landline"),
    21658: CodeRule(TemplateError, "a parameter exceeds its character limit"),
}
"""Codes Twilio returns when it refuses to create a message (or to answer a query)."""

CALLBACK_ERROR_CODES: dict[int, str] = {
    30003: "unreachable destination handset",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "message filtered by the carrier",
    30008: "unknown error",
}
"""Delivery failures reported later in status callbacks (``ErrorCode``), never at send time.

They are kept as ``DeliveryReceipt.error_code``; this table only names them.
"""

# A run of 7+ digits, optionally with a leading + and common separators: a phone number.
_PHONE = re.compile(r"\+?\d(?:[\d\s().-]{5,}\d)")


def scrub(text: str) -> str:
    """``text`` with every phone-number-like run masked (Twilio quotes the ``To`` number)."""
    return _PHONE.sub(lambda m: mask_phone(re.sub(r"[\s().-]", "", m.group())), text)


def read_error_body(response: httpx.Response | Answer) -> tuple[int, str] | None:
    """Twilio's ``(code, message)`` from an error response, or None when unreadable."""
    try:
        data: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    code = data.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    message = data.get("message")
    return code, scrub(message) if isinstance(message, str) else ""


def error_for_response(response: httpx.Response | Answer, provider: str) -> ProviderError:
    """The notifykit error for a Twilio answer that is not a success."""
    status = response.status_code
    if status >= 500:
        return status_error(response, provider)
    body = read_error_body(response)
    if body is None:
        if status == 401:
            return AuthenticationError(
                f"{provider}: HTTP 401 from Twilio: the credentials were refused",
                provider=provider,
                vendor_code="401",
            )
        if status == 429:
            return status_error(response, provider)
        return ProviderUnavailable(
            f"{provider}: HTTP {status} from Twilio with an unreadable body",
            provider=provider,
            vendor_code=str(status),
        )
    code, message = body
    rule = ERROR_CODES.get(code)
    if rule is None and status == 429:
        rule = CodeRule(ProviderUnavailable, "too many requests; safe to retry", retryable=True)
    if rule is None and status == 401:
        rule = CodeRule(AuthenticationError, "the credentials were refused")
    text = f"{provider}: Twilio error {code}"
    text += f" ({rule.meaning})" if rule is not None else f" (HTTP {status})"
    if message:
        text += f": {message}"
    if rule is not None and rule.hint:
        text += f"; {rule.hint}"
    if rule is None:
        return ProviderError(text, provider=provider, vendor_code=str(code), vendor_message=message)
    if issubclass(rule.error, ProviderUnavailable):
        return rule.error(
            text,
            provider=provider,
            vendor_code=str(code),
            vendor_message=message,
            retryable=rule.retryable,
        )
    return rule.error(text, provider=provider, vendor_code=str(code), vendor_message=message)
