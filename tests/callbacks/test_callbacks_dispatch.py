"""Dispatch by claim: a receiver hands out only what it holds, takes over what a dead one
held once the lease ends, and wakes when the store says events arrived."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifykit import hookimpl
from notifykit.config import Config
from notifykit.events import DeliveryReceipt
from notifykit.inbox import CallbackProcessor
from notifykit.models import DeliveryStatus
from notifykit.notifier import AsyncNotifier, Notifier
from notifykit.plugins import get_plugin_manager
from notifykit.store import InboxEntry, MemoryStore, SQLiteStore, Store
from notifykit.store.base import AnyEvent
from notifykit.testing import deliver, fake_receipt
from notifykit.testing.fake import fake_plugin_manager

pytestmark = pytest.mark.anyio


def receipt(event_id: str) -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        provider="vs",
        provider_message_id=event_id,
        occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
        status=DeliveryStatus.DELIVERED,
        vendor_status="1",
    )


def entry() -> InboxEntry:
    return InboxEntry(provider="vs", method="POST", path="/callbacks/vs")


async def other_process(
    path: Path, *events: DeliveryReceipt, owner: str | None, lease: float
) -> None:
    """Store ``events`` through a store object of its own, as another process would."""
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.ingest(entry(), list(events), owner=owner, lease=lease)
    finally:
        await store.close()


def notifier(store: Store, *, lease: float) -> tuple[AsyncNotifier, asyncio.Queue[AnyEvent]]:
    config = Config.from_dict({"callbacks": {"dispatch_lease": lease}})
    made = AsyncNotifier(
        config, plugin_manager=get_plugin_manager(load_entrypoints=False), store=store
    )
    seen: asyncio.Queue[AnyEvent] = asyncio.Queue()
    made.subscribe(seen.put_nowait)
    return made, seen


async def test_events_a_dead_receiver_held_are_taken_over_when_its_lease_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nk.db"
    await other_process(path, receipt("held"), owner="dead-receiver", lease=0.05)
    store = SQLiteStore(path)
    alive, seen = notifier(store, lease=0.05)  # polls every 25 ms
    await alive.open()
    alive.callbacks.start_sweeping()
    try:
        got = await asyncio.wait_for(seen.get(), 20)
        assert got.event_id == "held"
        await alive.callbacks.stop_sweeping()  # lets the sweep under way acknowledge it
        assert await store.claim_dispatch("anyone", lease=0) == []  # acknowledged
    finally:
        await alive.callbacks.stop_sweeping()
        await alive.close()


async def test_a_sweeping_receiver_wakes_when_unclaimed_events_arrive(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nk.db")
    alive, seen = notifier(store, lease=3600)  # polling alone would take 30 min
    await alive.open()
    alive.callbacks.start_sweeping()
    try:
        await asyncio.sleep(0)
        await store.ingest(entry(), [receipt("new")])  # unclaimed, as a plain ingest stores
        got = await asyncio.wait_for(seen.get(), 20)
        assert got.event_id == "new"
    finally:
        await alive.callbacks.stop_sweeping()
        await alive.close()


class WaitCountingStore(MemoryStore):
    """A memory store that counts the sweeper's waits for arrivals."""

    def __init__(self) -> None:
        super().__init__()
        self.waits_for_events = 0

    async def wait_for_events(self, timeout: float) -> bool:
        self.waits_for_events += 1
        return await super().wait_for_events(timeout)


@pytest.mark.parametrize("observed", [False, True], ids=["no-observers", "a-subscriber"])
async def test_arrivals_wake_the_sweeper_only_of_a_processor_with_observers(
    observed: bool,
) -> None:
    """Without observers a sweep claims nothing, so the sweeper waits out its half lease
    without listening for arrivals (``notifykit serve`` stores every push unclaimed, and
    each would wake it); with one, it listens."""
    store = WaitCountingStore()
    processor = CallbackProcessor({}, store, get_plugin_manager(load_entrypoints=False), lease=3600)
    if observed:
        processor.subscribers.append(lambda event: None)
    processor.start_sweeping()
    try:
        for _ in range(3):
            await asyncio.sleep(0)
        assert store.waits_for_events == (1 if observed else 0)
        store.events_arrived()
        for _ in range(3):
            await asyncio.sleep(0)
        assert store.waits_for_events == (2 if observed else 0)  # woken, swept, waiting again
    finally:
        await processor.stop_sweeping()


async def test_a_receiver_never_hands_out_what_another_live_one_holds(tmp_path: Path) -> None:
    path = tmp_path / "nk.db"
    await other_process(path, receipt("theirs"), owner="other-receiver", lease=3600)
    await other_process(path, receipt("free"), owner=None, lease=0)
    alive, seen = notifier(SQLiteStore(path), lease=3600)
    await alive.open()
    alive.callbacks.recover()
    await alive.callbacks.drain()
    await alive.close()
    assert seen.get_nowait().event_id == "free"
    assert seen.empty()


# -- only a process with observers claims ----------------------------------------------------


class CountingObserver:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def on_event(self, event: AnyEvent) -> None:
        self.seen.append(event.event_id)


def fake_notifier(path: Path, *, observer: object | None = None) -> AsyncNotifier:
    """A notifier with a ``fake`` provider on a SQLite file, and ``observer`` (a plugin)
    registered; with none, it has no observers at all."""
    pm = fake_plugin_manager(load_entrypoints=False)
    if observer is not None:
        pm.register(observer, name="counting-observer")
    config = Config.from_dict(
        {"providers": {"fake": {"type": "fake"}}, "store": {"url": f"sqlite:///{path}"}}
    )
    return AsyncNotifier(config, plugin_manager=pm)


async def test_a_process_without_observers_claims_nothing_and_leaves_events_pending(
    tmp_path: Path,
) -> None:
    """A bare receiver (no subscriber, no on_event plugin) stores each event unclaimed and
    never claims one, neither as it stores it nor in its sweeps; a process that has an
    observer then takes every one of them, once."""
    path = tmp_path / "nk.db"
    bare = fake_notifier(path)
    assert not bare.callbacks.has_observers()
    async with bare:
        for n in range(3):
            push = fake_receipt(f"vid-{n}")
            status, _, _ = await deliver(bare, "fake", push)
            assert status == 200
        bare.callbacks.recover()  # a sweep, as on start and each wake-up: claims nothing
        await bare.callbacks.drain()
        pending = await bare.store.list_undispatched()
        assert len(pending) == 3
        assert [p.claimed_by for p in pending] == [None, None, None]
    observer = CountingObserver()
    app = fake_notifier(path, observer=observer)
    assert app.callbacks.has_observers()
    async with app:  # opening starts its sweeps: the pending events are claimed here
        for _ in range(1000):
            if len(observer.seen) == 3:
                break
            await asyncio.sleep(0.01)
        await app.callbacks.stop_sweeping()
        await app.callbacks.drain()
        assert sorted(observer.seen) == sorted(p.event.event_id for p in pending)
        assert await app.store.list_undispatched() == []


async def test_a_subscriber_makes_a_receiver_claim_what_it_stores(tmp_path: Path) -> None:
    notifier = fake_notifier(tmp_path / "nk.db")
    seen: list[str] = []
    notifier.subscribe(lambda e: seen.append(e.event_id))
    assert notifier.callbacks.has_observers()
    async with notifier:
        status, _, _ = await deliver(notifier, "fake", fake_receipt("vid-1"))
        assert status == 200 and len(seen) == 1
        assert await notifier.store.list_undispatched() == []  # claimed, handed, acknowledged


@pytest.mark.parametrize("sync", [False, True], ids=["AsyncNotifier", "Notifier"])
async def test_a_subscriber_added_to_an_open_notifier_gets_the_backlog_at_once(
    tmp_path: Path, sync: bool
) -> None:
    """Events a bare ``notifykit serve`` stored unclaimed reach a subscriber added after the
    notifier opened without waiting out the sweeper's half lease (here 30 minutes)."""
    path = tmp_path / "nk.db"
    await other_process(path, receipt("waiting"), owner=None, lease=0)
    config = Config.from_dict({"callbacks": {"dispatch_lease": 3600}})
    pm = get_plugin_manager(load_entrypoints=False)
    got: list[str] = []
    arrived = threading.Event()

    def keep(event: AnyEvent) -> None:
        got.append(event.event_id)
        arrived.set()

    if sync:
        with Notifier(config, plugin_manager=pm, store=SQLiteStore(path)) as blocking:
            time.sleep(0.05)  # opened: the sweeper sleeps, for want of observers
            blocking.subscribe(keep)  # from this thread, not the notifier's loop
            assert await asyncio.to_thread(arrived.wait, 20)
    else:
        async with AsyncNotifier(config, plugin_manager=pm, store=SQLiteStore(path)) as alive:
            for _ in range(5):
                await asyncio.sleep(0)  # the sweeper sleeps, for want of observers
            alive.subscribe(keep)
            assert await asyncio.to_thread(arrived.wait, 20)
    assert got == ["waiting"]
