"""Veesing receipts' direct paths (an 11-digit mobile, a receivetime of the usual shape) read as the general ones do."""

from __future__ import annotations

import phonenumbers
from hypothesis import example, given, settings
from hypothesis import strategies as st
from notifykit_veesing.callbacks import phone_from


def parsed(text: str) -> str | None:
    """The number as ``parse(text, "CN")`` reads it, validated (the general path)."""
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(r"1[0-9]{10}", fullmatch=True))
@example("15080921234")  # a mobile
@example("17951234567")  # a carrier selection code (179xx) first
@example("12593456789")  # 125xx
@example("11234567890")
@example("19912345678")
@example("10086123456")  # not a mobile: asked of is_valid_number
def test_an_eleven_digit_number_reads_as_parse_reads_it(text: str) -> None:
    assert phone_from(text) == parsed(text)


def test_the_usual_receipt_number_is_read_without_parse(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parse called")

    monkeypatch.setattr(phonenumbers, "parse", refuse)
    monkeypatch.setattr(phonenumbers, "is_valid_number", refuse)  # a mobile: two patterns
    assert phone_from("15080921234") == "+8615080921234"
    assert phone_from(" 15080921234 ") == "+8615080921234"


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", fullmatch=True)
    | st.text(alphabet="0123456789-: T.", max_size=24)
)
@example("2024-05-01 17:00:00")
@example("2024-02-30 17:00:00")  # no such day
@example("2024-05-01 24:00:00")
@example("2024-5-1 7:0:0")  # strptime's lenient single digits
def test_receivetime_reads_as_strptime_reads_it(text: str) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from notifykit_veesing.callbacks import RECEIVETIME_FORMAT, _utc

    from notifykit.errors import CallbackError

    zone = ZoneInfo("Asia/Shanghai")
    try:
        expected = datetime.strptime(text, RECEIVETIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        expected = None
    try:
        got = _utc(text, zone)
    except CallbackError:
        got = None
    if expected is None:
        assert got is None
    else:
        assert got is not None and got == expected


def _qsl(text: str, encoding: str) -> object:
    from urllib.parse import parse_qsl

    try:
        return parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("ab=&+%20%e6%94%b6%ff%GZ 收"), max_size=40) | st.text(),
    st.sampled_from(["utf-8", "gb18030"]),
)
@example("mobile=15612341090&taskid=t1&status=1&receivetime=2024-05-01+17%3A00%3A00", "utf-8")
@example("a&&b=&=c&d==e&%e6%94%b6=%E6%94%B6+x", "utf-8")
@example("bad=%ff", "utf-8")
def test_form_fields_read_as_parse_qsl_reads_them(text: str, encoding: str) -> None:
    from notifykit_veesing.callbacks import _form_pairs

    try:
        got: object = _form_pairs(text, encoding)
    except (UnicodeDecodeError, ValueError) as exc:
        got = type(exc)
    assert got == _qsl(text, encoding)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789+ -١٢٣²a"), max_size=16))
@example("+++")
@example("١٥٠٨٠٩٢١٢٣٤")  # Arabic-Indic digits: isdigit, not ASCII
def test_only_ascii_digits_and_plus_are_read_as_a_number(text: str) -> None:
    if text.strip() and not all(ch in "0123456789+" for ch in text.strip()):
        assert phone_from(text) is None
