"""The Twilio sandbox over real loopback sockets: send through the provider, receive its
signed status callbacks through a receiver that hands them to the notifier."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import notifykit_twilio
import pytest
from notifykit_twilio import TwilioSandbox, TwilioSandboxSettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus, SmsMessage
from notifykit.errors import AuthenticationError, InvalidRecipient
from notifykit.plugins import get_plugin_manager
from notifykit.server import ServerThread

pytestmark = pytest.mark.anyio

TO = "+14155550123"
OPTED_OUT = "+14155550199"


def bridge(get_notifier: Callable[[], AsyncNotifier], loop: asyncio.AbstractEventLoop) -> Starlette:
    """A callback receiver in the server thread that hands each push to the notifier on
    the test's event loop, and answers what the notifier answers."""

    async def receive(request: Request) -> Response:
        body = await request.body()
        future = asyncio.run_coroutine_threadsafe(
            get_notifier().handle_callback(
                request.path_params["instance"],
                request.method,
                dict(request.headers),
                body,
                url=str(request.url),
            ),
            loop,
        )
        status, headers, out = await asyncio.wrap_future(future)
        return Response(out, status_code=status, headers=headers)

    return Starlette(
        routes=[
            Route("/callbacks/{instance}", receive, methods=["POST"]),
            Route("/callbacks/{instance}/{token}", receive, methods=["POST"]),
        ]
    )


class World:
    """A sandbox, a receiver and a notifier wired together."""

    def __init__(self, sandbox: TwilioSandbox, notifier: AsyncNotifier) -> None:
        self.sandbox = sandbox
        self.notifier = notifier

    async def wait_final(self, message_id: str, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = await self.notifier.get_message(message_id)
            if record is not None and record.status.is_final:
                return record
            await asyncio.sleep(0.02)
        raise AssertionError(f"message {message_id} did not reach a final status in {timeout}s")


@contextlib.asynccontextmanager
async def make_world(
    settings: TwilioSandboxSettings, *, token: str | None = None
) -> AsyncIterator[World]:
    sandbox = TwilioSandbox(settings)
    sandbox_server = ServerThread(sandbox.app(), port=settings.port).start()
    slot: dict[str, AsyncNotifier] = {}
    receiver = ServerThread(bridge(lambda: slot["notifier"], asyncio.get_running_loop())).start()
    config = Config.from_dict(
        {
            "providers": {
                "intl": {
                    "type": "twilio",
                    "account_sid": settings.account_sid,
                    "auth_token": token or settings.auth_token,
                    "from_number": "+15005550006",
                    "base_url": sandbox_server.url,
                    "public_url": receiver.url,
                    "timeout": 5,
                }
            },
            "templates": {"verify_code": {"intl": {"body": "Your code is {code}"}}},
        }
    )
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(notifykit_twilio, name="twilio")
    notifier = AsyncNotifier(config, plugin_manager=pm)
    slot["notifier"] = notifier
    try:
        async with notifier:
            yield World(sandbox, notifier)
            await sandbox.aclose()  # before the notifier closes: no push may arrive after
    finally:
        await sandbox.aclose()
        receiver.stop()
        sandbox_server.stop()


def settings(**overrides: Any) -> TwilioSandboxSettings:
    values: dict[str, Any] = {
        "port": 0,
        "status_delay": 0.02,
        "opted_out": [OPTED_OUT],
        "seed": 7,
    }
    values.update(overrides)
    return TwilioSandboxSettings.model_validate(values)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with make_world(settings()) as w:
        yield w


async def test_send_then_signed_callbacks_reach_delivered(world: World) -> None:
    result = await world.notifier.send(TO, template="verify_code", params={"code": "4821"})
    assert result.provider == "intl"
    assert result.provider_message_id in world.sandbox.messages
    stored = world.sandbox.messages[result.provider_message_id]
    assert stored["body"] == "Your code is 4821"
    assert stored["sid"].startswith("SM") and len(stored["sid"]) == 34

    record = await world.wait_final(result.message_id)
    assert record.status is DeliveryStatus.DELIVERED
    # The sandbox counts a push once it has read the receiver's answer, which may come
    # after the record was updated (a race).
    async with asyncio.timeout(5):
        while len(world.sandbox.deliveries) < 2:
            await asyncio.sleep(0.02)
    assert [c.status for c in record.history][-2:] == [
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
    ]
    assert [(d.status, d.status_code) for d in world.sandbox.deliveries] == [
        ("sent", 200),
        ("delivered", 200),
    ]
    events = await world.notifier.store.list_events(message_id=result.message_id)
    assert {e.vendor_status for e in events if isinstance(e, DeliveryReceipt)} == {
        "sent",
        "delivered",
    }


async def test_balance_is_charged_per_segment(world: World) -> None:
    before = await world.notifier.balance("intl")
    assert (before.remaining, before.unit) == (Decimal("20.00"), "USD")
    for _ in range(4):
        await world.notifier.send(TO, template="verify_code", params={"code": "1"})
    after = await world.notifier.balance("intl")
    assert after.remaining == Decimal("19.97")  # 20.00 - 4 x 0.0075, shown to the cent


async def test_opted_out_recipient_is_refused(world: World) -> None:
    with pytest.raises(InvalidRecipient) as info:
        await world.notifier.send(OPTED_OUT, template="verify_code", params={"code": "1"})
    assert info.value.vendor_code == "21610"


async def test_invalid_to_is_21211_with_the_number_masked(world: World) -> None:
    provider = world.notifier.providers["intl"]
    bad = SmsMessage.model_construct(to="+1555000", template="verify_code", params={"code": "1"})
    with pytest.raises(InvalidRecipient) as info:
        await provider.send(bad)
    assert info.value.vendor_code == "21211"
    assert "+1555000" not in str(info.value)


async def test_wrong_credentials_are_20003() -> None:
    async with make_world(settings(), token="not-the-token") as w:
        with pytest.raises(AuthenticationError) as info:
            await w.notifier.providers["intl"].balance()
        assert info.value.vendor_code == "20003"


async def test_undelivered_carries_30003() -> None:
    async with make_world(settings(undelivered_rate=1.0)) as w:
        result = await w.notifier.send(TO, template="verify_code", params={"code": "1"})
        record = await w.wait_final(result.message_id)
        assert record.status is DeliveryStatus.UNDELIVERED
        events = await w.notifier.store.list_events(message_id=result.message_id)
        final = [e for e in events if isinstance(e, DeliveryReceipt) and e.status.is_final]
        assert [e.error_code for e in final] == ["30003"]


async def test_aclose_cancels_pending_callbacks() -> None:
    async with make_world(settings(status_delay=30.0)) as w:
        await w.notifier.send(TO, template="verify_code", params={"code": "1"})
        started = time.monotonic()
        await w.sandbox.aclose()
        assert time.monotonic() - started < 2.0
        assert w.sandbox.deliveries == []


async def test_sandbox_answers_like_twilio() -> None:
    sandbox = TwilioSandbox(settings())
    config = sandbox.config
    base = f"/2010-04-01/Accounts/{config.account_sid}"
    auth = (config.account_sid, config.auth_token)
    with ServerThread(sandbox.app()) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            ok = await client.post(
                f"{base}/Messages.json",
                auth=auth,
                data={"To": TO, "MessagingServiceSid": "MG" + "ab" * 16, "Body": "hé"},
            )
            assert ok.status_code == 201
            body = ok.json()
            assert body["status"] == "accepted" and body["num_segments"] == "1"
            assert body["error_code"] is None and body["to"] == TO
            refusals = {
                21604: {"From": "+15005550006", "Body": "x"},
                21603: {"To": TO, "Body": "x"},
                21211: {"To": "12", "From": "+15005550006", "Body": "x"},
                21602: {"To": TO, "From": "+15005550006"},
                21617: {"To": TO, "From": "+15005550006", "Body": "x" * 1601},
            }
            for code, form in refusals.items():
                answer = await client.post(f"{base}/Messages.json", auth=auth, data=form)
                assert (answer.status_code, answer.json()["code"]) == (400, code)
            denied = await client.get(f"{base}/Balance.json", auth=(config.account_sid, "x"))
            assert (denied.status_code, denied.json()["code"]) == (401, 20003)
            other = await client.get(f"/2010-04-01/Accounts/AC{'0' * 32}/Balance.json", auth=auth)
            assert other.status_code == 401
    await sandbox.aclose()
