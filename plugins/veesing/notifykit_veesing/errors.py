"""Veesing's refusal messages -> notifykit errors.

The vendor says why it refused only in Chinese prose (``returnStatus`` is ``"0"`` for every
refusal), so the message decides the error class. Matching is tolerant of what such prose
picks up on its way: surrounding or inner whitespace, ASCII or full-width punctuation
(``,`` / ``，``), letter case of ``IP`` / ``id``.
"""

from __future__ import annotations

import unicodedata

from notifykit.errors import (
    AuthenticationError,
    InsufficientBalance,
    InvalidRecipient,
    ProviderError,
    QuotaExceeded,
    RecipientRateLimited,
    TemplateError,
)
from notifykit_veesing import messages as m

__all__ = ["ERROR_TABLE", "error_class_for", "error_for", "meaning_of", "normalise_message"]

ERROR_TABLE: dict[str, type[ProviderError]] = {
    m.BAD_CREDENTIALS: AuthenticationError,
    m.ACCOUNT_LOCKED: AuthenticationError,
    m.IP_RESTRICTED: AuthenticationError,
    m.MISSING_PARAMETER: ProviderError,
    m.BAD_PARAMETER: ProviderError,
    m.TEMPLATE_UNKNOWN: TemplateError,
    m.BAD_TEMPLATE_ID: TemplateError,
    m.INSUFFICIENT_BALANCE: InsufficientBalance,
    m.ACCOUNT_DAILY_CAP: QuotaExceeded,
    m.BAD_PHONE: InvalidRecipient,
    m.NUMBER_DAILY_CAP: RecipientRateLimited,
    m.NUMBER_PER_MINUTE: RecipientRateLimited,
    m.UNKNOWN_REASON: ProviderError,
}
"""Every message the document lists, with the error it means. Anything else: ProviderError."""


def normalise_message(text: str) -> str:
    """The comparable core of a vendor message: NFKC (full-width -> ASCII), case-folded,
    without whitespace or punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(
        ch for ch in folded if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )


_BY_KEY: dict[str, type[ProviderError]] = {
    normalise_message(message): cls for message, cls in ERROR_TABLE.items()
}


_MEANING_BY_KEY: dict[str, str] = {
    normalise_message(message): meaning for message, meaning in m.MEANINGS.items()
}


def meaning_of(vendor_message: str | None) -> str | None:
    """notifykit's English for a message the document lists (:data:`messages.MEANINGS`),
    matched as tolerantly as the error class is; None for any other text."""
    if not vendor_message:
        return None
    return _MEANING_BY_KEY.get(normalise_message(vendor_message))


def error_class_for(vendor_message: str | None) -> type[ProviderError]:
    """The notifykit error class for a refusal message; ProviderError when not listed."""
    if not vendor_message:
        return ProviderError
    return _BY_KEY.get(normalise_message(vendor_message), ProviderError)


def error_for(vendor_message: str | None, *, provider: str, action: str) -> ProviderError:
    """The error to raise for a ``returnStatus`` ``"0"`` answer to ``action`` ("send", ...).

    The message keeps the vendor's words and adds notifykit's English beside them when the
    document lists them: ``primary: Veesing refused the send: 余额不足 (insufficient balance:
    no credits left)``.
    """
    cls = error_class_for(vendor_message)
    shown = (vendor_message or "").strip()[:200] or "<no message>"
    meaning = meaning_of(vendor_message)
    if meaning is not None:
        shown += f" ({meaning})"
    return cls(
        f"{provider}: Veesing refused the {action}: {shown}",
        provider=provider,
        vendor_code="0",
        vendor_message=vendor_message,
    )
