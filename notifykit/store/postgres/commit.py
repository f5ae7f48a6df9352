"""Group commit for PostgreSQL: concurrent writes share one transaction and one commit.

A write is a coroutine function of a connection. Writes queue up; each of a few worker
tasks takes every queued write (up to :data:`MAX_BATCH`), runs them in one transaction on
one pooled connection and commits once, so that durable ingestion costs one commit (one
WAL flush) per batch rather than per push. A caller's future resolves only after the
transaction holding its write has committed.

A write that raises must not undo its neighbours: the batch first runs without savepoints
(the common case costs nothing extra); when any write raises, the transaction is rolled
back and the batch runs again with one savepoint per write. A write that meets a deadlock
or a serialization failure (two batches locking the same rows in another order) is retried
in a fresh savepoint, at most :data:`RETRIES` times.

A batch whose writes are all *pipelined* (:meth:`GroupCommit.run_batched` writes, and
:meth:`GroupCommit.run` writes that say so) runs in psycopg's pipeline mode, in the
implicit transaction the database opens for a pipeline and commits at its sync: the
advisory locks and the statements up to the first whose rows a write reads travel in one
round trip, and the last statements travel with the sync, which commits (a write that
returns :class:`AfterCommit` reads its rows once the commit is back). A push costs two
round trips instead of five, and no ``BEGIN`` or ``COMMIT`` statement. A pipelined write reads a cursor's results (rows, ``rowcount``)
only through a fetch, or in :class:`AfterCommit`; it must also run unchanged outside a
pipeline (the savepoint retry above runs writes one by one, not pipelined).

A batch that is one statement (*single* writes: see :meth:`GroupCommit.run`) needs no
pipeline: it runs alone on the autocommit connection, its own transaction, in one wait for
the database (a pipeline costs three). Rows go to the database as one JSON parameter per
batch (``json_to_recordset``), not as array parameters, which psycopg dumps element by
element in Python.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from notifykit.errors import StoreError
from notifykit.store.postgres.reconnect import PoolRepair

__all__ = [
    "MAX_BATCH",
    "RETRIES",
    "AfterCommit",
    "GroupCommit",
    "pipelined",
    "retrying",
    "translate",
]

T = TypeVar("T")

Conn = psycopg.AsyncConnection[tuple[Any, ...]]
Write = Callable[[Conn], Awaitable[T]]

MAX_BATCH = 128
"""Writes per transaction at most: bounds how long one commit holds its row locks."""
RETRIES = 3
"""Tries of a write that meets a deadlock or serialization failure, the first included."""

_TRANSIENT = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


class AfterCommit(Generic[T]):
    """A write's result that is read once its transaction has committed: ``read()`` is
    awaited after the ``COMMIT`` came back (it reads rows already received; it must not
    fail). Lets a pipelined write's last statement travel with the ``COMMIT``."""

    __slots__ = ("_done", "_read", "_value")

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._value: T | None = None
        self._done = False

    async def result(self) -> T:
        """The result (``read()`` is awaited once, however often this is called)."""
        if not self._done:
            self._value = await self._read()
            self._done = True
        return self._value  # type: ignore[return-value]


async def settled(value: Any) -> Any:
    """``value``, or the result of an :class:`AfterCommit`."""
    return await value.result() if isinstance(value, AfterCommit) else value


def pipelined(conn: Conn) -> bool:
    """Whether ``conn`` is in pipeline mode (a statement's results arrive only when a
    fetch or the commit asks for them)."""
    return conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF


Batch = Callable[[Conn, list[Any]], Awaitable["list[Any] | AfterCommit[list[Any]]"]]
"""Many callers' writes of one kind done together: ``batch(conn, items)`` returns one
result per item, in order, or an :class:`AfterCommit` of that list (see
:meth:`GroupCommit.run_batched`). A batch is pipelined: see the module's docstring."""


class _Job(Generic[T]):
    """One caller's write. ``future`` is what the caller awaits: cancelling the caller
    cancels it, and the write still runs (as it would under ``asyncio.shield``);
    ``expired`` says the caller's timeout passed first: a write not begun is skipped."""

    __slots__ = (
        "batch",
        "deadline",
        "expired",
        "fn",
        "future",
        "item",
        "locks",
        "pipelined",
        "single",
    )

    def __init__(
        self,
        fn: Write[T],
        deadline: float,
        *,
        batch: Batch | None = None,
        item: Any = None,
        locks: tuple[int, ...] = (),
        pipelined: bool = False,
        single: bool = False,
    ) -> None:
        self.fn = fn
        self.future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.deadline = deadline
        self.expired = False
        self.batch = batch
        self.item = item
        self.locks = locks
        self.pipelined = pipelined
        self.single = single


class GroupCommit:
    """``writers`` worker tasks committing queued writes in batches on ``pool``."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        *,
        timeout: float,
        writers: int = 2,
        repair: PoolRepair | None = None,
    ) -> None:
        self.pool = pool
        self.repair = repair
        self.timeout = timeout
        self.writers = writers
        self._queue: asyncio.Queue[_Job[Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        # The jobs whose callers wait, in submission order (so in deadline order: one
        # timeout for all), and one timer for the oldest (see _submit).
        self._waiting: collections.deque[_Job[Any]] = collections.deque()
        self._alarm: asyncio.TimerHandle | None = None
        self.transactions = 0
        """Transactions committed so far (fewer than write jobs when batching works)."""
        self.write_jobs = 0

    def start(self) -> None:
        if self._tasks:
            return
        self._queue = asyncio.Queue()
        self._waiting.clear()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"notifykit-pg-writer-{i}")
            for i in range(self.writers)
        ]

    async def stop(self) -> None:
        """Finish every queued write, then end the workers."""
        if not self._tasks:
            return
        await self._queue.join()
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def run(
        self,
        fn: Callable[[Conn], Awaitable[T | AfterCommit[T]]],
        *,
        locks: tuple[int, ...] = (),
        pipelined: bool = False,
        single: bool = False,
    ) -> T:
        """Run ``fn(connection)`` inside a batch's transaction; returns after the commit
        (``fn`` may return an :class:`AfterCommit`: its result is returned).

        ``locks``: transaction-level advisory locks the write needs before it runs. A
        batch takes every lock its writes name first, in one statement and in sorted
        order, so that concurrent batches never wait on each other's locks in a circle.
        ``pipelined``: ``fn`` may run in pipeline mode (see the module's docstring).
        ``single``: ``fn`` is one statement and raises nothing once it has run (see
        :meth:`_optimistic`); implies ``pipelined``.

        Raises StoreError (also when the store is closed or ``timeout`` has passed; a write
        whose caller gave up is skipped unless its batch had already started it)."""
        job: _Job[T] = _Job(
            fn,  # type: ignore[arg-type]
            self._deadline(),
            locks=locks,
            pipelined=pipelined or single,
            single=single,
        )
        return await self._submit(job)

    async def run_batched(
        self, batch: Batch, item: Any, *, locks: tuple[int, ...] = (), single: bool = False
    ) -> Any:
        """Like :meth:`run`, for a write that ``batch`` does together with every other
        write of the same ``batch`` in the transaction: ``batch(conn, items)`` (a few
        statements for all of them, not a few each) returns one result per item. When the
        transaction fails and its writes run one by one, this one runs as a batch of one.
        ``single``: ``batch`` does this item in one statement for all the items (see
        :meth:`run`)."""

        async def alone(conn: Conn) -> Any:
            (result,) = await settled(await batch(conn, [item]))
            return result

        job: _Job[Any] = _Job(
            alone,
            self._deadline(),
            batch=batch,
            item=item,
            locks=locks,
            pipelined=True,
            single=single,
        )
        return await self._submit(job)

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeout

    async def _submit(self, job: _Job[T]) -> T:
        """Queue ``job`` for a batch and wait for its outcome, up to ``timeout`` seconds.

        The caller awaits the job's own future (a cancelled caller is cancelled, never
        handed a result). The timeout is one timer for all callers, not one each (with
        ``asyncio.shield``, ~10 us of a send's client CPU): every job has the same
        timeout, so the oldest waiting job's deadline comes first (:meth:`_expire`)."""
        if not self._tasks:
            raise StoreError("the store is not open")
        self._queue.put_nowait(job)
        waiting = self._waiting
        while waiting and waiting[0].future.done():  # settled (or its caller cancelled)
            waiting.popleft()
        waiting.append(job)
        if self._alarm is None:
            self._alarm = asyncio.get_running_loop().call_at(job.deadline, self._expire)
        return await job.future

    def _expire(self) -> None:
        """Fail every waiting job whose deadline has passed (a write not begun is then
        skipped), and set the timer for the next deadline."""
        self._alarm = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = self._waiting
        while waiting:
            job = waiting[0]
            if not job.future.done():
                if job.deadline > now:
                    self._alarm = loop.call_at(job.deadline, self._expire)
                    return
                job.expired = True
                job.future.set_exception(
                    StoreError(f"store operation timed out after {self.timeout:g}s")
                )
            waiting.popleft()

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                live = [job for job in batch if not job.expired]
                if live:
                    await self._commit(live)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, jobs: list[_Job[Any]]) -> None:
        try:
            async with self.pool.connection(timeout=self.timeout) as conn:
                try:
                    results = await self._optimistic(conn, jobs)
                except psycopg.OperationalError:
                    raise
                except Exception:
                    # A pipelined write may leave its error to the database (a duplicate
                    # key): alone and not pipelined, it says what went wrong its own way.
                    if len(jobs) == 1 and not jobs[0].pipelined:
                        raise
                    outcomes = await self._one_by_one(conn, jobs)
                else:
                    outcomes = [(True, r) for r in results]
                outcomes = [(ok, await settled(v) if ok else v) for ok, v in outcomes]
        except BaseException as exc:
            error = translate(exc, "store write failed")
            if self.repair is not None and isinstance(exc, Exception):
                await self.repair.after(exc)  # before anyone hears of it: the next write works
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        self.transactions += 1
        self.write_jobs += len(jobs)
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if job.future.done():
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    async def _optimistic(self, conn: Conn, jobs: list[_Job[Any]]) -> list[Any]:
        """The batch in one transaction. A batch that is one statement (one ``single``
        write, or ``single`` writes all of one batched kind, and no lock) runs as that
        statement alone on the autocommit connection, its own transaction: one wait for the
        database, where a pipeline costs three (its statement, its sync, its results)."""
        if _one_statement(jobs):
            for attempt in range(RETRIES):
                try:
                    return await self._all(conn, jobs)
                except _TRANSIENT:
                    if attempt == RETRIES - 1:
                        raise
        pipeline = all(job.pipelined for job in jobs)
        for attempt in range(RETRIES):
            try:
                if pipeline:
                    return await self._pipelined(conn, jobs)
                async with conn.transaction():
                    await _take_locks(conn, jobs)
                    return await self._all(conn, jobs)
            except _TRANSIENT:
                if attempt == RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pipelined(self, conn: Conn, jobs: list[_Job[Any]]) -> list[Any]:
        """The batch in pipeline mode, in the implicit transaction that the database keeps
        open until the pipeline's sync and commits there (no ``BEGIN`` or ``COMMIT`` to
        send): the locks travel with the first statement whose rows a write reads, the last
        statements with the sync. A statement that fails aborts the transaction (the sync
        rolls it back); a write that raises, or a cancellation, sends ``ROLLBACK`` first,
        so that nothing of the batch commits."""
        try:
            async with conn.pipeline():
                try:
                    await _take_locks(conn, jobs)
                    results = await self._all(conn, jobs)
                except psycopg.Error:
                    raise  # the database failed a statement: the sync rolls back
                except BaseException:
                    with contextlib.suppress(psycopg.Error):  # a lost connection commits nothing
                        await conn.execute("ROLLBACK")
                    raise
        except BaseException:
            if not conn.closed and conn.info.transaction_status in _OPEN:  # pragma: no cover
                await conn.rollback()
            raise
        return results

    @staticmethod
    async def _all(conn: Conn, jobs: list[_Job[Any]]) -> list[Any]:
        """Every job's result: plain writes in order, then each kind of batched write in
        one call for all its jobs (the callers are independent: their order inside the
        transaction is free). A result may be an :class:`AfterCommit`."""
        results: list[Any] = [None] * len(jobs)
        kinds: dict[Batch, list[int]] = {}
        for i, job in enumerate(jobs):
            if job.batch is None:
                results[i] = await job.fn(conn)
            else:
                kinds.setdefault(job.batch, []).append(i)
        for batch, where in kinds.items():
            done = await batch(conn, [jobs[i].item for i in where])
            if isinstance(done, AfterCommit):
                for n, i in enumerate(where):
                    results[i] = AfterCommit(functools.partial(_nth, done, n))
                continue
            for i, result in zip(where, done, strict=True):
                results[i] = result
        return results

    async def _one_by_one(self, conn: Conn, jobs: list[_Job[Any]]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        async with conn.transaction():
            await _take_locks(conn, jobs)
            for job in jobs:
                if job.expired:  # the caller gave up meanwhile
                    outcomes.append((False, None))
                    continue
                for attempt in range(RETRIES):
                    try:
                        async with conn.transaction():  # a savepoint
                            result = await job.fn(conn)
                    except _TRANSIENT as exc:
                        if attempt < RETRIES - 1:
                            continue
                        outcomes.append((False, translate(exc, "store write failed")))
                    except Exception as exc:
                        outcomes.append((False, translate(exc, "store write failed")))
                    else:
                        outcomes.append((True, result))
                    break
        return outcomes


def _one_statement(jobs: list[_Job[Any]]) -> bool:
    """Whether the batch is one statement: see :meth:`GroupCommit._optimistic`."""
    first = jobs[0]
    if not first.single or first.locks:
        return False
    kind = first.batch
    return len(jobs) == 1 or (
        kind is not None and all(j.single and j.batch == kind and not j.locks for j in jobs)
    )


def retrying(conn: Conn) -> bool:
    """Whether a batched write runs in the one-by-one retry (a transaction of its own, not
    pipelined), where it may read its statement's rows and name what went wrong: in a batch
    (pipelined, or one statement alone) its statement must fail instead, undoing all."""
    return not pipelined(conn) and conn.info.transaction_status == pq.TransactionStatus.INTRANS


async def _nth(results: AfterCommit[list[Any]], n: int) -> Any:
    return (await results.result())[n]


_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


async def _take_locks(conn: Conn, jobs: list[_Job[Any]]) -> None:
    """Every advisory lock the jobs name, sorted, in one statement."""
    keys = sorted({key for job in jobs for key in job.locks})
    if keys:
        # One JSON parameter: psycopg would dump a list element by element in Python.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k::bigint) FROM json_array_elements_text(%s::json) AS k",
            (json.dumps(keys),),
        )


def translate(exc: BaseException, what: str) -> StoreError:
    """A StoreError for any failure, the driver's own chained (its text holds no secret:
    libpq never puts the password in an error message)."""
    if isinstance(exc, StoreError):
        return exc
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    error = StoreError(f"{what}: {type(exc).__name__}" + (f": {detail}" if detail else ""))
    error.__cause__ = exc
    return error
