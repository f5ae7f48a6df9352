"""MemoryStore specifics beyond the shared contract: compact rows, the orphan index."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from notifykit.events import DeliveryReceipt
from notifykit.models import Attempt, DeliveryStatus, MessageRecord
from notifykit.store import InboxEntry, MemoryStore
from notifykit.store.base import AnyEvent

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def receipt(event_id: str, vendor_id: str, phone: str, provider: str = "vs") -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        provider=provider,
        provider_message_id=vendor_id,
        phone=phone,
        occurred_at=T0,
        received_at=T0 + timedelta(seconds=1),
        status=DeliveryStatus.DELIVERED,
        vendor_status="DELIVRD",
    )


def entry() -> InboxEntry:
    return InboxEntry(provider="vs", method="POST", path="/callbacks/vs/***")


async def accept(store: MemoryStore, message_id: str, phone: str, vendor_id: str) -> list[AnyEvent]:
    await store.create_message(MessageRecord(message_id=message_id, to=phone, template="t"))
    return await store.update_message(
        message_id,
        attempts=[Attempt(provider="vs", outcome="accepted", duration_ms=1.5)],
        status=DeliveryStatus.ACCEPTED,
        provider="vs",
        provider_message_id=vendor_id,
    )


async def test_stored_messages_leave_the_garbage_collectors_view() -> None:
    store = MemoryStore()
    await accept(store, "m1", "+8615612341090", "task-1")
    # The collector untracks a tuple once everything in it is untracked, checking each
    # tuple it walks: nested rows need a pass per level (their order in its lists varies).
    for _ in range(3):
        gc.collect()
    # Nothing per message left for a full collection to walk (a record model is ~15 objects).
    assert not gc.is_tracked(store._messages["m1"])
    record = MessageRecord(message_id="m2", to="+8615612341090", template="t")
    for _ in range(3):
        gc.collect()
    assert gc.is_tracked(record)  # what the store no longer keeps


async def test_reads_are_copies_that_share_nothing_mutable() -> None:
    store = MemoryStore()
    await accept(store, "m1", "+8615612341090", "task-1")
    first = await store.get_message("m1")
    assert first is not None
    first.history.clear()
    first.attempts[0].duration_ms = 99.0
    first.status = DeliveryStatus.FAILED
    again = await store.get_message("m1")
    assert again is not None
    assert again.status is DeliveryStatus.ACCEPTED
    assert [c.status for c in again.history] == [DeliveryStatus.ACCEPTED]
    assert again.attempts == [Attempt(provider="vs", outcome="accepted", duration_ms=1.5)]


async def test_orphans_link_only_to_their_own_vendor_id_among_many() -> None:
    store = MemoryStore()
    orphans = [receipt(f"e{i}", f"task-{i}", f"+86156123{i:05d}") for i in range(200)]
    assert len(await store.ingest(entry(), orphans)) == 200
    linked = await accept(store, "m7", "+8615612300007", "task-7")
    assert [e.event_id for e in linked] == ["e7"]
    record = await store.get_message("m7")
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    # Linked once: the same vendor id landing again links nothing more.
    assert await accept(store, "m7b", "+8615612300007", "task-7") == []
    # The rest are still orphans, each linkable later.
    assert [e.event_id for e in await accept(store, "m9", "+8615612300009", "task-9")] == ["e9"]
    unlinked = [e for e in await store.list_events() if e.message_id is None]
    assert len(unlinked) == 198


async def test_an_orphan_whose_number_differs_stays_an_orphan() -> None:
    store = MemoryStore()
    await store.ingest(entry(), [receipt("e1", "batch", "+8613800138000")])
    assert await accept(store, "m1", "+8615612341090", "batch") == []
    linked = await accept(store, "m2", "+8613800138000", "batch")
    assert [e.event_id for e in linked] == ["e1"]


async def test_list_messages_limit_and_filters_on_rows() -> None:
    store = MemoryStore()
    for i in range(5):
        await accept(store, f"m{i}", f"+86156123{i:05d}", f"task-{i}")
    await store.create_message(MessageRecord(message_id="p", to="+8615612300001", template="t"))
    assert [r.message_id for r in await store.list_messages(limit=2)] == ["p", "m4"]
    accepted = await store.list_messages(status=DeliveryStatus.ACCEPTED, phone="+8615612300001")
    assert [r.message_id for r in accepted] == ["m1"]
    assert await store.list_messages(limit=0) == []
