"""The core's ``[callbacks] public_url`` gives Twilio its receiver URL when the instance has
none of its own: sent as StatusCallback, and the URL signatures are checked against."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest
from notifykit_twilio.testing import twilio_signature

from notifykit import AsyncNotifier, Config
from notifykit.errors import ConfigError

pytestmark = pytest.mark.anyio

ACCOUNT = "AC" + "a" * 32
SID = "SM" + "b" * 32


def config(*, own_public_url: str | None = None) -> Config:
    twilio: dict[str, object] = {
        "type": "twilio",
        "account_sid": ACCOUNT,
        "auth_token": "core-url-token",
        "from_number": "+15005550006",
    }
    if own_public_url:
        twilio["public_url"] = own_public_url
    return Config.from_dict(
        {
            "providers": {"tw": twilio},
            "templates": {"verify_code": {"tw": {"body": "Code {code}"}}},
            "callbacks": {"public_url": "https://sms.example.com/", "token": "cb-secret"},
        }
    )


async def test_core_public_url_becomes_status_callback_and_signature_url() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"sid": SID, "status": "queued"})

    async with AsyncNotifier(config(), transport=httpx.MockTransport(handler)) as notifier:
        await notifier.send("+14155550100", template="verify_code", params={"code": "42"})
        url = "https://sms.example.com/callbacks/tw/cb-secret"
        assert parse_qs(sent[0].content.decode())["StatusCallback"] == [url]
        params = {"MessageSid": SID, "MessageStatus": "delivered", "To": "+14155550100"}
        body = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in params.items()).encode()
        good = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature("core-url-token", url, params),
        }
        status, _, _ = await notifier.handle_callback("tw", "POST", good, body)
        assert status == 200
        forged = {
            **good,
            "x-twilio-signature": twilio_signature("core-url-token", url + "x", params),
        }
        status, _, _ = await notifier.handle_callback("tw", "POST", forged, body)
        assert status == 403


async def test_the_instance_public_url_wins() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={"sid": SID, "status": "queued"})

    own = config(own_public_url="https://twilio-hooks.example.com")
    async with AsyncNotifier(own, transport=httpx.MockTransport(handler)) as notifier:
        await notifier.send("+14155550100", template="verify_code", params={"code": "42"})
    assert parse_qs(sent[0].content.decode())["StatusCallback"] == [
        "https://twilio-hooks.example.com/callbacks/tw/cb-secret"
    ]


def test_public_url_must_be_a_plain_http_url() -> None:
    with pytest.raises(ConfigError, match=r"callbacks.public_url"):
        Config.from_dict({"callbacks": {"public_url": "sms.example.com?x=1"}})
