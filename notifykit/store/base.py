"""The narrow interface every message store implements.

A store holds messages (with their status history and attempts), the callback inbox (every
raw request with its normalised events), quarantined requests, idempotency keys and
recipient guards. Callers depend on this interface only, so that a Redis or PostgreSQL
backend can follow without touching them. Every method is a coroutine; a failure raises
:class:`~notifykit.errors.StoreError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import Attempt, DeliveryStatus, MessageRecord, utcnow

__all__ = [
    "TIE_WINDOW",
    "AnyEvent",
    "InboxEntry",
    "QuarantineEntry",
    "Store",
    "correlate",
    "recovered_status",
    "tie_to_unknown",
]

AnyEvent = DeliveryReceipt | InboundMessage

TIE_WINDOW = timedelta(days=3)
"""How long after an attempt started a receipt without a known vendor id may still be
tied to the ``unknown`` record of that attempt (:func:`tie_to_unknown`)."""


def recovered_status(record: MessageRecord) -> DeliveryStatus:
    """What the recovery sweep makes of a ``pending`` record left past its lease:
    ``unknown`` when an attempt may have reached a vendor (never sent again automatically),
    ``failed`` when none did."""
    return DeliveryStatus.UNKNOWN if record.may_have_reached_vendor() else DeliveryStatus.FAILED


def tie_to_unknown(event: AnyEvent, records: Iterable[MessageRecord]) -> str | None:
    """The one ``unknown`` record a receipt with an unknown vendor id belongs to, or None.

    ``records``: the ``unknown`` and ``pending`` records to the receipt's number that have
    no vendor id. A candidate is one of them with an attempt at the receipt's provider
    instance that may have reached it (``started``, or ended in ``UnknownOutcome``) and
    started at most :data:`TIE_WINDOW` before the receipt arrived. Exactly one candidate,
    and it is ``unknown``: its message id. Otherwise None (the receipt stays an orphan
    rather than be tied to the wrong message; a ``pending`` candidate may still get its
    vendor id from its own send).
    """
    if not isinstance(event, DeliveryReceipt) or event.phone is None:
        return None
    earliest = event.received_at - TIE_WINDOW
    found: list[MessageRecord] = []
    for record in records:
        if (
            record.status not in (DeliveryStatus.UNKNOWN, DeliveryStatus.PENDING)
            or record.provider_message_id is not None
            or record.to != event.phone
        ):
            continue
        if any(
            a.provider == event.provider
            and a.started_at is not None
            and (a.outcome == "started" or a.error_type == "UnknownOutcome")
            and earliest <= a.started_at <= event.received_at
            for a in record.attempts
        ):
            found.append(record)
    if len(found) != 1 or found[0].status is not DeliveryStatus.UNKNOWN:
        return None
    return found[0].message_id


def correlate(event: AnyEvent, candidates: Sequence[tuple[str, str]]) -> str | None:
    """The message an event belongs to, among ``(message_id, to)`` pairs that share its
    provider instance and vendor id (oldest first), or None.

    A vendor id is usually one message's; where it is a batch id the number decides. An
    event with no readable number belongs to a vendor id's only message; one whose number
    matches none of the candidates is left an orphan rather than tied to the wrong message.
    """
    for message_id, to in candidates:
        if event.phone is not None and to == event.phone:
            return message_id
    if event.phone is None and len(candidates) == 1:
        return candidates[0][0]
    return None


class InboxEntry(BaseModel):
    """One raw callback request as received (the token never in ``path``).

    ``event_ids`` are the events the plugin made of it, filled in by the store on ingest
    (duplicates included: the inbox is an audit log of what arrived).
    """

    provider: str
    method: str
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes = b""
    received_at: datetime = Field(default_factory=utcnow)
    event_ids: list[str] = Field(default_factory=list)


class QuarantineEntry(InboxEntry):
    """A callback request the plugin could not parse, with the reason."""

    reason: str


class Store(ABC):
    """Where notifykit keeps what must survive the process."""

    async def open(self) -> None:
        """Prepare the store (create or migrate the schema). Idempotent."""

    async def close(self) -> None:
        """Release connections and threads."""

    # -- messages ---------------------------------------------------------------------------

    @abstractmethod
    async def create_message(self, record: MessageRecord) -> None:
        """Record a message before its first attempt (status ``pending``)."""

    @abstractmethod
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
        """Update a message after an attempt: replace its attempts, move its status forward
        (never back; each change appended to the history) and set who accepted it.

        When ``provider_message_id`` is set, orphan events already stored for that
        provider instance and vendor id are linked to the message and applied to its status;
        those events are returned (with ``message_id`` set). An unknown ``message_id``
        raises StoreError.
        """

    @abstractmethod
    async def get_message(self, message_id: str) -> MessageRecord | None:
        """The stored record, or None."""

    @abstractmethod
    async def list_messages(
        self,
        *,
        limit: int | None = None,
        phone: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> list[MessageRecord]:
        """Messages, newest first, optionally filtered by number (E.164) and status."""

    # -- callbacks --------------------------------------------------------------------------

    @abstractmethod
    async def ingest(self, entry: InboxEntry, events: Sequence[AnyEvent]) -> list[AnyEvent]:
        """Store a raw request and its events in one transaction, before it is acknowledged.

        Each event is tied to its message by (provider, provider_message_id[, phone]) when
        that message is known, and its status applied forward-only. A receipt whose vendor
        id no message has is tied by :func:`tie_to_unknown` when exactly one ``unknown``
        record matches: that record takes the receipt's provider instance and vendor id
        (linking other orphans with that id, as ``update_message`` does) and its status.
        Any other event whose message is not known yet is kept as an orphan. An event whose ``event_id`` is already stored
        is not stored again. Returns the new events, with ``message_id`` set where known.
        """

    @abstractmethod
    async def quarantine(self, entry: QuarantineEntry) -> None:
        """Keep a request the plugin could not parse."""

    @abstractmethod
    async def list_events(
        self, *, limit: int | None = None, message_id: str | None = None
    ) -> list[AnyEvent]:
        """Stored events, newest first (by ``received_at``)."""

    @abstractmethod
    async def list_quarantine(self, *, limit: int | None = None) -> list[QuarantineEntry]:
        """Quarantined requests, newest first."""

    @abstractmethod
    async def count_inbox(self) -> int:
        """How many raw requests the inbox holds (every one received, duplicates included)."""

    @abstractmethod
    async def list_inbox(self, *, limit: int | None = None) -> list[InboxEntry]:
        """Raw requests, newest first, each with the ids of the events it carried."""

    @abstractmethod
    async def pending_dispatch(self, *, limit: int = 100) -> list[AnyEvent]:
        """Stored events not yet handed to subscribers, oldest first."""

    @abstractmethod
    async def mark_dispatched(self, event_ids: Sequence[str]) -> None:
        """Record that these events reached their subscribers."""

    # -- recovery ---------------------------------------------------------------------------

    @abstractmethod
    async def recover_expired(self, *, now: datetime, limit: int = 100) -> list[MessageRecord]:
        """Resolve up to ``limit`` records that a dead process left: ``pending`` with a
        ``lease_until`` before ``now`` (UTC). Atomic per record, and safe while other
        processes run it on the same store: each record is resolved by one of them.

        Each becomes :func:`recovered_status` (history source ``"recovery"``). One that
        becomes ``failed`` (no vendor call started) gives back the idempotency key and the
        recipient-guard claim it holds (only its own: a claim since taken by another
        message stays). One that becomes ``unknown`` is offered every orphan receipt of
        its number from an instance it tried, as :func:`tie_to_unknown` decides (the
        receipts arrived while the record was still ``pending``), once every record of
        the call is resolved. Returns the resolved
        records as stored afterwards, oldest lease first; fewer than ``limit`` means none
        is left.

        SQL shape (PostgreSQL: the same statements, ``FOR UPDATE SKIP LOCKED`` on the
        first)::

            SELECT record FROM messages WHERE status = 'pending' AND lease_until < :now
                ORDER BY lease_until LIMIT :limit
            UPDATE messages SET status = :status, record = :record WHERE message_id = :id
                AND status = 'pending'
            DELETE FROM idempotency_keys WHERE key = :key AND message_id = :id
            DELETE FROM recipient_guards WHERE phone = :to AND message_id = :id
            SELECT payload FROM events WHERE provider = :instance AND phone = :to
                AND message_id IS NULL AND kind = 'receipt'
            SELECT record FROM messages WHERE phone = :to
                AND status IN ('unknown', 'pending') AND provider_message_id IS NULL
        """

    # -- guards -----------------------------------------------------------------------------

    @abstractmethod
    async def claim_idempotency_key(self, key: str, message_id: str, ttl: float) -> str | None:
        """Claim ``key`` for ``message_id`` for ``ttl`` seconds, atomically.

        Returns None when the claim succeeded, else the message id that holds the key.
        """

    @abstractmethod
    async def release_idempotency_key(self, key: str, message_id: str) -> None:
        """Give up a claim (the send failed before any vendor could have accepted it)."""

    @abstractmethod
    async def check_recipient(
        self, phone: str, interval: float, *, message_id: str | None = None
    ) -> float | None:
        """Atomically: when ``phone`` was last claimed less than ``interval`` seconds ago,
        return the seconds left to wait; otherwise claim it now (for ``message_id``, so
        that :meth:`recover_expired` can give back the claim of a send that died before
        any vendor call) and return None."""
