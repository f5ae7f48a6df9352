"""The recovery sweep: resolve what a killed sending process left ``pending``.

Before each vendor call the router records a ``started`` attempt (the instance and the
time), and every record carries a lease: the send's deadline plus the store timeout, by
which a live process has always written a final status. A record still ``pending`` past
its lease was left by a process that died. The sweep makes it ``unknown`` when a vendor call
had started (the vendor may have the message: it is never sent again automatically; a human
decides, ``notifykit log --status unknown``) or ``failed`` when none had (its idempotency
key and recipient-guard claim are given back: the store's, through
:meth:`~notifykit.store.base.Store.recover_expired`, and, with ``[shared_state]``, the one
held in Redis, through :meth:`~notifykit.shared.base.SharedState.release_recipient`). Receipts that arrived for such a
message while it was ``pending`` are tied to it when they match it alone.

It runs when a notifier opens its store and then every ``[store] recovery_interval``
seconds while the notifier is open. Several processes may sweep one store at once: each
record is resolved by exactly one of them (the store's transaction decides).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from notifykit.log import get_logger
from notifykit.models import DeliveryStatus, MessageRecord, utcnow
from notifykit.shared.base import SharedState
from notifykit.store.base import Store

__all__ = ["PAGE", "RecoveryTimer", "sweep"]

log = get_logger("notifykit.recovery")

PAGE = 100
"""Records resolved per store transaction."""


async def sweep(
    store: Store, *, shared: SharedState | None = None, now: datetime | None = None
) -> list[MessageRecord]:
    """Resolve every record left ``pending`` past its lease at ``now`` (default: the
    current UTC time); the resolved records. ``shared``: the ``[shared_state]`` whose
    recipient-guard claims of the records made ``failed`` are given back too (each record
    is resolved by one sweep only, so one claim is given back once). Raises StoreError
    when the store fails; an unreachable shared state never raises (its claims then end
    with their interval)."""
    when = now if now is not None else utcnow()
    resolved: list[MessageRecord] = []
    while True:
        page = await store.recover_expired(now=when, limit=PAGE)
        resolved += page
        if shared is not None:
            for record in page:
                if record.status is DeliveryStatus.FAILED:  # no vendor call had started
                    await shared.release_recipient(record.to, record.message_id)
        if len(page) < PAGE:
            break
    if resolved:
        counts: dict[str, int] = {}
        for record in resolved:
            counts[record.status.value] = counts.get(record.status.value, 0) + 1
        log.warning(
            "recovered_messages",
            count=len(resolved),
            **{f"to_{status}": n for status, n in sorted(counts.items())},
        )
    return resolved


class RecoveryTimer:
    """Runs :func:`sweep` every ``interval`` seconds on the running loop until ``stop()``.

    A failing sweep is logged (the exception class only) and tried again at the next tick.
    """

    def __init__(self, store: Store, interval: float, *, shared: SharedState | None = None) -> None:
        self.store = store
        self.interval = interval
        self.shared = shared
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="notifykit-recovery"
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await sweep(self.store, shared=self.shared)
            except Exception as exc:
                log.warning("recovery_sweep_failed", error_type=type(exc).__name__)

    def abandon(self) -> None:
        """Forget a timer whose event loop ended without shutting down (nothing of that
        loop can be awaited any more); ``start()`` makes a new one."""
        self._task = None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
