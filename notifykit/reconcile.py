"""The reconciler: ask vendors where sent messages stand, for teams without a public
callback URL, or to fill in receipts a vendor never pushed.

:meth:`AsyncNotifier.reconcile` and ``notifykit reconcile`` page through the store's
messages a provider accepted whose status is not final and that were created more than
``older_than`` seconds ago (:meth:`Store.list_unsettled`), and ask each one's provider
instance through the optional ``fetch_status`` capability. What a vendor answers is stored
through the same path as a push (:meth:`Store.ingest`: the inbox keeps the answer, events
are tied to their message and move its status forward only, then dispatched to
observers). A provider builds a polled receipt exactly as it builds the pushed one (same
``event_id``), so a later push of the same receipt is a duplicate, not a second event.

Safe from cron on several hosts at once: two reconcilers asking about one message store
the same event ids, and the store keeps each id once (one transaction per ingest), so the
second only adds an inbox row. Instances whose type has no status query (Veesing) are
skipped and said so in the report; a failed query is counted and logged (its class only)
and the run goes on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from notifykit.errors import NotifyKitError, NotSupported, StoreError
from notifykit.events import DeliveryReceipt
from notifykit.log import get_logger
from notifykit.models import MessageRecord, utcnow
from notifykit.provider import SmsProvider, fetches_status
from notifykit.store.base import DEFAULT_LEASE, InboxEntry, Store

__all__ = ["DEFAULT_OLDER_THAN", "ProviderReconcile", "ReconcileReport", "Reconciler"]

log = get_logger("notifykit.reconcile")

DEFAULT_OLDER_THAN = 300.0
"""Seconds a message must have waited before it is asked about (a receipt usually comes
by push within a minute or two)."""

_PAGE = 100
_CONCURRENCY = 8


class ProviderReconcile(BaseModel):
    """What the reconciler did for one provider instance."""

    checked: int = 0
    """Messages asked about."""
    events: int = 0
    """New events stored (duplicates of pushed receipts not counted)."""
    failed: int = 0
    """Queries that failed (the vendor refused, or did not answer)."""
    skipped: int = 0
    """Messages not asked about: the instance has no status query, or is not configured."""
    reason: str | None = None
    """Why messages were skipped, or the class of the last failure."""


class ReconcileReport(BaseModel):
    """The outcome of one reconcile run, per provider instance."""

    older_than: float
    """Seconds: only messages created at least this long ago were considered."""
    checked: int = 0
    events: int = 0
    failed: int = 0
    providers: dict[str, ProviderReconcile] = Field(default_factory=dict)


class Reconciler:
    """Runs reconcile passes for one notifier's providers and store.

    ``dispatch`` hands newly stored events to observers (the callback processor's), and
    ``claimant()`` names the owner they are stored claimed by (the processor's, while it has
    observers; None stores them unclaimed and dispatches nothing here, leaving them to a
    process that has observers), for ``lease`` seconds.
    """

    def __init__(
        self,
        providers: Mapping[str, SmsProvider[Any]],
        store: Store,
        dispatch: Any,
        *,
        store_timeout: float = 5.0,
        claimant: Callable[[], str | None] = lambda: None,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        self.providers = providers
        self.store = store
        self.dispatch = dispatch
        self.store_timeout = store_timeout
        self.claimant = claimant
        self.lease = lease

    async def run(
        self, older_than: float | timedelta = DEFAULT_OLDER_THAN, *, limit: int = 1000
    ) -> ReconcileReport:
        """Ask about at most ``limit`` messages created ``older_than`` (seconds) ago or
        earlier, oldest first. Raises StoreError when the store cannot be read; a failed
        vendor query is counted in the report, never raised."""
        seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
        if not seconds >= 0:
            raise ValueError(f"older_than must be >= 0 seconds, got {older_than!r}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        report = ReconcileReport(older_than=float(seconds))
        cutoff = utcnow() - timedelta(seconds=seconds)
        cursor = None
        seen = 0
        gate = asyncio.Semaphore(_CONCURRENCY)
        while seen < limit:
            async with asyncio.timeout(self.store_timeout):
                page = await self.store.list_unsettled(
                    created_before=cutoff, created_after=cursor, limit=min(_PAGE, limit - seen)
                )
            if not page:
                break
            seen += len(page)
            cursor = page[-1].created_at
            await asyncio.gather(*(self._one(record, report, gate) for record in page))
        for row in report.providers.values():
            report.checked += row.checked
            report.events += row.events
            report.failed += row.failed
        log.info(
            "reconciled",
            checked=report.checked,
            events=report.events,
            failed=report.failed,
            older_than=report.older_than,
        )
        return report

    async def _one(
        self, record: MessageRecord, report: ReconcileReport, gate: asyncio.Semaphore
    ) -> None:
        name = record.provider or ""
        row = report.providers.setdefault(name, ProviderReconcile())
        provider = self.providers.get(name)
        if provider is None:
            row.skipped += 1
            row.reason = "not a configured provider instance"
            return
        if not fetches_status(provider):
            row.skipped += 1
            row.reason = f"{provider.name}: the vendor has no status query"
            return
        async with gate:
            row.checked += 1
            try:
                receipts = await provider.fetch_status(record)
            except NotSupported as exc:
                row.checked -= 1
                row.skipped += 1
                row.reason = exc.message
                return
            except Exception as exc:
                # Only the class: a vendor's or plugin's message might hold an option value.
                row.failed += 1
                row.reason = type(exc).__name__
                log.warning(
                    "reconcile_query_failed",
                    provider=name,
                    message_id=record.message_id,
                    error=type(exc).__name__,
                )
                return
            if not receipts:
                return
            # Vendor text, masked by the core like every answer a provider hands back.
            receipts = [
                r.model_copy(update={"raw": provider.redactor.value(r.raw)}) for r in receipts
            ]
            new = await self._store(name, record, receipts)
            row.events += len(new)

    async def _store(
        self, name: str, record: MessageRecord, receipts: list[DeliveryReceipt]
    ) -> list[Any]:
        tied = [
            r
            if r.message_id is not None
            else r.model_copy(update={"message_id": record.message_id})
            for r in receipts
        ]
        entry = InboxEntry(
            provider=name,
            method="POLL",
            path=f"/reconcile/{record.message_id}",
            headers={"content-type": "application/json"},
            body=json.dumps([r.raw for r in tied], ensure_ascii=False, default=str).encode(),
        )
        owner = self.claimant()
        try:
            async with asyncio.timeout(self.store_timeout):
                new = await self.store.ingest(entry, tied, owner=owner, lease=self.lease)
        except NotifyKitError:
            raise
        except Exception as exc:  # a timeout or a backend bug: never leak a foreign exception
            raise StoreError(f"storing polled receipts failed ({type(exc).__name__})") from exc
        if new and owner is not None:
            self.dispatch(new)
        return new
