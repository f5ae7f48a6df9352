"""Twilio's status by polling: the sandbox answers GET Message (as Twilio's own SDK asks),
the provider's ``fetch_status`` reads it, and the reconciler stores it like a callback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import notifykit_twilio
import pytest
from notifykit_twilio import TwilioSandbox, TwilioSandboxSettings

from notifykit import AsyncNotifier, Config, DeliveryStatus
from notifykit.errors import ProviderError
from notifykit.events import DeliveryReceipt
from notifykit.models import MessageRecord
from notifykit.plugins import get_plugin_manager
from notifykit.server import ServerThread

pytestmark = pytest.mark.anyio

TO = "+14155550123"


def sandbox_settings(**overrides: Any) -> TwilioSandboxSettings:
    return TwilioSandboxSettings.model_validate({"port": 0, "status_delay": 0.01, **overrides})


@contextlib.contextmanager
def running(sandbox: TwilioSandbox) -> Iterator[ServerThread]:
    server = ServerThread(sandbox.app()).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def polling_notifier(sandbox: TwilioSandbox, url: str) -> AsyncIterator[AsyncNotifier]:
    """No public URL: no StatusCallback, so polling is the only way to hear anything."""
    config = Config.from_dict(
        {
            "providers": {
                "intl": {
                    "type": "twilio",
                    "account_sid": sandbox.config.account_sid,
                    "auth_token": sandbox.config.auth_token,
                    "from_number": "+15005550006",
                    "base_url": url,
                }
            },
            "templates": {"verify_code": {"intl": {"body": "Your code is {code}"}}},
        }
    )
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(notifykit_twilio, name="twilio")
    async with AsyncNotifier(config, plugin_manager=pm) as notifier:
        yield notifier
    await sandbox.aclose()


async def settled(sandbox: TwilioSandbox, sid: str) -> None:
    for _ in range(500):
        if sandbox.messages[sid]["status"] in ("delivered", "undelivered"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the sandbox never settled the message")


@pytest.mark.parametrize(
    ("rate", "status", "code"),
    [(0.0, DeliveryStatus.DELIVERED, None), (1.0, DeliveryStatus.UNDELIVERED, "30003")],
)
async def test_reconcile_reads_the_final_status_without_any_callback(
    rate: float, status: DeliveryStatus, code: str | None
) -> None:
    sandbox = TwilioSandbox(sandbox_settings(undelivered_rate=rate))
    with running(sandbox) as server:
        async with polling_notifier(sandbox, server.url) as notifier:
            result = await notifier.send(TO, template="verify_code", params={"code": "1"})
            assert result.provider_message_id is not None
            await settled(sandbox, result.provider_message_id)
            report = await notifier.reconcile(0)
            assert (report.checked, report.events, report.failed) == (1, 1, 0)
            record = await notifier.get_message(result.message_id)
            assert record is not None and record.status is status
            (event,) = await notifier.store.list_events(message_id=result.message_id)
            assert isinstance(event, DeliveryReceipt) and event.error_code == code
            assert sandbox.deliveries == []  # nothing was pushed


async def test_polled_receipt_has_the_event_id_of_the_callback() -> None:
    from notifykit_twilio.callbacks import parse_push
    from notifykit_twilio.signature import compute_signature

    from notifykit.provider import CallbackRequest

    sandbox = TwilioSandbox(sandbox_settings())
    with running(sandbox) as server:
        async with polling_notifier(sandbox, server.url) as notifier:
            result = await notifier.send(TO, template="verify_code", params={"code": "1"})
            sid = result.provider_message_id
            assert sid is not None
            await settled(sandbox, sid)
            record = await notifier.get_message(result.message_id)
            assert record is not None
            (polled,) = await notifier.providers["intl"].fetch_status(record)
    url = "https://hooks.example/callbacks/intl"
    params = [("MessageSid", sid), ("MessageStatus", "delivered"), ("To", TO)]
    pushed = parse_push(
        CallbackRequest(
            method="POST",
            url=url,
            headers={
                "x-twilio-signature": compute_signature(sandbox.config.auth_token, url, params)
            },
            body=urlencode(params).encode(),
        ),
        instance="intl",
        account_sid=sandbox.config.account_sid,
        auth_token=sandbox.config.auth_token,
        receiver_url=url,
    ).events[0]
    assert polled.event_id == pushed.event_id


async def test_unknown_sid_is_twilios_20404() -> None:
    sandbox = TwilioSandbox(sandbox_settings())
    with running(sandbox) as server:
        async with polling_notifier(sandbox, server.url) as notifier:
            record = MessageRecord(
                message_id="m1",
                to=TO,
                template="verify_code",
                provider="intl",
                provider_message_id="SM" + "0" * 32,
            )
            with pytest.raises(ProviderError) as info:
                await notifier.providers["intl"].fetch_status(record)
            assert info.value.vendor_code == "20404"


def test_twilio_sdk_fetch_works_against_the_sandbox() -> None:
    """The official ``twilio`` package: create, then ``client.messages(sid).fetch()``."""
    twilio_rest = pytest.importorskip("twilio.rest", reason="the twilio SDK is not installed")
    sandbox = TwilioSandbox(sandbox_settings())
    with running(sandbox) as server:
        client = twilio_rest.Client(sandbox.config.account_sid, sandbox.config.auth_token)
        client.api.base_url = server.url
        created = client.messages.create(to=TO, from_="+15005550006", body="hello")
        fetched = client.messages(created.sid).fetch()
        assert fetched.sid == created.sid
        assert fetched.to == TO and fetched.body == "hello"
        assert fetched.uri == created.uri
