"""One thread owns one SQLite connection; coroutines hand it work and await the result.

Group commit: jobs queue up while the thread is busy; the thread takes every queued job,
runs the writes in one ``BEGIN IMMEDIATE`` transaction and commits once. Should a write
fail, the batch is undone and run again with each write in its own savepoint, so a failing
write does not undo its neighbours: a write's function may run twice (its first run rolled
back), so it acts on the database alone. A caller's future is resolved only after the
transaction holding its work has committed, so "it returned" means "it is on disk" (as far
as ``synchronous`` promises). The event loop never waits on SQLite.

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
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from notifykit.errors import StoreError

__all__ = ["SQLiteWriter"]

T = TypeVar("T")

MAX_BATCH = 256
"""Jobs per transaction, about (a loop's jobs of one turn are not split): bounds how long
one commit keeps the lock."""

PASSING_FAULTS = ("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")
"""SQLite error names (and their extended forms) after which the connection is reopened."""


class _Job:
    """One call of :meth:`SQLiteWriter.run`: what to run, and its outcome once run.

    The outcome is two plain attributes, not a ``concurrent.futures.Future`` (a lock and a
    condition per job): the thread sets them before handing the batch to the caller's loop
    with ``call_soon_threadsafe``, which orders the writes before the loop reads them."""

    __slots__ = ("abandoned", "deadline", "fn", "ok", "value", "waiter", "watch", "write")

    def __init__(
        self,
        fn: Callable[[sqlite3.Cursor], Any],
        write: bool,
        deadline: float,
        waiter: asyncio.Future[Any] | None = None,
        watch: _Watch | None = None,
    ) -> None:
        self.fn = fn
        self.write = write
        self.deadline = deadline
        """``time.monotonic()`` after which the caller has given up: the job is skipped."""
        self.waiter = waiter
        """What the caller awaits on its loop, settled once the job's batch is done."""
        self.watch = watch
        self.abandoned = False
        """Set on the caller's loop when it gave up (timed out, cancelled): the thread skips
        the job unless it has already started it."""
        self.ok: bool | None = None
        """None until run; then whether ``value`` is the result or the exception."""
        self.value: Any = None


class _Watch:
    """The jobs one event loop awaits, and ONE timer for the earliest deadline among them,
    not a timer per job (``asyncio.timeout`` costs a timer handle, a heap push and the
    task's cancel bookkeeping on every call). When the timer fires, the jobs past their
    deadline are answered "timed out" and abandoned, and it is set for the next deadline.
    Touched only on its loop.

    It also hands the loop's new jobs to the thread: those submitted in one turn of the
    loop go in one ``put`` at its end, so the thread wakes once per turn (not once per job,
    each a system call and a thread contending for the GIL while the loop still runs), and
    they make one batch, one commit."""

    __slots__ = ("jobs", "late", "loop", "outbox", "put", "timer")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        late: Callable[[], StoreError],
        put: Callable[[list[_Job]], None],
    ) -> None:
        self.loop = loop
        self.late = late
        self.put = put
        self.jobs: deque[_Job] = deque()
        self.outbox: list[_Job] = []
        self.timer: asyncio.TimerHandle | None = None

    def add(self, job: _Job) -> None:
        self.jobs.append(job)
        if self.timer is None:
            self.timer = self.loop.call_later(job.deadline - time.monotonic(), self._expire)
        if not self.outbox:
            self.loop.call_soon(self.flush)
        self.outbox.append(job)

    def flush(self) -> None:
        """Hand the jobs added since the last flush to the thread, in one ``put``."""
        if self.outbox:
            jobs, self.outbox = self.outbox, []
            self.put(jobs)

    def settle(self, jobs: list[_Job]) -> None:
        """Each waiter takes its job's outcome (one whose caller gave up is already done:
        skipped); answered jobs leave the front of the watch list."""
        for job in jobs:
            waiter = job.waiter
            if waiter is None or waiter.done():
                continue
            if job.ok:
                waiter.set_result(job.value)
            else:
                waiter.set_exception(job.value)
        pending = self.jobs
        while pending and pending[0].waiter.done():  # type: ignore[union-attr]
            pending.popleft()

    def _expire(self) -> None:
        self.timer = None
        now = time.monotonic()
        waiting: deque[_Job] = deque()
        for job in self.jobs:
            waiter = job.waiter
            assert waiter is not None
            if waiter.done():
                continue
            if job.deadline > now:
                waiting.append(job)
                continue
            job.abandoned = True
            waiter.set_exception(self.late())
        self.jobs = waiting
        if waiting:
            # Jobs are watched in submission order with one timeout: the first is due first.
            soonest = min(job.deadline for job in waiting)
            self.timer = self.loop.call_later(soonest - now, self._expire)


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
        self._queue: queue.SimpleQueue[list[_Job] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.transactions = 0
        """Write transactions committed so far (fewer than write jobs when batching works)."""
        self.write_jobs = 0
        self.reconnects = 0
        """Connections reopened after a fault that can pass."""
        self._stale = False
        self._serving = False
        """True from the connection's opening until the thread ends (cheaper to read per
        job than ``Thread.is_alive``)."""
        self._watches: dict[asyncio.AbstractEventLoop, _Watch] = {}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        """Start the thread and wait until its connection is open (errors raise StoreError)."""
        if self.running:
            return
        ready: Future[None] = Future()
        self._queue = queue.SimpleQueue()
        self._watches = {}
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
        watch = self._watches.get(asyncio.get_running_loop())
        if watch is not None:
            watch.flush()  # jobs of this turn of the loop go before the stop
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)
        self._thread = None

    async def run(self, fn: Callable[[sqlite3.Cursor], T], *, write: bool) -> T:
        """Run ``fn(cursor)`` in the thread (a cursor of its connection, shared by the
        jobs of a batch: run each statement to its end, or fetch its rows, before the next
        one); writes commit before this returns. A
        write's ``fn`` may run twice, its first run rolled back (see the module docstring):
        it must change nothing but the database.

        StoreError when the store is not open, when ``fn`` or the commit fails, and when the
        job is not done within ``timeout`` seconds (it is then skipped unless running)."""
        if not self._serving:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        watch = self._watches.get(loop)
        if watch is None:
            watch = self._watches[loop] = _Watch(loop, self._late, self._queue.put)
        waiter: asyncio.Future[T] = loop.create_future()
        job = _Job(fn, write, time.monotonic() + self.timeout, waiter, watch)
        watch.add(job)
        try:
            # The watch answers a job past its deadline with StoreError (and abandons it).
            # A bare future awaited, not asyncio.wait_for: on Python 3.11 wait_for returns
            # the result of a job that finished as the caller was cancelled, swallowing the
            # cancellation (Ctrl-C on the demo, a send's task being cancelled).
            return await waiter
        except asyncio.CancelledError:
            job.abandoned = True
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
        self._serving = True
        ready.set_result(None)
        current: sqlite3.Connection | None = conn
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch: list[_Job] = list(cast(list[_Job], first))
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    batch += cast(list[_Job], more)
                if current is None:
                    current = self._reopen(batch)
                if current is not None:
                    self._stale = False
                    # One cursor for the batch's statements (not one made by each
                    # Connection.execute); closed after, so that no statement a job left
                    # unfinished holds a read snapshot while the thread waits.
                    cur = current.cursor()
                    try:
                        self._execute(cur, batch)
                    finally:
                        with contextlib.suppress(sqlite3.Error):
                            cur.close()
                    if self._stale:
                        # Reopened for the next batch, by when the fault may have passed.
                        with contextlib.suppress(sqlite3.Error):
                            current.close()
                        current = None
                self._notify(batch)
                if stop:
                    return
        finally:
            self._serving = False
            if current is not None:
                current.close()

    @staticmethod
    def _notify(batch: list[_Job]) -> None:
        """Hand the batch's outcomes to their callers: one ``call_soon_threadsafe`` per
        event loop for the whole batch (each wakes that loop through a socket write), not
        one per job as ``asyncio.wrap_future`` would make."""
        by_loop: dict[_Watch, list[_Job]] = {}
        for job in batch:
            if job.watch is not None and job.ok is not None:
                by_loop.setdefault(job.watch, []).append(job)
        for watch, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that caller's loop has closed
                watch.loop.call_soon_threadsafe(watch.settle, jobs)

    def _reopen(self, batch: list[_Job]) -> sqlite3.Connection | None:
        """A new connection, or None after failing every job of ``batch`` with the reason."""
        try:
            conn = self._connect()
        except BaseException as exc:
            error = _translate(exc, "reopening the store failed")
            for job in batch:
                if not job.abandoned:
                    job.ok, job.value = False, error
            return None
        self.reconnects += 1
        return conn

    def _fault(self, exc: BaseException, what: str) -> StoreError:
        """``exc`` as a StoreError; marks the connection for reopening when it can pass."""
        name = getattr(exc, "sqlite_errorname", None)
        if isinstance(name, str) and name.startswith(PASSING_FAULTS):
            self._stale = True
        return _translate(exc, what)

    def _execute(self, cur: sqlite3.Cursor, batch: list[_Job]) -> None:
        writes: list[_Job] = []
        for job in batch:
            if job.abandoned:  # its caller gave up before it started: skipped
                continue
            if job.write:
                writes.append(job)
                continue
            if time.monotonic() > job.deadline:
                job.ok, job.value = False, self._late()
                continue
            try:
                job.value = job.fn(cur)
                job.ok = True
            except BaseException as exc:
                job.ok, job.value = False, self._fault(exc, "store read failed")
        if writes:
            self._commit(cur, writes)

    def _commit(self, cur: sqlite3.Cursor, jobs: list[_Job]) -> None:
        try:
            cur.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            error = self._fault(exc, "store write failed")
            for job in jobs:
                job.ok, job.value = False, error
            return
        try:
            if not self._writes(cur, jobs, isolated=False):
                # A write failed: undo the batch, and (unless it was alone) run it again
                # with each write in its own savepoint, so that the failure undoes nothing
                # of its neighbours'. Savepoints only then: two statements per write saved
                # on every batch that does not fail.
                cur.execute("ROLLBACK")
                if len(jobs) == 1:
                    return  # its outcome is its failure; nothing was committed
                cur.execute("BEGIN IMMEDIATE")
                self._writes(cur, jobs, isolated=True)
            cur.execute("COMMIT")
        except BaseException as exc:
            error = self._fault(exc, "store commit failed")
            # The transaction may already be gone; the callers hear about `error` either way.
            with contextlib.suppress(sqlite3.Error):
                cur.execute("ROLLBACK")
            for job in jobs:
                job.ok, job.value = False, error
            return
        self.transactions += 1
        self.write_jobs += len(jobs)

    def _writes(self, cur: sqlite3.Cursor, jobs: list[_Job], *, isolated: bool) -> bool:
        """Run ``jobs`` in the open transaction, each outcome set on its job; whether every
        job ran. Not ``isolated``: stops at the first failure (the caller undoes the batch);
        ``isolated``: each job in a savepoint, a failure rolled back alone."""
        for job in jobs:
            # Waiting for another process's lock may have outlasted the caller: a write
            # it was told failed must not land behind its back.
            if job.abandoned or time.monotonic() > job.deadline:
                job.ok, job.value = False, self._late()
                continue
            if isolated:
                cur.execute("SAVEPOINT job")
            try:
                job.value = job.fn(cur)
                job.ok = True
            except BaseException as exc:
                job.ok, job.value = False, self._fault(exc, "store write failed")
                if not isolated:
                    return False
                cur.execute("ROLLBACK TO job")
                cur.execute("RELEASE job")
            else:
                if isolated:
                    cur.execute("RELEASE job")
        return True


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
