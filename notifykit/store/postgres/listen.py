"""LISTEN for new events, so that dispatchers wake up at once instead of polling.

One connection of its own (not from the pool: it stays busy listening) runs ``LISTEN
notifykit_events``; the trigger on ``events`` notifies with the schema's name as payload.
A lost connection is re-made after ``retry`` seconds; meanwhile waiters fall back to their
own timeout (a poll), so no event waits longer than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

__all__ = ["CHANNEL", "EventListener"]

CHANNEL = "notifykit_events"

log = logging.getLogger("notifykit.store")


class EventListener:
    """Sets :attr:`woken` whenever a new event is stored in ``schema``, by any instance."""

    def __init__(self, conninfo: str, schema: str, *, retry: float = 1.0) -> None:
        self._conninfo = conninfo
        self._schema = schema
        self._retry = retry
        self.woken = asyncio.Event()
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notifykit-pg-listen")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self, timeout: float) -> None:
        """Return when woken (an event was stored since the last wait) or after ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), timeout)
        self.woken.clear()

    async def _run(self) -> None:
        lost = False
        while True:
            conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                await conn.execute(f"LISTEN {CHANNEL}")
                if lost:
                    log.info("store: listening for new events again")
                    lost = False
                self.connected.set()
                # Events stored while we were not listening: wake the dispatchers once.
                self.woken.set()
                async for notice in conn.notifies():
                    if notice.payload == self._schema:
                        self.woken.set()
            except psycopg.Error as exc:
                self.connected.clear()
                if not lost:
                    log.warning(
                        "store: LISTEN connection lost (%s); dispatchers poll until it is back",
                        type(exc).__name__,
                    )
                    lost = True
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(self._retry)
