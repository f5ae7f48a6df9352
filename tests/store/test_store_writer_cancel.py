"""A caller cancelled while its SQLite job finishes is cancelled, never handed the result:
swallowing the cancellation kept ``notifykit demo`` running after Ctrl-C."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from notifykit.store.writer import SQLiteWriter

result_set = threading.Event()


def test_a_cancellation_that_meets_a_finished_job_is_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = SQLiteWriter._notify

    def signalling_notify(batch: list[Any]) -> None:
        notify(batch)  # queues the results' delivery on the caller's loop
        result_set.set()

    monkeypatch.setattr(SQLiteWriter, "_notify", staticmethod(signalling_notify))
    result_set.clear()
    release = threading.Event()
    running = threading.Event()

    def job(_conn: sqlite3.Cursor) -> int:
        running.set()
        release.wait(30)
        return 1

    async def main() -> None:
        writer = SQLiteWriter(
            lambda: sqlite3.connect(tmp_path / "w.db", check_same_thread=False),
            timeout=30,
            name="test-writer",
        )
        await writer.start()
        try:
            task = asyncio.ensure_future(writer.run(job, write=False))
            assert await asyncio.to_thread(running.wait, 30)  # the task waits for the job
            release.set()
            assert result_set.wait(30)  # the loop is blocked: the result waits in its queue
            task.cancel()  # ... and the cancellation arrives in the same turn
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await writer.stop()

    asyncio.run(main())


def test_an_opener_cancelled_while_connecting_leaves_no_thread_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    connecting = threading.Event()
    release = threading.Event()

    def connect() -> sqlite3.Connection:
        connecting.set()
        release.wait(30)
        return sqlite3.connect(tmp_path / "w.db", check_same_thread=False)

    writer = SQLiteWriter(connect, timeout=30, name="test-writer-open")

    async def main() -> None:
        task = asyncio.ensure_future(writer.start())
        await asyncio.to_thread(connecting.wait, 30)
        task.cancel()  # Ctrl-C while the store opens
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await writer.stop()  # the thread finishes, closing its connection

    asyncio.run(main())
    assert failures == []
    assert not writer.running


def test_a_failing_write_is_undone_alone_and_its_neighbours_land_once(tmp_path: Path) -> None:
    """A batch runs without savepoints; a write that fails undoes the batch, which runs
    again with a savepoint per write: the failure is undone alone, each neighbour's write
    lands once, and every caller gets its own outcome."""
    from notifykit.errors import StoreError

    release = threading.Event()
    holding = threading.Event()

    def hold(_conn: sqlite3.Connection) -> None:
        holding.set()
        release.wait(30)

    def insert(n: int) -> Any:
        def write(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            if n == 2:
                raise ValueError("no 2")
            return n

        return write

    async def main() -> None:
        writer = SQLiteWriter(
            lambda: sqlite3.connect(
                tmp_path / "w.db", isolation_level=None, check_same_thread=False
            ),
            timeout=30,
            name="test-writer-batch",
        )
        await writer.start()
        try:
            await writer.run(lambda conn: conn.execute("CREATE TABLE t (n INTEGER)"), write=True)
            alone = asyncio.gather(writer.run(insert(2), write=True), return_exceptions=True)
            assert isinstance((await alone)[0], StoreError)  # a write alone: undone, reported
            committed = writer.transactions
            held = asyncio.ensure_future(writer.run(hold, write=False))
            assert await asyncio.to_thread(holding.wait, 30)  # the rest queue up behind it
            answers = asyncio.gather(
                *(writer.run(insert(n), write=True) for n in (1, 2, 3)), return_exceptions=True
            )
            await asyncio.sleep(0)
            release.set()
            await held
            one, two, three = await answers
            assert (one, three) == (1, 3)
            assert isinstance(two, StoreError) and "no 2" in str(two)
            assert writer.transactions == committed + 1  # one batch, one commit
            rows = await writer.run(
                lambda conn: conn.execute("SELECT n FROM t ORDER BY n").fetchall(), write=False
            )
            assert rows == [(1,), (3,)]
        finally:
            release.set()
            await writer.stop()

    asyncio.run(main())
