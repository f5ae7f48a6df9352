"""What the core learnt for vendors unlike the first two: a URL check by another method
than POST (declared by the provider type, behind the token, never stored), and a batch in
which some items cannot be read (good items stored, the request quarantined with the
reason, the plugin's answer given)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from notifykit import hookimpl
from notifykit.asgi import create_app
from notifykit.config import Config
from notifykit.errors import StoreError
from notifykit.events import DeliveryReceipt, make_event_id
from notifykit.models import DeliveryStatus, SendReceipt, SmsMessage, utcnow
from notifykit.notifier import AsyncNotifier
from notifykit.plugins import get_plugin_manager
from notifykit.provider import CallbackRequest, CallbackResult, ProviderOptions, SmsProvider
from notifykit.server import ServerThread
from notifykit.store import MemoryStore

Serve = Callable[[Any], ServerThread]
TOKEN = "tok-3c9d1e77a0"
ACK = json.dumps({"code": 0, "msg": "接收成功"}, ensure_ascii=False).encode()


class BatchOptions(ProviderOptions):
    pass


class BatchProvider(SmsProvider[BatchOptions]):
    """A JSON array of ``{"id", "status"}``; an item without both is unreadable. Checks
    its URL with GET."""

    name: ClassVar[str] = "batchy"
    Options: ClassVar[type[ProviderOptions]] = BatchOptions
    callback_check_methods: ClassVar[frozenset[str]] = frozenset({"GET"})

    async def send(self, message: SmsMessage) -> SendReceipt:
        return SendReceipt(provider_message_id="x")

    async def answer_check(self, request: CallbackRequest) -> CallbackResult:
        return CallbackResult(
            events=[],
            headers={"content-type": "application/json"},
            body=json.dumps({"code": 0, "msg": "成功"}, ensure_ascii=False).encode(),
        )

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        events, bad = [], []
        for index, item in enumerate(json.loads(request.body)):
            if not isinstance(item, dict) or "id" not in item or "status" not in item:
                bad.append(index)
                continue
            events.append(
                DeliveryReceipt(
                    event_id=make_event_id(self.instance, item["id"], item["status"]),
                    provider=self.instance,
                    provider_message_id=item["id"],
                    occurred_at=utcnow(),
                    status=DeliveryStatus(item["status"]),
                    vendor_status=item["status"],
                )
            )
        reason = f"items {bad} unreadable" if bad else None
        return CallbackResult(
            events=events,
            headers={"content-type": "application/json"},
            body=ACK,
            quarantine_reason=reason,
        )


class PostOnly(BatchProvider):
    """Declares nothing: GET stays 405."""

    name: ClassVar[str] = "postonly"
    callback_check_methods: ClassVar[frozenset[str]] = frozenset()


class Plugin:
    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(BatchProvider)
        register(PostOnly)


def make_notifier(store: MemoryStore) -> AsyncNotifier:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin())
    config = Config.from_dict(
        {
            "providers": {"ali": {"type": "batchy"}, "plain": {"type": "postonly"}},
            "callbacks": {"token": TOKEN},
        }
    )
    return AsyncNotifier(config, plugin_manager=pm, store=store)


def test_get_check_is_answered_by_the_plugin_and_never_stored(serve: Serve) -> None:
    store = MemoryStore()
    server = serve(create_app(notifier=make_notifier(store)))
    answer = httpx.get(f"{server.url}/callbacks/ali/{TOKEN}")
    assert answer.status_code == 200
    assert answer.json() == {"code": 0, "msg": "成功"}
    server.stop()
    assert asyncio.run(store.count_inbox()) == 0
    assert asyncio.run(store.list_quarantine()) == []


def test_get_check_stays_behind_the_token(serve: Serve) -> None:
    server = serve(create_app(notifier=make_notifier(MemoryStore())))
    assert httpx.get(f"{server.url}/callbacks/ali/wrong-token").status_code == 404
    assert httpx.get(f"{server.url}/callbacks/ali").status_code == 404


def test_undeclared_method_is_405_naming_what_is_allowed(serve: Serve) -> None:
    server = serve(create_app(notifier=make_notifier(MemoryStore())))
    plain = httpx.get(f"{server.url}/callbacks/plain/{TOKEN}")
    assert (plain.status_code, plain.headers["allow"]) == (405, "POST")
    put = httpx.put(f"{server.url}/callbacks/ali/{TOKEN}", content=b"[]")
    assert (put.status_code, put.headers["allow"]) == (405, "POST, GET")


def test_partly_bad_batch_stores_good_items_and_quarantines_the_request(serve: Serve) -> None:
    store = MemoryStore()
    server = serve(create_app(notifier=make_notifier(store)))
    body = json.dumps(
        [{"id": "b1", "status": "delivered"}, {"id": "b2"}, {"id": "b3", "status": "failed"}]
    ).encode()
    answer = httpx.post(f"{server.url}/callbacks/ali/{TOKEN}", content=body)
    assert (answer.status_code, answer.content) == (200, ACK)  # "do not retry"
    server.stop()
    events = asyncio.run(store.list_events())
    assert sorted(e.provider_message_id or "" for e in events) == ["b1", "b3"]
    (kept,) = asyncio.run(store.list_quarantine())
    assert kept.reason == "items [1] unreadable" and kept.body == body
    assert TOKEN not in kept.path
    (inbox,) = asyncio.run(store.list_inbox())
    assert len(inbox.event_ids) == 2


def test_processor_answers_checks_the_same_without_the_app() -> None:
    store = MemoryStore()

    async def go() -> tuple[int, bytes, int]:
        async with make_notifier(store) as notifier:
            status, _headers, body = await notifier.handle_callback("ali", "get", {}, b"")
            refused = (await notifier.handle_callback("plain", "GET", {}, b""))[0]
            return status, body, refused

    status, body, refused = asyncio.run(go())
    assert (status, json.loads(body), refused) == (200, {"code": 0, "msg": "成功"}, 405)
    assert asyncio.run(store.count_inbox()) == 0


class UnopenableStore(MemoryStore):
    async def open(self) -> None:
        raise StoreError("database is locked")


def test_get_check_is_answered_while_the_store_cannot_open() -> None:
    # Mounted without a lifespan, the store is opened by the first push that needs it.
    server = ServerThread(create_app(notifier=make_notifier(UnopenableStore()))).start()
    try:
        check = httpx.get(f"{server.url}/callbacks/ali/{TOKEN}")
        assert (check.status_code, check.json()) == (200, {"code": 0, "msg": "成功"})
        push = httpx.post(f"{server.url}/callbacks/ali/{TOKEN}", content=b"[]")
        assert push.status_code == 503  # a push must be stored first: the vendor retries
    finally:
        server.stop()
