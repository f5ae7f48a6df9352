"""Phone numbers: parsing to E.164 and masking for logs and error messages."""

from __future__ import annotations

import phonenumbers

from notifykit.errors import InvalidMessage

__all__ = ["mask_phone", "parse_phone", "region_of"]


def mask_phone(value: str | None) -> str:
    """Mask a number for logs and messages: ``+8615612341090`` -> ``+86156****1090``.

    Keeps the country code, the first three national digits and the last four; anything
    too short to keep that much shows only its last two characters.
    """
    if not value:
        return "<none>"
    digits = value.strip()
    try:
        parsed = phonenumbers.parse(digits, None) if digits.startswith("+") else None
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None:
        national = str(parsed.national_number)
        if len(national) >= 8:
            return f"+{parsed.country_code}{national[:3]}****{national[-4:]}"
    if len(digits) >= 8:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def parse_phone(value: str, default_region: str | None = None) -> str:
    """Parse and validate a number, returning its E.164 form.

    A number without ``+`` needs ``default_region`` (e.g. ``"CN"``). Raises
    :class:`InvalidMessage` naming the masked number when it is not a valid number.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessage("recipient number is empty")
    text = value.strip()
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if text.startswith("+") or default_region else " (use +<country code>)"
        raise InvalidMessage(
            f"recipient {mask_phone(text)} is not a phone number{hint}: {exc.args[0] if exc.args else exc}"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidMessage(f"recipient {mask_phone(text)} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """The ISO 3166 region of an E.164 number (``"CN"``), or None when unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or None
    except phonenumbers.NumberParseException:
        return None
