"""Sending and balance against respx: every documented answer and each error code used."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from notifykit_twilio import TwilioOptions, TwilioProvider, TwilioTemplate
from notifykit_twilio.errors import ERROR_CODES
from pydantic import SecretStr

from notifykit.errors import (
    AuthenticationError,
    InvalidMessage,
    InvalidRecipient,
    ProviderError,
    ProviderUnavailable,
    TemplateError,
    UnknownOutcome,
)
from notifykit.models import DeliveryStatus, SmsMessage
from notifykit.provider import ProviderContext

pytestmark = pytest.mark.anyio

ACCOUNT = "AC" + "1234abcd" * 4
TOKEN = "auth-token-never-shown-0042"
KEY_SID = "SK" + "feedbeef" * 4
KEY_SECRET = "api-key-secret-never-shown-0042"
SERVICE = "MG" + "0a1b2c3d" * 4
BASE = "https://api.twilio.test"
MESSAGES = f"{BASE}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
BALANCE = f"{BASE}/2010-04-01/Accounts/{ACCOUNT}/Balance.json"
TO = "+14155550123"
SID = "SM" + "0123456789abcdef" * 2


def provider(transport: httpx.AsyncBaseTransport, **overrides: Any) -> TwilioProvider:
    options: dict[str, Any] = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "base_url": BASE,
        "public_url": "https://hooks.example.com/",
    }
    options.update(overrides)
    options = {k: v for k, v in options.items() if v is not None}
    return TwilioProvider(
        TwilioOptions.model_validate(options),
        context=ProviderContext(
            instance="tw", callback_path=SecretStr("/callbacks/tw/s3cret"), transport=transport
        ),
        templates={"verify_code": TwilioTemplate(body="Your code is {code}")},
    )


def message(to: str = TO, **params: str) -> SmsMessage:
    return SmsMessage(to=to, template="verify_code", params=params or {"code": "4821"})


def created(status: str = "queued", **extra: Any) -> dict[str, Any]:
    return {
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": "Your code is 4821",
        "date_created": "Thu, 30 Jul 2015 20:12:31 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": "+15005550006",
        "num_segments": "1",
        "price": None,
        "sid": SID,
        "status": status,
        "to": TO,
        **extra,
    }


def twilio_error(code: int, status: int, text: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "code": code,
            "message": text,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


@pytest.fixture
def transport(router: respx.MockRouter) -> httpx.MockTransport:
    return httpx.MockTransport(router.async_handler)


async def test_send_posts_the_documented_form_with_basic_auth(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    route = router.post(MESSAGES).mock(return_value=httpx.Response(201, json=created()))
    p = provider(transport)
    receipt = await p.send(message())
    await p.aclose()

    assert receipt.provider_message_id == SID
    assert receipt.status is DeliveryStatus.ACCEPTED
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(sent.content.decode()) == {
        "To": [TO],
        "From": ["+15005550006"],
        "Body": ["Your code is 4821"],
        "StatusCallback": ["https://hooks.example.com/callbacks/tw/s3cret"],
    }
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected}"


async def test_send_with_messaging_service_and_api_key(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    route = router.post(MESSAGES).mock(return_value=httpx.Response(201, json=created("accepted")))
    p = provider(
        transport,
        auth_token=None,
        api_key_sid=KEY_SID,
        api_key_secret=KEY_SECRET,
        from_number=None,
        messaging_service_sid=SERVICE,
        public_url=None,
    )
    receipt = await p.send(message())
    assert receipt.status is DeliveryStatus.ACCEPTED
    sent = route.calls.last.request
    form = parse_qs(sent.content.decode())
    assert form["MessagingServiceSid"] == [SERVICE]
    assert "From" not in form
    assert "StatusCallback" not in form, "no public_url: no StatusCallback"
    expected = base64.b64encode(f"{KEY_SID}:{KEY_SECRET}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(
    ("vendor_status", "expected"),
    [
        ("queued", DeliveryStatus.ACCEPTED),
        ("accepted", DeliveryStatus.ACCEPTED),
        ("scheduled", DeliveryStatus.ACCEPTED),
        ("sending", DeliveryStatus.SENT),
        ("sent", DeliveryStatus.SENT),
    ],
)
async def test_created_status_is_mapped(
    router: respx.MockRouter,
    transport: httpx.MockTransport,
    vendor_status: str,
    expected: DeliveryStatus,
) -> None:
    router.post(MESSAGES).mock(return_value=httpx.Response(201, json=created(vendor_status)))
    receipt = await provider(transport).send(message())
    assert receipt.status is expected
    assert receipt.raw["status"] == vendor_status


ERROR_TABLE = [
    (20003, 401, "Authenticate", AuthenticationError),
    (20403, 403, "403 Forbidden", AuthenticationError),
    (20404, 404, "The requested resource was not found", ProviderError),
    (21211, 400, "The 'To' number +14155550123 is not a valid phone number.", InvalidRecipient),
    (21408, 400, "Permission to send an SMS has not been enabled for the region", ProviderError),
    (21602, 400, "Message body is required.", TemplateError),
    (21603, 400, "A 'From' phone number is required.", ProviderError),
    (21604, 400, "A 'To' phone number is required.", ProviderError),
    (21606, 400, "The 'From' phone number provided is not valid", ProviderError),
    (21608, 400, "The number is unverified", ProviderError),
    (21610, 400, "Attempt to send to unsubscribed recipient", InvalidRecipient),
    (21612, 400, "The 'To' phone number is not currently reachable", ProviderError),
    (21614, 400, "'To' number is not a valid mobile number", InvalidRecipient),
    (21617, 400, "The concatenated message body exceeds the 1600 character limit", TemplateError),
    (21635, 400, "'To' number cannot be a landline", InvalidRecipient),
    (21658, 400, "Parameter exceeded character limit", TemplateError),
    (29999, 400, "Some new refusal", ProviderError),
]


@pytest.mark.parametrize(("code", "status", "text", "error"), ERROR_TABLE)
async def test_error_codes_map_to_the_tree(
    router: respx.MockRouter,
    transport: httpx.MockTransport,
    code: int,
    status: int,
    text: str,
    error: type[ProviderError],
) -> None:
    router.post(MESSAGES).mock(return_value=twilio_error(code, status, text))
    with pytest.raises(ProviderError) as info:
        await provider(transport).send(message())
    assert type(info.value) is error
    assert info.value.vendor_code == str(code)
    assert info.value.provider == "tw"
    assert str(code) in str(info.value)
    rule = ERROR_CODES.get(code)
    if rule is not None:  # notifykit's English beside Twilio's own words
        assert f"Twilio error {code} ({rule.meaning})" in info.value.message
    assert TO not in str(info.value), "the recipient number must be masked"
    assert TO not in (info.value.vendor_message or "")


async def test_opted_out_says_why_there_is_no_failover(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.post(MESSAGES).mock(return_value=twilio_error(21610, 400, "unsubscribed recipient"))
    with pytest.raises(InvalidRecipient) as info:
        await provider(transport).send(message())
    assert "opted out" in info.value.message and "no failover" in info.value.message


async def test_region_not_enabled_invites_another_provider(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.post(MESSAGES).mock(return_value=twilio_error(21408, 400, "region not enabled"))
    with pytest.raises(ProviderError) as info:
        await provider(transport).send(message())
    assert not isinstance(info.value, InvalidRecipient | ProviderUnavailable)
    assert "another provider" in info.value.message


@pytest.mark.parametrize(
    ("response", "retryable"),
    [
        (twilio_error(20429, 429, "Too Many Requests"), True),
        (httpx.Response(429, text="slow down"), True),
        (httpx.Response(500, json={"code": 20500, "message": "Internal"}), False),
        (httpx.Response(502, text="<html>bad gateway</html>"), True),
        (httpx.Response(503, text=""), True),
        (httpx.Response(504, text=""), True),
        (httpx.Response(400, text="<html>not json</html>"), False),
        (httpx.Response(400, json=["not", "an", "object"]), False),
        (httpx.Response(400, json={"message": "no code"}), False),
        (httpx.Response(302, headers={"location": "https://elsewhere"}), False),
    ],
)
async def test_unavailable_answers(
    router: respx.MockRouter,
    transport: httpx.MockTransport,
    response: httpx.Response,
    retryable: bool,
) -> None:
    router.post(MESSAGES).mock(return_value=response)
    with pytest.raises(ProviderUnavailable) as info:
        await provider(transport).send(message())
    assert info.value.retryable is retryable


async def test_401_without_a_body_is_an_authentication_error(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.post(MESSAGES).mock(return_value=httpx.Response(401, text=""))
    with pytest.raises(AuthenticationError):
        await provider(transport).send(message())


@pytest.mark.parametrize("body", [b"not json", b'{"status": "queued"}', b"[]", b'{"sid": ""}'])
async def test_accepted_without_a_sid_is_an_unknown_outcome(
    router: respx.MockRouter, transport: httpx.MockTransport, body: bytes
) -> None:
    router.post(MESSAGES).mock(return_value=httpx.Response(201, content=body))
    with pytest.raises(UnknownOutcome):
        await provider(transport).send(message())


async def test_refused_connection_is_retryable_unavailable(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.post(MESSAGES).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ProviderUnavailable) as info:
        await provider(transport).send(message())
    assert info.value.retryable
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_read_timeout_is_an_unknown_outcome(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.post(MESSAGES).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(UnknownOutcome):
        await provider(transport).send(message())


async def test_secrets_never_appear_in_errors_or_reprs(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.post(MESSAGES).mock(return_value=twilio_error(20003, 401, "Authenticate"))
    p = provider(transport, api_key_sid=KEY_SID, api_key_secret=KEY_SECRET)
    with pytest.raises(AuthenticationError) as info:
        await p.send(message())
    shown = " ".join(
        [str(info.value), repr(info.value), repr(p), repr(p.options), json.dumps(p.describe())]
    )
    for secret in (TOKEN, KEY_SECRET, "s3cret"):
        assert secret not in shown


async def test_bad_template_input_raises_before_any_request(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    route = router.post(MESSAGES).mock(return_value=httpx.Response(201, json=created()))
    p = provider(transport)
    with pytest.raises(InvalidMessage, match="'code'"):
        await p.send(message(other="1"))
    with pytest.raises(InvalidMessage, match=r"no \[templates\.unknown\.tw\]"):
        await p.send(SmsMessage(to=TO, template="unknown"))
    assert not route.called


async def test_balance_is_money_in_the_account_currency(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    route = router.get(BALANCE).mock(
        return_value=httpx.Response(
            200, json={"currency": "USD", "balance": "12.34", "account_sid": ACCOUNT}
        )
    )
    balance = await provider(transport).balance()
    assert balance.remaining == Decimal("12.34")
    assert balance.unit == "USD"
    assert balance.provider == "tw"
    assert route.calls.last.request.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "payload",
    [{"currency": "USD"}, {"balance": "abc", "currency": "USD"}, {"balance": "1.00"}, []],
)
async def test_unreadable_balance(
    router: respx.MockRouter, transport: httpx.MockTransport, payload: Any
) -> None:
    router.get(BALANCE).mock(return_value=httpx.Response(200, json=payload))
    with pytest.raises(ProviderUnavailable):
        await provider(transport).balance()


async def test_balance_errors_use_the_same_table(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.get(BALANCE).mock(return_value=twilio_error(20003, 401, "Authenticate"))
    with pytest.raises(AuthenticationError):
        await provider(transport).balance()


async def test_one_client_reused_and_closed(
    router: respx.MockRouter, transport: httpx.MockTransport
) -> None:
    router.post(MESSAGES).mock(return_value=httpx.Response(201, json=created()))
    p = provider(transport)
    await p.send(message())
    client = p.client
    await p.send(message())
    assert p.client is client
    await p.aclose()
    assert client.is_closed
    await p.aclose()  # closing twice is harmless


async def test_send_on_the_default_transport_puts_the_same_bytes_on_the_wire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The send goes through send_body, which on the default (aiohttp) transport skips
    httpx's request objects: the vendor must see the very request httpx would have sent
    (same form, basic auth, Accept and Content-Type) and the answer must read the same."""
    from notifykit import http as nk_http
    from tests.core.wire import loopback_server

    created = json.dumps({"sid": SID, "status": "queued", "num_segments": "1"}).encode()
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(created), created)
    )
    message = SmsMessage(to=TO, template="verify_code", params={"code": "123456"})
    receipts = []
    async with loopback_server(lambda _raw: answer) as (url, seen):
        for bare in (True, False):
            monkeypatch.setattr(nk_http, "_BARE_PATH", bare)
            options = {"account_sid": ACCOUNT, "auth_token": TOKEN, "base_url": url}
            sms = TwilioProvider(
                TwilioOptions.model_validate({**options, "from_number": "+15005550006"}),
                context=ProviderContext(instance="tw", callback_path=SecretStr("/cb/tw/s")),
                templates={"verify_code": TwilioTemplate(body="Your code is {code}")},
            )
            try:
                receipts.append(await sms.send(message))
            finally:
                await sms.aclose()
    (bare_head, bare_body), (httpx_head, httpx_body) = (
        (
            sorted(raw.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")),
            raw.partition(b"\r\n\r\n")[2],
        )
        for raw in seen
    )
    assert bare_head == httpx_head, (bare_head, httpx_head)
    assert bare_body == httpx_body
    assert parse_qs(bare_body.decode()) == {
        "To": [TO],
        "Body": ["Your code is 123456"],
        "From": ["+15005550006"],
    }
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode().lower()
    assert f"authorization: basic {expected}".encode() in bare_head
    assert receipts[0] == receipts[1]
    assert receipts[0].provider_message_id == SID
