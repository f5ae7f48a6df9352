"""The processor's order (parse -> store -> acknowledge -> dispatch) and its failure answers,
driven through the receiver on loopback with a provider type defined here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from notifykit import hookimpl
from notifykit.asgi import create_app
from notifykit.config import Config
from notifykit.errors import CallbackError, InvalidSignature, StoreError
from notifykit.events import DeliveryReceipt, make_event_id
from notifykit.models import DeliveryStatus, SendReceipt, SmsMessage, utcnow
from notifykit.notifier import AsyncNotifier, Notifier
from notifykit.plugins import get_plugin_manager
from notifykit.provider import CallbackRequest, CallbackResult, ProviderOptions, SmsProvider
from notifykit.server import ServerThread
from notifykit.store import InboxEntry, MemoryStore
from notifykit.store.base import AnyEvent

Serve = Callable[[Any], ServerThread]
SEEN_URLS: list[str] = []


class PushOptions(ProviderOptions):
    pass


class PushProvider(SmsProvider[PushOptions]):
    """Body ``<id>:<status>``; ``sig`` header must be ``good``; ``boom`` raises a plugin bug."""

    name: ClassVar[str] = "pushy"
    Options: ClassVar[type[ProviderOptions]] = PushOptions

    async def send(self, message: SmsMessage) -> SendReceipt:
        return SendReceipt(provider_message_id="x")

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        SEEN_URLS.append(request.url)
        if request.header("sig") != "good":
            raise InvalidSignature("bad signature")
        text = request.body.decode()
        if text == "boom":
            raise KeyError("plugin bug")
        vendor_id, _, status = text.partition(":")
        if not status:
            raise CallbackError("expected <id>:<status>")
        return CallbackResult(
            events=[
                DeliveryReceipt(
                    event_id=make_event_id(self.instance, vendor_id, status),
                    provider=self.instance,
                    provider_message_id=vendor_id,
                    occurred_at=utcnow(),
                    status=DeliveryStatus(status),
                    vendor_status=status,
                )
            ],
            body=b"ACK",
            headers={"content-type": "text/plain", "x-vendor": "yes"},
        )


HOOK_EVENTS: list[str] = []


class Plugin:
    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(PushProvider)


class BrokenObserver:
    @hookimpl
    def on_event(self, event: AnyEvent) -> None:
        raise RuntimeError("observer bug")


class Observer:
    @hookimpl
    def on_event(self, event: AnyEvent) -> None:
        HOOK_EVENTS.append(event.event_id)


def make_notifier(store: MemoryStore | None = None, *, timeout: float = 1.0) -> AsyncNotifier:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin())
    pm.register(BrokenObserver())
    pm.register(Observer())
    config = Config.from_dict(
        {"providers": {"p": {"type": "pushy"}}, "store": {"timeout": timeout}}
    )
    return AsyncNotifier(config, plugin_manager=pm, store=store)


def post(
    server: ServerThread, body: bytes, *, sig: str = "good", path: str = "/callbacks/p"
) -> httpx.Response:
    return httpx.post(server.url + path, content=body, headers={"sig": sig})


@pytest.fixture(autouse=True)
def _reset() -> None:
    SEEN_URLS.clear()
    HOOK_EVENTS.clear()


def test_acknowledgement_is_the_plugins_and_hooks_see_each_event(serve: Serve) -> None:
    store = MemoryStore()
    server = serve(create_app(notifier=make_notifier(store)))
    answer = post(server, b"v1:delivered")
    assert (answer.status_code, answer.text, answer.headers["x-vendor"]) == (200, "ACK", "yes")
    server.stop()
    assert len(HOOK_EVENTS) == 1  # the broken observer did not keep it from the other
    assert asyncio.run(store.count_inbox()) == 1


def test_plugin_sees_the_url_as_called_with_its_query(serve: Serve) -> None:
    server = serve(create_app(notifier=make_notifier()))
    post(server, b"v1:sent", path="/callbacks/p?a=1&b=%C3%A9")
    (seen,) = SEEN_URLS
    assert seen == f"{server.url}/callbacks/p?a=1&b=%C3%A9"


def test_bad_signature_is_403_not_stored_and_logged_without_body(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notifykit")
    store = MemoryStore()
    server = serve(create_app(notifier=make_notifier(store)))
    answer = post(server, b"secret-body-123:delivered", sig="forged")
    assert answer.status_code == 403
    server.stop()
    assert asyncio.run(store.count_inbox()) == 0
    assert asyncio.run(store.list_quarantine()) == []
    assert "callback_refused" in caplog.text and "secret-body-123" not in caplog.text


@pytest.mark.parametrize(
    ("body", "reason"), [(b"garbage", "expected <id>:<status>"), (b"boom", "KeyError")]
)
def test_unparseable_push_or_plugin_bug_is_quarantined_400(
    serve: Serve, body: bytes, reason: str
) -> None:
    store = MemoryStore()
    server = serve(create_app(notifier=make_notifier(store)))
    assert post(server, body).status_code == 400
    server.stop()
    (kept,) = asyncio.run(store.list_quarantine())
    assert reason in kept.reason and kept.body == body


class FailingStore(MemoryStore):
    def __init__(self, *, hang: bool = False) -> None:
        super().__init__()
        self.hang = hang

    async def ingest(
        self, entry: InboxEntry, events: Sequence[AnyEvent], **claim: Any
    ) -> list[AnyEvent]:
        if self.hang:
            await asyncio.sleep(30)
        raise StoreError("disk full")

    async def quarantine(self, entry: Any) -> None:
        raise StoreError("disk full")


@pytest.mark.parametrize("hang", [False, True], ids=["fails", "times-out"])
def test_store_failure_or_timeout_is_503_so_the_vendor_retries(serve: Serve, hang: bool) -> None:
    server = serve(create_app(notifier=make_notifier(FailingStore(hang=hang), timeout=0.2)))
    assert post(server, b"v1:delivered").status_code == 503
    assert post(server, b"garbage").status_code == 503  # quarantine failing too
    assert HOOK_EVENTS == []


class SelfBoundedStore(MemoryStore):
    """A store that declares its own deadline (``call_timeout``) and keeps a push's
    ``ingest`` waiting a little longer than the processor's store timeout."""

    def __init__(self, call_timeout: float | None) -> None:
        super().__init__()
        self.call_timeout = call_timeout

    async def ingest(
        self, entry: InboxEntry, events: Sequence[AnyEvent], **claim: Any
    ) -> list[AnyEvent]:
        await asyncio.sleep(0.3)
        return await super().ingest(entry, events, **claim)


@pytest.mark.parametrize(
    ("call_timeout", "status"),
    [(None, 503), (5.0, 503), (0.1, 200)],
    ids=["no-own-deadline", "own-deadline-later", "own-deadline-sooner"],
)
def test_the_processor_times_ingest_out_unless_the_store_answers_by_an_earlier_deadline(
    call_timeout: float | None, status: int
) -> None:
    """The processor's timeout (0.1 s here) bounds ``ingest``, unless the store declares
    a deadline of its own no later than it (the SQLite store does): a timer per push would
    then only repeat the store's. (The store here does not keep its declared deadline: the
    200 shows that nothing else cut the 0.3 s call short.)"""
    store = SelfBoundedStore(call_timeout)
    notifier = make_notifier(store, timeout=0.1)

    async def push() -> int:
        async with notifier:
            answer = await notifier.callbacks.handle("p", "POST", {"sig": "good"}, b"v1:sent")
            return answer.status

    assert asyncio.run(push()) == status
    assert asyncio.run(store.count_inbox()) == (1 if status == 200 else 0)


def test_the_sqlite_store_declares_its_writer_timeout_as_its_deadline(tmp_path: Path) -> None:
    from notifykit.store.sqlite import SQLiteStore

    assert SQLiteStore(tmp_path / "db.sqlite3", timeout=2.5).call_timeout == 2.5
    assert MemoryStore().call_timeout is None


def test_sync_notifier_handle_callback_does_the_same_work() -> None:
    store = MemoryStore()
    seen: list[str] = []
    with Notifier(make_notifier(store).config, plugin_manager=_pm(), store=store) as notifier:
        notifier.subscribe(lambda event: seen.append(event.event_id))
        status, _headers, body = notifier.handle_callback("p", "POST", {"Sig": "good"}, b"v9:sent")
        assert (status, body) == (200, b"ACK")
        assert notifier.handle_callback("p", "GET", {}, b"")[0] == 405
        assert notifier.handle_callback("q", "POST", {}, b"")[0] == 404
    assert len(seen) == 1


def _pm() -> Any:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin())
    return pm


def test_create_app_refuses_both_config_and_notifier(tmp_path: Path) -> None:
    from notifykit.errors import ConfigError

    notifier = make_notifier()
    with pytest.raises(ConfigError, match="not both"):
        create_app(Config.default(), notifier=notifier)
    assert create_app(notifier.config, notifier=notifier).state.notifier is notifier
