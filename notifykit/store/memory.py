"""``memory://``: a store private to one Notifier, for tests and the console default.

Messages are kept as plain tuples of immutable values (strings, numbers, datetimes and
tuples of them), not as models: the garbage collector stops tracking such tuples after
their first collection, so a long-lived store costs full collections nothing per message
(a ``MessageRecord`` with its history and attempts is about 15 tracked objects). Records
are built on read; every read returns a new record that shares nothing mutable with the
store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from notifykit.errors import StoreError
from notifykit.events import DeliveryReceipt
from notifykit.models import Attempt, DeliveryStatus, MessageRecord, StatusChange, utcnow
from notifykit.store.base import AnyEvent, InboxEntry, QuarantineEntry, Store, correlate

__all__ = ["MemoryStore"]

# One stored message: a tuple indexed by these positions.
_ID: Final = 0
_TO: Final = 1
_TEMPLATE: Final = 2
_TAGS: Final = 3
_KEY: Final = 4
_STATUS: Final = 5
_HISTORY: Final = 6
_PROVIDER: Final = 7
_VENDOR_ID: Final = 8
_CREDITS: Final = 9
_ATTEMPTS: Final = 10
_CREATED: Final = 11
_UPDATED: Final = 12

# A status change is (status value, at, source); an attempt is (provider, outcome,
# error_type, error_message, duration_ms).
_Change = tuple[str, datetime, str]
_Try = tuple[str, str, str | None, str | None, float]
_Row = tuple[
    str,  # message_id
    str,  # to
    str,  # template
    tuple[str, ...],  # tags
    str | None,  # idempotency_key
    str,  # status value
    tuple[_Change, ...],  # history
    str | None,  # provider
    str | None,  # provider_message_id
    int | None,  # remaining_credits
    tuple[_Try, ...],  # attempts
    datetime,  # created_at
    datetime,  # updated_at
]

_STATUSES = {status.value: status for status in DeliveryStatus}


def _row(record: MessageRecord) -> _Row:
    return (
        record.message_id,
        record.to,
        record.template,
        tuple(record.tags),
        record.idempotency_key,
        record.status.value,
        tuple([(c.status.value, c.at, c.source) for c in record.history]),
        record.provider,
        record.provider_message_id,
        record.remaining_credits,
        _tries(record.attempts),
        record.created_at,
        record.updated_at,
    )


def _tries(attempts: Sequence[Attempt]) -> tuple[_Try, ...]:
    # From a list, not a generator: tuple(generator) allocates the outer tuple before the
    # inner ones, and the collector, which untracks a tuple only once everything in it is
    # untracked, walks them in that order (one more collection before it lets go).
    return tuple(
        [(a.provider, a.outcome, a.error_type, a.error_message, a.duration_ms) for a in attempts]
    )


def _record(row: _Row) -> MessageRecord:
    return MessageRecord(
        message_id=row[_ID],
        to=row[_TO],
        template=row[_TEMPLATE],
        tags=row[_TAGS],
        idempotency_key=row[_KEY],
        status=_STATUSES[row[_STATUS]],
        history=[
            StatusChange(status=_STATUSES[status], at=at, source=source)
            for status, at, source in row[_HISTORY]
        ],
        provider=row[_PROVIDER],
        provider_message_id=row[_VENDOR_ID],
        remaining_credits=row[_CREDITS],
        attempts=[
            Attempt(
                provider=provider,
                outcome=outcome,  # type: ignore[arg-type]  # stored from an Attempt
                error_type=error_type,
                error_message=error_message,
                duration_ms=duration_ms,
            )
            for provider, outcome, error_type, error_message, duration_ms in row[_ATTEMPTS]
        ],
        created_at=row[_CREATED],
        updated_at=row[_UPDATED],
    )


def _moved(fields: list[object], status: DeliveryStatus, at: datetime, source: str) -> None:
    """:func:`notifykit.models.apply_status` on a row's fields (as a list): forward only,
    every accepted change appended to the history."""
    current = _STATUSES[fields[_STATUS]]  # type: ignore[index]
    if status == current or status.rank < current.rank or current.is_final:
        return
    fields[_STATUS] = status.value
    fields[_HISTORY] = (*fields[_HISTORY], (status.value, at, source))  # type: ignore[misc]
    fields[_UPDATED] = utcnow()


class MemoryStore(Store):
    """Everything in dictionaries. Single event loop; every method completes without
    awaiting, so each one is atomic on that loop."""

    def __init__(self) -> None:
        self._messages: dict[str, _Row] = {}
        # (provider instance, vendor id) -> the messages sharing it, oldest first
        self._by_vendor_id: dict[tuple[str, str], tuple[str, ...]] = {}
        self._events: dict[str, AnyEvent] = {}
        # (provider instance, vendor id) -> ids of stored events not tied to a message yet
        self._orphans: dict[tuple[str, str], list[str]] = {}
        self._undispatched: dict[str, None] = {}
        self._inbox: list[InboxEntry] = []
        self._quarantine: list[QuarantineEntry] = []
        self._idempotency: dict[str, tuple[str, float]] = {}
        self._recipients: dict[str, float] = {}

    async def create_message(self, record: MessageRecord) -> None:
        self._messages[record.message_id] = _row(record)

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
        row = self._messages.get(message_id)
        if row is None:
            raise StoreError(f"unknown message {message_id!r}")
        fields: list[object] = list(row)
        fields[_ATTEMPTS] = _tries(attempts)
        if provider is not None:
            fields[_PROVIDER] = provider
        if remaining_credits is not None:
            fields[_CREDITS] = remaining_credits
        if status is not None:
            _moved(fields, status, utcnow(), source)
        if provider_message_id is not None:
            fields[_VENDOR_ID] = provider_message_id
        self._messages[message_id] = tuple(fields)  # type: ignore[assignment]
        owner = fields[_PROVIDER]
        if provider_message_id is None or owner is None:
            return []
        key = (str(owner), provider_message_id)
        sharing = self._by_vendor_id.get(key, ())
        if message_id not in sharing:
            sharing = (*sharing, message_id)
            self._by_vendor_id[key] = sharing
        waiting = self._orphans.get(key)
        if not waiting:
            return []
        linked: list[AnyEvent] = []
        for event_id in list(waiting):
            event = self._events[event_id]
            if self._match(event, sharing) == message_id:
                event = event.model_copy(update={"message_id": message_id})
                self._events[event_id] = event
                waiting.remove(event_id)
                self._apply(event)
                linked.append(event)
        if not waiting:
            del self._orphans[key]
        return linked

    async def get_message(self, message_id: str) -> MessageRecord | None:
        row = self._messages.get(message_id)
        return None if row is None else _record(row)

    async def list_messages(
        self,
        *,
        limit: int | None = None,
        phone: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> list[MessageRecord]:
        found: list[MessageRecord] = []
        for row in reversed(self._messages.values()):
            if limit is not None and len(found) >= limit:
                break
            if (phone is None or row[_TO] == phone) and (
                status is None or row[_STATUS] == status.value
            ):
                found.append(_record(row))
        return found

    def _match(self, event: AnyEvent, candidates: Sequence[str]) -> str | None:
        return correlate(event, [(m, self._messages[m][_TO]) for m in candidates])

    def _apply(self, event: AnyEvent) -> None:
        if isinstance(event, DeliveryReceipt) and event.message_id is not None:
            fields: list[object] = list(self._messages[event.message_id])
            _moved(fields, event.status, event.occurred_at, f"{event.kind}:{event.event_id}")
            self._messages[event.message_id] = tuple(fields)  # type: ignore[assignment]

    async def ingest(self, entry: InboxEntry, events: Sequence[AnyEvent]) -> list[AnyEvent]:
        self._inbox.append(
            entry.model_copy(update={"event_ids": [e.event_id for e in events]}, deep=True)
        )
        new: list[AnyEvent] = []
        for event in events:
            if event.event_id in self._events:
                continue
            if event.message_id is None and event.provider_message_id is not None:
                key = (event.provider, event.provider_message_id)
                candidates = self._by_vendor_id.get(key, ())
                message_id = self._match(event, candidates) if candidates else None
                if message_id is not None:
                    event = event.model_copy(update={"message_id": message_id})
                else:
                    self._orphans.setdefault(key, []).append(event.event_id)
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
