"""What only the SQLite store promises: WAL, migrations, group commit, timeouts, atomicity
across processes, an event loop that never waits on the disk."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifykit.config import StoreConfig
from notifykit.errors import ConfigError, StoreError
from notifykit.events import DeliveryReceipt
from notifykit.models import Attempt, DeliveryStatus, MessageRecord
from notifykit.store import InboxEntry, MemoryStore, SQLiteStore, Store, open_store
from notifykit.store.migrations import MIGRATIONS, migrate, schema_version

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    made = SQLiteStore(tmp_path / "nk.db", timeout=5)
    await made.open()
    try:
        yield made
    finally:
        await made.close()


def receipt(
    event_id: str, status: DeliveryStatus, vendor_id: str = "t1", minute: int = 0
) -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        provider="vs",
        provider_message_id=vendor_id,
        phone=PHONE,
        occurred_at=T0 + timedelta(minutes=minute),
        status=status,
        vendor_status=status.value,
    )


def entry() -> InboxEntry:
    return InboxEntry(provider="vs", method="POST", path="/callbacks/vs")


@pytest.mark.parametrize(("fsync", "level"), [(True, 2), (False, 1)])
async def test_wal_mode_schema_version_and_synchronous_setting(
    tmp_path: Path, fsync: bool, level: int
) -> None:
    store = SQLiteStore(tmp_path / "sub" / "nk.db", fsync=fsync)
    await store.open()
    await store.open()  # idempotent
    synchronous = await store._writer.run(
        lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0], write=False
    )
    await store.close()
    assert synchronous == level
    with sqlite3.connect(tmp_path / "sub" / "nk.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert schema_version(conn) == len(MIGRATIONS)


async def test_everything_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nk.db"
    first = SQLiteStore(path)
    await first.open()
    await first.create_message(MessageRecord(message_id="m1", to=PHONE, template="t"))
    await first.ingest(entry(), [receipt("e1", DeliveryStatus.DELIVERED)])
    await first.close()
    with pytest.raises(StoreError, match="not open"):
        await first.get_message("m1")
    second = SQLiteStore(path)
    await second.open()
    assert (await second.get_message("m1")) is not None
    assert [e.event_id for e in await second.list_events()] == ["e1"]
    await second.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nk.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer than this notifykit"):
        await SQLiteStore(path).open()


def test_migrations_apply_in_order_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    steps = [("CREATE TABLE a (x)",), ("ALTER TABLE a ADD COLUMN y", "CREATE TABLE b (z)")]
    assert migrate(conn, steps[:1]) == 1
    assert migrate(conn, steps) == 2
    assert migrate(conn, steps) == 2  # nothing left to apply
    columns = [row[1] for row in conn.execute("PRAGMA table_info(a)")]
    assert columns == ["x", "y"] and schema_version(conn) == 2
    broken = [*steps, ("CREATE TABLE c (q)", "NOT SQL AT ALL")]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert schema_version(conn) == 2  # rolled back whole
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'c'").fetchone() is None


async def test_concurrent_writes_share_transactions(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nk.db", fsync=True)
    await store.open()
    try:
        await asyncio.gather(
            *(store.ingest(entry(), [receipt(f"e{i}", DeliveryStatus.SENT)]) for i in range(200))
        )
        assert await store.count_inbox() == 200
        assert len(await store.list_events()) == 200
        assert store.write_jobs == 200
        assert store.transactions < 100  # group commit: many writers per commit
    finally:
        await store.close()


async def test_a_failing_write_does_not_undo_its_batch_neighbours(store: SQLiteStore) -> None:
    await store.create_message(MessageRecord(message_id="dup", to=PHONE, template="t"))
    results = await asyncio.gather(
        store.create_message(MessageRecord(message_id="a", to=PHONE, template="t")),
        store.create_message(MessageRecord(message_id="dup", to=PHONE, template="t")),
        store.update_message("ghost", attempts=[]),
        store.create_message(MessageRecord(message_id="b", to=PHONE, template="t")),
        return_exceptions=True,
    )
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], StoreError) and "already exists" in results[1].message
    assert isinstance(results[2], StoreError)
    assert {r.message_id for r in await store.list_messages()} == {"dup", "a", "b"}


async def test_a_locked_database_times_out_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "nk.db"
    store = SQLiteStore(path, timeout=0.3)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        with pytest.raises(StoreError, match=r"timed out|locked"):
            await store.create_message(MessageRecord(message_id="m1", to=PHONE, template="t"))
        elapsed = time.monotonic() - started
    finally:
        tick_task.cancel()
        other.execute("ROLLBACK")
        other.close()
    assert elapsed < 2
    assert ticks >= 10  # the loop kept running while SQLite waited
    # A write whose caller gave up is not applied behind its back.
    await asyncio.sleep(0.5)
    assert await store.get_message("m1") is None
    await store.create_message(MessageRecord(message_id="m2", to=PHONE, template="t"))
    assert await store.get_message("m2") is not None
    await store.close()


_CLAIM = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from notifykit.store import SQLiteStore

    async def main(path, go, name):
        store = SQLiteStore(path, timeout=10)
        await store.open()
        while not Path(go).exists():
            time.sleep(0.005)
        key = await store.claim_idempotency_key("shared-key", name, 60)
        wait = await store.check_recipient("+8615612341090", 60)
        await store.close()
        print(key.message_id if key else "WON", "GUARD" if wait is None else "WAIT")

    asyncio.run(main(*sys.argv[1:4]))
    """
)


def test_guards_are_atomic_across_processes(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.db", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIM, str(path), str(go), f"p{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    time.sleep(1.0)  # let every process open the store and wait at the line
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        outputs.append(out.split())
    claims = [claim for claim, _ in outputs]
    guards = [guard for _, guard in outputs]
    assert claims.count("WON") == 1
    winner = f"p{claims.index('WON')}"
    assert all(c == winner for c in claims if c != "WON")
    assert guards.count("GUARD") == 1 and guards.count("WAIT") == 5


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(StoreConfig(url="memory://")), MemoryStore)
    made = open_store(StoreConfig(url=f"sqlite:///{tmp_path}/x.db", fsync=True, timeout=1.5))
    assert isinstance(made, SQLiteStore) and made.fsync and made.timeout == 1.5
    assert made.path == f"{tmp_path}/x.db"
    with pytest.raises(ConfigError, match="unsupported store 'redis'"):
        open_store(StoreConfig(url="redis://localhost"))


STATUSES = st.sampled_from(list(DeliveryStatus))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    before=st.lists(STATUSES, max_size=4),
    after=st.lists(STATUSES, max_size=4),
    send_status=STATUSES,
)
def test_memory_and_sqlite_agree_on_any_receipt_order(
    before: list[DeliveryStatus], after: list[DeliveryStatus], send_status: DeliveryStatus
) -> None:
    async def play(store: Store) -> tuple[DeliveryStatus, list[DeliveryStatus], list[str | None]]:
        await store.open()
        try:
            for i, status in enumerate(before):
                await store.ingest(entry(), [receipt(f"b{i}", status, minute=i)])
            await store.create_message(MessageRecord(message_id="m", to=PHONE, template="t"))
            await store.update_message(
                "m",
                attempts=[Attempt(provider="vs", outcome="accepted")],
                status=send_status,
                provider="vs",
                provider_message_id="t1",
            )
            for i, status in enumerate(after):
                await store.ingest(entry(), [receipt(f"a{i}", status, minute=10 + i)])
            record = await store.get_message("m")
            assert record is not None
            events = await store.list_events()
            return record.status, [h.status for h in record.history], [e.message_id for e in events]
        finally:
            await store.close()

    memory = asyncio.run(play(MemoryStore()))
    sqlite = asyncio.run(play(SQLiteStore(":memory:")))
    assert memory == sqlite
    status, history, linked = sqlite
    assert all(m == "m" for m in linked)
    ranks = [s.rank for s in history]
    assert ranks == sorted(ranks) and len(set(history)) == len(history)  # forward only
    everything = [*before, send_status, *after]
    if everything:
        assert status.rank == max(s.rank for s in everything)


@pytest.mark.parametrize("credits", [None, 0, 42])
@pytest.mark.parametrize("vendor_id", [None, "t1"])
@pytest.mark.parametrize("status", [None, DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED])
async def test_records_changed_in_place_read_back_as_memory_keeps_them(
    tmp_path: Path,
    status: DeliveryStatus | None,
    vendor_id: str | None,
    credits: int | None,
) -> None:
    """SQLite changes a stored record's JSON in place (update_message, a receipt): what it
    reads back is what the memory store keeps, field by field (times set from the clock
    aside), whichever of the optional fields a write sets."""
    started = T0 + timedelta(seconds=1)
    attempts = [
        Attempt(provider="vs", outcome="started", started_at=started),
        Attempt(
            provider="vs",
            outcome="failed",
            error_type="InsufficientBalance",
            error_message='余额不足 "quoted" \\ back',
            duration_ms=12.5,
            started_at=started,
        ),
    ]

    async def play(store: Store) -> list[MessageRecord]:
        await store.open()
        try:
            await store.create_message(
                MessageRecord(message_id="m", to=PHONE, template="t", tags=("a", "b"))
            )
            await store.update_message("m", attempts=attempts[:1])
            await store.update_message(
                "m",
                attempts=attempts,
                status=status,
                provider="vs",
                provider_message_id=vendor_id,
                remaining_credits=credits,
            )
            after_send = await store.get_message("m")
            await store.ingest(entry(), [receipt("r1", DeliveryStatus.DELIVERED, minute=3)])
            after_receipt = await store.get_message("m")
            assert after_send is not None and after_receipt is not None
            return [after_send, after_receipt]
        finally:
            await store.close()

    def comparable(record: MessageRecord) -> dict[str, object]:
        fields = record.model_dump(exclude={"created_at", "updated_at", "history"})
        fields["history"] = [
            (c.status, c.source, c.at if c.source.startswith("receipt") else None)
            for c in record.history
        ]
        return fields

    memory = await play(MemoryStore())
    sqlite = await play(SQLiteStore(tmp_path / "nk.db"))
    assert [comparable(r) for r in sqlite] == [comparable(r) for r in memory]
    for before, after in zip(memory, sqlite, strict=True):
        assert after.updated_at >= after.created_at
        assert len(after.history) == len(before.history)


async def test_a_vendor_id_set_without_the_instance_links_the_stored_instances_orphans(
    store: SQLiteStore,
) -> None:
    await store.ingest(entry(), [receipt("r9", DeliveryStatus.DELIVERED, vendor_id="t9")])
    await store.create_message(MessageRecord(message_id="m", to=PHONE, template="t"))
    await store.create_message(MessageRecord(message_id="bare", to=PHONE, template="t"))
    # No instance anywhere: nothing to link to.
    assert await store.update_message("bare", attempts=[], provider_message_id="t9") == []
    await store.update_message("m", attempts=[], status=DeliveryStatus.ACCEPTED, provider="vs")
    linked = await store.update_message("m", attempts=[], provider_message_id="t9")
    assert [(e.event_id, e.message_id) for e in linked] == [("r9", "m")]
    record = await store.get_message("m")
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert (record.provider, record.provider_message_id) == ("vs", "t9")
    with pytest.raises(StoreError, match="unknown message"):
        await store.update_message("ghost", attempts=[], status=DeliveryStatus.SENT)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 3, 4, 5, 7, tzinfo=UTC),
        datetime(2024, 5, 1, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=8))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_stored_times_keep_one_text_form(at: datetime) -> None:
    """Columns compared as text (leases, receipt times) need one fixed-width form."""
    from notifykit.store.sqlite import _dt, _ts

    text = _ts(at)
    assert text == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _dt(text) == at


@given(st.dictionaries(st.text(), st.text(), max_size=8), st.lists(st.text(), max_size=5))
def test_stored_headers_and_event_ids_are_the_json_the_encoder_writes(
    headers: dict[str, str], ids: list[str]
) -> None:
    """The inbox's headers and event ids are written without the JSON encoder's general
    machinery: the same text as ``json.dumps`` (headers unescaped, ids ASCII-escaped)."""
    import json

    from notifykit.store.sqlite import _headers_json, _ids_json

    assert _headers_json(headers) == json.dumps(headers, ensure_ascii=False)
    assert _ids_json(ids) == json.dumps(ids)


def test_stored_times_are_utc_text_whatever_zone_they_come_in() -> None:
    from notifykit.store.sqlite import _ts

    at = datetime(2024, 5, 1, 17, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert _ts(at) == _ts(at.astimezone(UTC)) == "2024-05-01T09:00:00.123456Z"
    assert _ts(at.replace(microsecond=0)) == "2024-05-01T09:00:00.000000Z"
