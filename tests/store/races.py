"""Forced interleavings of two contenders on one backend, for the race tests
(test_store_races.py). Each backend in the registry (conftest.py, ``StoreBackend.race``)
names how its contenders are made and scheduled:

* ``memory://`` lives in one event loop: its contenders are coroutines on one store, and
  they can only interleave where a claim awaits. ``asyncio.gather`` runs the first until
  it suspends, then the second, so a claim that awaits between its check and its write
  is caught every time.

* ``sqlite://`` contenders are separate stores on one file (each its own connection and
  thread, exactly as two processes would be). :class:`StatementGate` pauses each
  connection before every statement that takes or needs SQLite's write lock (``BEGIN``,
  ``INSERT``/``UPDATE``/``DELETE``/``REPLACE``, ``COMMIT``) and lets one contender through
  at a time, switching to the other whenever it can run without blocking on the lock. A
  claim made of a separate read and write (a read job and then a write job, two write
  transactions, or a deferred transaction that reads before it writes) lets the other
  contender's whole claim land in its gap, every run; an atomic claim makes the other wait.

* ``postgresql://`` contenders are separate stores (each its own pool, as two instances
  would be) on one schema. :class:`TableLockGate` holds every notifykit table of the
  schema ``IN SHARE MODE`` from a third connection: reads go on, every write waits. It
  starts contender ``first`` and waits until PostgreSQL itself reports it blocked (by the
  gate, or by a lock the other holds) or finished, then the other likewise, then lets go.
  So both have read everything they read before their first write when either writes: a
  claim that decides on a read made without a lock that the other must wait for (a
  ``SELECT`` and then an ``INSERT``/``UPDATE``, a claim without its advisory lock or
  ``FOR UPDATE``) decides on stale data every run, while an atomic claim (one conditional
  ``INSERT ... ON CONFLICT``, ``FOR UPDATE SKIP LOCKED``, an advisory lock taken before
  the read) makes the other wait or skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifykit.store import MemoryStore, SQLiteStore, Store

GUARD_TIMEOUT = 30.0
"""Seconds before a stuck schedule fails the test (a guard against hanging, not a measure)."""

# What a statement's first keyword means for SQLite's write lock.
_BEGIN, _BEGIN_WRITE, _WRITE, _END = "begin", "begin-write", "write", "end"


def _kind(sql: str) -> str | None:
    """The gate a statement stops at, or None for one that never takes the write lock."""
    words = sql.split(None, 2)
    if not words:
        return None
    first = words[0].upper()
    second = words[1].upper() if len(words) > 1 else ""
    if first == "BEGIN":
        return _BEGIN_WRITE if second in ("IMMEDIATE", "EXCLUSIVE") else _BEGIN
    if first in ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"):
        return _WRITE
    if first in ("COMMIT", "END") or (first == "ROLLBACK" and second != "TO"):
        return _END
    return None


@dataclass
class _Contender:
    index: int
    pending: str | None = None
    """The kind of statement it is paused before, or None while it runs (or is idle)."""
    passes: int = 0
    in_transaction: bool = False
    holds_lock: bool = False


class StatementGate:
    """Pauses the SQLite connections it traces before each write-lock statement.

    Install :meth:`connect` in place of ``sqlite3.connect``: the n-th connection made
    (once per store, in the order the stores are opened) is contender n. Until
    :meth:`arm` nothing is paused; after :meth:`free` nothing is paused again.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, path: Path) -> None:
        self.loop = loop
        self.path = str(path)
        self.contenders: list[_Contender] = []
        self.changed = asyncio.Event()
        self._cond = threading.Condition()
        self._armed = False
        self._free = False

    def connect(self, original: Callable[..., sqlite3.Connection]) -> Callable[..., Any]:
        @functools.wraps(original)
        def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = original(database, *args, **kwargs)
            if str(database) == self.path:
                with self._cond:
                    contender = _Contender(len(self.contenders))
                    self.contenders.append(contender)
                conn.set_trace_callback(functools.partial(self._trace, contender))
            return conn

        return connect

    def arm(self) -> None:
        with self._cond:
            self._armed = True

    def free(self) -> None:
        """Let every statement through, now and from now on."""
        with self._cond:
            self._free = True
            self._cond.notify_all()

    # -- in the stores' writer threads ----------------------------------------------------

    def _trace(self, contender: _Contender, sql: str) -> None:
        kind = _kind(sql)
        if kind is None:
            return
        with self._cond:
            if self._armed and not self._free:
                contender.pending = kind
                self.loop.call_soon_threadsafe(self.changed.set)
                while not (self._free or contender.passes):
                    self._cond.wait()
                if contender.passes:
                    contender.passes -= 1
                contender.pending = None
            if kind in (_BEGIN, _BEGIN_WRITE):
                contender.in_transaction = True
                contender.holds_lock = kind == _BEGIN_WRITE
            elif kind == _WRITE and contender.in_transaction:
                contender.holds_lock = True
            elif kind == _END:
                contender.in_transaction = contender.holds_lock = False

    # -- in the test's event loop ---------------------------------------------------------

    def _blocked(self, contender: _Contender) -> bool:
        """Would its next statement wait for a lock another contender holds?"""
        needs_lock = contender.pending == _BEGIN_WRITE or (
            contender.pending == _WRITE and not contender.holds_lock
        )
        return needs_lock and any(
            other.holds_lock for other in self.contenders if other is not contender
        )

    async def _settle(self, tasks: Sequence[asyncio.Task[Any]]) -> None:
        """Wait until every contender is paused at a gate or its operation has finished."""
        while True:
            self.changed.clear()
            with self._cond:
                moving = [
                    i
                    for i, task in enumerate(tasks)
                    if not task.done() and self.contenders[i].pending is None
                ]
            if not moving:
                return
            try:
                await asyncio.wait_for(self.changed.wait(), GUARD_TIMEOUT)
            except TimeoutError:
                raise AssertionError(f"contenders {moving} neither paused nor finished") from None

    async def run(self, operations: Sequence[Coroutine[Any, Any, Any]], first: int) -> list[Any]:
        """Run ``operations[n]`` as contender n, ``first`` first, then alternating at every
        gate where the other contender can run."""
        tasks = [asyncio.ensure_future(op) for op in operations]
        assert len(tasks) == len(self.contenders), "one store (one connection) per contender"
        for task in tasks:
            task.add_done_callback(lambda _t: self.changed.set())
        self.arm()
        last: int | None = None if first == 0 else first - 1
        try:
            while True:
                await self._settle(tasks)
                with self._cond:
                    ready = [
                        c.index
                        for c in self.contenders
                        if c.pending is not None and not self._blocked(c)
                    ]
                    if not ready:
                        stuck = [c for c in self.contenders if c.pending is not None]
                        assert not stuck, f"every contender waits for another: {stuck}"
                        break
                    chosen = next((i for i in ready if i != last), ready[0])
                    self.contenders[chosen].passes += 1
                    self.contenders[chosen].pending = None
                    self._cond.notify_all()
                last = chosen
        finally:
            self.free()
        return list(await asyncio.gather(*tasks, return_exceptions=True))


class Race:
    """Contenders on one backend's shared state, and the schedule that interleaves them."""

    def __init__(
        self,
        stores: Sequence[Store],
        schedule: Callable[[Sequence[Coroutine[Any, Any, Any]], int], Awaitable[list[Any]]],
    ) -> None:
        self.stores = list(stores)
        self._schedule = schedule

    async def run(
        self, operations: Sequence[Coroutine[Any, Any, Any]], first: int = 0
    ) -> list[Any]:
        """Results of ``operations[n]`` run on ``stores[n]``, contender ``first`` first."""
        assert len(operations) == len(self.stores)
        return await self._schedule(operations, first)


async def _gather(operations: Sequence[Coroutine[Any, Any, Any]], first: int) -> list[Any]:
    order = [first, *(i for i in range(len(operations)) if i != first)]
    results = await asyncio.gather(*(operations[i] for i in order), return_exceptions=True)
    return [results[order.index(i)] for i in range(len(operations))]


class TableLockGate:
    """Holds every notifykit table of ``schema`` in SHARE mode while two PostgreSQL
    contenders start (see the module docstring); contender n's connections carry the
    ``application_name`` ``names[n]``, by which PostgreSQL reports them blocked."""

    def __init__(self, url: str, schema: str, names: Sequence[str]) -> None:
        self.url = url
        self.schema = schema
        self.names = list(names)

    async def _blocked(self, conn: Any, name: str) -> bool:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND cardinality(pg_blocking_pids(pid)) > 0",
            (name,),
        )
        row = await cur.fetchone()
        return bool(row[0])

    async def _settle(self, conn: Any, task: asyncio.Task[Any], name: str) -> None:
        """Wait until ``task`` has finished or PostgreSQL reports its store blocked."""
        async with asyncio.timeout(GUARD_TIMEOUT):
            while not task.done() and not await self._blocked(conn, name):
                # A short nap between polls of pg_stat_activity; how long does not matter.
                await asyncio.wait({task}, timeout=0.005)

    async def run(self, operations: Sequence[Coroutine[Any, Any, Any]], first: int) -> list[Any]:
        import psycopg
        from psycopg import sql

        assert len(operations) == len(self.names)
        order = [first, *(i for i in range(len(operations)) if i != first)]
        tasks: dict[int, asyncio.Task[Any]] = {}
        async with (
            await psycopg.AsyncConnection.connect(self.url, autocommit=True) as holder,
            await psycopg.AsyncConnection.connect(self.url, autocommit=True) as watcher,
        ):
            cur = await holder.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s"
                " AND tablename <> 'schema_migrations' ORDER BY tablename",
                (self.schema,),
            )
            tables = [sql.Identifier(self.schema, row[0]) for row in await cur.fetchall()]
            assert tables, f"no notifykit tables in {self.schema}"
            try:
                async with holder.transaction():
                    await holder.execute(
                        sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.SQL(", ").join(tables))
                    )
                    for i in order:
                        tasks[i] = asyncio.ensure_future(operations[i])
                        await self._settle(watcher, tasks[i], self.names[i])
                    # Leaving the block commits: the writes the gate held go on.
            finally:
                for i, op in enumerate(operations):
                    if i not in tasks:
                        op.close()  # never started (a contender that did not settle)
            results = await asyncio.gather(
                *(tasks[i] for i in range(len(operations))), return_exceptions=True
            )
        return list(results)


RaceMaker = Callable[[pytest.FixtureRequest, Path], contextlib.AbstractAsyncContextManager[Race]]
"""How a backend makes two contenders on one fresh store (the test's request, for other
fixtures, and its ``tmp_path``); closes them after."""


@contextlib.asynccontextmanager
async def memory_race(_request: pytest.FixtureRequest, _tmp: Path) -> AsyncIterator[Race]:
    """One memory store, twice: its contenders are coroutines in one loop."""
    memory = MemoryStore()
    await memory.open()
    try:
        yield Race([memory, memory], _gather)
    finally:
        await memory.close()


@contextlib.asynccontextmanager
async def sqlite_race(request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[Race]:
    """Two SQLite stores on one file, their statements gated by :class:`StatementGate`."""
    path = tmp / "race.sqlite3"
    gate = StatementGate(asyncio.get_running_loop(), path)
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(sqlite3, "connect", gate.connect(sqlite3.connect))
    stores = [SQLiteStore(path, timeout=GUARD_TIMEOUT) for _ in range(2)]
    opened: list[Store] = []
    try:
        for store in stores:  # one at a time: contender n is the n-th connection
            await store.open()
            opened.append(store)
        assert len(gate.contenders) == len(stores)
        yield Race(stores, gate.run)
    finally:
        gate.free()
        for store in opened:
            await store.close()


@contextlib.asynccontextmanager
async def postgres_race(request: pytest.FixtureRequest, _tmp: Path) -> AsyncIterator[Race]:
    """Two PostgreSQL stores on one fresh schema, started under :class:`TableLockGate`."""
    from notifykit.store.postgres import PostgresStore

    schema: str = request.getfixturevalue("pg_schema")
    url: str = request.getfixturevalue("pg_store_url")
    tag = uuid.uuid4().hex[:8]
    names = [f"nk_race_{tag}_{n}" for n in range(2)]
    sep = "&" if "?" in url else "?"
    # One writer per store (pool of 2: group commit keeps one connection back), so that a
    # store's claim is one transaction on one connection, as the contract describes.
    stores = [
        PostgresStore(
            f"{url}{sep}application_name={name}",
            schema=schema,
            timeout=GUARD_TIMEOUT,
            pool_min_size=1,
            pool_max_size=2,
        )
        for name in names
    ]
    opened: list[Store] = []
    try:
        for store in stores:
            await store.open()
            opened.append(store)
        yield Race(stores, TableLockGate(url, schema, names).run)
    finally:
        for store in opened:
            await store.close()
