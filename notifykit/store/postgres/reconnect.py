"""Coming back from a lost database connection without a restart.

Two gaps in a connection pool's defaults would keep a store failing after the database is
back:

* Connections the server has closed (``pg_terminate_backend``, a restart, a failover) look
  healthy in the pool until used: each would fail one operation in turn. After an
  operation fails with a lost connection, :meth:`PoolRepair.after` checks every idle
  connection (psycopg_pool's ``check()``: dead ones are replaced) before the failure is
  reported, so the next operation gets a live one.
* While the database cannot be reached, psycopg_pool retries with a growing delay (up to
  its ``reconnect_timeout``, 5 minutes by default), so the first attempt after the
  database is back could come minutes later. The pool is made with ``reconnect_timeout``
  :data:`RECONNECT_INTERVAL`, and each round that gives up starts the next
  (:func:`keep_trying`): about one connection attempt a second while the database is
  away, and a waiting operation is served within about a second of its return.

Only psycopg_pool's documented API is used (``check()``, ``reconnect_timeout``,
``reconnect_failed``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

__all__ = ["RECONNECT_INTERVAL", "PoolRepair", "keep_trying"]

RECONNECT_INTERVAL = 1.0
"""Seconds one round of connection attempts lasts before the next begins."""


async def keep_trying(pool: AsyncConnectionPool[Any]) -> None:
    """psycopg_pool's ``reconnect_failed`` callback: start another round (``check()`` grows
    the pool again when it holds no connection)."""
    with contextlib.suppress(Exception):  # closed meanwhile: nothing to do
        await pool.check()


class PoolRepair:
    """Checks ``pool``'s idle connections after an operation lost its connection (one
    check at a time; waits for it ``timeout`` seconds at most)."""

    def __init__(self, pool: AsyncConnectionPool[Any], timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout
        self._checking: asyncio.Task[None] | None = None

    async def after(self, exc: BaseException) -> None:
        """Call when an operation failed with ``exc``; does nothing unless the connection
        was lost or none could be had (``psycopg.OperationalError``). Never raises."""
        if not isinstance(exc, psycopg.OperationalError):
            return
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(
                keep_trying(self.pool), name="notifykit-pg-pool-check"
            )
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await asyncio.shield(self._checking)
