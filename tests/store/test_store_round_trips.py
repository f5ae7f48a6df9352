"""How much store work a send and a push cost, counted (not timed): the design's budget.

Counts move only when the design changes, never with the machine's load, so these tests
pin them: a change that adds a store write per send, or a statement per push, fails here
(the harness is ``bench/round_trips.py``; ``python -m bench.round_trips`` prints them all).

* A send is two writes (jobs) at most: ``Store.start_send`` (the record, its started attempt
  and the recipient guard's claim together) and the outcome. An idempotency key adds one.
* Acknowledgements of events dispatched together share one store call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bench.round_trips import TracedSQLiteStore, count_pushes, count_sends, counting_postgres
from notifykit import AsyncNotifier
from notifykit.errors import StoreError
from notifykit.events import DeliveryReceipt
from notifykit.models import DeliveryStatus, MessageRecord, utcnow
from notifykit.store import MemoryStore
from notifykit.store.base import AnyEvent, InboxEntry
from notifykit.testing import fake_config, fake_plugin_manager

pytestmark = pytest.mark.anyio

GUARD = {"recipient_min_interval": 0.001}


@pytest.mark.parametrize("routing", [None, GUARD], ids=["plain", "guarded"])
async def test_a_sqlite_send_is_two_writes(
    tmp_path: Path, routing: dict[str, float] | None
) -> None:
    counts = await count_sends(TracedSQLiteStore(tmp_path / "nk.db"), count=10, routing=routing)
    # Before Store.start_send: 3 (create, started attempt, outcome), 4 with the guard.
    assert counts.jobs == 2
    assert counts.transactions == 2  # one sequential sender: nothing to share a commit with
    # BEGIN, the record, COMMIT; BEGIN, the record and status changed in place, the look
    # for orphans, COMMIT. The guard's claim is one statement. Was 13 (15): savepoints, the
    # record read whole, a look for messages sharing the vendor id, the guard read first.
    assert counts.statements == (8 if routing else 7)


async def test_an_idempotent_sqlite_send_adds_one_write(tmp_path: Path) -> None:
    counts = await count_sends(TracedSQLiteStore(tmp_path / "nk.db"), count=10, idempotency=True)
    assert counts.jobs == 3
    assert counts.statements == 10  # the claim: BEGIN, one statement, COMMIT (was 19 in all)


@pytest.mark.parametrize("concurrency", [1, 20])
async def test_a_sqlite_push_is_three_statements_and_its_transaction(
    tmp_path: Path, concurrency: int
) -> None:
    """An orphan receipt: the request, one look-up (stored already? messages with its
    vendor id? one it could be tied to?), the event; BEGIN and COMMIT shared by the pushes
    a batch holds. Was 9 at concurrency 1 and 7.1 at 20 (savepoints, three look-ups)."""
    counts = await count_pushes(
        TracedSQLiteStore(tmp_path / "nk.db"), count=100, concurrency=concurrency
    )
    assert counts.jobs == 1
    if concurrency == 1:
        assert counts.statements == 5
    else:
        assert counts.statements < 4


async def test_concurrent_sqlite_sends_share_commits(tmp_path: Path) -> None:
    counts = await count_sends(TracedSQLiteStore(tmp_path / "nk.db"), count=100, concurrency=20)
    assert counts.jobs == 2
    assert counts.transactions < 2  # group commit: fewer commits than writes


@pytest.mark.postgres
@pytest.mark.parametrize("routing", [None, GUARD], ids=["plain", "guarded"])
async def test_a_postgres_send_is_two_writes(
    pg_url: str, pg_schema: str, routing: dict[str, float] | None
) -> None:
    from notifykit.store.postgres import PostgresStore

    with counting_postgres():
        counts = await count_sends(
            PostgresStore(pg_url, schema=pg_schema), count=10, routing=routing
        )
    assert counts.jobs == 2
    # Statements per send: the record with its started attempt (1; the guard adds 1), the
    # outcome (its transaction's advisory locks, taken first for every write of the
    # batch; the row with the look for orphans; the save: 3). Was 8 (create 1, started 2,
    # outcome 5) and 9, then 4 and 5 in eight round trips (each statement, BEGIN and
    # COMMIT its own). Pipelined, in the transaction the pipeline's sync commits (no
    # BEGIN, no COMMIT): the record is one round trip, the outcome two.
    assert counts.statements == (5 if routing else 4)


@pytest.mark.postgres
async def test_postgres_ingest_is_three_statements_and_an_accepted_update_three(
    pg_url: str, pg_schema: str
) -> None:
    from notifykit.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    await store.open()
    try:
        with counting_postgres() as statements:
            start = statements[0]
            # An orphan receipt (no message has its vendor id): the locks, one look-up,
            # one insert of the request with its events. Was 6 (inbox, vendor lock,
            # sharing, number lock, undecided, event).
            await store.ingest(_entry(), [_receipt(1, phone=PHONE)], owner="me", lease=60)
            assert statements[0] - start == 3
            await store.create_message(MessageRecord(message_id="m2", to=PHONE, template="t"))
            start = statements[0]
            # A send accepted with vendor id vid-2: the vendor lock (the batch's one lock
            # statement), the row with the look for orphans, the save: 3 statements in two
            # round trips (were 5, then 3 in five round trips with BEGIN and COMMIT).
            await store.update_message(
                "m2",
                attempts=[],
                status=DeliveryStatus.ACCEPTED,
                provider="fake",
                provider_message_id="vid-2",
            )
            assert statements[0] - start == 3
            start = statements[0]
            # Its receipt: the three, and the save of the message (read by the look-up,
            # saved if unchanged since: no second read under a row lock).
            new = await store.ingest(_entry(), [_receipt(2, phone=PHONE)], owner="me", lease=60)
            assert statements[0] - start == 4
        assert [e.message_id for e in new] == ["m2"]
        record = await store.get_message("m2")
        assert record is not None and record.status is DeliveryStatus.DELIVERED
    finally:
        await store.close()


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.ack_calls: list[list[str]] = []

    async def ack_dispatch(self, owner: str, event_ids: list[str]) -> int:  # type: ignore[override]
        self.ack_calls.append(list(event_ids))
        return await super().ack_dispatch(owner, event_ids)


PHONE = "+8615612341090"


def _receipt(n: int, *, phone: str | None = None) -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=f"ev-{n}",
        provider="fake",
        provider_message_id=f"vid-{n}",
        phone=phone,
        status=DeliveryStatus.DELIVERED,
        vendor_status="delivered",
        occurred_at=utcnow(),
    )


async def test_dispatches_finishing_together_share_one_acknowledgement() -> None:
    store = CountingStore()
    notifier = AsyncNotifier(fake_config(), plugin_manager=fake_plugin_manager(), store=store)
    seen: list[str] = []
    notifier.subscribe(lambda event: seen.append(event.event_id))
    await notifier.open()
    try:
        batches: list[list[AnyEvent]] = [[_receipt(n)] for n in range(10)]
        for batch in batches:
            held = await store.ingest(_entry(), batch, owner=notifier.callbacks.owner, lease=60)
            assert held == batch
        for batch in batches:  # ten pushes' dispatches, started in one turn of the loop
            notifier.callbacks.dispatch(batch)
        await notifier.callbacks.drain()
    finally:
        await notifier.close()
    assert sorted(seen) == sorted(f"ev-{n}" for n in range(10))
    # One call for all ten (was one per dispatch), and every event acknowledged.
    assert len(store.ack_calls) == 1
    assert sorted(store.ack_calls[0]) == sorted(seen)
    assert await store.claim_dispatch("anyone", lease=0) == []


async def test_an_acknowledgement_that_fails_is_retried_by_the_lease_not_lost() -> None:
    class FailingAcks(CountingStore):
        async def ack_dispatch(self, owner: str, event_ids: list[str]) -> int:  # type: ignore[override]
            self.ack_calls.append(list(event_ids))
            raise RuntimeError("store down")

    store = FailingAcks()
    notifier = AsyncNotifier(fake_config(), plugin_manager=fake_plugin_manager(), store=store)
    notifier.subscribe(lambda event: None)
    await notifier.open()
    # This test dispatches by hand: the notifier's own sweeps (started on open, as it has a
    # subscriber) would also take these lease-0 events.
    await notifier.callbacks.stop_sweeping()
    await notifier.callbacks.drain()
    try:
        for n in range(3):
            await store.ingest(_entry(), [_receipt(n)], owner=notifier.callbacks.owner, lease=0)
            notifier.callbacks.dispatch([_receipt(n)])
        await asyncio.wait_for(notifier.callbacks.drain(), 10)  # returns despite the fault
    finally:
        await notifier.close()
    assert sum(len(ids) for ids in store.ack_calls) == 3
    # Unacknowledged, so handed out again once the lease (0 here) has ended.
    assert len(await MemoryStore.claim_dispatch(store, "anyone", lease=0)) == 3


async def test_pushes_with_an_observer_cost_one_ingest_each_plus_shared_acks(
    tmp_path: Path,
) -> None:
    counts = await count_pushes(TracedSQLiteStore(tmp_path / "nk.db"), count=20, with_observer=True)
    assert counts.jobs <= 2  # one sequential pusher: its ingest, and its own ack


def _entry() -> InboxEntry:
    return InboxEntry(provider="fake", method="POST", path="/callbacks/fake")


@pytest.mark.postgres
async def test_a_receipt_is_applied_to_the_record_as_it_is_when_the_look_up_is_stale(
    pg_url: str, pg_schema: str
) -> None:
    """The one-statement save only lands on the row version the look-up read; a row
    changed since (another transaction's save) is read again under a row lock instead,
    so the change is kept and the receipt still applied."""
    import psycopg

    from notifykit.store.postgres import PostgresStore
    from notifykit.store.postgres.store import _apply_receipts, _Lookup

    store = PostgresStore(pg_url, schema=pg_schema)
    await store.open()
    try:
        await store.create_message(MessageRecord(message_id="m", to=PHONE, template="t"))
        await store.update_message(
            "m",
            attempts=[],
            status=DeliveryStatus.ACCEPTED,
            provider="fake",
            provider_message_id="vid-7",
        )
        async with await psycopg.AsyncConnection.connect(
            pg_url, autocommit=True, options=f"-c search_path={pg_schema}"
        ) as conn:
            found = await _Lookup.run(conn, [_receipt(7, phone=PHONE)])
            stale = found.row("m")
            assert stale is not None
            # Changed after the look-up: the record now says the vendor reported "sent".
            await store.update_message("m", attempts=[], status=DeliveryStatus.SENT)
            async with conn.transaction():
                await _apply_receipts(conn, {"m": [_receipt(7, phone=PHONE)]}, found)
        record = await store.get_message("m")
        assert record is not None
        assert record.status is DeliveryStatus.DELIVERED
        assert [c.status for c in record.history][-2:] == [
            DeliveryStatus.SENT,
            DeliveryStatus.DELIVERED,
        ]  # the change made after the look-up was kept
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_ingests_queued_together_share_three_statements(
    pg_url: str, pg_schema: str
) -> None:
    """Ten pushes arriving together are one transaction of three statements (the locks,
    one look-up, one insert of every request and event), not three statements each; each
    caller still gets its own new events, and a duplicate within the batch is stored once."""
    from notifykit.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    await store.open()
    try:
        await store.create_message(MessageRecord(message_id="m3", to=PHONE, template="t"))
        await store.update_message(
            "m3",
            attempts=[],
            status=DeliveryStatus.ACCEPTED,
            provider="fake",
            provider_message_id="vid-3",
        )
        pushes = [[_receipt(n, phone=f"+86156123400{n:02d}")] for n in range(10)]
        pushes[3] = [_receipt(3, phone=PHONE)]  # the receipt of m3
        pushes[9] = [_receipt(5, phone="+8615612340005")]  # a second copy of push 5's
        transactions = store.transactions
        with counting_postgres() as statements:
            start = statements[0]
            answers = await asyncio.gather(
                *(store.ingest(_entry(), events, owner="me", lease=60) for events in pushes)
            )
            used = statements[0] - start
        # One more for the save of m3, moved by its receipt. Was 6 or more a push.
        assert used == 4
        assert store.transactions - transactions == 1
        assert [[e.event_id for e in new] for new in answers] == [[f"ev-{n}"] for n in range(9)] + [
            []
        ]
        assert answers[3][0].message_id == "m3"
        record = await store.get_message("m3")
        assert record is not None and record.status is DeliveryStatus.DELIVERED
        assert await store.count_inbox() == 10  # every request kept, the duplicate's too
        stored = await store.list_events()
        assert sorted(e.event_id for e in stored) == sorted(f"ev-{n}" for n in range(9))
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_sends_queued_together_share_their_statements(
    pg_url: str, pg_schema: str
) -> None:
    """Ten sends' first writes arriving together are one statement; their ten outcomes
    three (the batch's locks, one read of every row with the look for orphans, one save
    of all). Was one and five statements a send."""
    from notifykit.models import Attempt
    from notifykit.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    await store.open()
    try:
        started = Attempt(provider="fake", outcome="started", started_at=utcnow())
        records = [
            MessageRecord(
                message_id=f"s{n}", to=f"+86156123401{n:02d}", template="t", attempts=[started]
            )
            for n in range(10)
        ]
        # An orphan receipt already waits for s4's vendor id.
        await store.ingest(_entry(), [_receipt(104, phone="+8615612340104")])
        with counting_postgres() as statements:
            start = statements[0]
            waits = await asyncio.gather(*(store.start_send(r) for r in records))
            assert waits == [None] * 10
            assert statements[0] - start == 1
            start = statements[0]
            linked = await asyncio.gather(
                *(
                    store.update_message(
                        f"s{n}",
                        attempts=[Attempt(provider="fake", outcome="accepted")],
                        status=DeliveryStatus.ACCEPTED,
                        provider="fake",
                        provider_message_id=f"vid-{100 + n}",
                    )
                    for n in range(10)
                )
            )
            # The orphan found adds its linking (a read, two writes) for s4 alone.
            assert statements[0] - start <= 3 + 4
        assert [len(found) for found in linked] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
        for n in range(10):
            record = await store.get_message(f"s{n}")
            assert record is not None and record.provider_message_id == f"vid-{100 + n}"
            expected = DeliveryStatus.DELIVERED if n == 4 else DeliveryStatus.ACCEPTED
            assert record.status is expected
        # A taken id fails that send alone, the others of its batch stored.
        again = await asyncio.gather(
            store.start_send(records[0]),
            store.start_send(records[0].model_copy(update={"message_id": "fresh"})),
            return_exceptions=True,
        )
        assert isinstance(again[0], StoreError) and again[1] is None
        assert await store.get_message("fresh") is not None
    finally:
        await store.close()


async def test_a_push_with_nothing_to_observe_it_starts_no_task() -> None:
    """A push handled by the processor (``notifykit serve``'s per-request work) starts no
    task when nothing observes events: the store write is awaited in place (with
    ``asyncio.timeout``, not ``wait_for``, which made a task per push)."""
    from notifykit.testing import fake_receipt

    notifier = AsyncNotifier(
        fake_config(), plugin_manager=fake_plugin_manager(), store=MemoryStore()
    )
    await notifier.open()
    loop = asyncio.get_running_loop()
    made: list[object] = []
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    try:
        assert not notifier.callbacks.has_observers()
        loop.set_task_factory(factory)
        for n in range(5):
            push = fake_receipt(f"vid-t{n}", phone=PHONE)
            answer = await notifier.handle_callback("fake", "POST", push.headers, push.body)
            assert answer[0] == 200
        loop.set_task_factory(previous)
        assert made == []
        assert len(await notifier.store.list_events()) == 5
    finally:
        loop.set_task_factory(previous)
        await notifier.close()


@pytest.mark.postgres
async def test_postgres_notifies_listeners_only_of_events_they_may_claim(
    pg_url: str, pg_schema: str
) -> None:
    """Events stored claimed (by a receiver that hands them out itself) wake no other
    instance: each woken dispatcher would claim nothing, one wasted round trip per push
    per instance. Events stored unclaimed still wake them."""
    import psycopg

    from notifykit.store.postgres import PostgresStore

    store = PostgresStore(pg_url, schema=pg_schema)
    await store.open()
    try:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as listener:
            await listener.execute("LISTEN notifykit_events")
            await store.ingest(_entry(), [_receipt(1)], owner="me", lease=60)  # claimed
            await store.ingest(_entry(), [_receipt(2)])  # unclaimed: for any instance
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as other:
                # Notifications arrive in commit order: this one comes after both ingests'.
                await other.execute("SELECT pg_notify('notifykit_events', 'fence')")
            payloads: list[str] = []
            async for notice in listener.notifies(timeout=30):
                payloads.append(notice.payload)
                if notice.payload == "fence":
                    break
        assert payloads == [pg_schema, "fence"]  # the unclaimed event's alone
    finally:
        await store.close()


def test_the_sqlite_writer_wakes_each_loop_once_per_batch() -> None:
    """A batch's outcomes reach their callers with one ``call_soon_threadsafe`` per event
    loop (each is a socket write that wakes the loop), not one per job."""
    from notifykit.store.writer import SQLiteWriter, _Job, _Watch

    class Loop:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def call_soon_threadsafe(self, fn: Any, jobs: list[Any]) -> None:
            self.calls.append(len(jobs))

    first, second = Loop(), Loop()
    watches = [
        _Watch(loop, lambda: StoreError("late"), lambda jobs: None)  # type: ignore[arg-type]
        for loop in (first, second)
    ]
    jobs: list[_Job] = []
    for n in range(10):
        job = _Job(lambda conn: None, True, 0.0, watch=watches[0] if n < 7 else watches[1])
        job.ok, job.value = True, n
        jobs.append(job)
    jobs.append(_Job(lambda conn: None, True, 0.0, watch=watches[0]))  # skipped: no outcome
    SQLiteWriter._notify(jobs)
    assert first.calls == [7] and second.calls == [3]


async def test_one_timer_answers_every_sqlite_job_past_its_deadline(tmp_path: Path) -> None:
    """The writer's jobs on one loop share one timer (not one ``asyncio.timeout`` each):
    a stuck writer's callers are all told they timed out, each after its own timeout, and
    their writes are abandoned (skipped when the writer goes on)."""
    import sqlite3
    import threading

    from notifykit.store.writer import SQLiteWriter

    release = threading.Event()
    path = tmp_path / "w.db"
    writer = SQLiteWriter(
        lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False),
        timeout=0.2,
        name="test-writer-timer",
    )
    await writer.start()
    try:
        await writer.run(lambda conn: conn.execute("CREATE TABLE t (n INTEGER)"), write=True)
        stuck = asyncio.ensure_future(writer.run(lambda conn: release.wait(30), write=False))
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        timers: list[float] = []
        call_at = loop.call_at  # call_later and asyncio.timeout both go through it

        def counted(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            timers.append(when)
            return call_at(when, *args, **kwargs)

        loop.call_at = counted  # type: ignore[method-assign]
        try:
            writes = [
                asyncio.ensure_future(
                    writer.run(
                        lambda conn, n=n: conn.execute("INSERT INTO t VALUES (?)", (n,)),
                        write=True,
                    )
                )
                for n in range(20)
            ]
            await asyncio.sleep(0)
            assert timers == []  # the stuck job's timer watches these too: none per job
        finally:
            del loop.call_at
        for answer in await asyncio.gather(stuck, *writes, return_exceptions=True):
            assert isinstance(answer, StoreError) and "timed out" in str(answer)
        release.set()
        rows = await writer.run(
            lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0], write=False
        )
        assert rows == 0  # every write given up on was skipped
    finally:
        release.set()
        await writer.stop()
