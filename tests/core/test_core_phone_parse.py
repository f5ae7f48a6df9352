"""parse_phone, parsed_number and number_type_of agree with phonenumbers' public API.

notifykit keeps a cache of the numbers it parsed, but every parse is phonenumbers' own
(``phonenumbers.parse``), with no private step: a host application can upgrade phonenumbers
the day a release ships, and the new number ranges reach notifykit at once.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit import errors, phone
from notifykit.phone import number_type_of, parse_phone, parsed_number

_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _reference(text: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None


def _check(text: str) -> bool:
    """parse_phone's answer for ``text`` is phonenumbers': the same E.164 form for a valid
    number (True), InvalidMessage for anything else (False)."""
    phone._PARSED.clear()  # the first parse of this text, not a cached answer
    reference = _reference(text)
    valid = reference is not None and phonenumbers.is_valid_number(reference)
    if not valid:
        with pytest.raises(errors.InvalidMessage):
            parse_phone(text)
        return False
    assert reference is not None
    e164 = phonenumbers.format_number(reference, phonenumbers.PhoneNumberFormat.E164)
    assert parse_phone(text) == e164, text
    assert parsed_number(e164) == phonenumbers.parse(e164, None)
    assert number_type_of(e164) == phonenumbers.number_type(reference)
    return True


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from(_CODES),
    prefix=st.sampled_from(["", "0", "00", "1", "8"]),
    rest=st.text(alphabet="0123456789", max_size=16),
)
def test_plain_numbers_parse_as_phonenumbers_does(code: int, prefix: str, rest: str) -> None:
    _check(f"+{code}{prefix}{rest}")


def test_example_numbers_of_every_region_and_type() -> None:
    valid = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            valid += _check(
                phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            )
    assert valid > 300  # real numbers of nearly every region are accepted


def test_seeded_random_plain_numbers() -> None:
    rng = random.Random(20261125)
    for _ in range(2_000):
        code = str(rng.choice(_CODES))
        rest = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 14)))
        _check(f"+{code}{'0' if rng.random() < 0.3 else ''}{rest}")


@pytest.mark.parametrize(
    "text",
    [
        "+0123456789",  # no country code starts with 0
        "+99912345678",  # 999 is no country code
        "+861",  # too short
    ],
)
def test_what_phonenumbers_refuses_is_refused(text: str) -> None:
    assert _reference(text) is None
    with pytest.raises(errors.InvalidMessage):
        parse_phone(text)


def test_written_forms_of_one_number_give_one_e164() -> None:
    assert parse_phone("+8615612341090") == "+8615612341090"
    assert parse_phone("+86 156 1234 1091") == "+8615612341091"
    assert parse_phone("156-1234-1092", "CN") == "+8615612341092"
