"""One phone parse per send: parse_phone's cache serves the plugins' own questions."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import notifykit.phone as phone
from notifykit import AsyncNotifier, Config
from notifykit.errors import InvalidMessage

pytestmark = pytest.mark.anyio

COUNTRY_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def veesing_config() -> Config:
    return Config.from_dict(
        {
            "providers": {
                "vs": {
                    "type": "veesing",
                    "app_id": "APPID1",
                    "app_key": "PHONE-ONCE-APP-KEY-0042",
                    "base_url": "https://vs.veesing.test",
                }
            },
            "templates": {"verify_code": {"vs": {"template_id": "540"}}},
            "routing": {"providers": ["vs"]},
        }
    )


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, json={"returnStatus": "1", "message": "ok", "remainPoint": "9", "taskId": "t-1"}
    )


async def test_a_send_parses_and_classifies_its_number_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"parse": 0, "number_type": 0, "is_valid_number": 0}

    def counted(name: str) -> Any:
        real = getattr(phonenumbers, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    for name in calls:
        monkeypatch.setattr(phonenumbers, name, counted(name))
    async with AsyncNotifier(veesing_config(), transport=httpx.MockTransport(ok)) as notifier:
        result = await notifier.send(
            "+86 156 7788 1090", template="verify_code", params={"code": "1234"}
        )
    assert result.provider == "vs"
    assert calls == {"parse": 1, "number_type": 1, "is_valid_number": 0}


@settings(max_examples=300, deadline=None)
@given(
    cc=st.sampled_from(COUNTRY_CODES),
    digits=st.text(alphabet="0123456789", min_size=4, max_size=13),
)
def test_validity_and_line_type_match_phonenumbers(cc: int, digits: str) -> None:
    text = f"+{cc}{digits}"
    try:
        expected = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        expected = None
    valid = expected is not None and phonenumbers.is_valid_number(expected)
    try:
        e164 = phone.parse_phone(text)
    except InvalidMessage:
        assert not valid
        return
    assert valid and expected is not None
    assert e164 == phonenumbers.format_number(expected, phonenumbers.PhoneNumberFormat.E164)
    assert phone.number_type_of(e164) == phonenumbers.number_type(expected)
    assert phone.parse_phone(e164) == e164  # the cached answer is a fresh parse's answer
    assert vars(phone.parsed_number(e164)) == vars(phonenumbers.parse(e164, None))


def test_the_cache_keeps_nothing_for_the_collector_to_walk() -> None:
    e164 = phone.parse_phone("+86 156 1234 5678")
    for _ in range(2):
        gc.collect()
    # A cached PhoneNumber per number would live long enough to bring on full collections.
    assert not gc.is_tracked(phone._PARSED[e164])


def test_a_number_only_parsed_before_is_still_validated() -> None:
    invalid = "+8600012345"
    phone._PARSED.pop(invalid, None)
    assert phone.parsed_number(invalid) is not None  # parsed, never validated
    with pytest.raises(InvalidMessage, match="not a valid number"):
        phone.parse_phone(invalid)
    assert phone.number_type_of(invalid) == phonenumbers.PhoneNumberType.UNKNOWN
    with pytest.raises(InvalidMessage, match="not a valid number"):
        phone.parse_phone(invalid)  # UNKNOWN cached: still refused


def test_number_type_of_an_unparseable_number_is_none() -> None:
    assert phone.number_type_of("+") is None
