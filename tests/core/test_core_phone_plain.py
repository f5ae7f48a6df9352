"""phone._parse_plain: phonenumbers.parse's answer for "+digits", taken by a shorter path."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit.phone import _PLAIN, _parse_plain, parse_phone

_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _reference(text: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None


def _check(text: str) -> bool:
    """True when the fast path answered (and then it must equal phonenumbers)."""
    got = _parse_plain(text)
    if got is None:
        return False
    reference = _reference(text)
    assert reference is not None, text
    assert got == reference, text
    # Every field, not only what __eq__ may compare.
    assert (got.country_code, got.national_number, got.extension) == (
        reference.country_code,
        reference.national_number,
        reference.extension,
    )
    assert (got.italian_leading_zero, got.number_of_leading_zeros) == (
        reference.italian_leading_zero,
        reference.number_of_leading_zeros,
    )
    return True


@settings(max_examples=400, deadline=None)
@given(
    code=st.sampled_from(_CODES),
    prefix=st.sampled_from(["", "0", "00", "1", "8"]),
    rest=st.text(alphabet="0123456789", max_size=16),
)
def test_plain_numbers_parse_as_phonenumbers_does(code: int, prefix: str, rest: str) -> None:
    text = f"+{code}{prefix}{rest}"
    if _PLAIN.fullmatch(text):
        _check(text)


@settings(max_examples=300, deadline=None)
@given(rest=st.text(alphabet="0123456789", max_size=20))
def test_any_digits_after_plus_parse_as_phonenumbers_does(rest: str) -> None:
    text = "+" + rest
    if _PLAIN.fullmatch(text):
        _check(text)


def test_example_numbers_of_every_region_and_type() -> None:
    answered = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            answered += _check(e164)
            # The same with the national prefix written after the country code.
            national_prefix = phonenumbers.PhoneMetadata.metadata_for_region(region)
            if national_prefix is not None and national_prefix.national_prefix:
                cc = str(example.country_code)
                text = f"+{cc}{national_prefix.national_prefix}{e164[1 + len(cc) :]}"
                if _PLAIN.fullmatch(text):
                    _check(text)
    assert answered > 300  # the fast path does answer for real numbers


def test_seeded_random_plain_numbers() -> None:
    rng = random.Random(20261125)
    answered = 0
    for _ in range(20_000):
        code = str(rng.choice(_CODES))
        rest = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 14)))
        text = f"+{code}{'0' if rng.random() < 0.3 else ''}{rest}"
        if _PLAIN.fullmatch(text):
            answered += _check(text)
    assert answered > 10_000


@pytest.mark.parametrize(
    "text",
    [
        "+0123456789",  # no country code starts with 0
        "+99912345678",  # 999 is no country code
        "+861",  # too short
    ],
)
def test_what_phonenumbers_refuses_is_left_to_phonenumbers(text: str) -> None:
    assert _parse_plain(text) is None
    assert _reference(text) is None


def test_parse_phone_takes_the_fast_path_to_the_same_e164() -> None:
    assert parse_phone("+8615612341090") == "+8615612341090"
    assert parse_phone("+86 156 1234 1091") == "+8615612341091"  # punctuation: phonenumbers


def test_the_fast_path_is_on_with_the_pinned_phonenumbers() -> None:
    from notifykit import phone

    assert phone._FAST_PATH


def test_without_the_fast_path_every_number_takes_phonenumbers_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from notifykit import errors, phone

    monkeypatch.setattr(phone, "_FAST_PATH", False)
    monkeypatch.setattr(phone, "_parse_plain", lambda text: pytest.fail("fast path taken"))
    phone._PARSED.clear()
    assert parse_phone("+8615612341092") == "+8615612341092"
    with pytest.raises(errors.InvalidMessage, match="not a valid"):
        parse_phone("+86156123")
