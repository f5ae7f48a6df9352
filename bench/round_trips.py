"""Store work per send and per push, counted: ``.venv/bin/python -m bench.round_trips``.

Wall-clock figures move with the machine's load; these do not. For each store backend
(``memory://``, SQLite, and PostgreSQL when ``$NOTIFYKIT_TEST_POSTGRES_URL`` answers) it
counts, per operation:

* ``jobs``: write calls handed to the store's writer (SQLite's thread, PostgreSQL's group
  commit); each is a queue hop, a savepoint (SQLite) and at least one statement;
* ``transactions``: write transactions committed (group commit makes them fewer than jobs);
* ``statements``: SQL statements sent to the database (SQLite: every statement its trace
  callback reports, BEGIN/SAVEPOINT/COMMIT included; PostgreSQL: every ``execute`` on a
  psycopg cursor but the LISTEN connection's, BEGIN and COMMIT not included: count them
  from ``transactions``).

Sends go through :class:`~notifykit.AsyncNotifier` with a :class:`~notifykit.testing.FakeProvider`
(no network), pushes through the notifier's callback processor (what ``notifykit serve``
runs per request), ``with_observer`` deciding whether anything subscribes to events. The
tests in ``tests/store/test_store_round_trips.py`` pin these counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifykit import AsyncNotifier
from notifykit.store.base import Store
from notifykit.store.memory import MemoryStore
from notifykit.store.sqlite import SQLiteStore
from notifykit.testing import fake_config, fake_plugin_manager, fake_receipt

__all__ = [
    "Counts",
    "TracedSQLiteStore",
    "count_pushes",
    "count_sends",
    "counting_postgres",
    "main",
]

PG_URL = os.environ.get("NOTIFYKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Counts:
    """Work per operation, averaged over ``operations``."""

    operations: int
    jobs: float
    transactions: float
    statements: float

    def as_dict(self) -> dict[str, float]:
        return {
            "jobs": round(self.jobs, 2),
            "transactions": round(self.transactions, 2),
            "statements": round(self.statements, 2),
        }


class TracedSQLiteStore(SQLiteStore):
    """A SQLite store that counts every statement its connection runs (sqlite3's
    ``set_trace_callback``)."""

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.statements = 0
        self.traced: list[str] = []

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        conn.set_trace_callback(self._trace)
        return conn

    def _trace(self, statement: str) -> None:
        self.statements += 1
        if len(self.traced) < 1000:
            self.traced.append(statement)


_pg_statements = [0]
_NOT_COUNTED = frozenset({"BEGIN", "COMMIT"})


@contextlib.contextmanager
def counting_postgres() -> Iterator[list[int]]:
    """Count every statement executed through a psycopg async cursor while inside (a
    one-element list holding the count). Wraps the public ``AsyncCursor.execute``."""
    import psycopg

    original = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        # The LISTEN connection's one statement is not a store operation's; BEGIN and
        # COMMIT (sent as statements by a pipelined group commit) are counted as
        # transactions, not statements.
        if str(query) not in _NOT_COUNTED and not str(query).startswith("LISTEN"):
            _pg_statements[0] += 1
        return await original(self, query, *args, **kwargs)

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    try:
        yield _pg_statements
    finally:
        psycopg.AsyncCursor.execute = original  # type: ignore[method-assign]


def _snapshot(store: Store) -> tuple[int, int, int]:
    jobs = int(getattr(store, "write_jobs", 0))
    transactions = int(getattr(store, "transactions", 0))
    statements = int(getattr(store, "statements", 0)) + _pg_statements[0]
    return jobs, transactions, statements


async def _counted(
    store: Store,
    count: int,
    concurrency: int,
    one: Callable[[int], Awaitable[None]],
    settle: Callable[[], Awaitable[None]] | None = None,
) -> Counts:
    todo = iter(range(count))
    before = _snapshot(store)

    async def worker() -> None:
        for i in todo:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if settle is not None:
        await settle()
    after = _snapshot(store)
    jobs, transactions, statements = (a - b for a, b in zip(after, before, strict=True))
    return Counts(count, jobs / count, transactions / count, statements / count)


def _notifier(store: Store, routing: dict[str, Any] | None = None) -> AsyncNotifier:
    # No recovery sweep on its timer inside a counted run (the one at open() runs first).
    extra: dict[str, Any] = {
        "routing": dict(routing or {}),
        "store": {"url": "memory://", "recovery_interval": 3600},
    }
    return AsyncNotifier(
        fake_config(extra=extra), plugin_manager=fake_plugin_manager(), store=store
    )


def _phone(i: int) -> str:
    return f"+86156{i % 10**8:08d}"


async def count_sends(
    store: Store,
    *,
    count: int = 50,
    concurrency: int = 1,
    routing: dict[str, Any] | None = None,
    idempotency: bool = False,
) -> Counts:
    """Store work per accepted send (after a few untimed warm-up sends)."""
    notifier = _notifier(store, routing)
    await notifier.open()
    run = uuid.uuid4().hex[:8]
    try:

        async def one(i: int) -> None:
            key = f"{run}-{i}" if idempotency else None
            await notifier.send(
                _phone(i), template="verify_code", params={"code": "1234"}, idempotency_key=key
            )

        for i in range(3):
            await one(10**6 + i)
        return await _counted(store, count, concurrency, one)
    finally:
        await notifier.close()


async def count_pushes(
    store: Store,
    *,
    count: int = 50,
    concurrency: int = 1,
    with_observer: bool = False,
) -> Counts:
    """Store work per acknowledged receipt push (an orphan: no message has its vendor id),
    the events handed to observers and acknowledged included."""
    notifier = _notifier(store)
    seen: list[str] = []
    if with_observer:
        notifier.subscribe(lambda event: seen.append(event.event_id))
    await notifier.open()
    run = uuid.uuid4().hex[:8]
    try:

        async def one(i: int) -> None:
            push = fake_receipt(f"vid-{run}-{i}", phone=_phone(i))
            answer = await notifier.handle_callback("fake", "POST", push.headers, push.body)
            assert answer[0] == 200, answer

        await one(10**6)
        await notifier.callbacks.drain()
        counts = await _counted(store, count, concurrency, one, notifier.callbacks.drain)
        if with_observer:
            assert len(seen) == count + 1, (len(seen), count)
        return counts
    finally:
        await notifier.close()


async def _postgres_store(schema: str) -> Store | None:
    try:
        from notifykit.store.postgres import PostgresStore
    except ModuleNotFoundError:
        return None
    store = PostgresStore(PG_URL, schema=schema, timeout=10)
    try:
        await store.open()
    except Exception as exc:  # no server: say so and go on without it
        print(f"round_trips: PostgreSQL skipped ({type(exc).__name__})", file=sys.stderr)
        return None
    await store.close()
    return store


async def _drop(schema: str) -> None:
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


async def measure(postgres: bool = True) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="notifykit-round-trips-"))
    schema = f"nk_round_trips_{uuid.uuid4().hex[:8]}"
    makers: dict[str, Callable[[], Store]] = {
        "memory": MemoryStore,
        "sqlite": lambda: TracedSQLiteStore(directory / f"{uuid.uuid4().hex}.sqlite3"),
    }
    pg = await _postgres_store(schema) if postgres else None
    schemas = [schema]
    if pg is not None:
        from notifykit.store.postgres import PostgresStore

        def fresh_postgres() -> Store:
            # A schema per measurement: events a run without observers leaves pending
            # would be dispatched (and counted) by the next run's.
            schemas.append(f"{schema}_{len(schemas)}")
            return PostgresStore(PG_URL, schema=schemas[-1], timeout=10)

        makers["postgres"] = fresh_postgres
    figures: dict[str, Any] = {}
    try:
        with counting_postgres():
            for name, make in makers.items():
                row: dict[str, Any] = {}
                for label, kwargs in (
                    ("send_c1", {"concurrency": 1}),
                    ("send_c20", {"concurrency": 20, "count": 200}),
                    ("send_guard_c1", {"routing": {"recipient_min_interval": 0.001}}),
                    ("send_idempotency_c1", {"idempotency": True}),
                ):
                    row[label] = (await count_sends(make(), **kwargs)).as_dict()  # type: ignore[arg-type]
                for label, kwargs in (
                    ("push_c1", {}),
                    ("push_c20", {"concurrency": 20, "count": 200}),
                    ("push_observed_c1", {"with_observer": True}),
                    ("push_observed_c20", {"with_observer": True, "concurrency": 20, "count": 200}),
                ):
                    row[label] = (await count_pushes(make(), **kwargs)).as_dict()  # type: ignore[arg-type]
                figures[name] = row
    finally:
        if pg is not None:
            for made in schemas:
                await _drop(made)
    return figures


def main(postgres: bool = True) -> dict[str, Any]:
    """Print the counts as one JSON line and return them (``postgres``: include it when
    it answers)."""
    from bench.common import emit

    figures = asyncio.run(measure(postgres))
    emit("round_trips", figures)
    return figures


if __name__ == "__main__":
    from bench.common import quiet_logs

    quiet_logs()
    main()
