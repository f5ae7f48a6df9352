"""The sandbox on real loopback sockets: the vendor's sample, the provider end to end,
pushes to a real receiver, faults broken mid-run."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from notifykit_veesing.sandbox_pushes import REPLIES
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus, InboundMessage
from notifykit.errors import ProviderUnavailable, RecipientRateLimited, UnknownOutcome
from notifykit.models import SmsMessage
from notifykit.server import ServerThread

pytestmark = pytest.mark.anyio

MESSAGE = SmsMessage(to="+8615612341090", template="verify", params={"code": "1234"})


async def test_vendor_java_sample_request_succeeds(sandbox_server) -> None:
    """The document's Java sample, reproduced: form body, the misspelt `ContentType` header,
    and `jsonObject.get("returnStatus").equals("1")`."""
    _, server = sandbox_server()
    data = [
        ("appId", "sandbox-app"),
        ("appKey", "sandbox-key"),
        ("phone", "15612341090"),
        ("templateId", "540"),
        ("variables", "1234"),
    ]
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            f"{server.url}/smsApi/verifyCode",
            data=dict(data),
            headers={
                "ContentType": "application/x-www-form-urlencoded;charset=utf-8",
                "Connection": "close",
            },
        )
        # commons-httpclient without a Content-Type of its own choosing: the body alone
        bare = await client.post(
            f"{server.url}/smsApi/verifyCode",
            content="&".join(f"{k}={v}" for k, v in data).replace("15612341090", "13800138000"),
            headers={"ContentType": "application/x-www-form-urlencoded;charset=utf-8"},
        )
    assert json.loads(response.content.decode("utf-8"))["returnStatus"] == "1"
    assert json.loads(bare.content.decode("utf-8"))["returnStatus"] == "1"


async def test_provider_sends_through_the_sandbox(sandbox_server, make_provider) -> None:
    sandbox, server = sandbox_server(app_id="2RYN7CQHL1MABCDE", app_key="WVNA4A0SECRETKEY")
    provider = make_provider(base_url=server.url, timeout=5.0)
    receipt = await provider.send(MESSAGE)
    balance = await provider.balance()
    with pytest.raises(RecipientRateLimited):  # once a minute per number
        await provider.send(MESSAGE)
    await provider.aclose()
    assert receipt.provider_message_id == sandbox.state.sent[0].task_id
    assert receipt.remaining_credits == 999 and balance.remaining == 999
    assert sandbox.state.sent[0].phone == "15612341090"


async def test_provider_against_faults_changed_mid_run(sandbox_server, make_provider) -> None:
    _, server = sandbox_server(
        app_id="2RYN7CQHL1MABCDE", app_key="WVNA4A0SECRETKEY", per_number_interval=0
    )
    provider = make_provider(base_url=server.url, timeout=0.5)
    assert (await provider.send(MESSAGE)).provider_message_id is not None
    async with httpx.AsyncClient(trust_env=False) as admin:
        await admin.post(f"{server.url}/_sandbox/admin", json={"error_rate": 1.0})
        with pytest.raises(ProviderUnavailable):
            await provider.send(MESSAGE)
        await admin.post(f"{server.url}/_sandbox/admin", json={"error_rate": 0, "garbage_rate": 1})
        with pytest.raises(ProviderUnavailable):
            await provider.send(MESSAGE)
        await admin.post(f"{server.url}/_sandbox/admin", json={"garbage_rate": 0, "hang_rate": 1})
        started = time.monotonic()
        with pytest.raises(UnknownOutcome):
            await provider.send(MESSAGE)
        assert time.monotonic() - started < 3
        await admin.post(f"{server.url}/_sandbox/admin", json={"hang_rate": 0})
        state = (await admin.get(f"{server.url}/_sandbox/admin")).json()
    assert (await provider.send(MESSAGE)).remaining_credits == 998
    await provider.aclose()
    assert state["faults_injected"] == {"error": 1, "garbage": 1, "hang": 1}
    assert state["accepted"] == 1


async def test_stopping_with_a_request_hanging_is_quick(sandbox_server) -> None:
    sandbox, server = sandbox_server(hang_rate=1.0)
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        pending = asyncio.ensure_future(
            client.post(f"{server.url}/smsApi/verifyCode/getBalance", data={"appId": "x"})
        )
        await asyncio.sleep(0.3)
        assert not pending.done()
        started = time.monotonic()
        await sandbox.aclose()
        await asyncio.to_thread(server.stop)
        response = await asyncio.wait_for(pending, 5)
    assert time.monotonic() - started < 3
    assert response.status_code == 504


# -- pushes to a real receiver ---------------------------------------------------------------


class Receiver:
    """A loopback callback receiver that hands each push to ``handler`` on the test's loop."""

    def __init__(self, handler: Callable[[Request, bytes], Any]) -> None:
        self.loop = asyncio.get_running_loop()
        self.handler = handler
        self.calls: list[dict[str, str]] = []
        self.lock = threading.Lock()
        app = Starlette(routes=[Route("/callbacks/{instance}", self._receive, methods=["POST"])])
        self.server = ServerThread(app)

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.calls.append(dict(parse_qsl(body.decode("utf-8"))))
        future = asyncio.run_coroutine_threadsafe(self.handler(request, body), self.loop)
        status, headers, content = await asyncio.wrap_future(future)
        return Response(content, status, headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[[Callable[..., Any]], Receiver]]:
    made: list[Receiver] = []

    def make(handler: Callable[..., Any]) -> Receiver:
        made.append(Receiver(handler))
        made[-1].server.start()
        return made[-1]

    yield make
    for r in made:
        await asyncio.to_thread(r.server.stop)


def veesing_config(base_url: str) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "vs": {
                    "type": "veesing",
                    "base_url": base_url,
                    "app_id": "sandbox-app",
                    "app_key": "sandbox-key",
                    "timeout": 5,
                }
            },
            "templates": {"verify": {"vs": {"template_id": "540"}}},
        }
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def test_receipt_and_reply_reach_the_notifier(sandbox_server, receiver) -> None:
    seen: list[Any] = []
    sandbox, server = sandbox_server(receipt_delay=0.05, reply_rate=1.0)
    async with AsyncNotifier(veesing_config(server.url)) as notifier:
        notifier.subscribe(seen.append)

        async def handle(request: Request, body: bytes) -> Any:
            return await notifier.handle_callback(
                "vs", "POST", dict(request.headers), body, url=str(request.url)
            )

        hook = receiver(handle)
        sandbox.configure(callback_url=f"{hook.server.url}/callbacks/vs")
        result = await notifier.send("+8615612341090", template="verify", params={"code": "4321"})
        # The sandbox counts a push once it has read the receiver's answer, which may come
        # after the notifier has already dispatched the event.
        await wait_for(lambda: len(seen) == 2 and sandbox.state.pushes_sent == 2)
        record = await notifier.get_message(result.message_id)
    receipt = next(e for e in seen if isinstance(e, DeliveryReceipt))
    reply = next(e for e in seen if isinstance(e, InboundMessage))
    assert receipt.provider_message_id == result.provider_message_id
    assert receipt.status is DeliveryStatus.DELIVERED
    assert receipt.phone == "+8615612341090"
    assert receipt.message_id == result.message_id
    assert reply.text in REPLIES and reply.provider_message_id == result.provider_message_id
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert sandbox.state.pushes_sent == 2 and sandbox.state.pushes_failed == 0
    pushed = hook.calls[0]
    assert set(pushed) == {"mobile", "taskid", "status", "receivetime"}
    assert pushed["mobile"] == "15612341090"
    assert time.strptime(pushed["receivetime"], "%Y-%m-%d %H:%M:%S")


async def test_undelivered_receipts(sandbox_server, receiver) -> None:
    sandbox, server = sandbox_server(receipt_delay=0, undelivered_rate=1.0, per_number_interval=0)

    async def ok(request: Request, body: bytes) -> Any:
        return 200, {}, b"ok"

    hook = receiver(ok)
    sandbox.configure(callback_url=f"{hook.server.url}/callbacks/vs")
    async with httpx.AsyncClient(trust_env=False) as client:
        for code in ("11", "22"):
            await client.post(
                f"{server.url}/smsApi/verifyCode",
                data={
                    "appId": "sandbox-app",
                    "appKey": "sandbox-key",
                    "phone": "13800138000",
                    "templateId": "611",
                    "variables": code,
                },
            )
    await wait_for(lambda: sandbox.state.pushes_sent == 2)
    assert [c["status"] for c in hook.calls] == ["0", "0"]
    assert {c["taskid"] for c in hook.calls} == {s.task_id for s in sandbox.state.sent}


async def test_pushes_are_retried_then_given_up(sandbox_server, receiver) -> None:
    sandbox, server = sandbox_server(receipt_delay=0, per_number_interval=0)
    answers = iter([500, 503, 200, 500, 500, 500])

    async def flaky(request: Request, body: bytes) -> Any:
        return next(answers), {}, b"nope"

    hook = receiver(flaky)
    sandbox.configure(callback_url=f"{hook.server.url}/callbacks/vs")
    async with httpx.AsyncClient(trust_env=False) as client:
        for phone in ("13800138000", "13800138001"):
            await client.post(
                f"{server.url}/smsApi/verifyCode",
                data={
                    "appId": "sandbox-app",
                    "appKey": "sandbox-key",
                    "phone": phone,
                    "templateId": "540",
                    "variables": "1234",
                },
            )
            await wait_for(lambda: sandbox.pusher.pending == 0)
    assert len(hook.calls) == 6
    assert sandbox.state.pushes_sent == 1 and sandbox.state.pushes_failed == 1


async def test_aclose_cancels_pending_pushes(sandbox_server, receiver) -> None:
    sandbox, server = sandbox_server(receipt_delay=30)

    async def ok(request: Request, body: bytes) -> Any:
        return 200, {}, b"ok"

    hook = receiver(ok)
    sandbox.configure(callback_url=f"{hook.server.url}/callbacks/vs")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            f"{server.url}/smsApi/verifyCode",
            data={
                "appId": "sandbox-app",
                "appKey": "sandbox-key",
                "phone": "13800138000",
                "templateId": "540",
                "variables": "1234",
            },
        )
    assert response.json()["returnStatus"] == "1"
    assert sandbox.pusher.pending == 1
    await sandbox.aclose()
    await wait_for(lambda: sandbox.pusher.pending == 0, timeout=2)
    assert hook.calls == [] and sandbox.state.pushes_sent == 0


async def test_a_hang_ends_when_the_client_leaves(sandbox_server) -> None:
    sandbox, server = sandbox_server(hang_rate=1.0)
    async with httpx.AsyncClient(trust_env=False, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{server.url}/smsApi/verifyCode/getBalance")
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await asyncio.to_thread(server.stop)  # no aclose(): uvicorn must find nothing in flight
    assert time.monotonic() - started < 2
    assert sandbox.state.faults_injected["hang"] == 1
