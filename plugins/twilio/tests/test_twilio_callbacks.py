"""Status callbacks and inbound messages: signature first, then normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import notifykit_twilio
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notifykit_twilio import TwilioOptions, TwilioProvider
from notifykit_twilio.callbacks import EMPTY_TWIML, STATUS_MAP
from notifykit_twilio.signature import compute_signature
from pydantic import SecretStr

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus, InboundMessage
from notifykit.errors import CallbackError, InvalidSignature
from notifykit.plugins import get_plugin_manager
from notifykit.provider import CallbackRequest, ProviderContext

pytestmark = pytest.mark.anyio

ACCOUNT = "AC" + "1234abcd" * 4
TOKEN = "auth-token-never-shown-0042"
PUBLIC = "https://hooks.example.com"
PATH = "/callbacks/intl/cbtoken"
RECEIVER = PUBLIC + PATH
INTERNAL = "http://10.0.0.7:8080" + PATH  # what the app sees behind the proxy
SID = "SM" + "0123456789abcdef" * 2
TO = "+14155550123"


def provider(**overrides: Any) -> TwilioProvider:
    options: dict[str, Any] = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "public_url": PUBLIC,
    }
    options.update(overrides)
    return TwilioProvider(
        TwilioOptions.model_validate({k: v for k, v in options.items() if v is not None}),
        context=ProviderContext(instance="intl", callback_path=SecretStr(PATH)),
    )


def status_fields(status: str = "delivered", **extra: str) -> list[tuple[str, str]]:
    fields = [
        ("ApiVersion", "2010-04-01"),
        ("AccountSid", ACCOUNT),
        ("From", "+15005550006"),
        ("MessageSid", SID),
        ("MessageStatus", status),
        ("SmsSid", SID),
        ("SmsStatus", status),
        ("To", TO),
    ]
    fields.extend(extra.items())
    return fields


def inbound_fields(body: str = "STOP please") -> list[tuple[str, str]]:
    return [
        ("AccountSid", ACCOUNT),
        ("ApiVersion", "2010-04-01"),
        ("Body", body),
        ("From", TO),
        ("FromCountry", "US"),
        ("MessageSid", SID),
        ("NumMedia", "0"),
        ("SmsSid", SID),
        ("SmsStatus", "received"),
        ("To", "+15005550006"),
    ]


def signed(
    fields: list[tuple[str, str]],
    *,
    url: str = RECEIVER,
    seen_url: str = INTERNAL,
    token: str = TOKEN,
    signature: str | None = None,
) -> CallbackRequest:
    """A push as the receiver sees it, signed by Twilio over the public ``url``."""
    query = url.partition("?")[2]
    headers = {"content-type": "application/x-www-form-urlencoded"}
    headers["x-twilio-signature"] = (
        signature if signature is not None else compute_signature(token, url, fields)
    )
    return CallbackRequest(
        method="POST",
        url=seen_url + (f"?{query}" if query else ""),
        headers=headers,
        body=urlencode(fields).encode(),
    )


@pytest.mark.parametrize(("vendor_status", "expected"), sorted(STATUS_MAP.items()))
async def test_every_status_maps(vendor_status: str, expected: DeliveryStatus) -> None:
    before = datetime.now(UTC)
    result = await provider().parse_callback(signed(status_fields(vendor_status)))
    (event,) = result.events
    assert isinstance(event, DeliveryReceipt)
    assert event.status is expected
    assert event.vendor_status == vendor_status
    assert event.provider == "intl"
    assert event.provider_message_id == SID
    assert event.phone == TO
    assert before <= event.occurred_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert event.occurred_at.tzinfo is not None
    assert result.status_code == 200 and result.body == b""


def test_the_documented_mapping() -> None:
    assert {k: v.value for k, v in STATUS_MAP.items()} == {
        "queued": "accepted",
        "accepted": "accepted",
        "scheduled": "accepted",
        "sending": "sent",
        "sent": "sent",
        "delivered": "delivered",
        "read": "delivered",
        "undelivered": "undelivered",
        "partially_delivered": "undelivered",
        "failed": "failed",
        "canceled": "rejected",
    }


async def test_undelivered_keeps_the_error_code_and_distinct_event_ids() -> None:
    p = provider()
    undelivered = (
        await p.parse_callback(signed(status_fields("undelivered", ErrorCode="30003")))
    ).events[0]
    assert isinstance(undelivered, DeliveryReceipt)
    assert undelivered.error_code == "30003"
    assert undelivered.status is DeliveryStatus.UNDELIVERED
    again = (
        await p.parse_callback(signed(status_fields("undelivered", ErrorCode="30003")))
    ).events[0]
    sent = (await p.parse_callback(signed(status_fields("sent")))).events[0]
    assert again.event_id == undelivered.event_id, "a repeated push is the same event"
    assert sent.event_id != undelivered.event_id


async def test_empty_error_code_is_none() -> None:
    event = (
        await provider().parse_callback(signed(status_fields("delivered", ErrorCode="")))
    ).events[0]
    assert isinstance(event, DeliveryReceipt) and event.error_code is None


async def test_inbound_message_answers_empty_twiml() -> None:
    result = await provider().parse_callback(signed(inbound_fields("Hello there")))
    (event,) = result.events
    assert isinstance(event, InboundMessage)
    assert event.text == "Hello there"
    assert event.phone == TO
    assert event.provider_message_id == SID
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/xml")
    assert result.body == EMPTY_TWIML


async def test_query_string_of_the_request_is_signed_too() -> None:
    url = RECEIVER + "?attempt=2&x=%20y"
    result = await provider().parse_callback(signed(status_fields(), url=url))
    assert len(result.events) == 1
    with pytest.raises(InvalidSignature):
        # signed without the query, delivered with one: not what Twilio signed
        request = signed(status_fields())
        await provider().parse_callback(
            CallbackRequest(
                request.method, request.url + "?attempt=2", request.headers, request.body
            )
        )


@pytest.mark.parametrize(
    "request_factory",
    [
        pytest.param(lambda: signed(status_fields(), signature=""), id="missing"),
        pytest.param(
            lambda: signed(status_fields(), signature="0/KCTR6DLpKmkAf8muzZqo1nDgQ="), id="bad"
        ),
        pytest.param(lambda: signed(status_fields(), token="other-token"), id="wrong-token"),
        pytest.param(lambda: signed(status_fields(), url=INTERNAL), id="signed-for-internal-url"),
        pytest.param(
            lambda: signed(status_fields(), url=PUBLIC + "/callbacks/intl"),
            id="without-callbacks-token",
        ),
    ],
)
async def test_bad_or_missing_signature_is_refused(request_factory: Any) -> None:
    with pytest.raises(InvalidSignature):
        await provider().parse_callback(request_factory())


async def test_tampered_body_is_refused() -> None:
    request = signed(status_fields("undelivered"))
    forged = request.body.replace(b"undelivered", b"delivered")
    with pytest.raises(InvalidSignature):
        await provider().parse_callback(
            CallbackRequest(request.method, request.url, request.headers, forged)
        )


async def test_without_auth_token_nothing_can_be_verified() -> None:
    p = provider(auth_token=None, api_key_sid="SK" + "ab" * 16, api_key_secret="sec")
    with pytest.raises(InvalidSignature, match="no auth_token"):
        await p.parse_callback(signed(status_fields()))


async def test_without_public_url_nothing_can_be_verified() -> None:
    with pytest.raises(InvalidSignature, match="no public_url"):
        await provider(public_url=None).parse_callback(signed(status_fields()))


async def test_undecodable_body_is_refused_not_parsed() -> None:
    request = CallbackRequest("POST", INTERNAL, {"x-twilio-signature": "abc"}, b"\xff\xfe")
    with pytest.raises(InvalidSignature):
        await provider().parse_callback(request)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ([("MessageStatus", "delivered"), ("To", TO)], "MessageSid is missing"),
        ([("MessageSid", "SM123"), ("MessageStatus", "delivered")], "not a Twilio message SID"),
        ([("MessageSid", SID), ("MessageStatus", "exploded")], "unknown MessageStatus"),
        ([("MessageSid", SID), ("MessageStatus", "failed"), ("ErrorCode", "abc")], "ErrorCode"),
        (
            [("MessageSid", SID), ("AccountSid", "AC" + "0" * 32), ("MessageStatus", "sent")],
            "AccountSid",
        ),
        ([("MessageSid", SID), ("MessageStatus", "sent"), ("MessageStatus", "failed")], "twice"),
        ([("MessageSid", SID), ("SmsStatus", "received"), ("Body", "hi")], "without From"),
        ([("MessageSid", SID), ("AccountSid", ACCOUNT)], "neither"),
    ],
)
async def test_malformed_pushes_say_what_is_wrong(
    fields: list[tuple[str, str]], complaint: str
) -> None:
    with pytest.raises(CallbackError) as info:
        await provider().parse_callback(signed(fields))
    assert not isinstance(info.value, InvalidSignature)
    assert complaint in info.value.message


async def test_non_e164_sender_is_kept_raw() -> None:
    fields = [(k, "whatsapp:+14155550123" if k == "From" else v) for k, v in inbound_fields()]
    (event,) = (await provider().parse_callback(signed(fields))).events
    assert event.phone is None
    assert event.raw["From"] == "whatsapp:+14155550123"


field_names = st.sampled_from(
    [
        "MessageSid",
        "MessageStatus",
        "ErrorCode",
        "To",
        "From",
        "Body",
        "SmsStatus",
        "AccountSid",
        "X",
    ]
)
values = st.one_of(
    st.text(max_size=20), st.sampled_from([SID, ACCOUNT, TO, "received", *STATUS_MAP])
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.lists(st.tuples(field_names, values), max_size=8))
async def test_any_signed_form_gives_events_or_a_callback_error(
    fields: list[tuple[str, str]],
) -> None:
    try:
        result = await provider().parse_callback(signed(fields))
    except CallbackError as exc:
        assert not isinstance(exc, InvalidSignature), exc.message
        return
    assert len(result.events) == 1
    assert result.events[0].provider_message_id == SID


# -- through the notifier: refused pushes never reach the store ----------------------------


def config() -> Config:
    return Config.from_dict(
        {
            "providers": {
                "intl": {
                    "type": "twilio",
                    "account_sid": ACCOUNT,
                    "auth_token": TOKEN,
                    "from_number": "+15005550006",
                    "public_url": PUBLIC,
                    "base_url": "https://api.twilio.test",
                }
            },
            "templates": {"verify_code": {"intl": {"body": "Your code is {code}"}}},
            "callbacks": {"token": "cbtoken"},
        }
    )


@pytest.fixture
def pm() -> Any:
    manager = get_plugin_manager(load_entrypoints=False)
    manager.register(notifykit_twilio, name="twilio")
    return manager


async def test_receipts_update_the_message_and_bad_signatures_are_not_stored(pm: Any) -> None:
    router = respx.MockRouter(assert_all_called=False)
    route = router.post(f"https://api.twilio.test/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    route.mock(return_value=httpx.Response(201, json={"sid": SID, "status": "queued"}))
    async with AsyncNotifier(
        config(), plugin_manager=pm, transport=httpx.MockTransport(router.async_handler)
    ) as notifier:
        sent = await notifier.send(TO, template="verify_code", params={"code": "4821"})
        form = route.calls.last.request.content.decode()
        assert (
            "StatusCallback=" + "https%3A%2F%2Fhooks.example.com%2Fcallbacks%2Fintl%2Fcbtoken"
            in form
        )

        forged = signed(status_fields("delivered"), token="guess")
        status, _, _ = await notifier.handle_callback(
            "intl", "POST", dict(forged.headers), forged.body, url=forged.url
        )
        assert status == 403
        assert await notifier.store.list_events() == []
        assert await notifier.store.list_quarantine() == []

        for vendor_status in ("sent", "delivered"):
            push = signed(status_fields(vendor_status))
            status, _, body = await notifier.handle_callback(
                "intl", "POST", dict(push.headers), push.body, url=push.url
            )
            assert status == 200, body

        inbound = signed(inbound_fields("thanks"))
        status, headers, body = await notifier.handle_callback(
            "intl", "POST", dict(inbound.headers), inbound.body, url=inbound.url
        )
        assert status == 200
        assert headers["content-type"].startswith("text/xml") and body == EMPTY_TWIML

        record = await notifier.get_message(sent.message_id)
        assert record is not None
        assert record.status is DeliveryStatus.DELIVERED
        assert [c.status for c in record.history][-2:] == [
            DeliveryStatus.SENT,
            DeliveryStatus.DELIVERED,
        ]
        kinds = sorted(e.kind for e in await notifier.store.list_events())
        assert kinds == ["receipt", "receipt", "reply"]
