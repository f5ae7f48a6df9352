"""One thread owns one SQLite connection; coroutines hand it work and await the result.

Group commit: jobs queue up while the thread is busy; the thread takes every queued job,
runs the writes in one ``BEGIN IMMEDIATE`` transaction (each in its own savepoint, so a
failing job does not undo its neighbours) and commits once. A caller's future is resolved
only after the transaction holding its work has committed, so "it returned" means "it is
on disk" (as far as ``synchronous`` promises). The event loop never waits on SQLite.

Faults that can pass (the file read-only, the disk full, an I/O error, the file gone): a
connection that hit one can stay broken after the cause is gone (SQLite opens a file it
cannot write read-only, for good), so the thread closes it and opens a new one for the
next batch; until that succeeds each batch fails with the reason. A lock held too long by
another process needs no new connection: the next transaction simply waits again.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from notifykit.errors import StoreError

__all__ = ["SQLiteWriter"]

T = TypeVar("T")

MAX_BATCH = 256
"""Jobs per transaction at most: bounds how long one commit keeps the lock."""

PASSING_FAULTS = ("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")
"""SQLite error names (and their extended forms) after which the connection is reopened."""


@dataclass
class _Job(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    write: bool
    deadline: float
    """``time.monotonic()`` after which the caller has given up: the job is skipped."""
    future: Future[T] = field(default_factory=Future)
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[T] | None = None
    """What the caller awaits on its loop: settled from ``future`` once the job's batch is
    done, with one wake-up of that loop for the whole batch (see ``_notify``)."""


_STOP = object()


class SQLiteWriter:
    """The thread that runs every statement of one store, in submission order.

    ``connect`` is called in the thread to make its connection; ``timeout`` bounds how long
    a caller waits for its job (queueing, lock waits and the commit included). A job whose
    caller has given up is skipped, so a write reported as timed out does not land later;
    the one exception is a deadline passing during the job's own commit (milliseconds).
    """

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, timeout: float, name: str
    ) -> None:
        self._connect = connect
        self.timeout = timeout
        self._name = name
        self._queue: queue.SimpleQueue[_Job[Any] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.transactions = 0
        """Write transactions committed so far (fewer than write jobs when batching works)."""
        self.write_jobs = 0
        self.reconnects = 0
        """Connections reopened after a fault that can pass."""
        self._stale = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        """Start the thread and wait until its connection is open (errors raise StoreError)."""
        if self.running:
            return
        ready: Future[None] = Future()
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=self._name, daemon=True
        )
        self._thread.start()
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.wrap_future(ready)
        except TimeoutError:
            raise StoreError(f"opening the store took longer than {self.timeout:g}s") from None

    async def stop(self) -> None:
        """Finish every queued job, close the connection and end the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)
        self._thread = None

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run ``fn(connection)`` in the thread; writes commit before this returns."""
        if not self.running:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        job: _Job[T] = _Job(fn, write, time.monotonic() + self.timeout, loop=loop, waiter=waiter)
        self._queue.put(job)
        try:
            # A job whose caller gave up is cancelled, and skipped unless already running.
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result of a
            # job that finished as the caller was cancelled, swallowing the cancellation
            # (Ctrl-C on the demo, a send's task being cancelled).
            async with asyncio.timeout(self.timeout):
                return await waiter
        except TimeoutError:
            job.future.cancel()
            raise self._late() from None
        except asyncio.CancelledError:
            job.future.cancel()
            raise

    # -- in the thread ------------------------------------------------------------------------

    def _late(self) -> StoreError:
        return StoreError(f"store operation timed out after {self.timeout:g}s")

    def _run(self, ready: Future[None]) -> None:
        # Running, the future can no longer be cancelled: an opener that gives up meanwhile
        # (Ctrl-C) leaves a thread that still reports, and closes its connection on stop().
        if not ready.set_running_or_notify_cancel():
            return
        try:
            conn = self._connect()
        except BaseException as exc:
            ready.set_exception(_translate(exc, "opening the store failed"))
            return
        ready.set_result(None)
        current: sqlite3.Connection | None = conn
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch: list[_Job[Any]] = [first]  # type: ignore[list-item]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    batch.append(more)  # type: ignore[arg-type]
                if current is None:
                    current = self._reopen(batch)
                if current is not None:
                    self._stale = False
                    self._execute(current, batch)
                    if self._stale:
                        # Reopened for the next batch, by when the fault may have passed.
                        with contextlib.suppress(sqlite3.Error):
                            current.close()
                        current = None
                self._notify(batch)
                if stop:
                    return
        finally:
            if current is not None:
                current.close()

    @staticmethod
    def _notify(batch: list[_Job[Any]]) -> None:
        """Hand the batch's outcomes to their callers: one ``call_soon_threadsafe`` per
        event loop for the whole batch (each wakes that loop through a socket write), not
        one per job as ``asyncio.wrap_future`` would make."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        for job in batch:
            if job.loop is not None and job.future.done():
                by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that caller's loop has closed
                loop.call_soon_threadsafe(_settle, jobs)

    def _reopen(self, batch: list[_Job[Any]]) -> sqlite3.Connection | None:
        """A new connection, or None after failing every job of ``batch`` with the reason."""
        try:
            conn = self._connect()
        except BaseException as exc:
            error = _translate(exc, "reopening the store failed")
            for job in batch:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(error)
            return None
        self.reconnects += 1
        return conn

    def _fault(self, exc: BaseException, what: str) -> StoreError:
        """``exc`` as a StoreError; marks the connection for reopening when it can pass."""
        name = getattr(exc, "sqlite_errorname", None)
        if isinstance(name, str) and name.startswith(PASSING_FAULTS):
            self._stale = True
        return _translate(exc, what)

    def _execute(self, conn: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        reads = [job for job in live if not job.write]
        writes = [job for job in live if job.write]
        for job in reads:
            if time.monotonic() > job.deadline:
                job.future.set_exception(self._late())
                continue
            try:
                job.future.set_result(job.fn(conn))
            except BaseException as exc:
                job.future.set_exception(self._fault(exc, "store read failed"))
        if writes:
            self._commit(conn, writes)

    def _commit(self, conn: sqlite3.Connection, jobs: list[_Job[Any]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            error = self._fault(exc, "store write failed")
            for job in jobs:
                job.future.set_exception(error)
            return
        try:
            for job in jobs:
                # Waiting for another process's lock may have outlasted the caller: a write
                # it was told failed must not land behind its back.
                if time.monotonic() > job.deadline:
                    outcomes.append((False, self._late()))
                    continue
                conn.execute("SAVEPOINT job")
                try:
                    result = job.fn(conn)
                except BaseException as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, self._fault(exc, "store write failed")))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except BaseException as exc:
            error = self._fault(exc, "store commit failed")
            # The transaction may already be gone; the callers hear about `error` either way.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for job in jobs:
                job.future.set_exception(error)
            return
        self.transactions += 1
        self.write_jobs += len(jobs)
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)


def _settle(jobs: list[_Job[Any]]) -> None:
    """On the callers' loop: each waiter takes its job's outcome (a caller that gave up
    has a waiter already done: skipped)."""
    for job in jobs:
        waiter = job.waiter
        if waiter is None or waiter.done():
            continue
        if job.future.cancelled():
            waiter.cancel()
            continue
        error = job.future.exception()
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(job.future.result())


def _translate(exc: BaseException, what: str) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        error = StoreError(f"{what}: {exc.strerror}{where}")
    else:
        error = StoreError(f"{what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error
