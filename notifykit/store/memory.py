"""``memory://``: a store private to one Notifier, for tests and the console default.

Each message is kept as one flat tuple of immutable values (strings, numbers, datetimes),
its status history and attempts included, not as models: the collector stops tracking
such a tuple after its first collection, and a message costs one tracked allocation per
write (a ``MessageRecord`` with its history and attempts is about 15 tracked objects,
whose allocations bring on collections that promote every in-flight send's objects, and
so full collections that stall the loop). Records are built on read; every read returns
a new record that shares nothing mutable with the store.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from notifykit import models
from notifykit.compare import constant_time_equal
from notifykit.config import StoreConfig
from notifykit.errors import ConfigError, StoreError
from notifykit.events import DeliveryReceipt
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    StatusChange,
    VerificationCheckStatus,
    VerificationRecord,
    VerificationStatus,
    apply_status,
    utcnow,
)
from notifykit.store.base import (
    DEFAULT_LEASE,
    AnyEvent,
    IdempotencyHolder,
    InboxEntry,
    PendingEvent,
    QuarantineEntry,
    Store,
    VerificationCheckStep,
    VerificationClaim,
    correlate,
    recovered_status,
    resend_wait,
    tie_to_unknown,
)

__all__ = ["MemoryStore"]

# A stored message: these fields, then ``_HISTORY_LEN`` status changes of 3 values
# (status value, at, source), then its attempts, 6 values each (provider, outcome,
# error_type, error_message, duration_ms, started_at).
_ID: Final = 0
_TO: Final = 1
_TEMPLATE: Final = 2
_TAGS: Final = 3
_KEY: Final = 4
_STATUS: Final = 5
_PROVIDER: Final = 6
_VENDOR_ID: Final = 7
_CREDITS: Final = 8
_CREATED: Final = 9
_UPDATED: Final = 10
_HISTORY_LEN: Final = 11
_LEASE: Final = 12
_HEAD: Final = 13
_CHANGE: Final = 3
_TRY: Final = 6

_Row = tuple[Any, ...]

_STATUSES = {status.value: status for status in DeliveryStatus}
# Each status's value as a plain string, looked up (an enum's ``.value`` is two Python calls).
_VALUES = {status: status.value for status in DeliveryStatus}


def _row(record: MessageRecord) -> _Row:
    values: list[Any] = [
        record.message_id,
        record.to,
        record.template,
        tuple(record.tags),
        record.idempotency_key,
        _VALUES[record.status],
        record.provider,
        record.provider_message_id,
        record.remaining_credits,
        record.created_at,
        record.updated_at,
        len(record.history),
        record.lease_until,
    ]
    for change in record.history:
        values += (_VALUES[change.status], change.at, change.source)
    _add_tries(values, record.attempts)
    return tuple(values)


def _add_tries(values: list[Any], attempts: Sequence[Attempt]) -> None:
    for a in attempts:
        values += (
            a.provider,
            a.outcome,
            a.error_type,
            a.error_message,
            a.duration_ms,
            a.started_at,
        )


def _tries_at(row: _Row) -> int:
    return _HEAD + _CHANGE * int(row[_HISTORY_LEN])


def _record(row: _Row) -> MessageRecord:
    tries = _tries_at(row)
    return MessageRecord(
        message_id=row[_ID],
        to=row[_TO],
        template=row[_TEMPLATE],
        tags=row[_TAGS],
        idempotency_key=row[_KEY],
        status=_STATUSES[row[_STATUS]],
        history=[
            StatusChange(status=_STATUSES[row[i]], at=row[i + 1], source=row[i + 2])
            for i in range(_HEAD, tries, _CHANGE)
        ],
        provider=row[_PROVIDER],
        provider_message_id=row[_VENDOR_ID],
        remaining_credits=row[_CREDITS],
        attempts=[
            Attempt(
                provider=row[i],
                outcome=row[i + 1],
                error_type=row[i + 2],
                error_message=row[i + 3],
                duration_ms=row[i + 4],
                started_at=row[i + 5],
            )
            for i in range(tries, len(row), _TRY)
        ],
        created_at=row[_CREATED],
        updated_at=row[_UPDATED],
        lease_until=row[_LEASE],
    )


def _moved(
    row: _Row,
    head: list[Any],
    status: DeliveryStatus,
    at: datetime,
    source: str,
) -> tuple[Any, ...]:
    """:func:`notifykit.models.apply_status` on a row (``head``, its first fields, to
    update in place), by the same rule (:func:`notifykit.models.status_advances`); the
    history to keep, with any accepted change."""
    history = row[_HEAD : _tries_at(row)]
    if not models.status_advances(_STATUSES[head[_STATUS]], status):
        return history
    head[_STATUS] = _VALUES[status]
    head[_HISTORY_LEN] += 1
    head[_UPDATED] = utcnow()
    return (*history, _VALUES[status], at, source)


class MemoryStore(Store):
    """Everything in dictionaries. Single event loop; every method completes without
    awaiting, so each one is atomic on that loop."""

    @classmethod
    def from_config(cls, config: StoreConfig) -> MemoryStore:
        """``memory://`` exactly (it has no path or options)."""
        if config.url != "memory://":
            raise ConfigError(f"store.url: a memory store is 'memory://', not {config.url!r}")
        return cls()

    def __init__(self) -> None:
        self._messages: dict[str, _Row] = {}
        # provider instance -> vendor id -> the message sharing it (a str), or the messages
        # sharing it oldest first (a tuple, for a batch id): no tracked object per message
        self._by_vendor_id: dict[str, dict[str, str | tuple[str, ...]]] = {}
        self._events: dict[str, AnyEvent] = {}
        # provider instance -> vendor id -> ids of stored events not tied to a message yet
        self._orphans: dict[str, dict[str, list[str]]] = {}
        # id of every event not acknowledged yet -> (claim owner, lease end in
        # time.monotonic() seconds), or None while unclaimed; in the order stored
        self._undispatched: dict[str, tuple[str, float] | None] = {}
        self._inbox: list[InboxEntry] = []
        self._quarantine: list[QuarantineEntry] = []
        self._idempotency: dict[str, tuple[str, float, str | None]] = {}
        self._recipients: dict[str, tuple[float, str | None]] = {}
        # Messages with a lease that may still be pending (settled ones are dropped lazily)
        self._leases: dict[str, datetime] = {}
        # phone -> ids of messages that became unknown without a vendor id (checked on read)
        self._unknown: dict[str, dict[str, None]] = {}
        self._verifications: dict[str, VerificationRecord] = {}
        # (to, purpose) -> the current verification's id
        self._current: dict[tuple[str, str], str] = {}
        # (to, purpose) -> (last SMS claimed at, claim id, the time that claim replaced)
        self._verify_sends: dict[tuple[str, str], tuple[float, str, float | None]] = {}

    async def create_message(self, record: MessageRecord) -> None:
        self._create(record)

    def _create(self, record: MessageRecord) -> None:
        self._messages[record.message_id] = _row(record)
        if record.lease_until is not None and record.status is DeliveryStatus.PENDING:
            self._leases[record.message_id] = record.lease_until

    async def start_send(
        self, record: MessageRecord, *, recipient_interval: float | None = None
    ) -> float | None:
        if record.message_id in self._messages:
            raise StoreError(f"message {record.message_id!r} already exists")
        wait = None
        if recipient_interval:
            wait = await self.check_recipient(
                record.to, recipient_interval, message_id=record.message_id
            )
            if wait is not None:
                record = record.model_copy(update={"attempts": []})
        self._create(record)
        return wait

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
        head = list(row[:_HEAD])
        if provider is not None:
            head[_PROVIDER] = provider
        if remaining_credits is not None:
            head[_CREDITS] = remaining_credits
        if provider_message_id is not None:
            head[_VENDOR_ID] = provider_message_id
        if status is not None:
            head += _moved(row, head, status, utcnow(), source)
        else:
            head += row[_HEAD : _tries_at(row)]
        _add_tries(head, attempts)
        self._messages[message_id] = tuple(head)
        if head[_STATUS] != "pending":
            self._leases.pop(message_id, None)
            if head[_STATUS] == "unknown" and head[_VENDOR_ID] is None:
                self._unknown.setdefault(head[_TO], {})[message_id] = None
        owner = head[_PROVIDER]
        if provider_message_id is None or owner is None:
            return []
        return self._link_orphans(message_id, owner, provider_message_id)

    def _link_orphans(
        self, message_id: str, owner: str, provider_message_id: str
    ) -> list[AnyEvent]:
        """Index the message under its vendor id; tie and apply the orphans that match."""
        ids = self._by_vendor_id.setdefault(owner, {})
        sharing = ids.get(provider_message_id)
        if sharing is None:
            ids[provider_message_id] = message_id
        elif sharing != message_id and (type(sharing) is str or message_id not in sharing):
            ids[provider_message_id] = (
                (sharing, message_id) if type(sharing) is str else (*sharing, message_id)
            )
        waiting_here = self._orphans.get(owner)
        waiting = waiting_here.get(provider_message_id) if waiting_here else None
        if not waiting or waiting_here is None:
            return []
        candidates = self._sharing(owner, provider_message_id)
        linked: list[AnyEvent] = []
        for event_id in list(waiting):
            event = self._events[event_id]
            if self._match(event, candidates) == message_id:
                event = event.model_copy(update={"message_id": message_id})
                self._events[event_id] = event
                waiting.remove(event_id)
                self._apply(event)
                linked.append(event)
        if not waiting:
            del waiting_here[provider_message_id]
        return linked

    def _sharing(self, provider: str, vendor_id: str) -> tuple[str, ...]:
        found = self._by_vendor_id.get(provider, {}).get(vendor_id)
        if found is None:
            return ()
        return (found,) if type(found) is str else found  # type: ignore[return-value]

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

    async def list_unsettled(
        self,
        *,
        created_before: datetime,
        created_after: datetime | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        found = [
            row
            for row in self._messages.values()
            if row[_VENDOR_ID] is not None
            and not _STATUSES[row[_STATUS]].is_final
            and row[_CREATED] <= created_before
            and (created_after is None or row[_CREATED] > created_after)
        ]
        found.sort(key=lambda row: row[_CREATED])
        return [_record(row) for row in found[:limit]]

    def _match(self, event: AnyEvent, candidates: Sequence[str]) -> str | None:
        return correlate(event, [(m, self._messages[m][_TO]) for m in candidates])

    def _apply(self, event: AnyEvent) -> None:
        if isinstance(event, DeliveryReceipt) and event.message_id is not None:
            row = self._messages[event.message_id]
            head = list(row[:_HEAD])
            head += _moved(
                row, head, event.status, event.occurred_at, f"{event.kind}:{event.event_id}"
            )
            head += row[_tries_at(row) :]
            self._messages[event.message_id] = tuple(head)

    async def ingest(
        self,
        entry: InboxEntry,
        events: Sequence[AnyEvent],
        *,
        owner: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> list[AnyEvent]:
        claim = None if owner is None else (owner, time.monotonic() + lease)
        self._inbox.append(
            entry.model_copy(update={"event_ids": [e.event_id for e in events]}, deep=True)
        )
        new: list[AnyEvent] = []
        for event in events:
            if event.event_id in self._events:
                continue
            vendor_id = event.provider_message_id
            if event.message_id is None and vendor_id is not None:
                candidates = self._sharing(event.provider, vendor_id)
                message_id = self._match(event, candidates) if candidates else None
                if message_id is None and not candidates:
                    message_id = self._tie(event, vendor_id)
                if message_id is not None:
                    event = event.model_copy(update={"message_id": message_id})
                else:
                    waiting = self._orphans.setdefault(event.provider, {})
                    waiting.setdefault(vendor_id, []).append(event.event_id)
            self._events[event.event_id] = event
            self._undispatched[event.event_id] = claim
            self._apply(event)
            new.append(event)
        if new and owner is None:
            self.events_arrived()
        return new

    def _undecided(self, phone: str) -> list[MessageRecord]:
        """The ``unknown`` and ``pending`` records to ``phone`` without a vendor id; none
        when no ``unknown`` one exists (stale index entries are dropped on the way)."""
        ids = self._unknown.get(phone)
        if not ids:
            return []
        found = []
        for message_id in list(ids):
            row = self._messages[message_id]
            if row[_STATUS] != "unknown" or row[_VENDOR_ID] is not None:
                del ids[message_id]
            else:
                found.append(_record(row))
        if not ids:
            del self._unknown[phone]
            return []
        for message_id in self._leases:
            row = self._messages[message_id]
            if row[_TO] == phone and row[_STATUS] == "pending" and row[_VENDOR_ID] is None:
                found.append(_record(row))
        return found

    def _tie(self, event: AnyEvent, vendor_id: str) -> str | None:
        """Tie a receipt whose vendor id no message has to its one ``unknown`` record."""
        if event.phone is None or not isinstance(event, DeliveryReceipt):
            return None
        message_id = tie_to_unknown(event, self._undecided(event.phone))
        if message_id is None:
            return None
        head = list(self._messages[message_id])
        head[_PROVIDER] = event.provider
        head[_VENDOR_ID] = vendor_id
        self._messages[message_id] = tuple(head)
        self._link_orphans(message_id, event.provider, vendor_id)
        return message_id

    async def recover_expired(self, *, now: datetime, limit: int = 100) -> list[MessageRecord]:
        due = sorted((lease, m) for m, lease in self._leases.items() if lease < now)
        resolved: list[MessageRecord] = []
        for _lease, message_id in due:
            if len(resolved) >= limit:
                break
            del self._leases[message_id]
            row = self._messages[message_id]
            if row[_STATUS] != "pending":
                continue
            record = _record(row)
            status = recovered_status(record)
            apply_status(record, status, now, "recovery")
            self._messages[message_id] = _row(record)
            if status is DeliveryStatus.FAILED:
                key = record.idempotency_key
                if key is not None:
                    await self.release_idempotency_key(key, message_id)
                claim = self._recipients.get(record.to)
                if claim is not None and claim[1] == message_id:
                    del self._recipients[record.to]
            else:
                self._unknown.setdefault(record.to, {})[message_id] = None
            resolved.append(record)
        for record in resolved:
            if record.status is DeliveryStatus.UNKNOWN:
                self._tie_orphans(record)
        return [_record(self._messages[r.message_id]) for r in resolved]

    def _tie_orphans(self, record: MessageRecord) -> None:
        """Offer a record just made ``unknown`` every orphan receipt of its number from an
        instance it tried (they arrived while it was pending)."""
        for provider in dict.fromkeys(a.provider for a in record.attempts):
            for vendor_id, event_ids in list(self._orphans.get(provider, {}).items()):
                for event_id in list(event_ids):
                    event = self._events[event_id]
                    if event.phone != record.to or not isinstance(event, DeliveryReceipt):
                        continue
                    if self._tie(event, vendor_id) is not None:
                        # _tie linked every orphan with this vendor id: the record is done
                        return

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

    async def claim_dispatch(
        self, owner: str, *, limit: int = 100, lease: float = DEFAULT_LEASE
    ) -> list[AnyEvent]:
        now = time.monotonic()
        claimed: list[AnyEvent] = []
        for event_id, held in self._undispatched.items():
            if len(claimed) >= limit:
                break
            if held is None or held[1] <= now:
                self._undispatched[event_id] = (owner, now + lease)
                claimed.append(self._events[event_id])
        return claimed

    async def list_undispatched(self, *, limit: int | None = None) -> list[PendingEvent]:
        # Claims end on the monotonic clock; shown on the wall clock.
        wall, mono = time.time(), time.monotonic()
        found: list[PendingEvent] = []
        for event_id, held in self._undispatched.items():
            if limit is not None and len(found) >= limit:
                break
            event = self._events[event_id]
            if held is None:
                found.append(PendingEvent(event))
            else:
                until = datetime.fromtimestamp(wall + held[1] - mono, UTC)
                found.append(PendingEvent(event, held[0], until))
        return found

    async def ack_dispatch(self, owner: str, event_ids: Sequence[str]) -> int:
        done = 0
        for event_id in event_ids:
            held = self._undispatched.get(event_id)
            if held is not None and held[0] == owner:
                del self._undispatched[event_id]
                done += 1
        return done

    async def claim_idempotency_key(
        self, key: str, message_id: str, ttl: float, *, fingerprint: str | None = None
    ) -> IdempotencyHolder | None:
        now = time.time()
        held = self._idempotency.get(key)
        if held is not None and held[1] > now:
            return IdempotencyHolder(held[0], held[2])
        self._idempotency[key] = (message_id, now + ttl, fingerprint)
        return None

    async def release_idempotency_key(self, key: str, message_id: str) -> None:
        held = self._idempotency.get(key)
        if held is not None and held[0] == message_id:
            del self._idempotency[key]

    async def check_recipient(
        self, phone: str, interval: float, *, message_id: str | None = None
    ) -> float | None:
        now = time.time()
        claim = self._recipients.get(phone)
        if claim is not None and now - claim[0] < interval:
            return interval - (now - claim[0])
        self._recipients[phone] = (now, message_id)
        return None

    # -- verifications (each method completes without awaiting: atomic on the loop) -------

    def _current_of(self, to: str, purpose: str) -> VerificationRecord | None:
        verification_id = self._current.get((to, purpose))
        return None if verification_id is None else self._verifications[verification_id]

    def _put(self, record: VerificationRecord, now: float, **changes: object) -> VerificationRecord:
        record = record.model_copy(update={**changes, "updated_at": now})
        self._verifications[record.verification_id] = record
        return record

    async def claim_verification_send(
        self,
        new: VerificationRecord,
        *,
        now: float,
        resend_interval: float,
        max_sends: int,
    ) -> VerificationClaim:
        pair = (new.to, new.purpose)
        last = self._verify_sends.get(pair)
        if last is not None and now - last[0] < resend_interval:
            return VerificationClaim(
                "limited", retry_after=resend_wait(now, last[0], resend_interval)
            )
        current = self._current_of(*pair)
        if current is not None and current.status is VerificationStatus.PENDING:
            if current.expires_at > now:
                if current.sends >= max_sends:
                    return VerificationClaim("limited", retry_after=current.expires_at - now)
                claim_id = uuid.uuid4().hex
                self._verify_sends[pair] = (now, claim_id, None if last is None else last[0])
                return VerificationClaim("resend", current, claim_id)
            self._put(current, now, status=VerificationStatus.EXPIRED)
        if new.verification_id in self._verifications:
            raise StoreError(f"verification {new.verification_id!r} already exists")
        self._verifications[new.verification_id] = new
        self._current[pair] = new.verification_id
        claim_id = uuid.uuid4().hex
        self._verify_sends[pair] = (now, claim_id, None if last is None else last[0])
        return VerificationClaim("new", new, claim_id)

    async def finish_verification_send(
        self, verification_id: str, claim_id: str, *, sent: bool, now: float, expires_at: float
    ) -> VerificationRecord | None:
        record = self._verifications.get(verification_id)
        if record is None:
            return None
        pending = record.status is VerificationStatus.PENDING
        if sent:
            changes: dict[str, object] = {"sends": record.sends + 1}
            if pending:
                changes["expires_at"] = expires_at
            return self._put(record, now, **changes)
        pair = (record.to, record.purpose)
        last = self._verify_sends.get(pair)
        if last is not None and last[1] == claim_id:
            if last[2] is None:
                del self._verify_sends[pair]
            else:
                self._verify_sends[pair] = (last[2], "", None)
        if pending and record.sends == 0:
            return self._put(record, now, status=VerificationStatus.FAILED)
        return record

    async def check_verification(
        self, to: str, purpose: str, code_hash: str, *, now: float, max_attempts: int
    ) -> VerificationCheckStep:
        record = self._current_of(to, purpose)
        if record is None or record.status in _GONE:
            return VerificationCheckStep(VerificationCheckStatus.NOT_FOUND, record)
        if record.expires_at <= now or record.status is VerificationStatus.EXPIRED:
            if record.status is VerificationStatus.PENDING:
                record = self._put(record, now, status=VerificationStatus.EXPIRED)
            return VerificationCheckStep(VerificationCheckStatus.EXPIRED, record)
        if record.status is VerificationStatus.MAX_ATTEMPTS:
            return VerificationCheckStep(VerificationCheckStatus.MAX_ATTEMPTS, record)
        if constant_time_equal(code_hash, record.code_hash):
            record = self._put(record, now, status=VerificationStatus.APPROVED)
            return VerificationCheckStep(VerificationCheckStatus.APPROVED, record)
        attempts = record.attempts + 1
        if attempts >= max_attempts:
            record = self._put(
                record, now, attempts=attempts, status=VerificationStatus.MAX_ATTEMPTS
            )
            return VerificationCheckStep(VerificationCheckStatus.MAX_ATTEMPTS, record)
        record = self._put(record, now, attempts=attempts)
        return VerificationCheckStep(VerificationCheckStatus.INCORRECT, record)

    async def cancel_verification(
        self, to: str, purpose: str, *, now: float
    ) -> VerificationRecord | None:
        record = self._current_of(to, purpose)
        if record is None or record.status is not VerificationStatus.PENDING:
            return None
        if record.expires_at <= now:
            self._put(record, now, status=VerificationStatus.EXPIRED)
            return None
        return self._put(record, now, status=VerificationStatus.CANCELED)

    async def get_verification(self, verification_id: str) -> VerificationRecord | None:
        return self._verifications.get(verification_id)

    async def current_verification(self, to: str, purpose: str) -> VerificationRecord | None:
        return self._current_of(to, purpose)


_GONE = frozenset(
    {VerificationStatus.APPROVED, VerificationStatus.CANCELED, VerificationStatus.FAILED}
)
