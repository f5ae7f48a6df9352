"""The narrow interface every message store implements.

A store holds messages (with their status history and attempts), the callback inbox (every
raw request with its normalised events), quarantined requests, idempotency keys and
recipient guards. Callers depend on this interface only, so that a Redis or PostgreSQL
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
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, Field

from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import Attempt, DeliveryStatus, MessageRecord, utcnow

if TYPE_CHECKING:
    from typing import Self

    from notifykit.config import StoreConfig

__all__ = ["DEFAULT_LEASE", "AnyEvent", "InboxEntry", "QuarantineEntry", "Store", "correlate"]

AnyEvent = DeliveryReceipt | InboundMessage

DEFAULT_LEASE: Final = 30.0
"""Seconds a dispatch claim holds its events before another owner may claim them."""


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
        that message is known, and its status applied forward-only; an event whose message
        is not known yet is kept as an orphan. An event whose ``event_id`` is already stored
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
    async def check_recipient(self, phone: str, interval: float) -> float | None:
        """Atomically: when ``phone`` was last claimed less than ``interval`` seconds ago,
        return the seconds left to wait; otherwise claim it now and return None."""
