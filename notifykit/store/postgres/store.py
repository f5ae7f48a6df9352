"""``postgresql://`` (or ``postgres://``): one store shared by any number of instances.

psycopg 3 with a psycopg_pool connection pool. Writes go through
:class:`~notifykit.store.postgres.commit.GroupCommit` (concurrent writes share one
commit); reads take a pooled connection in autocommit mode. Every statement is
parameterised; table names are unqualified and resolved through the connection's
``search_path``, set to ``[store] schema`` when the connection is made.

Across instances:

* idempotency keys and recipient guards are single ``INSERT … ON CONFLICT`` statements,
  timed by the database's clock (one clock for every machine);
* an event and the send that gives its vendor id meet under a transaction-level advisory
  lock on (provider instance, vendor id), so an orphan is linked whichever commits first;
* the group commit runs a batch pipelined, in the transaction the pipeline's sync commits
  (no ``BEGIN`` or ``COMMIT`` sent; :mod:`.commit`): a pushed request costs three
  statements in two round trips in the usual case (the advisory locks with one look-up of
  the messages its events may belong to; one insert of the request and its events, sent
  with the sync), a send two writes (``start_send``: one statement in one round trip, the
  recipient guard a second; the outcome: three statements in two round trips); an
  idempotency key or a recipient-guard claim alone is one round trip;
  ``tests/store/test_store_round_trips.py`` pins the statement counts;
* pending events are handed out by claim (``FOR UPDATE SKIP LOCKED`` with a lease), and a
  trigger's ``NOTIFY`` wakes every instance's dispatcher (:mod:`.listen`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from notifykit.config import StoreConfig, mask_url_password
from notifykit.errors import StoreError
from notifykit.events import DeliveryReceipt, EventAdapter
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    VerificationRecord,
    apply_status,
    utcnow,
)
from notifykit.store.base import (
    DEFAULT_LEASE,
    AnyEvent,
    IdempotencyHolder,
    InboxEntry,
    PendingEvent,
    QuarantineEntry,
    Store,
    VerificationCheckStep,
    VerificationClaim,
    correlate,
    recovered_status,
    tie_to_unknown,
)
from notifykit.store.postgres import verifications
from notifykit.store.postgres.commit import AfterCommit, Conn, GroupCommit, retrying, translate
from notifykit.store.postgres.listen import EventListener
from notifykit.store.postgres.reconnect import RECONNECT_INTERVAL, PoolRepair, keep_trying
from notifykit.store.postgres.schema import (
    SchemaStatus,
    migrate,
    newer_message,
    older_message,
    schema_status,
)

__all__ = ["PostgresStore"]

T = TypeVar("T")

_NOW = "extract(epoch from clock_timestamp())"

_TEXTS = "ARRAY(SELECT json_array_elements_text(%s::json))"
"""A text array from one JSON parameter (a list of strings): see :func:`_rows`."""


def _rows(rows: Iterable[Any]) -> str:
    """A batch's rows (dicts, for ``json_to_recordset``) or values (for :data:`_TEXTS`) as
    one JSON text parameter. psycopg dumps a list parameter element by element in Python
    (a few us each, the largest client cost of a batch); ``json.dumps`` runs in C."""
    return json.dumps(list(rows), ensure_ascii=False, separators=(",", ":"))


def _timestamp(value: datetime | None) -> str | None:
    """A datetime for a ``timestamptz`` column of :func:`_rows` (ISO 8601, to the us)."""
    return None if value is None else value.isoformat()


def _bytea(value: bytes) -> str:
    """Bytes for a ``bytea`` column of :func:`_rows` (its hex input format)."""
    return "\\x" + value.hex()


class PostgresStore(Store):
    """A PostgreSQL database shared by every instance that names it.

    ``url`` is a libpq URI (``postgresql://user:password@host:5432/db``); ``schema`` holds
    notifykit's tables; ``migrate=False`` refuses to open an old schema instead of
    migrating it. ``timeout`` (seconds) bounds each operation, waiting for a pooled
    connection included. Every failure raises StoreError.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "notifykit",
        timeout: float = 5.0,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        migrate: bool = True,
    ) -> None:
        self._url = url
        self.schema = schema
        self.timeout = timeout
        self.migrate = migrate
        self._pool_sizes = (pool_min_size, pool_max_size)
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._repair: PoolRepair | None = None
        self._writer: GroupCommit | None = None
        self._listener: EventListener | None = None
        self._lock_prefix = f"{schema}\0"

    @classmethod
    def from_config(cls, config: StoreConfig) -> PostgresStore:
        return cls(
            config.url,
            schema=config.schema_name,
            timeout=config.timeout,
            pool_min_size=config.pool_min_size,
            pool_max_size=config.pool_max_size,
            migrate=config.migrate,
        )

    def __repr__(self) -> str:
        return f"<PostgresStore {mask_url_password(self._url)!r} schema={self.schema!r}>"

    @property
    def transactions(self) -> int:
        """Write transactions committed by this object (group commit makes it < writes)."""
        return 0 if self._writer is None else self._writer.transactions

    @property
    def write_jobs(self) -> int:
        return 0 if self._writer is None else self._writer.write_jobs

    # -- lifecycle ------------------------------------------------------------------------------

    async def _connect(self) -> Conn:
        try:
            return await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=max(1, int(self.timeout))
            )
        except psycopg.Error as exc:
            raise translate(exc, f"cannot connect to {mask_url_password(self._url)}") from exc

    async def schema_status(self) -> SchemaStatus:
        """Where the schema stands (``notifykit store status``); needs no open store."""
        conn = await self._connect()
        try:
            return await schema_status(conn, self.schema)
        except psycopg.Error as exc:
            raise translate(exc, "reading the schema version failed") from exc
        finally:
            await conn.close()

    async def migrate_schema(self) -> list[int]:
        """Apply the missing migrations (``notifykit store migrate``); the versions applied."""
        conn = await self._connect()
        try:
            return await migrate(conn, self.schema)
        except psycopg.Error as exc:
            raise translate(exc, "migrating the schema failed") from exc
        finally:
            await conn.close()

    async def open(self) -> None:
        """Migrate (or, with ``migrate=False``, check) the schema, then open the pool and
        the LISTEN connection. Idempotent."""
        if self._pool is not None:
            return
        if self.migrate:
            await self.migrate_schema()
        else:
            status = await self.schema_status()
            if status.current < status.latest:
                raise StoreError(older_message(self.schema, status.current, status.latest))
        status = await self.schema_status()
        if status.current > status.latest:
            raise StoreError(newer_message(self.schema, status.current, status.latest))
        low, high = self._pool_sizes
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._url,
            min_size=low,
            max_size=high,
            kwargs={"autocommit": True, "options": f"-c search_path={self.schema}"},
            open=False,
            timeout=self.timeout,
            name="notifykit",
            # A database that comes back is used again within about a second (reconnect.py).
            reconnect_timeout=RECONNECT_INTERVAL,
            reconnect_failed=keep_trying,
        )
        try:
            await pool.open(wait=low > 0, timeout=self.timeout)
        except Exception as exc:
            await pool.close()
            raise translate(exc, f"cannot connect to {mask_url_password(self._url)}") from exc
        self._pool = pool
        self._repair = PoolRepair(pool, self.timeout)
        self._writer = GroupCommit(
            pool, timeout=self.timeout, writers=max(1, min(3, high - 1)), repair=self._repair
        )
        self._writer.start()
        self._listener = EventListener(self._url, self.schema)
        self._listener.start()

    async def close(self) -> None:
        writer, listener, pool = self._writer, self._listener, self._pool
        self._writer = self._listener = self._pool = None
        self._repair = None
        if writer is not None:
            await writer.stop()
        if listener is not None:
            await listener.stop()
        if pool is not None:
            await pool.close()

    async def check(self) -> None:
        """A write that changes nothing, through the group commit (``GET /healthz``):
        raises StoreError when the database cannot take a write now."""

        async def write(conn: Conn) -> None:
            await conn.execute("DELETE FROM recipient_guards WHERE false")

        await self._write(write, single=True)

    async def _write(
        self,
        fn: Callable[[Conn], Awaitable[T | AfterCommit[T]]],
        *,
        locks: tuple[int, ...] = (),
        pipelined: bool = False,
        single: bool = False,
    ) -> T:
        """``fn`` in a group commit's transaction (``pipelined``, ``single``: see
        :meth:`GroupCommit.run <notifykit.store.postgres.commit.GroupCommit.run>`)."""
        if self._writer is None:
            raise StoreError("the store is not open")
        result: T = await self._writer.run(fn, locks=locks, pipelined=pipelined, single=single)
        return result

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            async with self._pool.connection(timeout=self.timeout) as conn:
                return await fn(conn)
        except (psycopg.Error, OSError) as exc:
            if self._repair is not None:
                await self._repair.after(exc)
            raise translate(exc, "store read failed") from exc

    def _vendor_lock(self, provider: str, vendor_id: str) -> int:
        digest = hashlib.blake2b(
            f"{self._lock_prefix}{provider}\0{vendor_id}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big", signed=True)

    # -- messages -------------------------------------------------------------------------------

    async def create_message(self, record: MessageRecord) -> None:
        await self._write(lambda conn: _insert_message(conn, record))

    async def start_send(
        self, record: MessageRecord, *, recipient_interval: float | None = None
    ) -> float | None:
        """See :meth:`Store.start_send`. The sends the group commit holds at once are
        stored together (:meth:`_start_batch`): one statement for all their records, and
        one more per recipient-guard claim."""
        if self._writer is None:
            raise StoreError("the store is not open")
        # Without a recipient guard, a batch of sends is one statement (GroupCommit's single).
        wait: float | None = await self._writer.run_batched(
            self._start_batch, (record, recipient_interval), single=not recipient_interval
        )
        return wait

    async def _start_batch(
        self, conn: Conn, items: list[tuple[MessageRecord, float | None]]
    ) -> list[float | None]:
        waits: list[float | None] = []
        records: list[MessageRecord] = []
        for record, interval in items:
            wait = None
            if interval:
                wait = await _claim_recipient(conn, record.to, interval, record.message_id)
            waits.append(wait)
            records.append(record if wait is None else record.model_copy(update={"attempts": []}))
        # In a batch (pipelined, or this statement alone), a taken message id fails the
        # statement (the batch then runs one by one, and that send's own write says which
        # id was taken); in the one-by-one retry the rows stored are counted here.
        conflict = " ON CONFLICT (message_id) DO NOTHING RETURNING 1" if retrying(conn) else ""
        cur = await conn.execute(
            "INSERT INTO messages (message_id, phone, status, provider, provider_message_id,"
            " lease_until, created_at, record)"
            " SELECT * FROM json_to_recordset(%s::json) AS r(message_id text, phone text,"
            " status text, provider text, provider_message_id text, lease_until timestamptz,"
            " created_at timestamptz, record text)" + conflict,
            (
                _rows(
                    {
                        "message_id": r.message_id,
                        "phone": r.to,
                        "status": r.status.value,
                        "provider": r.provider,
                        "provider_message_id": r.provider_message_id,
                        "lease_until": _timestamp(r.lease_until),
                        "created_at": _timestamp(r.created_at),
                        "record": r.model_dump_json(),
                    }
                    for r in records
                ),
            ),
        )
        if conflict and len(await cur.fetchall()) != len(records):
            # One send (GroupCommit's one-by-one retry) whose id was taken.
            raise StoreError(f"message {records[0].message_id!r} already exists")
        return waits

    async def update_message(
        self,
        message_id: str,
        *,
        attempts: Sequence[Attempt],
        status: DeliveryStatus | None = None,
        provider: str | None = None,
        provider_message_id: str | None = None,
        remaining_credits: int | None = None,
        source: str = "send",
    ) -> list[AnyEvent]:
        attempts = list(attempts)

        async def write(conn: Conn) -> list[AnyEvent]:
            # Meet any event of this vendor id that another instance stores meanwhile: the
            # vendor lock (``locks`` below, taken by the batch before any write runs) first,
            # then the row, the order ingest takes them in.
            record = await _load_message(conn, message_id, lock=True)
            if record is None:
                raise StoreError(f"unknown message {message_id!r}")
            if provider_message_id is not None and provider is None and record.provider:
                await _advisory(conn, self._vendor_lock(record.provider, provider_message_id))
            record.attempts = attempts
            if provider is not None:
                record.provider = provider
            if remaining_credits is not None:
                record.remaining_credits = remaining_credits
            if status is not None:
                apply_status(record, status, utcnow(), source)
            if provider_message_id is not None:
                record.provider_message_id = provider_message_id
            record.updated_at = utcnow()
            if provider_message_id is None or record.provider is None:
                await _save_message(conn, record)
                return []
            # The save and a look for orphans of this vendor id, in one statement: it
            # starts after the vendor lock was taken, so it sees every event stored so far.
            if not await _save_and_probe_orphans(conn, record):
                return []
            return await _link_orphans(conn, record)

        if provider_message_id is not None and provider is None:
            # The vendor lock is known only once the row is read: rare (a caller setting a
            # vendor id without the instance), written on its own.
            return await self._write(write)
        if self._writer is None:
            raise StoreError("the store is not open")
        locks: tuple[int, ...] = ()
        if provider_message_id is not None and provider is not None:
            locks = (self._vendor_lock(provider, provider_message_id),)
        update = _Update(
            message_id,
            attempts,
            status,
            provider,
            provider_message_id,
            remaining_credits,
            source,
        )
        linked: list[AnyEvent] = await self._writer.run_batched(
            self._update_batch, update, locks=locks
        )
        return linked

    async def _update_batch(self, conn: Conn, items: list[_Update]) -> list[list[AnyEvent]]:
        """The updates the group commit holds at once, together: one statement reads every
        row (locked, in message-id order) and says of each whether orphan events wait for
        the vendor id being set; one more saves every row (it travels with the commit).
        Orphans are then linked one message at a time (rare). The vendor locks were taken
        by the batch's statement before, so the look for orphans sees every event stored
        so far for each vendor id."""
        # In this batched path a vendor id always comes with its instance (update_message).
        probed = [item for item in items if item.provider_message_id is not None]
        cur = await conn.execute(
            # Each vendor id's events are found through their index (a subquery per id):
            # a join on ``message_id IS NULL`` read every orphan event stored so far.
            "WITH u AS MATERIALIZED (SELECT u.message_id, (SELECT bool_or(e.message_id IS NULL)"
            " FROM events AS e WHERE e.provider = u.provider"
            " AND e.provider_message_id = u.vendor_id) AS waiting"
            " FROM json_to_recordset(%s::json) AS u(message_id text, provider text, vendor_id text))"
            " SELECT m.message_id, m.record,"
            " EXISTS (SELECT 1 FROM u WHERE u.message_id = m.message_id AND u.waiting)"
            " FROM messages AS m WHERE m.message_id = ANY(" + _TEXTS + ")"
            " ORDER BY m.message_id FOR UPDATE OF m",
            (
                _rows(
                    {
                        "message_id": item.message_id,
                        "provider": item.provider,
                        "vendor_id": item.provider_message_id,
                    }
                    for item in probed
                ),
                _rows(sorted({item.message_id for item in items})),
            ),
        )
        records: dict[str, MessageRecord] = {}
        orphaned: set[str] = set()
        for mid, payload, waiting in await cur.fetchall():
            records[str(mid)] = MessageRecord.model_validate_json(payload)
            if waiting:
                orphaned.add(str(mid))
        for item in items:
            record = records.get(item.message_id)
            if record is None:
                raise StoreError(f"unknown message {item.message_id!r}")
            record.attempts = list(item.attempts)
            if item.provider is not None:
                record.provider = item.provider
            if item.remaining_credits is not None:
                record.remaining_credits = item.remaining_credits
            if item.status is not None:
                apply_status(record, item.status, utcnow(), item.source)
            if item.provider_message_id is not None:
                record.provider_message_id = item.provider_message_id
            record.updated_at = utcnow()
        saved = list(records.values())
        await conn.execute(
            # The rows are found through their ids' index (``= ANY``): joined to the
            # function's rows instead, the planner (which guesses 100 of them) scanned the
            # whole table while it was small enough, up to ~10,000 rows.
            "WITH u AS MATERIALIZED (SELECT * FROM json_to_recordset(%s::json)"
            " AS u(message_id text, status text, provider text, vendor_id text, record text))"
            " UPDATE messages AS m SET status = u.status, provider = u.provider,"
            " provider_message_id = u.vendor_id, record = u.record FROM u"
            " WHERE m.message_id = ANY(ARRAY(SELECT message_id FROM u))"
            " AND m.message_id = u.message_id",
            (
                _rows(
                    {
                        "message_id": r.message_id,
                        "status": r.status.value,
                        "provider": r.provider,
                        "vendor_id": r.provider_message_id,
                        "record": r.model_dump_json(),
                    }
                    for r in saved
                ),
            ),
        )
        results: list[list[AnyEvent]] = []
        for item in items:
            record = records[item.message_id]
            if (
                item.message_id in orphaned
                and record.provider == item.provider
                and record.provider_message_id == item.provider_message_id
            ):
                orphaned.discard(item.message_id)
                results.append(await _link_orphans(conn, record))
            else:
                results.append([])
        return results

    async def get_message(self, message_id: str) -> MessageRecord | None:
        return await self._read(lambda conn: _load_message(conn, message_id))

    async def list_messages(
        self,
        *,
        limit: int | None = None,
        phone: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> list[MessageRecord]:
        async def read(conn: Conn) -> list[MessageRecord]:
            cur = await conn.execute(
                "SELECT record FROM messages"
                " WHERE (%(phone)s::text IS NULL OR phone = %(phone)s)"
                " AND (%(status)s::text IS NULL OR status = %(status)s)"
                " ORDER BY id DESC LIMIT %(limit)s",
                {
                    "phone": phone,
                    "status": None if status is None else status.value,
                    "limit": limit,
                },
            )
            return [MessageRecord.model_validate_json(row[0]) for row in await cur.fetchall()]

        return await self._read(read)

    async def list_unsettled(
        self,
        *,
        created_before: datetime,
        created_after: datetime | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        for at in (created_before, created_after):
            if at is not None and (at.tzinfo is None or at.utcoffset() is None):
                raise StoreError("list_unsettled: times must be timezone-aware")
        unsettled = [s.value for s in DeliveryStatus if not s.is_final]

        async def read(conn: Conn) -> list[MessageRecord]:
            cur = await conn.execute(
                "SELECT record FROM messages WHERE provider_message_id IS NOT NULL"
                " AND status = ANY(%(statuses)b) AND created_at <= %(before)s"
                " AND (%(after)s::timestamptz IS NULL OR created_at > %(after)s)"
                " ORDER BY created_at, id LIMIT %(limit)s",
                {
                    "statuses": unsettled,
                    "before": created_before,
                    "after": created_after,
                    "limit": limit,
                },
            )
            return [MessageRecord.model_validate_json(row[0]) for row in await cur.fetchall()]

        return await self._read(read)

    # -- callbacks ------------------------------------------------------------------------------

    async def ingest(
        self,
        entry: InboxEntry,
        events: Sequence[AnyEvent],
        *,
        owner: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> list[AnyEvent]:
        """See :meth:`Store.ingest`. With ``owner``, the new events are stored already
        claimed by ``owner`` for ``lease`` seconds (as :meth:`claim_dispatch` would), so
        that the receiving process hands them out and no other dispatcher takes them.

        Every request the group commit holds at once is stored together
        (:meth:`_ingest_batch`): a few statements per transaction, not a few per push."""
        if self._writer is None:
            raise StoreError("the store is not open")
        request = _Ingest(entry, list(events), owner, float(lease))
        new: list[AnyEvent] = await self._writer.run_batched(
            self._ingest_batch, request, locks=tuple(self._ingest_keys(request.events))
        )
        return new

    def _ingest_keys(self, events: Sequence[AnyEvent]) -> set[int]:
        """The advisory locks storing ``events`` takes: each vendor id's, and the number of
        each receipt with one (a receipt no message has may be tied to its number's
        unknown record)."""
        keys = {
            self._vendor_lock(e.provider, e.provider_message_id)
            for e in events
            if e.provider_message_id
        }
        keys.update(
            self._phone_lock(e.phone)
            for e in events
            if e.provider_message_id and e.phone and isinstance(e, DeliveryReceipt)
        )
        return keys

    async def _ingest_batch(
        self, conn: Conn, requests: list[_Ingest]
    ) -> list[list[AnyEvent]] | AfterCommit[list[list[AnyEvent]]]:
        """Store ``requests`` (one per caller) in three statements in the usual case: the
        advisory locks of all (taken by the batch, sorted, before any write), one
        look-up of every message their events may belong to, one insert of the requests and
        their events (a fourth saves the messages their receipts move). A request with a
        receipt to tie to an unknown record (rare) makes the batch store its requests one
        at a time instead, each seeing what the one before changed."""
        # The advisory locks were taken by the batch (GroupCommit.run_batched's ``locks``).
        found = await _Lookup.run(conn, [e for r in requests for e in r.events])
        resolved: list[list[AnyEvent]] = []
        for request in requests:
            events: list[AnyEvent] = []
            for event in request.events:
                vendor_id = event.provider_message_id
                if event.message_id is None and vendor_id is not None:
                    candidates = found.sharing(event.provider, vendor_id)
                    message_id = correlate(event, candidates) if candidates else None
                    if (
                        message_id is None
                        and not candidates
                        and isinstance(event, DeliveryReceipt)
                        and event.phone is not None
                        and tie_to_unknown(event, found.undecided(event.phone)) is not None
                    ):
                        return [await self._ingest_one(conn, r) for r in requests]
                    if message_id is not None:
                        event = event.model_copy(update={"message_id": message_id})
                events.append(event)
            resolved.append(events)
        cur = await _insert_requests(conn, requests, resolved)

        async def new_events() -> list[list[AnyEvent]]:
            inserted = {(str(event_id), int(n)) for event_id, n in await cur.fetchall()}
            results: list[list[AnyEvent]] = []
            for n, events in enumerate(resolved):
                new: list[AnyEvent] = []
                for event in events:
                    if (event.event_id, n) not in inserted:
                        continue  # stored before, by this request or another
                    inserted.discard((event.event_id, n))  # a second copy is not new
                    new.append(event)
                results.append(new)
            return results

        if not any(
            event.message_id is not None and isinstance(event, DeliveryReceipt)
            for events in resolved
            for event in events
        ):
            # No status to move: which events were new is read once the commit is back.
            return AfterCommit(new_events)
        results = await new_events()
        applied: dict[str, list[DeliveryReceipt]] = {}
        for new in results:
            for event in new:
                if event.message_id is not None and isinstance(event, DeliveryReceipt):
                    applied.setdefault(event.message_id, []).append(event)
        await _apply_receipts(conn, applied, found)
        return results

    async def _ingest_one(self, conn: Conn, request: _Ingest) -> list[AnyEvent]:
        """One request, event by event (the tie of a receipt to an unknown record)."""
        entry, events, owner, lease = request
        event_ids = json.dumps([e.event_id for e in events])
        inbox_id = await _insert_raw_request(conn, "inbox", entry, "event_ids", event_ids)
        new: list[AnyEvent] = []
        for event in events:
            vendor_id = event.provider_message_id
            if vendor_id is not None:
                await _advisory(conn, self._vendor_lock(event.provider, vendor_id))
            if event.message_id is None and vendor_id is not None:
                candidates = await _sharing(conn, event.provider, vendor_id)
                message_id = correlate(event, candidates) if candidates else None
                if message_id is None and not candidates:
                    message_id = await self._tie(conn, event, vendor_id)
                if message_id is not None:
                    event = event.model_copy(update={"message_id": message_id})
            cur = await conn.execute(
                "INSERT INTO events (event_id, inbox_id, kind, provider,"
                " provider_message_id, phone, message_id, received_at, payload,"
                " claimed_by, claimed_until)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " CASE WHEN %s::text IS NULL THEN NULL"
                " ELSE clock_timestamp() + make_interval(secs => %s) END)"
                " ON CONFLICT (event_id) DO NOTHING RETURNING 1",
                (
                    event.event_id,
                    inbox_id,
                    event.kind,
                    event.provider,
                    vendor_id,
                    event.phone,
                    event.message_id,
                    event.received_at,
                    event.model_dump_json(exclude={"message_id"}),
                    owner,
                    owner,
                    float(lease),
                ),
            )
            if await cur.fetchone() is None:
                continue  # stored before, by this request or another
            if event.message_id is not None and isinstance(event, DeliveryReceipt):
                record = await _load_message(conn, event.message_id, lock=True)
                if record is not None and _apply(record, event):
                    await _save_message(conn, record)
            new.append(event)
        return new

    async def quarantine(self, entry: QuarantineEntry) -> None:
        async def write(conn: Conn) -> None:
            await _insert_raw_request(conn, "quarantine", entry, "reason", entry.reason)

        await self._write(write, pipelined=True)

    async def list_events(
        self, *, limit: int | None = None, message_id: str | None = None
    ) -> list[AnyEvent]:
        async def read(conn: Conn) -> list[AnyEvent]:
            cur = await conn.execute(
                "SELECT payload, message_id FROM events"
                " WHERE (%(message_id)s::text IS NULL OR message_id = %(message_id)s)"
                " ORDER BY received_at DESC, id DESC LIMIT %(limit)s",
                {"message_id": message_id, "limit": limit},
            )
            return [_event(*row) for row in await cur.fetchall()]

        return await self._read(read)

    async def list_quarantine(self, *, limit: int | None = None) -> list[QuarantineEntry]:
        async def read(conn: Conn) -> list[QuarantineEntry]:
            return [
                QuarantineEntry(**fields, reason=reason)
                for fields, reason in await _raw_requests(conn, "quarantine", "reason", limit)
            ]

        return await self._read(read)

    async def count_inbox(self) -> int:
        async def read(conn: Conn) -> int:
            row = await (await conn.execute("SELECT count(*) FROM inbox")).fetchone()
            return 0 if row is None else int(row[0])

        return await self._read(read)

    async def list_inbox(self, *, limit: int | None = None) -> list[InboxEntry]:
        async def read(conn: Conn) -> list[InboxEntry]:
            return [
                InboxEntry(**fields, event_ids=json.loads(event_ids))
                for fields, event_ids in await _raw_requests(conn, "inbox", "event_ids", limit)
            ]

        return await self._read(read)

    async def claim_dispatch(
        self, owner: str, *, limit: int = 100, lease: float = DEFAULT_LEASE
    ) -> list[AnyEvent]:
        """Undispatched events no live claim holds, oldest first, now held by ``owner`` for
        ``lease`` seconds; rows another instance is claiming right now are skipped."""

        async def write(conn: Conn) -> list[AnyEvent]:
            cur = await conn.execute(
                "UPDATE events SET claimed_by = %(owner)s,"
                " claimed_until = clock_timestamp() + make_interval(secs => %(lease)s)"
                " WHERE id IN (SELECT id FROM events WHERE NOT dispatched"
                "   AND (claimed_until IS NULL OR claimed_until <= clock_timestamp())"
                "   ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                " RETURNING id, payload, message_id",
                {"owner": owner, "lease": lease, "limit": limit},
            )
            rows = sorted(await cur.fetchall())
            return [_event(payload, message_id) for _, payload, message_id in rows]

        return await self._write(write, pipelined=True)

    async def list_undispatched(self, *, limit: int | None = None) -> list[PendingEvent]:
        async def read(conn: Conn) -> list[PendingEvent]:
            cur = await conn.execute(
                "SELECT payload, message_id, claimed_by, claimed_until FROM events"
                " WHERE NOT dispatched ORDER BY id LIMIT %s",
                (limit,),
            )
            return [
                PendingEvent(
                    _event(payload, message_id), owner, None if until is None else _utc(until)
                )
                for payload, message_id, owner, until in await cur.fetchall()
            ]

        return await self._read(read)

    async def ack_dispatch(self, owner: str, event_ids: Sequence[str]) -> int:
        """The observers have seen these events; only ``owner``'s claims are settled (an
        id unknown, acknowledged already or claimed since by another owner is skipped).
        Returns how many were recorded."""
        ids = list(event_ids)

        async def write(conn: Conn) -> AfterCommit[int]:
            cur = await conn.execute(
                "UPDATE events SET dispatched = true, claimed_by = NULL, claimed_until = NULL"
                " WHERE event_id = ANY(" + _TEXTS + ") AND claimed_by = %s AND NOT dispatched",
                (_rows(ids), owner),
            )

            async def count() -> int:
                return cur.rowcount

            # Pipelined, the count is known once the commit is back.
            return AfterCommit(count)

        counted: int = await self._write(write, single=True)
        return counted

    async def wait_for_events(self, timeout: float) -> bool:
        """Return when another instance (or this one) stored new events (True), or after
        ``timeout`` seconds (False) (LISTEN/NOTIFY; a poll while the listener is
        reconnecting)."""
        if self._listener is None:
            raise StoreError("the store is not open")
        return await self._listener.wait(timeout)

    # -- recovery -------------------------------------------------------------------------------

    async def recover_expired(self, *, now: datetime, limit: int = 100) -> list[MessageRecord]:
        async def write(conn: Conn) -> list[MessageRecord]:
            # Rows another instance is sweeping right now are skipped, not waited for.
            cur = await conn.execute(
                "SELECT record FROM messages WHERE status = 'pending' AND lease_until < %s"
                " ORDER BY lease_until LIMIT %s FOR UPDATE SKIP LOCKED",
                (now, limit),
            )
            resolved: list[MessageRecord] = []
            for (payload,) in await cur.fetchall():
                record = MessageRecord.model_validate_json(payload)
                status = recovered_status(record)
                apply_status(record, status, now, "recovery")
                await _save_message(conn, record)
                if status is DeliveryStatus.FAILED:
                    if record.idempotency_key is not None:
                        await conn.execute(
                            "DELETE FROM idempotency_keys WHERE key = %s AND message_id = %s",
                            (record.idempotency_key, record.message_id),
                        )
                    await conn.execute(
                        "DELETE FROM recipient_guards WHERE phone = %s AND message_id = %s",
                        (record.to, record.message_id),
                    )
                resolved.append(record)
            for record in resolved:
                if record.status is DeliveryStatus.UNKNOWN:
                    await self._tie_orphans(conn, record)
            return [await _load_message(conn, r.message_id) or r for r in resolved]

        return await self._write(write)

    async def _tie(self, conn: Conn, event: AnyEvent, vendor_id: str) -> str | None:
        """Tie a receipt whose vendor id no message has to its one ``unknown`` record: the
        record takes the instance and vendor id, and the orphans that share them. Under an
        advisory lock on the number, so that two instances never tie two receipts to it."""
        if event.phone is None or not isinstance(event, DeliveryReceipt):
            return None
        await _advisory(conn, self._phone_lock(event.phone))
        message_id = tie_to_unknown(event, await _undecided(conn, event.phone))
        if message_id is None:
            return None
        record = await _load_message(conn, message_id, lock=True)
        assert record is not None
        record.provider = event.provider
        record.provider_message_id = vendor_id
        record.updated_at = utcnow()
        await _save_message(conn, record)
        await _link_orphans(conn, record)
        return message_id

    async def _tie_orphans(self, conn: Conn, record: MessageRecord) -> None:
        """Offer a record just made ``unknown`` every orphan receipt of its number from an
        instance it tried (they arrived while it was still pending)."""
        for provider in dict.fromkeys(a.provider for a in record.attempts):
            cur = await conn.execute(
                "SELECT payload FROM events WHERE provider = %s AND phone = %s"
                " AND message_id IS NULL AND kind = 'receipt'"
                " AND provider_message_id IS NOT NULL ORDER BY id",
                (provider, record.to),
            )
            for (payload,) in await cur.fetchall():
                event = EventAdapter.validate_json(payload)
                assert event.provider_message_id is not None
                if await self._tie(conn, event, event.provider_message_id) is not None:
                    return

    def _phone_lock(self, phone: str) -> int:
        digest = hashlib.blake2b(
            f"{self._lock_prefix}tie\0{phone}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big", signed=True)

    # -- guards ---------------------------------------------------------------------------------

    async def claim_idempotency_key(
        self, key: str, message_id: str, ttl: float, *, fingerprint: str | None = None
    ) -> IdempotencyHolder | None:
        async def write(conn: Conn) -> IdempotencyHolder | None:
            # The conflicting row stays locked even when the WHERE keeps it: the holder
            # read next cannot have changed meanwhile.
            cur = await conn.execute(
                "INSERT INTO idempotency_keys AS held (key, message_id, expires_at, fingerprint)"
                f" VALUES (%(key)s, %(message_id)s, {_NOW} + %(ttl)s, %(fingerprint)s)"
                " ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id,"
                "   expires_at = excluded.expires_at, fingerprint = excluded.fingerprint"
                f" WHERE held.expires_at <= {_NOW}"
                " RETURNING message_id",
                {
                    "key": key,
                    "message_id": message_id,
                    "ttl": float(ttl),
                    "fingerprint": fingerprint,
                },
            )
            if await cur.fetchone() is not None:
                return None
            row = await (
                await conn.execute(
                    "SELECT message_id, fingerprint FROM idempotency_keys WHERE key = %s", (key,)
                )
            ).fetchone()
            if row is None:  # pragma: no cover - the row is locked by the INSERT above
                raise StoreError("idempotency key vanished while held")
            return IdempotencyHolder(str(row[0]), row[1])

        return await self._write(write, pipelined=True)

    async def release_idempotency_key(self, key: str, message_id: str) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE key = %s AND message_id = %s",
                (key, message_id),
            )

        await self._write(write, single=True)

    async def check_recipient(
        self, phone: str, interval: float, *, message_id: str | None = None
    ) -> float | None:
        return await self._write(
            lambda conn: _claim_recipient(conn, phone, interval, message_id), pipelined=True
        )

    # -- verifications --------------------------------------------------------------------------
    # Each step is one write (one transaction) under an advisory lock on (number, purpose):
    # see notifykit.store.postgres.verifications.

    async def claim_verification_send(
        self,
        new: VerificationRecord,
        *,
        now: float,
        resend_interval: float,
        max_sends: int,
    ) -> VerificationClaim:
        return await self._write(
            lambda conn: verifications.claim_send(
                conn,
                self.schema,
                new,
                now=now,
                resend_interval=resend_interval,
                max_sends=max_sends,
            )
        )

    async def finish_verification_send(
        self, verification_id: str, claim_id: str, *, sent: bool, now: float, expires_at: float
    ) -> VerificationRecord | None:
        return await self._write(
            lambda conn: verifications.finish_send(
                conn,
                self.schema,
                verification_id,
                claim_id,
                sent=sent,
                now=now,
                expires_at=expires_at,
            )
        )

    async def check_verification(
        self, to: str, purpose: str, code_hash: str, *, now: float, max_attempts: int
    ) -> VerificationCheckStep:
        return await self._write(
            lambda conn: verifications.check(
                conn, self.schema, to, purpose, code_hash, now=now, max_attempts=max_attempts
            )
        )

    async def cancel_verification(
        self, to: str, purpose: str, *, now: float
    ) -> VerificationRecord | None:
        return await self._write(
            lambda conn: verifications.cancel(conn, self.schema, to, purpose, now=now)
        )

    async def get_verification(self, verification_id: str) -> VerificationRecord | None:
        return await self._read(lambda conn: verifications.load(conn, verification_id))

    async def current_verification(self, to: str, purpose: str) -> VerificationRecord | None:
        return await self._read(lambda conn: verifications.load_current(conn, to, purpose))


async def _insert_message(conn: Conn, record: MessageRecord) -> None:
    cur = await conn.execute(
        "INSERT INTO messages (message_id, phone, status, provider,"
        " provider_message_id, lease_until, created_at, record)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (message_id) DO NOTHING",
        (
            record.message_id,
            record.to,
            record.status.value,
            record.provider,
            record.provider_message_id,
            record.lease_until,
            record.created_at,
            record.model_dump_json(),
        ),
    )
    if cur.rowcount == 0:
        raise StoreError(f"message {record.message_id!r} already exists")


async def _claim_recipient(
    conn: Conn, phone: str, interval: float, message_id: str | None
) -> float | None:
    """Claim ``phone`` now, or the seconds left on a claim younger than ``interval`` (by
    the database's clock)."""
    cur = await conn.execute(
        "INSERT INTO recipient_guards AS held (phone, claimed_at, message_id)"
        f" VALUES (%(phone)s, {_NOW}, %(message_id)s)"
        " ON CONFLICT (phone) DO UPDATE SET claimed_at = excluded.claimed_at,"
        "   message_id = excluded.message_id"
        " WHERE held.claimed_at <= excluded.claimed_at - %(interval)s"
        " RETURNING claimed_at",
        {"phone": phone, "interval": float(interval), "message_id": message_id},
    )
    if await cur.fetchone() is not None:
        return None
    row = await (
        await conn.execute(
            f"SELECT %s - ({_NOW} - claimed_at) FROM recipient_guards WHERE phone = %s",
            (float(interval), phone),
        )
    ).fetchone()
    if row is None:  # pragma: no cover - the row is locked by the INSERT above
        raise StoreError("recipient guard vanished while held")
    return max(0.0, float(row[0]))


class _Update(NamedTuple):
    """One caller's ``update_message``."""

    message_id: str
    attempts: list[Attempt]
    status: DeliveryStatus | None
    provider: str | None
    provider_message_id: str | None
    remaining_credits: int | None
    source: str


class _Ingest(NamedTuple):
    """One caller's ``ingest``: its request, events and claim."""

    entry: InboxEntry
    events: list[AnyEvent]
    owner: str | None
    lease: float


async def _insert_requests(
    conn: Conn, requests: Sequence[_Ingest], resolved: Sequence[Sequence[AnyEvent]]
) -> psycopg.AsyncCursor[tuple[Any, ...]]:
    """One statement: every request into ``inbox`` and every event into ``events`` (in
    order; one already stored, or stored earlier in this statement, is skipped). Its rows
    (once fetched): ``(event_id, request index)`` of each event inserted."""
    cur = await conn.execute(
        "WITH inbox_rows AS ("
        " INSERT INTO inbox (provider, method, path, headers, body, received_at, event_ids)"
        " SELECT r.provider, r.method, r.path, r.headers, r.body, r.received_at, r.event_ids"
        " FROM json_to_recordset(%s::json) AS r(provider text, method text, path text,"
        " headers text, body bytea, received_at timestamptz, event_ids text, n bigint)"
        " ORDER BY r.n RETURNING id),"
        # inbox ids are drawn in insertion order: the n-th smallest is the n-th request's
        " numbered AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM inbox_rows),"
        " inserted AS ("
        " INSERT INTO events (event_id, inbox_id, kind, provider, provider_message_id, phone,"
        " message_id, received_at, payload, claimed_by, claimed_until)"
        " SELECT e.event_id, numbered.id, e.kind, e.provider, e.provider_message_id, e.phone,"
        " e.message_id, e.received_at, e.payload, e.owner,"
        " CASE WHEN e.owner IS NULL THEN NULL"
        " ELSE clock_timestamp() + make_interval(secs => e.lease) END"
        " FROM json_to_recordset(%s::json) AS e(event_id text, kind text, provider text,"
        " provider_message_id text, phone text, message_id text, received_at timestamptz,"
        " payload text, owner text, lease float8, request bigint, n bigint)"
        " JOIN numbered ON numbered.n = e.request"
        " ORDER BY e.n"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id, inbox_id)"
        " SELECT inserted.event_id, numbered.n FROM inserted"
        " JOIN numbered ON numbered.id = inserted.inbox_id",
        (
            _rows(
                {
                    "provider": r.entry.provider,
                    "method": r.entry.method,
                    "path": r.entry.path,
                    "headers": json.dumps(r.entry.headers, ensure_ascii=False),
                    "body": _bytea(r.entry.body),
                    "received_at": _timestamp(r.entry.received_at),
                    "event_ids": json.dumps([e.event_id for e in r.events]),
                    "n": n,
                }
                for n, r in enumerate(requests)
            ),
            _rows(
                {
                    "event_id": e.event_id,
                    "kind": e.kind,
                    "provider": e.provider,
                    "provider_message_id": e.provider_message_id,
                    "phone": e.phone,
                    "message_id": e.message_id,
                    "received_at": _timestamp(e.received_at),
                    "payload": e.model_dump_json(exclude={"message_id"}),
                    "owner": requests[n].owner,
                    "lease": requests[n].lease,
                    "request": n,
                    "n": i,
                }
                for i, (n, e) in enumerate(
                    (n, e) for n, events in enumerate(resolved) for e in events
                )
            ),
        ),
    )
    return cur


class _Lookup:
    """The messages a request's events may belong to, read in one statement: those with an
    event's (instance, vendor id), those named by an event's ``message_id``, and the
    ``unknown``/``pending`` records without a vendor id to a receipt's number. Each row
    keeps its ``xmin``, so that a record changed by an event can be saved without reading
    it again under a row lock (:func:`_apply_receipts`)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    @classmethod
    async def run(cls, conn: Conn, events: Sequence[AnyEvent]) -> _Lookup:
        providers = sorted({e.provider for e in events if e.provider_message_id})
        vendor_ids = sorted({e.provider_message_id for e in events if e.provider_message_id})
        ids = sorted({e.message_id for e in events if e.message_id})
        phones = sorted({e.phone for e in events if e.phone and isinstance(e, DeliveryReceipt)})
        if not vendor_ids and not ids:
            return cls([])
        cur = await conn.execute(
            "SELECT message_id, phone, provider, provider_message_id, status, record,"
            " xmin::text FROM messages"
            " WHERE (provider = ANY(" + _TEXTS.replace("%s", "%(providers)s") + ")"
            " AND provider_message_id = ANY(" + _TEXTS.replace("%s", "%(vendor_ids)s") + "))"
            " OR message_id = ANY(" + _TEXTS.replace("%s", "%(ids)s") + ")"
            " OR (phone = ANY(" + _TEXTS.replace("%s", "%(phones)s") + ")"
            " AND status IN ('unknown', 'pending') AND provider_message_id IS NULL)"
            " ORDER BY id",
            {
                "providers": _rows(providers),
                "vendor_ids": _rows(vendor_ids),
                "ids": _rows(ids),
                "phones": _rows(phones),
            },
        )
        return cls(await cur.fetchall())

    def sharing(self, provider: str, vendor_id: str) -> list[tuple[str, str]]:
        """``(message_id, to)`` of every message with this vendor id, oldest first."""
        return [(str(r[0]), str(r[1])) for r in self.rows if r[2] == provider and r[3] == vendor_id]

    def undecided(self, phone: str) -> list[MessageRecord]:
        return [
            MessageRecord.model_validate_json(r[5])
            for r in self.rows
            if r[1] == phone and r[3] is None and r[4] in ("unknown", "pending")
        ]

    def row(self, message_id: str) -> tuple[MessageRecord, str] | None:
        for r in self.rows:
            if r[0] == message_id:
                return MessageRecord.model_validate_json(r[5]), str(r[6])
        return None


async def _apply_receipts(
    conn: Conn, applied: dict[str, list[DeliveryReceipt]], found: _Lookup
) -> None:
    """Apply new receipts to their messages. Each record changed is saved in one
    statement when its row is still the version the look-up read (its ``xmin``; the
    statements travel together); otherwise it is read again under a row lock."""
    saves: list[tuple[str, psycopg.AsyncCursor[tuple[Any, ...]]]] = []
    again: list[str] = []
    for message_id, receipts in applied.items():
        seen = found.row(message_id)
        if seen is None:
            again.append(message_id)
            continue
        record, xmin = seen
        if not any([_apply(record, r) for r in receipts]):
            continue
        cur = await conn.execute(
            "UPDATE messages SET status = %s, provider = %s, provider_message_id = %s,"
            " record = %s WHERE message_id = %s AND xmin = %s::xid RETURNING 1",
            (
                record.status.value,
                record.provider,
                record.provider_message_id,
                record.model_dump_json(),
                record.message_id,
                xmin,
            ),
        )
        saves.append((message_id, cur))
    for message_id, cur in saves:
        if await cur.fetchone() is None:
            again.append(message_id)
    for message_id in again:
        locked = await _load_message(conn, message_id, lock=True)
        if locked is not None and any([_apply(locked, r) for r in applied[message_id]]):
            await _save_message(conn, locked)


async def _save_and_probe_orphans(conn: Conn, record: MessageRecord) -> bool:
    """Save ``record`` and say whether orphan events with its instance and vendor id
    exist, in one statement."""
    cur = await conn.execute(
        "WITH saved AS (UPDATE messages SET status = %s, provider = %s,"
        " provider_message_id = %s, record = %s WHERE message_id = %s)"
        " SELECT EXISTS (SELECT 1 FROM events WHERE provider = %s"
        " AND provider_message_id = %s AND message_id IS NULL)",
        (
            record.status.value,
            record.provider,
            record.provider_message_id,
            record.model_dump_json(),
            record.message_id,
            record.provider,
            record.provider_message_id,
        ),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def _advisory(conn: Conn, key: int) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


async def _load_message(conn: Conn, message_id: str, *, lock: bool = False) -> MessageRecord | None:
    query = "SELECT record FROM messages WHERE message_id = %s"
    cur = await conn.execute(query + " FOR UPDATE" if lock else query, (message_id,))
    row = await cur.fetchone()
    return None if row is None else MessageRecord.model_validate_json(row[0])


async def _save_message(conn: Conn, record: MessageRecord) -> None:
    await conn.execute(
        "UPDATE messages SET status = %s, provider = %s, provider_message_id = %s, record = %s"
        " WHERE message_id = %s",
        (
            record.status.value,
            record.provider,
            record.provider_message_id,
            record.model_dump_json(),
            record.message_id,
        ),
    )


async def _link_orphans(conn: Conn, record: MessageRecord) -> list[AnyEvent]:
    """Tie the orphan events with ``record``'s provider instance and vendor id that belong
    to it, apply them to it and save it; the linked events."""
    assert record.provider is not None and record.provider_message_id is not None
    candidates = await _sharing(conn, record.provider, record.provider_message_id)
    cur = await conn.execute(
        "SELECT payload FROM events WHERE provider = %s AND provider_message_id = %s"
        " AND message_id IS NULL ORDER BY id",
        (record.provider, record.provider_message_id),
    )
    linked: list[AnyEvent] = []
    for (payload,) in await cur.fetchall():
        event = EventAdapter.validate_json(payload)
        if correlate(event, candidates) != record.message_id:
            continue
        linked.append(event.model_copy(update={"message_id": record.message_id}))
    if linked:
        await conn.execute(
            "UPDATE events SET message_id = %s WHERE event_id = ANY(%b)",
            (record.message_id, [e.event_id for e in linked]),
        )
        for event in linked:
            _apply(record, event)
        await _save_message(conn, record)
    return linked


async def _undecided(conn: Conn, phone: str) -> list[MessageRecord]:
    """The ``unknown`` and ``pending`` records to ``phone`` without a vendor id."""
    cur = await conn.execute(
        "SELECT record FROM messages WHERE phone = %s AND status IN ('unknown', 'pending')"
        " AND provider_message_id IS NULL ORDER BY id",
        (phone,),
    )
    return [MessageRecord.model_validate_json(payload) for (payload,) in await cur.fetchall()]


async def _sharing(conn: Conn, provider: str, provider_message_id: str) -> list[tuple[str, str]]:
    """``(message_id, to)`` of every message with this vendor id, oldest first."""
    cur = await conn.execute(
        "SELECT message_id, phone FROM messages WHERE provider = %s AND provider_message_id = %s"
        " ORDER BY id",
        (provider, provider_message_id),
    )
    return [(str(m), str(p)) for m, p in await cur.fetchall()]


def _apply(record: MessageRecord, event: AnyEvent) -> bool:
    if not isinstance(event, DeliveryReceipt):
        return False
    return apply_status(record, event.status, event.occurred_at, f"{event.kind}:{event.event_id}")


def _event(payload: str, message_id: str | None) -> AnyEvent:
    return EventAdapter.validate_json(payload).model_copy(update={"message_id": message_id})


_RAW_TABLES = {("inbox", "event_ids"), ("quarantine", "reason")}


async def _insert_raw_request(
    conn: Conn, table: str, entry: InboxEntry, extra: str, value: str
) -> int:
    """Store one raw request in ``table`` (inbox or quarantine) with the table's own
    ``extra`` column; the twin of :func:`_raw_requests`. Returns the row id."""
    assert (table, extra) in _RAW_TABLES
    cur = await conn.execute(
        f"INSERT INTO {table} (provider, method, path, headers, body, received_at, {extra})"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            entry.provider,
            entry.method,
            entry.path,
            json.dumps(entry.headers, ensure_ascii=False),
            entry.body,
            entry.received_at,
            value,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _raw_requests(
    conn: Conn, table: str, extra: str, limit: int | None
) -> list[tuple[dict[str, Any], Any]]:
    """Stored raw requests of ``table`` (inbox or quarantine), newest first: the common
    fields as keyword arguments, plus the table's own ``extra`` column."""
    assert (table, extra) in _RAW_TABLES
    cur = await conn.execute(
        f"SELECT provider, method, path, headers, body, received_at, {extra}"
        f" FROM {table} ORDER BY id DESC LIMIT %s",
        (limit,),
    )
    return [
        (
            {
                "provider": provider,
                "method": method,
                "path": path,
                "headers": json.loads(headers),
                "body": bytes(body),
                "received_at": _utc(received_at),
            },
            last,
        )
        for provider, method, path, headers, body, received_at, last in await cur.fetchall()
    ]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
