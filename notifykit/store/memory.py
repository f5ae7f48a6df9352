"""``memory://``: a store private to one Notifier, for tests and the console default."""

from __future__ import annotations

import time
from collections.abc import Sequence

from notifykit.errors import StoreError
from notifykit.events import DeliveryReceipt
from notifykit.models import Attempt, DeliveryStatus, MessageRecord, apply_status, utcnow
from notifykit.store.base import AnyEvent, InboxEntry, QuarantineEntry, Store, correlate

__all__ = ["MemoryStore"]


def _copy(record: MessageRecord) -> MessageRecord:
    """A copy of ``record`` that shares nothing mutable with it.

    Its nested models (status changes, attempts) hold only immutable values, so copying
    them one level down is a deep copy, at a fifth of ``model_copy(deep=True)``'s cost.
    """
    return record.model_copy(
        update={
            "history": [change.model_copy() for change in record.history],
            "attempts": [attempt.model_copy() for attempt in record.attempts],
        }
    )


class MemoryStore(Store):
    """Everything in dictionaries. Single event loop; every method completes without
    awaiting, so each one is atomic on that loop."""

    def __init__(self) -> None:
        self._messages: dict[str, MessageRecord] = {}
        self._by_vendor_id: dict[tuple[str, str], list[str]] = {}
        self._events: dict[str, AnyEvent] = {}
        self._undispatched: dict[str, None] = {}
        self._inbox: list[InboxEntry] = []
        self._quarantine: list[QuarantineEntry] = []
        self._idempotency: dict[str, tuple[str, float]] = {}
        self._recipients: dict[str, float] = {}

    async def create_message(self, record: MessageRecord) -> None:
        self._messages[record.message_id] = _copy(record)

    async def update_message(
        self,
        message_id: str,
        *,
        attempts: Sequence[Attempt],
        status: DeliveryStatus | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
        remaining_credits: int | None = None,
        source: str = "send",
    ) -> list[AnyEvent]:
        record = self._messages.get(message_id)
        if record is None:
            raise StoreError(f"unknown message {message_id!r}")
        record.attempts = list(attempts)
        if provider is not None:
            record.provider = provider
        if remaining_credits is not None:
            record.remaining_credits = remaining_credits
        if status is not None:
            apply_status(record, status, utcnow(), source)
        linked: list[AnyEvent] = []
        if provider_message_id is not None:
            record.provider_message_id = provider_message_id
        if provider_message_id is not None and record.provider is not None:
            sharing = self._by_vendor_id.setdefault((record.provider, provider_message_id), [])
            if message_id not in sharing:
                sharing.append(message_id)
            for event_id, event in list(self._events.items()):
                if (
                    event.message_id is None
                    and event.provider == record.provider
                    and event.provider_message_id == provider_message_id
                    and self._match(event, sharing) == message_id
                ):
                    event = event.model_copy(update={"message_id": message_id})
                    self._events[event_id] = event
                    self._apply(event)
                    linked.append(event)
        return linked

    async def get_message(self, message_id: str) -> MessageRecord | None:
        record = self._messages.get(message_id)
        return None if record is None else _copy(record)

    async def list_messages(
        self,
        *,
        limit: int | None = None,
        phone: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> list[MessageRecord]:
        found = [
            _copy(r)
            for r in reversed(self._messages.values())
            if (phone is None or r.to == phone) and (status is None or r.status == status)
        ]
        return found[:limit] if limit is not None else found

    def _match(self, event: AnyEvent, candidates: list[str]) -> str | None:
        return correlate(event, [(m, self._messages[m].to) for m in candidates])

    def _apply(self, event: AnyEvent) -> None:
        if isinstance(event, DeliveryReceipt) and event.message_id is not None:
            apply_status(
                self._messages[event.message_id],
                event.status,
                event.occurred_at,
                f"{event.kind}:{event.event_id}",
            )

    async def ingest(self, entry: InboxEntry, events: Sequence[AnyEvent]) -> list[AnyEvent]:
        self._inbox.append(
            entry.model_copy(update={"event_ids": [e.event_id for e in events]}, deep=True)
        )
        new: list[AnyEvent] = []
        for event in events:
            if event.event_id in self._events:
                continue
            if event.message_id is None and event.provider_message_id is not None:
                candidates = self._by_vendor_id.get((event.provider, event.provider_message_id), [])
                message_id = self._match(event, candidates) if candidates else None
                if message_id is not None:
                    event = event.model_copy(update={"message_id": message_id})
            self._events[event.event_id] = event
            self._undispatched[event.event_id] = None
            self._apply(event)
            new.append(event)
        return new

    async def quarantine(self, entry: QuarantineEntry) -> None:
        self._quarantine.append(entry)

    async def list_events(
        self, *, limit: int | None = None, message_id: str | None = None
    ) -> list[AnyEvent]:
        found = [
            e
            for e in reversed(self._events.values())
            if message_id is None or e.message_id == message_id
        ]
        found.sort(key=lambda e: e.received_at, reverse=True)
        return found[:limit] if limit is not None else found

    async def list_quarantine(self, *, limit: int | None = None) -> list[QuarantineEntry]:
        found = list(reversed(self._quarantine))
        return found[:limit] if limit is not None else found

    async def count_inbox(self) -> int:
        return len(self._inbox)

    async def list_inbox(self, *, limit: int | None = None) -> list[InboxEntry]:
        found = [e.model_copy(deep=True) for e in reversed(self._inbox)]
        return found[:limit] if limit is not None else found

    async def pending_dispatch(self, *, limit: int = 100) -> list[AnyEvent]:
        return [self._events[event_id] for event_id in list(self._undispatched)[:limit]]

    async def mark_dispatched(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self._undispatched.pop(event_id, None)

    async def claim_idempotency_key(self, key: str, message_id: str, ttl: float) -> str | None:
        now = time.time()
        held = self._idempotency.get(key)
        if held is not None and held[1] > now:
            return held[0]
        self._idempotency[key] = (message_id, now + ttl)
        return None

    async def release_idempotency_key(self, key: str, message_id: str) -> None:
        held = self._idempotency.get(key)
        if held is not None and held[0] == message_id:
            del self._idempotency[key]

    async def check_recipient(self, phone: str, interval: float) -> float | None:
        now = time.time()
        last = self._recipients.get(phone)
        if last is not None and now - last < interval:
            return interval - (now - last)
        self._recipients[phone] = now
        return None
