"""The narrow interface every message store implements.

A store holds messages (with their status history and attempts), the callback inbox (every
raw request with its normalised events), quarantined requests, idempotency keys, recipient
guards and verifications (:mod:`notifykit.verify`). Callers depend on this interface only, so that a Redis or PostgreSQL
backend can follow without touching them. Every method is a coroutine; a failure raises
:class:`~notifykit.errors.StoreError`.

Writing a backend
-----------------
1. Subclass :class:`Store`, implement every abstract method, and give it a
   :meth:`Store.from_config` that parses its own URL (and reads its own options from
   :class:`~notifykit.config.StoreConfig`), raising ``ConfigError`` naming ``store.url``.
2. Name it in :data:`notifykit.store.BACKENDS` (scheme -> ``"module:Class"`` plus the
   extra that installs its driver): it is imported only when a URL with that scheme is
   opened, and a missing driver becomes a ``ConfigError`` that names the extra.
3. Apply statuses with :func:`notifykit.models.apply_status` (or, for a backend that does
   not hold :class:`~notifykit.models.MessageRecord` objects,
   :func:`notifykit.models.status_advances`): the one forward-only rule.
4. Hand events out by claim (:meth:`Store.claim_dispatch`, :meth:`Store.ack_dispatch`,
   leases in seconds) and call :meth:`Store.events_arrived` when events may be waiting
   (after ``ingest``; on PostgreSQL, when a NOTIFY arrives).
5. Add one line to ``tests/store/conftest.py`` (``STORE_BACKENDS``): the contract suite
   (``tests/store/test_store_contract.py``) then runs against it unchanged.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, Field

from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    VerificationCheckStatus,
    VerificationRecord,
    utcnow,
)

if TYPE_CHECKING:
    from typing import Self

    from notifykit.config import StoreConfig

__all__ = [
    "DEFAULT_LEASE",
    "TIE_WINDOW",
    "AnyEvent",
    "IdempotencyHolder",
    "InboxEntry",
    "PendingEvent",
    "QuarantineEntry",
    "Store",
    "VerificationCheckStep",
    "VerificationClaim",
    "correlate",
    "recovered_status",
    "tie_to_unknown",
]

AnyEvent = DeliveryReceipt | InboundMessage

DEFAULT_LEASE: Final = 30.0
"""Seconds a dispatch claim holds its events before another owner may claim them."""

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


@dataclass(frozen=True)
class PendingEvent:
    """A stored event no observer has seen yet (:meth:`Store.list_undispatched`)."""

    event: AnyEvent
    claimed_by: str | None = None
    """The dispatcher holding it (``host:pid:random``), or None when none ever claimed it
    (stored by a process with no observers, waiting for one that has some)."""
    claimed_until: datetime | None = None
    """When that claim ends (UTC); a time in the past means any dispatcher may take it."""


@dataclass(frozen=True)
class IdempotencyHolder:
    """Who holds an idempotency key (:meth:`Store.claim_idempotency_key`): the message id,
    and the fingerprint of its message as claimed (None: claimed without one)."""

    message_id: str
    fingerprint: str | None = None


@dataclass(frozen=True)
class VerificationClaim:
    """What :meth:`Store.claim_verification_send` decided.

    ``outcome``:

    * ``"new"``: the caller's new verification was stored (``record``); send its code;
    * ``"resend"``: a pending verification exists (``record``, as stored); send its code again;
    * ``"limited"``: send nothing; ``retry_after`` seconds until a ``start`` may succeed.

    For ``new`` and ``resend``, ``claim_id`` identifies this send's hold on the number and
    purpose's resend interval, to pass to :meth:`Store.finish_verification_send`.
    """

    outcome: Literal["new", "resend", "limited"]
    record: VerificationRecord | None = None
    claim_id: str | None = None
    retry_after: float | None = None


def resend_wait(now: float, last_sent_at: float, resend_interval: float) -> float:
    """Seconds (``0 < wait <= resend_interval``) until a number and purpose whose last code
    went out at ``last_sent_at`` may get another one, at ``now`` (both seconds since the
    epoch). Every store calls this one rule.

    Several processes each read their own clock before their transaction, so the stored
    ``last_sent_at`` may be a little later than this caller's ``now``: the elapsed time is
    never taken as negative, so the wait never exceeds the interval the caller configured.
    """
    return resend_interval - min(max(now - last_sent_at, 0.0), resend_interval)


@dataclass(frozen=True)
class VerificationCheckStep:
    """What :meth:`Store.check_verification` found: the answer, and the verification it is
    about as stored after the check (None when there is none: ``not_found``)."""

    status: VerificationCheckStatus
    record: VerificationRecord | None = None


class Store(ABC):
    """Where notifykit keeps what must survive the process."""

    call_timeout: float | None = None
    """Seconds within which each call returns or raises StoreError by the store's own
    deadline (the SQLite store's writer answers a job past it), or None when the store
    keeps no deadline of its own: callers then bound its calls themselves."""

    @classmethod
    def from_config(cls, config: StoreConfig) -> Self:
        """The store ``config`` names (``config.url`` has this backend's scheme), not yet
        opened. The backend owns its URL grammar and options: a URL it cannot read raises
        :class:`~notifykit.errors.ConfigError` naming ``store.url``. A store that is only
        ever passed to a notifier directly need not implement it."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a store URL")

    async def open(self) -> None:
        """Prepare the store (create or migrate the schema). Idempotent."""

    async def close(self) -> None:
        """Release connections and threads."""

    async def check(self) -> None:
        """Raise StoreError when the store cannot take a write now (``GET /healthz``).

        A real write that changes nothing (SQLite: ``DELETE FROM recipient_guards WHERE 0``
        in a write transaction; a read-only file fails it, a plain read would not). A store
        whose writes cannot fail (``memory://``) keeps this default, which does nothing.
        """

    # -- messages ---------------------------------------------------------------------------

    @abstractmethod
    async def create_message(self, record: MessageRecord) -> None:
        """Record a message before its first attempt (status ``pending``)."""

    async def start_send(
        self, record: MessageRecord, *, recipient_interval: float | None = None
    ) -> float | None:
        """Everything a send stores before its first vendor call, in one write: the new
        record (as :meth:`create_message`), holding the attempts made so far (skipped
        instances, then the ``started`` attempt of the call about to be made), and, with
        ``recipient_interval`` (seconds), the claim on its number (as
        :meth:`check_recipient` with ``message_id=record.message_id``).

        Returns None when the record is stored (and the number claimed). When the number
        was claimed less than ``recipient_interval`` seconds ago: the record is stored
        without its attempts (no call will be made), nothing is claimed, and the seconds
        left are returned. A ``message_id`` already stored raises StoreError.

        This default makes the three calls in turn (the claim after the record, as a send
        did before this method existed); SQLite, PostgreSQL and ``memory://`` make it one
        transaction (one write job, one commit shared with concurrent sends).
        """
        if not recipient_interval:
            await self.create_message(record)
            return None
        await self.create_message(record.model_copy(update={"attempts": []}))
        wait = await self.check_recipient(
            record.to, recipient_interval, message_id=record.message_id
        )
        if wait is None and record.attempts:
            await self.update_message(record.message_id, attempts=record.attempts)
        return wait

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

    @abstractmethod
    async def list_unsettled(
        self,
        *,
        created_before: datetime,
        created_after: datetime | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        """Messages a provider accepted whose status is not final yet: what the reconciler
        (``notifykit reconcile``) asks the vendors about.

        Selects records with ``provider_message_id`` set, a status that is not final
        (``DeliveryStatus.is_final`` false: accepted, sent, unknown, pending) and
        ``created_before >= created_at > created_after`` (``created_after`` None: no lower
        bound), **oldest first** (by ``created_at``), at most ``limit``. Both bounds are
        timezone-aware datetimes. The reconciler pages by passing the last record's
        ``created_at`` as the next ``created_after``. Every backend implements it (memory,
        SQLite, PostgreSQL) and runs the contract suite's ``test_list_unsettled_*``;
        an index on (status, created_at) or the status index keeps it cheap.
        """

    # -- callbacks --------------------------------------------------------------------------

    @abstractmethod
    async def ingest(
        self,
        entry: InboxEntry,
        events: Sequence[AnyEvent],
        *,
        owner: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> list[AnyEvent]:
        """Store a raw request and its events in one transaction, before it is acknowledged.

        Each event is tied to its message by (provider, provider_message_id[, phone]) when
        that message is known, and its status applied forward-only. A receipt whose vendor
        id no message has is tied by :func:`tie_to_unknown` when exactly one ``unknown``
        record matches: that record takes the receipt's provider instance and vendor id
        (linking other orphans with that id, as ``update_message`` does) and its status.
        Any other event whose message is not known yet is kept as an orphan. An event whose ``event_id`` is already stored
        is not stored again. Returns the new events, with ``message_id`` set where known.

        With ``owner``, the new events are stored already claimed by ``owner`` for ``lease``
        seconds (as :meth:`claim_dispatch` would), so that the process that received them
        hands them out and no other dispatcher takes them meanwhile. Without, they wait
        unclaimed, and :meth:`events_arrived` is called when any event is new.
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

    # -- dispatch: claim, deliver, acknowledge ---------------------------------------------
    #
    # Any number of dispatchers (in any number of processes) may share one store. Each
    # claims a batch, hands it to the observers and acknowledges it. A claim is a lease: a
    # dispatcher that dies holding one loses it when the lease ends, and another claims
    # those events again (delivery to observers is at least once).

    @abstractmethod
    async def claim_dispatch(
        self, owner: str, *, limit: int = 100, lease: float = DEFAULT_LEASE
    ) -> list[AnyEvent]:
        """Claim up to ``limit`` events for ``owner`` for ``lease`` seconds, oldest first
        (in the order they were stored), and return them.

        Only events not yet acknowledged and held by no live claim are claimed: an event
        whose lease has run out (``lease`` seconds after it was claimed; ``lease=0`` ends at
        once) may be claimed again, by any owner. Atomic: two owners racing, in one process
        or many, never both receive an event while its lease holds. ``owner`` is an opaque
        string unique per dispatcher (e.g. host, pid and a random part).
        """

    @abstractmethod
    async def list_undispatched(self, *, limit: int | None = None) -> list[PendingEvent]:
        """The events no observer has seen yet (not acknowledged), oldest first (in the
        order they were stored), each with the claim that holds it if any
        (``notifykit events --pending``). Reads only: claims nothing."""

    @abstractmethod
    async def ack_dispatch(self, owner: str, event_ids: Sequence[str]) -> int:
        """Record that the observers have seen these events; returns how many it recorded.

        Only events ``owner`` still holds are recorded: an id unknown, already
        acknowledged, or claimed since by another owner (after this owner's lease ran out)
        is skipped. An owner whose lease ran out but whose events nobody claimed since
        still holds them.
        """

    async def wait_for_events(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`events_arrived`; True when woken early.

        A dispatcher loop claims, and when nothing is left, waits here before claiming
        again. A wake-up is a hint, not a promise (claim again either way), and one that
        comes between the empty claim and this wait is only seen at the timeout: the
        timeout is the polling interval of last resort.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._event_waiters()
        waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            waiters.discard(waiter)

    def events_arrived(self) -> None:
        """Wake every coroutine in :meth:`wait_for_events` on this object. Backends call it
        from the event loop after storing unclaimed events, and for events stored elsewhere
        when they learn of them (PostgreSQL: LISTEN/NOTIFY)."""
        for waiter in self._event_waiters():
            if not waiter.done():
                waiter.set_result(None)

    def _event_waiters(self) -> set[asyncio.Future[None]]:
        # Kept in the instance dict so that subclasses need not call Store.__init__.
        found: Any = self.__dict__.setdefault("_nk_event_waiters", set())
        return found  # type: ignore[no-any-return]

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
    async def claim_idempotency_key(
        self, key: str, message_id: str, ttl: float, *, fingerprint: str | None = None
    ) -> IdempotencyHolder | None:
        """Claim ``key`` for ``message_id`` for ``ttl`` seconds, atomically, storing
        ``fingerprint`` with the claim (an opaque keyed hash of the message, never the
        message itself: :class:`notifykit.routing.guard.Idempotency` makes it).

        Returns None when the claim succeeded, else the holder: its message id and the
        fingerprint stored with its claim, read in the same step.
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

    # -- verifications ------------------------------------------------------------------------
    #
    # The rules live in notifykit.verify; a store makes each step below one atomic
    # read-modify-write, across every process sharing the store (SQLite: one BEGIN IMMEDIATE
    # transaction; PostgreSQL: one transaction holding the rows it reads, e.g. SELECT ... FOR
    # UPDATE on the (to, purpose) verification row and resend-interval row, or a conditional
    # UPDATE). The contract suite (tests/store) pins every rule; the concurrency tests
    # (tests/verify) run them from several processes at once.
    #
    # "The current verification" of (to, purpose) is the one stored last for that pair. Times
    # are seconds since the epoch, given by the caller (``now``), never read from a clock by
    # the store, so that tests can move time. A store keeps per (to, purpose) the time of the
    # last SMS counted as sent (the resend interval) with the claim that set it.

    @abstractmethod
    async def claim_verification_send(
        self,
        new: VerificationRecord,
        *,
        now: float,
        resend_interval: float,
        max_sends: int,
    ) -> VerificationClaim:
        """Decide, atomically, whether ``start`` may send a code to ``new.to`` for
        ``new.purpose``, and claim the resend interval when it may.

        In this order:

        1. the last SMS to (to, purpose) was claimed less than ``resend_interval`` seconds
           before ``now`` (a send in flight included): ``limited``, ``retry_after`` = the
           rest of the interval; nothing changes;
        2. the current verification is ``pending`` with ``expires_at > now``:

           * with ``sends >= max_sends``: ``limited``, ``retry_after`` = ``expires_at - now``;
           * otherwise ``resend`` of it (unchanged: no new row, its code and attempts kept);

        3. otherwise (none, or not pending, or pending but ``expires_at <= now``, which is
           then stored as ``expired``): ``new`` is inserted as given (status ``pending``,
           ``sends`` 0) and becomes the current verification.

        For ``new`` and ``resend`` the interval is claimed: the last-SMS time becomes
        ``now``, remembered with a fresh ``claim_id`` and the time it replaced, so that
        :meth:`finish_verification_send` can give it back.
        """

    @abstractmethod
    async def finish_verification_send(
        self, verification_id: str, claim_id: str, *, sent: bool, now: float, expires_at: float
    ) -> VerificationRecord | None:
        """Record, atomically, how the send claimed by ``claim_id`` ended.

        ``sent`` (a vendor accepted, or may have: an UnknownOutcome): ``sends`` + 1, and,
        while the verification is still ``pending``, ``expires_at`` set to the given value
        (now + ttl: a resend moves it); the claimed interval stays.

        Not ``sent`` (no vendor accepted): a verification still ``pending`` with ``sends`` 0
        (its first send) becomes ``failed``; any other is left as it was (a failed resend:
        the earlier code stays valid). The interval is given back: the last-SMS time returns
        to what it was before the claim, provided ``claim_id`` still holds it (a later claim
        is never undone).

        Returns the verification as stored afterwards (None if unknown).
        """

    @abstractmethod
    async def check_verification(
        self, to: str, purpose: str, code_hash: str, *, now: float, max_attempts: int
    ) -> VerificationCheckStep:
        """Check ``code_hash`` against the current verification of (to, purpose), atomically.

        In this order, on the current verification:

        1. none, or ``approved`` / ``canceled`` / ``failed``: ``not_found``;
        2. ``expires_at <= now``, or status ``expired``: ``expired`` (a ``pending`` one is
           stored as ``expired``): expiry is checked before anything else;
        3. status ``max_attempts``: ``max_attempts``;
        4. ``code_hash`` equals the stored one, compared in constant time
           (:func:`notifykit.compare.constant_time_equal`, never ``==`` or SQL ``=``):
           ``approved``, stored as ``approved`` (consumed: a second check of the same code gets ``not_found``);
        5. otherwise ``attempts`` + 1; when that reaches ``max_attempts`` the verification is
           stored as ``max_attempts`` and the answer is ``max_attempts``, else ``incorrect``.

        Steps 2-5 are one transaction: N concurrent checks evaluate at most the attempts
        that are left, and approve at most once.
        """

    @abstractmethod
    async def cancel_verification(
        self, to: str, purpose: str, *, now: float
    ) -> VerificationRecord | None:
        """Cancel the current verification of (to, purpose) if it is ``pending``; return it
        as stored afterwards, or None when there was none pending. The resend interval is not
        touched."""

    @abstractmethod
    async def get_verification(self, verification_id: str) -> VerificationRecord | None:
        """The stored verification, or None."""

    @abstractmethod
    async def current_verification(self, to: str, purpose: str) -> VerificationRecord | None:
        """The current verification of (to, purpose) (the one stored last), whatever its
        status, or None. A plain read: expiry is not applied."""
