"""What only the PostgreSQL store has: migrations under a lock, group commit, claims shared
by instances, LISTEN wake-ups, the vendor-id meeting point, the optional driver."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifykit.config import StoreConfig
from notifykit.errors import ConfigError, StoreError
from notifykit.events import DeliveryReceipt
from notifykit.models import Attempt, DeliveryStatus, MessageRecord
from notifykit.store import InboxEntry, open_store

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PHONE = "+8615612341090"

Opener = Callable[..., "PostgresStore"]

if True:  # the driver is an optional extra: import it only for these tests
    PostgresStore = pytest.importorskip("notifykit.store.postgres").PostgresStore


@pytest.fixture
async def opened(pg_store_url: str, pg_schema: str) -> AsyncIterator[Opener]:
    """``opened(**options)``: a PostgresStore on this test's schema (closed after)."""
    made: list[PostgresStore] = []

    def make(**options: object) -> PostgresStore:
        store = PostgresStore(pg_store_url, schema=pg_schema, **{"timeout": 10, **options})  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


def receipt(event_id: str, vendor_id: str = "task-1") -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        provider="vs",
        provider_message_id=vendor_id,
        phone=PHONE,
        occurred_at=T0 + timedelta(minutes=1),
        received_at=T0 + timedelta(minutes=1, seconds=1),
        status=DeliveryStatus.DELIVERED,
        vendor_status="DELIVRD",
    )


def entry() -> InboxEntry:
    return InboxEntry(provider="vs", method="POST", path="/callbacks/vs/***", body=b"x")


async def test_ten_instances_starting_at_once_migrate_once(opened: Opener) -> None:
    stores = [opened() for _ in range(10)]
    applied = await asyncio.gather(*(s.migrate_schema() for s in stores))
    latest = (await stores[0].schema_status()).latest
    # Exactly one opener applied each version; the nine others found nothing to do.
    assert sorted(v for versions in applied for v in versions) == list(range(1, latest + 1))
    assert sum(1 for versions in applied if versions) == 1
    status = await stores[0].schema_status()
    assert status.current == latest and [v for v, _ in status.applied] == list(range(1, latest + 1))
    await asyncio.gather(*(s.open() for s in stores))  # and all of them open on it


async def test_migrate_false_refuses_an_old_schema_until_migrated(opened: Opener) -> None:
    strict = opened(migrate=False)
    with pytest.raises(StoreError, match="notifykit store migrate") as caught:
        await strict.open()
    assert "version 0" in str(caught.value)
    assert (await strict.schema_status()).current == 0  # nothing was created meanwhile
    await opened().migrate_schema()
    await strict.open()
    await strict.create_message(MessageRecord(message_id="m1", to=PHONE, template="t"))


async def test_a_schema_newer_than_this_notifykit_is_refused(
    opened: Opener, pg_store_url: str, pg_schema: str
) -> None:
    import psycopg

    await opened().migrate_schema()
    with psycopg.connect(pg_store_url, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO {pg_schema}.schema_migrations (version, name) VALUES (999, 'future')"
        )
    for options in ({}, {"migrate": False}):
        with pytest.raises(StoreError, match="newer than this notifykit knows"):
            await opened(**options).open()


async def test_concurrent_writes_share_commits(opened: Opener) -> None:
    store = opened()
    await store.open()
    await asyncio.gather(*(store.ingest(entry(), [receipt(f"e{i}", f"t{i}")]) for i in range(60)))
    assert await store.count_inbox() == 60
    assert len(await store.list_events()) == 60
    assert store.write_jobs == 60
    assert store.transactions < store.write_jobs


async def test_a_failing_write_does_not_undo_its_batch_neighbours(opened: Opener) -> None:
    store = opened()
    await store.open()
    results = await asyncio.gather(
        *(
            store.create_message(MessageRecord(message_id=f"m{i}", to=PHONE, template="t"))
            for i in range(10)
        ),
        store.update_message("ghost", attempts=[]),
        store.create_message(MessageRecord(message_id="m0", to=PHONE, template="t")),
        return_exceptions=True,
    )
    assert results[:10] == [None] * 10
    assert isinstance(results[10], StoreError) and "unknown message" in str(results[10])
    assert isinstance(results[11], StoreError) and "already exists" in str(results[11])
    assert len(await store.list_messages()) == 10


def unacknowledged(url: str, schema: str) -> set[str]:
    """Ids of the events no dispatcher has acknowledged yet, claimed or not."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        query = sql.SQL("SELECT event_id FROM {} WHERE NOT dispatched").format(
            sql.Identifier(schema, "events")
        )
        return {str(row[0]) for row in conn.execute(query).fetchall()}


async def test_events_are_claimed_by_one_instance_and_taken_over_after_a_lease(
    opened: Opener, pg_store_url: str, pg_schema: str
) -> None:
    a, b = opened(), opened()
    await a.open()
    await b.open()
    await a.ingest(entry(), [receipt(f"e{i}", f"t{i}") for i in range(10)])
    mine, theirs = await asyncio.gather(
        a.claim_dispatch("a", limit=6, lease=60), b.claim_dispatch("b", limit=6, lease=60)
    )
    ids_a, ids_b = {e.event_id for e in mine}, {e.event_id for e in theirs}
    assert not ids_a & ids_b and ids_a | ids_b == {f"e{i}" for i in range(10)}
    assert await b.claim_dispatch("b", lease=60) == []  # every event is held
    assert await b.ack_dispatch("b", sorted(ids_a)) == 0  # not b's claims: no effect
    assert await a.ack_dispatch("a", sorted(ids_a)) == len(ids_a)
    # b dies holding its claims; once the lease has ended, a takes them over.
    assert unacknowledged(pg_store_url, pg_schema) == ids_b
    await b.close()
    expired = opened()
    await expired.open()
    await expired.ingest(entry(), [receipt("late", "t-late")])
    held = await expired.claim_dispatch("dead", lease=0)
    assert [e.event_id for e in held] == ["late"]
    taken = await a.claim_dispatch("a", lease=60)
    assert {e.event_id for e in taken} == {"late"}  # b's 60 s lease still holds
    await a.ack_dispatch("a", ["late"])
    assert unacknowledged(pg_store_url, pg_schema) == ids_b


@contextlib.asynccontextmanager
async def _writer_blocked(store: PostgresStore, url: str) -> AsyncIterator[asyncio.Future[None]]:
    """Open ``store`` (one writer) and block its writer: another connection holds the row
    of message ``busy``, which the writer's batch (yielded: an ``update_message``) waits
    for until the block ends; the writes queued meanwhile wait behind it."""
    import psycopg

    await store.open()
    await store.create_message(MessageRecord(message_id="busy", to=PHONE, template="t"))
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as holder,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as watch,
        holder.transaction(),
    ):
        await holder.execute(
            f"SELECT 1 FROM {store.schema}.messages WHERE message_id = 'busy' FOR UPDATE"
        )
        # The writer's batch waits for that row...
        begun = asyncio.ensure_future(
            store.update_message("busy", attempts=[], status=DeliveryStatus.FAILED)
        )
        assert await _blocked_by(watch, holder.info.backend_pid, begun)
        yield begun


async def _blocked_by(conn: object, pid: int, task: asyncio.Future[object]) -> bool:
    """Wait until ``task`` finishes (False) or PostgreSQL reports a backend waiting for a
    lock that backend ``pid`` holds (True)."""
    async with asyncio.timeout(30):  # a guard against hanging, not a measure
        while not task.done():
            cur = await conn.execute(  # type: ignore[attr-defined]
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (pid,),
            )
            row = await cur.fetchone()
            if row[0]:
                return True
            await asyncio.wait({task}, timeout=0.005)
    return False


async def test_claims_take_the_other_rows_at_once_while_another_instance_holds_some(
    opened: Opener, pg_store_url: str, pg_schema: str
) -> None:
    """An instance in the middle of a claim holds its rows locked: another instance's claim
    of events (and its recovery sweep) takes the rows nobody holds, without waiting for
    those (``FOR UPDATE SKIP LOCKED``). A claim that waits (or takes the held rows) would
    make every instance queue behind the slowest, or hand one event to two."""
    import psycopg

    store = opened()
    await store.open()
    await store.ingest(entry(), [receipt(f"e{i}", f"t{i}") for i in range(3)])
    for n in range(2):
        await store.create_message(
            MessageRecord(
                message_id=f"m{n}",
                to=PHONE,
                template="verify_code",
                created_at=T0,
                lease_until=T0 + timedelta(seconds=40),
            )
        )
    async with (
        await psycopg.AsyncConnection.connect(pg_store_url, autocommit=True) as holder,
        await psycopg.AsyncConnection.connect(pg_store_url, autocommit=True) as watch,
        holder.transaction(),  # another instance's claim, in flight
    ):
        for table, column, key in (
            ("events", "event_id", "e0"),
            ("messages", "message_id", "m0"),
        ):
            await holder.execute(
                f"SELECT 1 FROM {pg_schema}.{table} WHERE {column} = %s FOR UPDATE",
                (key,),
            )
        claim = asyncio.ensure_future(store.claim_dispatch("b", lease=60))
        assert not await _blocked_by(watch, holder.info.backend_pid, claim), (
            "the claim waited for an event another instance holds"
        )
        assert sorted(e.event_id for e in claim.result()) == ["e1", "e2"]
        sweep = asyncio.ensure_future(store.recover_expired(now=T0 + timedelta(minutes=5)))
        assert not await _blocked_by(watch, holder.info.backend_pid, sweep), (
            "the sweep waited for a record another instance holds"
        )
        assert [r.message_id for r in sweep.result()] == ["m1"]


async def test_a_write_whose_caller_gave_up_before_its_batch_began_never_lands(
    opened: Opener, pg_store_url: str
) -> None:
    """The receiver answers 503 to a push whose store write timed out, and the vendor sends
    it again: a write still queued when its caller gave up must not land afterwards (one
    its batch had already begun may: the caller was told the outcome is not known)."""
    store = opened(timeout=1, pool_max_size=2)  # one writer: batches go one at a time
    async with _writer_blocked(store, pg_store_url) as begun:
        # ...while the next write waits in the queue until its caller gives up.
        with pytest.raises(StoreError, match="timed out"):
            await store.create_message(MessageRecord(message_id="late", to=PHONE, template="t"))
    with contextlib.suppress(StoreError):
        await begun
    await store.create_message(MessageRecord(message_id="after", to=PHONE, template="t"))
    assert await store.get_message("after") is not None  # the writer went on
    assert await store.get_message("late") is None


async def test_a_write_whose_caller_was_cancelled_still_lands_and_others_time_out_on_their_own(
    opened: Opener, pg_store_url: str
) -> None:
    """A caller cancelled while its write waits is cancelled at once, and the write still
    runs, as it would under ``asyncio.shield``; a caller that waits for longer than
    ``timeout`` is told so, and its write, not begun, never lands, also when it was queued
    after another that timed out first."""
    store = opened(timeout=1, pool_max_size=2)  # one writer: batches go one at a time
    async with _writer_blocked(store, pg_store_url) as begun:
        gone = asyncio.ensure_future(
            store.create_message(MessageRecord(message_id="gone", to=PHONE, template="t"))
        )
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        first = asyncio.ensure_future(
            store.create_message(MessageRecord(message_id="first", to=PHONE, template="t"))
        )
        await asyncio.sleep(0.5)
        second = asyncio.ensure_future(
            store.create_message(MessageRecord(message_id="second", to=PHONE, template="t"))
        )
        with pytest.raises(StoreError, match="timed out"):
            await first
        with pytest.raises(StoreError, match="timed out"):  # its own deadline, after first's
            await asyncio.wait_for(second, 10)
    with contextlib.suppress(StoreError):
        await begun
    await store.create_message(MessageRecord(message_id="after", to=PHONE, template="t"))
    assert await store.get_message("gone") is not None
    assert await store.get_message("first") is None
    assert await store.get_message("second") is None


async def test_sends_batched_into_one_statement_fail_only_the_one_whose_id_was_taken(
    opened: Opener,
) -> None:
    """Sends without a recipient guard that share a batch are one statement on the
    autocommit connection: a taken message id fails that statement, nothing of it stays,
    and the sends run again one by one: only the taken id's send fails, and says which."""
    store = opened()
    await store.open()
    await store.create_message(MessageRecord(message_id="taken", to=PHONE, template="old"))
    sends = [MessageRecord(message_id=f"m{i}", to=PHONE, template="t") for i in range(4)]
    sends.insert(2, MessageRecord(message_id="taken", to=PHONE, template="new"))
    outcomes = await asyncio.gather(*(store.start_send(r) for r in sends), return_exceptions=True)
    assert isinstance(outcomes[2], StoreError) and "'taken'" in str(outcomes[2])
    assert [o for n, o in enumerate(outcomes) if n != 2] == [None] * 4
    for record in sends:
        stored = await store.get_message(record.message_id)
        assert stored is not None
        assert stored.template == ("old" if record.message_id == "taken" else "t")


async def test_events_ingested_for_an_owner_are_held_by_it(
    opened: Opener, pg_store_url: str, pg_schema: str
) -> None:
    a, b = opened(), opened()
    await a.open()
    await b.open()
    await a.ingest(entry(), [receipt("mine")], owner="a", lease=60)
    await a.ingest(entry(), [receipt("free", "t-free")])
    assert [e.event_id for e in await b.claim_dispatch("b", lease=60)] == ["free"]
    assert await b.ack_dispatch("b", ["mine", "free"]) == 1  # "mine" is a's
    assert await a.ack_dispatch("a", ["mine"]) == 1
    assert await a.ack_dispatch("a", ["mine"]) == 0  # acknowledged already
    assert unacknowledged(pg_store_url, pg_schema) == set()


async def test_a_pipelined_write_that_raises_leaves_nothing_committed(opened: Opener) -> None:
    """A pipelined batch runs in the transaction that its pipeline's sync commits: a write
    that raises after one of its statements ran (its own error, not the database's) must
    not have that statement committed, alone or beside a write that succeeds."""
    store = opened()
    await store.open()
    writer = store._writer
    assert writer is not None

    def claim(phone: str, *, fail: bool) -> Callable[..., Any]:
        async def write(conn: Any) -> None:
            await conn.execute(
                "INSERT INTO recipient_guards (phone, claimed_at) VALUES (%s, 0)", (phone,)
            )
            if fail:
                raise RuntimeError("the write's own bug")

        return write

    together = await asyncio.gather(
        writer.run(claim("+8615600000001", fail=True), pipelined=True),
        writer.run(claim("+8615600000002", fail=False), pipelined=True),
        return_exceptions=True,
    )
    assert isinstance(together[0], StoreError) and "RuntimeError" in str(together[0])
    assert together[1] is None
    with pytest.raises(StoreError, match="RuntimeError"):
        await writer.run(claim("+8615600000003", fail=True), pipelined=True)

    async def phones(conn: Any) -> set[str]:
        cur = await conn.execute("SELECT phone FROM recipient_guards")
        return {str(row[0]) for row in await cur.fetchall()}

    assert await store._read(phones) == {"+8615600000002"}


async def test_health_check_writes_through_the_group_commit(opened: Opener) -> None:
    store = opened()
    with pytest.raises(StoreError, match="not open"):
        await store.check()
    await store.open()
    before = store.transactions
    await store.check()
    assert store.transactions == before + 1


async def test_a_new_event_wakes_a_waiting_instance(opened: Opener) -> None:
    a, b = opened(), opened()
    await a.open()
    await b.open()
    assert b._listener is not None
    await asyncio.wait_for(b._listener.connected.wait(), 10)
    await b.wait_for_events(0)  # forget the wake-up every (re)connection starts with
    waiting = asyncio.create_task(b.wait_for_events(3600))
    await asyncio.sleep(0)
    assert not waiting.done()
    await a.ingest(entry(), [receipt("e1")])
    await asyncio.wait_for(waiting, 10)  # woken by NOTIFY, an hour before its timeout


async def test_an_event_and_its_send_meet_whichever_instance_commits_first(
    opened: Opener,
) -> None:
    """A receipt stored by one instance while another records the send's vendor id is
    linked either way (they meet under an advisory lock); never left an orphan."""
    a, b = opened(), opened()
    await a.open()
    await b.open()
    rounds = 20
    for i in range(rounds):
        await a.create_message(MessageRecord(message_id=f"m{i}", to=PHONE, template="t"))

    async def send(i: int) -> None:
        await a.update_message(
            f"m{i}",
            attempts=[Attempt(provider="vs", outcome="accepted")],
            status=DeliveryStatus.ACCEPTED,
            provider="vs",
            provider_message_id=f"race-{i}",
        )

    await asyncio.gather(
        *(send(i) for i in range(rounds)),
        *(b.ingest(entry(), [receipt(f"e{i}", f"race-{i}")]) for i in range(rounds)),
    )
    for i in range(rounds):
        record = await b.get_message(f"m{i}")
        assert record is not None and record.status is DeliveryStatus.DELIVERED, i
    assert all(e.message_id is not None for e in await a.list_events())


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:pw-s3cr3t-9@127.0.0.1:1/test",
        "postgresql://postgres@127.0.0.1:1/test?password=pw-s3cr3t-9",  # libpq reads both
        "postgresql://postgres@127.0.0.1:1/test?sslmode=disable&sslpassword=pw-s3cr3t-9",
    ],
)
async def test_the_password_never_shows(pg_schema: str, url: str) -> None:
    store = PostgresStore(url, schema=pg_schema, timeout=2)
    assert "pw-s3cr3t-9" not in repr(store)
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert "pw-s3cr3t-9" not in str(caught.value) and "***" in str(caught.value)
    config = StoreConfig(url="postgres://u:pw-s3cr3t-9@h/db")
    assert "pw-s3cr3t-9" not in repr(config) and "pw-s3cr3t-9" not in str(config.model_dump())


def test_without_the_driver_the_scheme_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith(("notifykit.store.postgres", "psycopg"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    for scheme in ("postgresql", "postgres"):
        with pytest.raises(ConfigError, match=r"notifykit\[postgres\]"):
            open_store(StoreConfig(url=f"{scheme}://u@h/db"))


def test_importing_notifykit_does_not_import_the_driver() -> None:
    code = (
        "import sys, notifykit, notifykit.store, notifykit.cli;"
        "from notifykit.store import open_store;"
        "from notifykit.config import StoreConfig;"
        "open_store(StoreConfig(url='memory://'));"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
