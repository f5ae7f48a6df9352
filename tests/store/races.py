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
  would be) on one schema. :class:`FirstLockGate` holds each contender, client side, before
  the first statement of its operation that writes or takes a lock (``INSERT``,
  ``UPDATE``, ``DELETE``, ``SELECT ... FOR UPDATE``, ``pg_advisory_xact_lock``): once both
  are held (or done), contender ``first`` runs to its end, then the other. A claim that
  decides on a plain read (a ``SELECT`` and then an ``INSERT``/``UPDATE``, a claim without
  its advisory lock or ``FOR UPDATE``, an update whose ``WHERE`` no longer re-checks what it
  read) has made that read when it is held, and the other contender's whole claim lands
  before it writes, every run; an atomic claim is held before it reads anything, and
  simply runs second. Holding one contender before its first lock means it holds none (a
  plain read takes only ``ACCESS SHARE``), so the other never waits for it.
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


def _takes_locks(query: str) -> bool:
    """Whether a PostgreSQL statement writes or takes a lock (row, table or advisory), as
    the first such statement of a claim does; a plain read does not."""
    words = query.lstrip().split(None, 1)
    first = words[0].upper() if words else ""
    if first in ("INSERT", "UPDATE", "DELETE", "MERGE", "LOCK", "WITH"):
        return True
    upper = query.upper()
    return first == "SELECT" and any(
        mark in upper for mark in ("FOR UPDATE", "FOR SHARE", "FOR NO KEY", "PG_ADVISORY")
    )


class FirstLockGate:
    """Holds each PostgreSQL contender before the first statement of its operation that
    writes or takes a lock (see the module docstring), then lets them go one at a time.

    Installed on ``psycopg.AsyncCursor.execute`` for the test; a contender is known by its
    connections' ``application_name`` (``names[n]``). Only :meth:`run` holds anything.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._armed = False
        self._held: dict[int, asyncio.Future[None]] = {}
        self._passed: set[int] = set()
        self._changed = asyncio.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import psycopg

        original = psycopg.AsyncCursor.execute
        gate = self

        @functools.wraps(original)
        async def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            n = gate._contender(cursor)
            if n is not None and gate._armed and n not in gate._passed:
                text = query if isinstance(query, str) else query.as_string(cursor)
                if _takes_locks(text):
                    gate._passed.add(n)
                    held = asyncio.get_running_loop().create_future()
                    gate._held[n] = held
                    gate._changed.set()
                    await held
            return await original(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute)

    def _contender(self, cursor: Any) -> int | None:
        name = cursor.connection.info.parameter_status("application_name")
        return self.names.index(name) if name in self.names else None

    async def _settle(self, tasks: Sequence[asyncio.Task[Any]]) -> None:
        """Wait until every contender is held or has finished."""
        async with asyncio.timeout(GUARD_TIMEOUT):
            while not all(t.done() or n in self._held for n, t in enumerate(tasks)):
                self._changed.clear()
                waiting = [t for t in tasks if not t.done()]
                changed = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait([changed, *waiting], return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()

    async def run(self, operations: Sequence[Coroutine[Any, Any, Any]], first: int) -> list[Any]:
        """Run ``operations[n]`` as contender n: each until it is held (or done), then
        contender ``first`` to its end, then the other."""
        assert len(operations) == len(self.names)
        self._held.clear()
        self._passed.clear()
        self._armed = True
        tasks = [asyncio.ensure_future(op) for op in operations]
        try:
            await self._settle(tasks)
            for n in [first, *(i for i in range(len(tasks)) if i != first)]:
                if n in self._held:
                    self._held[n].set_result(None)
                async with asyncio.timeout(GUARD_TIMEOUT):
                    await asyncio.wait([tasks[n]])
        finally:
            self._armed = False
            for held in self._held.values():
                if not held.done():
                    held.set_result(None)
        return list(await asyncio.gather(*tasks, return_exceptions=True))


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
    """Two PostgreSQL stores on one fresh schema, their statements gated by
    :class:`FirstLockGate`."""
    from notifykit.store.postgres import PostgresStore

    schema: str = request.getfixturevalue("pg_schema")
    url: str = request.getfixturevalue("pg_store_url")
    tag = uuid.uuid4().hex[:8]
    names = [f"nk_race_{tag}_{n}" for n in range(2)]
    gate = FirstLockGate(names)
    gate.install(request.getfixturevalue("monkeypatch"))
    sep = "&" if "?" in url else "?"
    stores = [
        PostgresStore(f"{url}{sep}application_name={name}", schema=schema, timeout=GUARD_TIMEOUT)
        for name in names
    ]
    opened: list[Store] = []
    try:
        for store in stores:
            await store.open()
            opened.append(store)
        yield Race(stores, gate.run)
    finally:
        for store in opened:
            await store.close()
