"""Phone numbers: parsing to E.164 and masking for logs and error messages."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import ValidationResult

from notifykit.errors import InvalidMessage

__all__ = ["mask_phone", "number_type_of", "parse_phone", "parsed_number", "region_of"]

# What a typed number may hold besides digits: a leading +, spaces and the usual separators.
# Letters are refused (phonenumbers would read "1-800-FLOWERS" as digits), and so are
# extensions, which an SMS cannot reach.
_ALLOWED = re.compile(r"^\+?[0-9 ().\-/\u00a0]+$")

_MASKED = re.compile(r"\+?\d{0,6}\*+\d{0,4}")

# E.164 number -> its parsed form's fields and its line type, filled by parse_phone, so
# that a provider reading the number of a message again (to check the region, the line
# type) neither parses nor classifies it again. Plain values (see _Parsed), not
# PhoneNumber objects: the collector stops tracking such tuples, where thousands of
# cached PhoneNumbers would live long enough to trigger full collections (which stall
# every send on the loop). The type is None where only parsed_number has parsed the
# number (not validated); PhoneNumberType.UNKNOWN means invalid.
_Parsed = tuple[int | None, int | None, str | None, bool | None, int | None, int | None]
_PARSED: dict[str, _Parsed] = {}
_PARSED_MAX = 4096
_UNKNOWN = phonenumbers.PhoneNumberType.UNKNOWN

_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length",
}


def mask_phone(value: str | None) -> str:
    """Mask a number for logs and messages: ``+8615612341090`` -> ``+86156****1090``.

    Keeps the country code, the first three national digits and the last four; anything
    with fewer than eight digits shows only its last two digits, and text without digits
    shows nothing of itself. Separators are
    dropped first, so ``+86 156 1234 1090`` hides as much as its E.164 form.
    """
    if not value:
        return "<none>"
    text = value.strip()
    if _MASKED.fullmatch(text):
        return text  # already masked: masking twice would hide the country code
    plus = "+" if text.startswith("+") else ""
    digits = "".join(c for c in text if c.isdigit())
    known = _PARSED.get(text)  # a number parse_phone returned: not parsed again
    try:
        parsed = (
            _number(known)
            if known is not None
            else phonenumbers.parse(text, None)
            if plus
            else None
        )
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None:
        national = str(parsed.national_number)
        if len(national) >= 8:
            return f"+{parsed.country_code}{national[:3]}****{national[-4:]}"
    if len(digits) >= 8:
        return f"{plus}{digits[:3]}****{digits[-4:]}"
    if not digits:
        return "***"  # not a number at all: echo nothing of it
    compact = plus + digits
    return "*" * max(len(compact) - 2, 0) + compact[-2:]


def parse_phone(value: object, default_region: str | None = None) -> str:
    """Parse and validate a number, returning its E.164 form.

    The country code comes after ``+`` or the international prefix ``00``
    (``"0086 15612341090"``); any other number needs ``default_region`` (e.g. ``"CN"``).
    Every place that takes a number from a user (``send``, ``log --phone``, the testing
    kit) uses this one rule and its errors. Raises
    :class:`InvalidMessage` saying what is wrong, with the number masked.
    """
    if not isinstance(value, str):
        raise InvalidMessage(f"to: expected the number as a string, got {type(value).__name__}")
    text = value.strip()
    known = _PARSED.get(text)
    if known is not None and known[5] is not None and known[5] != _UNKNOWN:
        return text  # this very E.164 string was parsed and validated before
    if not text:
        raise InvalidMessage("to: the recipient number is empty")
    # Masking parses the number too: only an error message pays for it.
    if not _ALLOWED.fullmatch(text):
        raise InvalidMessage(
            f"to: recipient {mask_phone(text)} holds characters other than digits, spaces, + - ( ) . /"
        )
    if default_region is None and text.startswith("00"):
        # 00 is the international prefix of most of the world, China's included:
        # "0086 156 1234 1090" is "+86 156 1234 1090".
        text = "+" + text[2:]
    if not text.startswith("+") and default_region is None:
        raise InvalidMessage(
            f"to: recipient {mask_phone(text)} has no country code "
            "(write it as +<country code><number> or 00<country code><number>)"
        )
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        reason = exc.args[0] if exc.args else type(exc).__name__
        raise InvalidMessage(
            f"to: recipient {mask_phone(text)} is not a phone number: {reason}"
        ) from None
    # The line type, kept for providers that ask (Veesing serves mobiles only), is the
    # validity test too: is_valid_number is number_type(...) != UNKNOWN, the same work.
    kind = phonenumbers.number_type(parsed)
    if kind == _UNKNOWN:
        why = _REASONS.get(phonenumbers.is_possible_number_with_reason(parsed))
        region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        where = f" for {region}" if region and region != "ZZ" else ""
        detail = f" ({why})" if why else ""
        raise InvalidMessage(
            f"to: recipient {mask_phone(text)} is not a valid number{where}{detail}"
        )
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    _remember(e164, parsed, kind)
    return e164


def _remember(e164: str, parsed: phonenumbers.PhoneNumber, kind: int | None) -> None:
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[e164] = (
        parsed.country_code,
        parsed.national_number,
        parsed.extension,
        parsed.italian_leading_zero,
        parsed.number_of_leading_zeros,
        kind,
    )


def _number(known: _Parsed) -> phonenumbers.PhoneNumber:
    """The PhoneNumber ``phonenumbers.parse`` made (without ``keep_raw_input``), again."""
    return phonenumbers.PhoneNumber(
        country_code=known[0],
        national_number=known[1],
        extension=known[2],
        italian_leading_zero=known[3],
        number_of_leading_zeros=known[4],
    )


def parsed_number(e164: str) -> phonenumbers.PhoneNumber | None:
    """The parsed form of an E.164 number, or None when it does not parse.

    Cached (numbers that :func:`parse_phone` returned are already there): a new
    PhoneNumber equal to what ``phonenumbers.parse`` returns, made from the cached fields.
    It is not validated: check :func:`number_type_of` (UNKNOWN for an invalid number)
    where that matters.
    """
    found = _PARSED.get(e164)
    if found is not None:
        return _number(found)
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    _remember(e164, parsed, None)
    return parsed


def number_type_of(e164: str) -> int | None:
    """The line type of an E.164 number (a ``phonenumbers.PhoneNumberType`` value;
    ``UNKNOWN`` for a number that is not valid), or None when it does not parse.

    Cached with the parsed form: for a number :func:`parse_phone` returned, neither
    parsed nor classified again.
    """
    found = _PARSED.get(e164)
    if found is not None and found[5] is not None:
        return found[5]
    parsed = parsed_number(e164)
    if parsed is None:
        return None
    kind = phonenumbers.number_type(parsed)
    _remember(e164, parsed, kind)
    return kind


def region_of(e164: str) -> str | None:
    """The ISO 3166 region of an E.164 number (``"CN"``), or None when unknown."""
    parsed = parsed_number(e164)
    return None if parsed is None else phonenumbers.region_code_for_number(parsed) or None
