"""``sqlite:///path``: the embedded default store, safe to share between processes.

WAL mode; the schema is versioned (:mod:`notifykit.store.migrations`). Every statement runs
in one dedicated thread (:class:`~notifykit.store.writer.SQLiteWriter`) that commits
concurrent writes together, so persisting each callback before acknowledging it stays
cheap. Every write is a ``BEGIN IMMEDIATE`` transaction: the read-modify-write guards
(idempotency keys, recipient intervals) are atomic across processes sharing the file.

``fsync=True`` sets ``synchronous=FULL``: each commit reaches the disk before it returns,
surviving a power cut. ``fsync=False`` (``NORMAL``) survives the process being killed at
any moment, not a power cut. docs/store.md has the measured cost.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from notifykit import models
from notifykit.compare import constant_time_equal
from notifykit.config import StoreConfig
from notifykit.errors import ConfigError, StoreError
from notifykit.events import DeliveryReceipt, EventAdapter
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    VerificationCheckStatus,
    VerificationRecord,
    VerificationStatus,
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
    resend_wait,
    tie_to_unknown,
)
from notifykit.store.migrations import migrate
from notifykit.store.writer import SQLiteWriter

__all__ = ["MIN_FREE_BYTES", "SQLiteStore"]

MIN_FREE_BYTES = 64 * 1024
"""Free space below which :meth:`SQLiteStore.check` reports the store failing: less than
a few pages' worth of WAL frames."""


def _ts(value: datetime) -> str:
    """A UTC timestamp whose text order is its time order: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    (``isoformat``, about twice as fast as the same ``strftime``)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"


_UNICODE_JSON = json.JSONEncoder(ensure_ascii=False)
"""``json.dumps(..., ensure_ascii=False)`` without making an encoder per call."""
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_NO_MESSAGE_ID: set[str] = {"message_id"}
"""An event's stored payload leaves out ``message_id``: it lives in its own column (never
changed: pydantic only reads it)."""


def _dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class SQLiteStore(Store):
    """A SQLite file shared by every notifier and ``notifykit`` command that names it."""

    def __init__(self, path: str | Path, *, fsync: bool = False, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.fsync = fsync
        self.timeout = timeout
        self._writer = SQLiteWriter(
            self._connect, timeout=timeout, name=f"notifykit-sqlite-{Path(self.path).name}"
        )
        # Every call is a writer job, which the writer answers with StoreError once
        # `timeout` has passed.
        self.call_timeout = timeout

    @classmethod
    def from_config(cls, config: StoreConfig) -> SQLiteStore:
        """``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (``sqlite:///:memory:``
        for a private in-memory database), with ``fsync`` and ``timeout`` from the section."""
        scheme, _, rest = config.url.partition(":")
        path = rest.removeprefix("///")
        if scheme.lower() != "sqlite" or path == rest or not path:
            raise ConfigError(
                "store.url: a SQLite store is 'sqlite:///relative/path' or "
                f"'sqlite:////absolute/path', not {config.url!r}"
            )
        return cls(path, fsync=config.fsync, timeout=config.timeout)

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r} fsync={self.fsync}>"

    @property
    def transactions(self) -> int:
        """Write transactions committed by this object (group commit makes it < writes)."""
        return self._writer.transactions

    @property
    def write_jobs(self) -> int:
        return self._writer.write_jobs

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: the writer issues BEGIN IMMEDIATE / COMMIT itself. `timeout` is
        # SQLite's busy timeout: how long to wait for another process's lock.
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            mode = self._switch_to_wal(conn)
            if self.path != ":memory:" and str(mode).lower() != "wal":
                raise StoreError(f"cannot switch {self.path} to WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.fsync else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _switch_to_wal(self, conn: sqlite3.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, retried while another process holds the lock:
        switching a new file to WAL needs an exclusive lock, and SQLite may answer "database
        is locked" at once instead of waiting out the busy timeout."""
        give_up = time.monotonic() + self.timeout
        while True:
            try:
                return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > give_up:
                    raise
                time.sleep(0.01)

    async def open(self) -> None:
        await self._writer.start()

    async def close(self) -> None:
        await self._writer.stop()

    async def check(self) -> None:
        """The base contract's no-op write, then the space left where the file lives: a
        write that changes nothing needs none, so a full disk would pass it while every
        real write fails. Less than :data:`MIN_FREE_BYTES` free raises StoreError."""

        def write(cur: sqlite3.Cursor) -> None:
            cur.execute("DELETE FROM recipient_guards WHERE 0")

        await self._writer.run(write, write=True)
        if self.path != ":memory:" and hasattr(os, "statvfs"):
            try:
                disk = os.statvfs(Path(self.path).resolve().parent)
            except OSError:
                return  # the write above has answered for the file
            if disk.f_blocks == 0:
                return  # a file system that reports no sizes (some FUSE ones)
            # Root may also use the blocks a file system keeps back from users.
            blocks = disk.f_bfree if getattr(os, "geteuid", lambda: -1)() == 0 else disk.f_bavail
            if blocks * disk.f_frsize < MIN_FREE_BYTES:
                raise StoreError("database or disk is full (no space left for the store's file)")

    # -- messages ---------------------------------------------------------------------------

    async def create_message(self, record: MessageRecord) -> None:
        await self._writer.run(lambda cur: _insert_message(cur, record), write=True)

    async def start_send(
        self, record: MessageRecord, *, recipient_interval: float | None = None
    ) -> float | None:
        """See :meth:`Store.start_send`: one write job (in a ``BEGIN IMMEDIATE``
        transaction shared with its batch), so the claim and the record land together."""

        job = functools.partial(_start_send, record, recipient_interval)
        return await self._writer.run(job, write=True)

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
        # One statement: SQLite changes the record's JSON in place (one json_set), not read,
        # validated, changed and written back whole, and moves the status only from the
        # statuses the one rule lets it leave (the rule asked here, for each status).
        params: dict[str, Any] = {
            "id": message_id,
            "attempts": _ATTEMPTS.dump_json(list(attempts)).decode(),
        }
        paths = "'$.attempts', json(:attempts)"
        columns = ""
        for name, value in (
            ("provider", provider),
            ("provider_message_id", provider_message_id),
            ("remaining_credits", remaining_credits),
        ):
            if value is not None:
                paths += f", '$.{name}', :{name}"
                params[name] = value
                if name != "remaining_credits":
                    columns += f", {name} = :{name}"
        if status is not None:
            moves = f"status IN ({_moving_to(status)})"
            params["status"] = status.value
            # Not moving: the history's path is updated_at's, set again just after.
            paths += (
                f", '$.status', CASE WHEN {moves} THEN :status ELSE status END,"
                f" CASE WHEN {moves} THEN {_HISTORY_END} ELSE '$.updated_at' END,"
                f" CASE WHEN {moves} THEN json(:change) ELSE :now END"
            )
            columns += f", status = CASE WHEN {moves} THEN :status ELSE status END"
        # Names, paths and statuses are constants; every value is a parameter.
        sql = (
            f"UPDATE messages SET record = json_set(record, {paths}, '$.updated_at', :now)"
            f"{columns} WHERE message_id = :id"
        )
        job = functools.partial(
            _update, sql, params, status, source, message_id, provider, provider_message_id
        )
        return await self._writer.run(job, write=True)

    async def get_message(self, message_id: str) -> MessageRecord | None:
        return await self._writer.run(lambda cur: _load_message(cur, message_id), write=False)

    async def list_messages(
        self,
        *,
        limit: int | None = None,
        phone: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> list[MessageRecord]:
        where, args = [], []
        if phone is not None:
            where.append("phone = ?")
            args.append(phone)
        if status is not None:
            where.append("status = ?")
            args.append(status.value)
        sql = "SELECT record FROM messages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params = (*args, -1 if limit is None else limit)

        def read(cur: sqlite3.Cursor) -> list[MessageRecord]:
            return [
                MessageRecord.model_validate_json(row[0])
                for row in cur.execute(sql, params).fetchall()
            ]

        return await self._writer.run(read, write=False)

    async def list_unsettled(
        self,
        *,
        created_before: datetime,
        created_after: datetime | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        unsettled = [s.value for s in DeliveryStatus if not s.is_final]
        # created_at lives in the record's JSON (ISO 8601, "Z"): julianday() compares instants
        # whatever the fractional digits, with no schema change.
        sql = (
            "SELECT record FROM messages"
            f" WHERE status IN ({', '.join('?' for _ in unsettled)})"
            " AND provider_message_id IS NOT NULL"
            " AND julianday(json_extract(record, '$.created_at')) <= julianday(?)"
        )
        args: list[Any] = [*unsettled, _iso(created_before)]
        if created_after is not None:
            sql += " AND julianday(json_extract(record, '$.created_at')) > julianday(?)"
            args.append(_iso(created_after))
        sql += " ORDER BY julianday(json_extract(record, '$.created_at')), id LIMIT ?"
        args.append(limit)

        def read(cur: sqlite3.Cursor) -> list[MessageRecord]:
            return [
                MessageRecord.model_validate_json(row[0])
                for row in cur.execute(sql, args).fetchall()
            ]

        return await self._writer.run(read, write=False)

    # -- callbacks --------------------------------------------------------------------------

    async def ingest(
        self,
        entry: InboxEntry,
        events: Sequence[AnyEvent],
        *,
        owner: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> list[AnyEvent]:
        job = functools.partial(_ingest, entry, list(events), owner, lease)
        new = await self._writer.run(job, write=True)
        if new and owner is None:
            self.events_arrived()
        return new

    async def quarantine(self, entry: QuarantineEntry) -> None:
        def write(cur: sqlite3.Cursor) -> None:
            _insert_raw_request(cur, "quarantine", entry, "reason", entry.reason)

        await self._writer.run(write, write=True)

    async def list_events(
        self, *, limit: int | None = None, message_id: str | None = None
    ) -> list[AnyEvent]:
        sql = "SELECT payload, message_id FROM events"
        args: tuple[object, ...] = ()
        if message_id is not None:
            sql += " WHERE message_id = ?"
            args = (message_id,)
        sql += " ORDER BY received_at DESC, id DESC LIMIT ?"
        params = (*args, -1 if limit is None else limit)

        def read(cur: sqlite3.Cursor) -> list[AnyEvent]:
            return [_event(*row) for row in cur.execute(sql, params).fetchall()]

        return await self._writer.run(read, write=False)

    async def list_quarantine(self, *, limit: int | None = None) -> list[QuarantineEntry]:
        def read(cur: sqlite3.Cursor) -> list[QuarantineEntry]:
            return [
                QuarantineEntry(**fields, reason=reason)
                for fields, reason in _raw_requests(cur, "quarantine", "reason", limit)
            ]

        return await self._writer.run(read, write=False)

    async def count_inbox(self) -> int:
        def read(cur: sqlite3.Cursor) -> int:
            return int(cur.execute("SELECT count(*) FROM inbox").fetchone()[0])

        return await self._writer.run(read, write=False)

    async def list_inbox(self, *, limit: int | None = None) -> list[InboxEntry]:
        def read(cur: sqlite3.Cursor) -> list[InboxEntry]:
            return [
                InboxEntry(**fields, event_ids=json.loads(event_ids))
                for fields, event_ids in _raw_requests(cur, "inbox", "event_ids", limit)
            ]

        return await self._writer.run(read, write=False)

    async def claim_dispatch(
        self, owner: str, *, limit: int = 100, lease: float = DEFAULT_LEASE
    ) -> list[AnyEvent]:
        # A write job: BEGIN IMMEDIATE makes the select-then-update one atomic step for
        # every process sharing the file.
        def write(cur: sqlite3.Cursor) -> list[AnyEvent]:
            now = time.time()
            rows = cur.execute(
                "SELECT id, payload, message_id FROM events WHERE dispatched = 0"
                " AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
            cur.executemany(
                "UPDATE events SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                [(owner, now + lease, row_id) for row_id, _, _ in rows],
            )
            return [_event(payload, message_id) for _, payload, message_id in rows]

        return await self._writer.run(write, write=True)

    async def list_undispatched(self, *, limit: int | None = None) -> list[PendingEvent]:
        def read(cur: sqlite3.Cursor) -> list[PendingEvent]:
            rows = cur.execute(
                "SELECT payload, message_id, claimed_by, claimed_until FROM events"
                " WHERE dispatched = 0 ORDER BY id LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            return [
                PendingEvent(
                    _event(payload, message_id),
                    owner,
                    None if until is None else datetime.fromtimestamp(until, UTC),
                )
                for payload, message_id, owner, until in rows
            ]

        return await self._writer.run(read, write=False)

    async def ack_dispatch(self, owner: str, event_ids: Sequence[str]) -> int:
        ids = [(event_id, owner) for event_id in event_ids]

        def write(cur: sqlite3.Cursor) -> int:
            done = 0
            for args in ids:
                done += cur.execute(
                    "UPDATE events SET dispatched = 1, claimed_by = NULL, claimed_until = NULL"
                    " WHERE event_id = ? AND claimed_by = ? AND dispatched = 0",
                    args,
                ).rowcount
            return done

        return await self._writer.run(write, write=True)

    # -- recovery ---------------------------------------------------------------------------

    async def recover_expired(self, *, now: datetime, limit: int = 100) -> list[MessageRecord]:
        def write(cur: sqlite3.Cursor) -> list[MessageRecord]:
            rows = cur.execute(
                "SELECT record FROM messages WHERE status = 'pending' AND lease_until < ?"
                " ORDER BY lease_until LIMIT ?",
                (_ts(now), limit),
            ).fetchall()
            resolved: list[MessageRecord] = []
            for (payload,) in rows:
                record = MessageRecord.model_validate_json(payload)
                status = recovered_status(record)
                apply_status(record, status, now, "recovery")
                _save_message(cur, record)
                if status is DeliveryStatus.FAILED:
                    if record.idempotency_key is not None:
                        cur.execute(
                            "DELETE FROM idempotency_keys WHERE key = ? AND message_id = ?",
                            (record.idempotency_key, record.message_id),
                        )
                    cur.execute(
                        "DELETE FROM recipient_guards WHERE phone = ? AND message_id = ?",
                        (record.to, record.message_id),
                    )
                resolved.append(record)
            for record in resolved:
                if record.status is DeliveryStatus.UNKNOWN:
                    _tie_orphans(cur, record)
            return [_load_message(cur, r.message_id) or r for r in resolved]

        return await self._writer.run(write, write=True)

    # -- guards -----------------------------------------------------------------------------

    async def claim_idempotency_key(
        self, key: str, message_id: str, ttl: float, *, fingerprint: str | None = None
    ) -> IdempotencyHolder | None:
        def write(cur: sqlite3.Cursor) -> IdempotencyHolder | None:
            now = time.time()
            # Taken unless a claim that has not expired stands: one statement; the holder
            # read only when refused.
            taken = cur.execute(
                "INSERT INTO idempotency_keys (key, message_id, expires_at, fingerprint)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " message_id = excluded.message_id, expires_at = excluded.expires_at,"
                " fingerprint = excluded.fingerprint WHERE NOT expires_at > ?",
                (key, message_id, now + ttl, fingerprint, now),
            ).rowcount
            if taken:
                return None
            row = cur.execute(
                "SELECT message_id, fingerprint FROM idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
            return IdempotencyHolder(str(row[0]), row[1])

        return await self._writer.run(write, write=True)

    async def release_idempotency_key(self, key: str, message_id: str) -> None:
        def write(cur: sqlite3.Cursor) -> None:
            cur.execute(
                "DELETE FROM idempotency_keys WHERE key = ? AND message_id = ?", (key, message_id)
            )

        await self._writer.run(write, write=True)

    async def check_recipient(
        self, phone: str, interval: float, *, message_id: str | None = None
    ) -> float | None:
        return await self._writer.run(
            lambda cur: _claim_recipient(cur, phone, interval, message_id), write=True
        )

    # -- verifications ------------------------------------------------------------------------
    # Each is one write job: one BEGIN IMMEDIATE transaction (shared with other jobs of the
    # batch; a failing job undone alone), so atomic across every process on the file.

    async def claim_verification_send(
        self,
        new: VerificationRecord,
        *,
        now: float,
        resend_interval: float,
        max_sends: int,
    ) -> VerificationClaim:
        def write(cur: sqlite3.Cursor) -> VerificationClaim:
            row = cur.execute(
                "SELECT sent_at FROM verification_sends WHERE phone = ? AND purpose = ?",
                (new.to, new.purpose),
            ).fetchone()
            last: float | None = None if row is None else float(row[0])
            if last is not None and now - last < resend_interval:
                return VerificationClaim(
                    "limited", retry_after=resend_wait(now, last, resend_interval)
                )
            current = _current_verification(cur, new.to, new.purpose)
            outcome: Literal["new", "resend"] = "new"
            if current is not None and current.status is VerificationStatus.PENDING:
                if current.expires_at > now:
                    if current.sends >= max_sends:
                        return VerificationClaim("limited", retry_after=current.expires_at - now)
                    outcome = "resend"
                else:
                    _set_verification(cur, current.verification_id, now, status="expired")
            if outcome == "new":
                try:
                    _insert_verification(cur, new)
                except sqlite3.IntegrityError:
                    raise StoreError(
                        f"verification {new.verification_id!r} already exists"
                    ) from None
                current = new
            claim_id = uuid.uuid4().hex
            cur.execute(
                "INSERT OR REPLACE INTO verification_sends"
                " (phone, purpose, sent_at, claim_id, previous_sent_at) VALUES (?, ?, ?, ?, ?)",
                (new.to, new.purpose, now, claim_id, last),
            )
            return VerificationClaim(outcome, current, claim_id)

        return await self._writer.run(write, write=True)

    async def finish_verification_send(
        self, verification_id: str, claim_id: str, *, sent: bool, now: float, expires_at: float
    ) -> VerificationRecord | None:
        def write(cur: sqlite3.Cursor) -> VerificationRecord | None:
            record = _load_verification(cur, verification_id)
            if record is None:
                return None
            pending = record.status is VerificationStatus.PENDING
            if sent:
                if pending:
                    _set_verification(
                        cur, verification_id, now, sends=record.sends + 1, expires_at=expires_at
                    )
                else:
                    _set_verification(cur, verification_id, now, sends=record.sends + 1)
                return _load_verification(cur, verification_id)
            previous = cur.execute(
                "SELECT previous_sent_at FROM verification_sends"
                " WHERE phone = ? AND purpose = ? AND claim_id = ?",
                (record.to, record.purpose, claim_id),
            ).fetchone()
            if previous is not None and previous[0] is None:
                cur.execute(
                    "DELETE FROM verification_sends WHERE phone = ? AND purpose = ?",
                    (record.to, record.purpose),
                )
            elif previous is not None:
                cur.execute(
                    "UPDATE verification_sends SET sent_at = ?, claim_id = '',"
                    " previous_sent_at = NULL WHERE phone = ? AND purpose = ?",
                    (previous[0], record.to, record.purpose),
                )
            if pending and record.sends == 0:
                _set_verification(cur, verification_id, now, status="failed")
                return _load_verification(cur, verification_id)
            return record

        return await self._writer.run(write, write=True)

    async def check_verification(
        self, to: str, purpose: str, code_hash: str, *, now: float, max_attempts: int
    ) -> VerificationCheckStep:
        def write(cur: sqlite3.Cursor) -> VerificationCheckStep:
            record = _current_verification(cur, to, purpose)
            if record is None or record.status in _GONE:
                return VerificationCheckStep(VerificationCheckStatus.NOT_FOUND, record)
            vid = record.verification_id
            if record.expires_at <= now or record.status is VerificationStatus.EXPIRED:
                if record.status is VerificationStatus.PENDING:
                    record = _set_verification(cur, vid, now, status="expired")
                return VerificationCheckStep(VerificationCheckStatus.EXPIRED, record)
            if record.status is VerificationStatus.MAX_ATTEMPTS:
                return VerificationCheckStep(VerificationCheckStatus.MAX_ATTEMPTS, record)
            if constant_time_equal(code_hash, record.code_hash):
                record = _set_verification(cur, vid, now, status="approved")
                return VerificationCheckStep(VerificationCheckStatus.APPROVED, record)
            attempts = record.attempts + 1
            if attempts >= max_attempts:
                record = _set_verification(cur, vid, now, attempts=attempts, status="max_attempts")
                return VerificationCheckStep(VerificationCheckStatus.MAX_ATTEMPTS, record)
            record = _set_verification(cur, vid, now, attempts=attempts)
            return VerificationCheckStep(VerificationCheckStatus.INCORRECT, record)

        return await self._writer.run(write, write=True)

    async def cancel_verification(
        self, to: str, purpose: str, *, now: float
    ) -> VerificationRecord | None:
        def write(cur: sqlite3.Cursor) -> VerificationRecord | None:
            record = _current_verification(cur, to, purpose)
            if record is None or record.status is not VerificationStatus.PENDING:
                return None
            if record.expires_at <= now:
                _set_verification(cur, record.verification_id, now, status="expired")
                return None
            return _set_verification(cur, record.verification_id, now, status="canceled")

        return await self._writer.run(write, write=True)

    async def get_verification(self, verification_id: str) -> VerificationRecord | None:
        return await self._writer.run(
            lambda cur: _load_verification(cur, verification_id), write=False
        )

    async def current_verification(self, to: str, purpose: str) -> VerificationRecord | None:
        return await self._writer.run(
            lambda cur: _current_verification(cur, to, purpose), write=False
        )


# -- helpers run in the writer thread ----------------------------------------------------------


def _load_message(cur: sqlite3.Cursor, message_id: str) -> MessageRecord | None:
    row = cur.execute("SELECT record FROM messages WHERE message_id = ?", (message_id,)).fetchone()
    return None if row is None else MessageRecord.model_validate_json(row[0])


def _save_message(cur: sqlite3.Cursor, record: MessageRecord) -> None:
    cur.execute(
        "UPDATE messages SET status = ?, provider = ?, provider_message_id = ?, record = ?"
        " WHERE message_id = ?",
        (
            record.status.value,
            record.provider,
            record.provider_message_id,
            record.model_dump_json(),
            record.message_id,
        ),
    )


def _ingest(
    entry: InboxEntry,
    events: list[AnyEvent],
    owner: str | None,
    lease: float,
    cur: sqlite3.Cursor,
) -> list[AnyEvent]:
    """:meth:`SQLiteStore.ingest`'s write: the request, then each event not stored yet,
    tied to its message and applied to it."""
    claimed_until = None if owner is None else time.time() + lease
    inbox_id = _insert_raw_request(
        cur, "inbox", entry, "event_ids", json.dumps([e.event_id for e in events])
    )
    new: list[AnyEvent] = []
    for event in events:
        vendor_id = event.provider_message_id
        if event.message_id is not None or vendor_id is None:
            seen = cur.execute(
                "SELECT 1 FROM events WHERE event_id = ?", (event.event_id,)
            ).fetchone()
            if seen is not None:
                continue
        else:
            # One look-up: whether the event is stored already, the messages with
            # its vendor id, and whether a message it might be tied to exists.
            tie = isinstance(event, DeliveryReceipt) and event.phone is not None
            found = cur.execute(
                _LOOK_UP,
                (event.event_id, event.provider, vendor_id, tie, event.phone),
            ).fetchall()
            if found and found[0][0] == 0:
                continue
            candidates = [(str(m), str(p)) for kind, _, m, p in found if kind == 1]
            message_id = correlate(event, candidates) if candidates else None
            if message_id is None and not candidates and found:
                message_id = _tie(cur, event, vendor_id)
            if message_id is not None:
                event = event.model_copy(update={"message_id": message_id})
        cur.execute(
            "INSERT INTO events (event_id, inbox_id, kind, provider,"
            " provider_message_id, phone, message_id, received_at, payload,"
            " claimed_by, claimed_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.event_id,
                inbox_id,
                event.kind,
                event.provider,
                vendor_id,
                event.phone,
                event.message_id,
                _ts(event.received_at),
                event.model_dump_json(exclude=_NO_MESSAGE_ID),
                owner,
                claimed_until,
            ),
        )
        if event.message_id is not None and isinstance(event, DeliveryReceipt):
            _advance(
                cur,
                event.message_id,
                event.status,
                _ts(event.occurred_at),
                f"{event.kind}:{event.event_id}",
            )
        new.append(event)
    return new


def _start_send(
    record: MessageRecord, recipient_interval: float | None, cur: sqlite3.Cursor
) -> float | None:
    """:meth:`SQLiteStore.start_send`'s write."""
    wait = None
    if recipient_interval:
        wait = _claim_recipient(cur, record.to, recipient_interval, record.message_id)
    _insert_message(cur, record if wait is None else record.model_copy(update={"attempts": []}))
    return wait


def _update(
    sql: str,
    params: dict[str, Any],
    status: DeliveryStatus | None,
    source: str,
    message_id: str,
    provider: str | None,
    provider_message_id: str | None,
    cur: sqlite3.Cursor,
) -> list[AnyEvent]:
    """:meth:`SQLiteStore.update_message`'s write (a function and its arguments, not a
    closure: fewer objects for the collector per write)."""
    now = params["now"] = _ts(utcnow())
    if status is not None:
        params["change"] = _change(status, now, source)
    if not cur.execute(sql, params).rowcount:
        raise StoreError(f"unknown message {message_id!r}")
    if provider_message_id is None:
        return []
    owner = provider
    if owner is None:  # a vendor id set without the instance: rare
        owner = cur.execute(
            "SELECT provider FROM messages WHERE message_id = ?", (message_id,)
        ).fetchone()[0]
        if owner is None:
            return []
    return _link_orphans_of(cur, message_id, owner, provider_message_id)


def _orphans(cur: sqlite3.Cursor, provider: str, provider_message_id: str) -> list[Any]:
    """The payloads of the stored events with this instance and vendor id and no message."""
    return cur.execute(
        "SELECT payload FROM events WHERE provider = ? AND provider_message_id = ?"
        " AND message_id IS NULL ORDER BY id",
        (provider, provider_message_id),
    ).fetchall()


def _link_orphans_of(
    cur: sqlite3.Cursor, message_id: str, provider: str, provider_message_id: str
) -> list[AnyEvent]:
    """:func:`_link_orphans` for a message just given this vendor id: one look for orphans,
    the record read only when there are some (rare)."""
    rows = _orphans(cur, provider, provider_message_id)
    if not rows:
        return []
    record = _load_message(cur, message_id)
    assert record is not None
    return _link_orphans(cur, record, rows)


def _link_orphans(
    cur: sqlite3.Cursor, record: MessageRecord, rows: list[Any] | None = None
) -> list[AnyEvent]:
    """Tie the orphan events with ``record``'s provider instance and vendor id that belong
    to it, apply them to it and save it; the linked events. ``rows``: those orphans'
    payloads when already read."""
    assert record.provider is not None and record.provider_message_id is not None
    if rows is None:
        rows = _orphans(cur, record.provider, record.provider_message_id)
    if not rows:
        return []
    candidates = _sharing(cur, record.provider, record.provider_message_id)
    linked: list[AnyEvent] = []
    for (payload,) in rows:
        event = EventAdapter.validate_json(payload)
        if correlate(event, candidates) != record.message_id:
            continue
        event = event.model_copy(update={"message_id": record.message_id})
        cur.execute(
            "UPDATE events SET message_id = ? WHERE event_id = ?",
            (record.message_id, event.event_id),
        )
        linked.append(event)
    if linked:
        for event in linked:
            _apply(record, event)
        _save_message(cur, record)
    return linked


_ATTEMPTS = TypeAdapter(list[Attempt])
_STATUSES = {status.value: status for status in DeliveryStatus}
_HISTORY_END = "'$.history[' || json_array_length(record, '$.history') || ']'"
"""A ``json_set`` path one past the record's last status change (appends there)."""
_APPEND_HISTORY = _HISTORY_END + ", json(:change)"
"""A ``json_set`` path and value appending a status change to the record's history."""


_LOOK_UP = (
    "SELECT 0, 0, NULL, NULL FROM events WHERE event_id = ?"
    " UNION ALL SELECT 1, id, message_id, phone FROM messages"
    " WHERE provider = ? AND provider_message_id = ?"
    " UNION ALL SELECT 2, 0, NULL, NULL WHERE ? AND EXISTS (SELECT 1 FROM messages"
    " WHERE phone = ? AND status IN ('unknown', 'pending') AND provider_message_id IS NULL)"
    " ORDER BY 1, 2"
)
"""What storing an event with a vendor id needs to know, in one statement: a ``0`` row
when the event is stored already; a ``1`` row ``(id, message_id, phone)`` per message with
its instance and vendor id, oldest first; a ``2`` row when (asked to look, for a receipt with a
number) a message without a vendor id is ``unknown`` or ``pending`` to its number, one
:func:`_tie` may tie it to."""


def _moving_to(status: DeliveryStatus) -> str:
    """The stored statuses a message moves to ``status`` from, by the one rule
    (:func:`notifykit.models.status_advances`, asked now for each status), as a list of
    SQL literals (the values are the enum's constants)."""
    return ", ".join(f"'{s.value}'" for s in DeliveryStatus if models.status_advances(s, status))


def _advance(
    cur: sqlite3.Cursor, message_id: str, status: DeliveryStatus, at: str, source: str
) -> None:
    """:func:`notifykit.models.apply_status` on a stored record, by the same rule, in one
    statement: SQLite changes its JSON in place (not read, validated and written back)."""
    cur.execute(
        "UPDATE messages SET record = json_set(record, '$.status', :status, "
        + _APPEND_HISTORY
        + f", '$.updated_at', :now), status = :status WHERE message_id = :id"
        f" AND status IN ({_moving_to(status)})",
        {
            "status": status.value,
            "change": _change(status, at, source),
            "now": _ts(utcnow()),
            "id": message_id,
        },
    )


def _change(status: DeliveryStatus, at: str, source: str) -> str:
    """A :class:`~notifykit.models.StatusChange` as the JSON its model reads back."""
    return _COMPACT_JSON.encode({"status": status.value, "at": at, "source": source})


def _undecided(cur: sqlite3.Cursor, phone: str) -> list[MessageRecord]:
    """The ``unknown`` and ``pending`` records to ``phone`` without a vendor id."""
    rows = cur.execute(
        "SELECT record FROM messages WHERE phone = ? AND status IN ('unknown', 'pending')"
        " AND provider_message_id IS NULL ORDER BY id",
        (phone,),
    ).fetchall()
    return [MessageRecord.model_validate_json(payload) for (payload,) in rows]


def _tie(cur: sqlite3.Cursor, event: AnyEvent, vendor_id: str) -> str | None:
    """Tie a receipt whose vendor id no message has to its one ``unknown`` record: the
    record takes the instance and vendor id, and the orphans that share them."""
    if event.phone is None or not isinstance(event, DeliveryReceipt):
        return None
    message_id = tie_to_unknown(event, _undecided(cur, event.phone))
    if message_id is None:
        return None
    record = _load_message(cur, message_id)
    assert record is not None
    record.provider = event.provider
    record.provider_message_id = vendor_id
    record.updated_at = utcnow()
    _save_message(cur, record)
    _link_orphans(cur, record)
    return message_id


def _tie_orphans(cur: sqlite3.Cursor, record: MessageRecord) -> None:
    """Offer a record just made ``unknown`` every orphan receipt of its number from an
    instance it tried (they arrived while it was still pending)."""
    for provider in dict.fromkeys(a.provider for a in record.attempts):
        rows = cur.execute(
            "SELECT payload FROM events WHERE provider = ? AND phone = ? AND message_id IS NULL"
            " AND kind = 'receipt' AND provider_message_id IS NOT NULL ORDER BY id",
            (provider, record.to),
        ).fetchall()
        for (payload,) in rows:
            event = EventAdapter.validate_json(payload)
            assert event.provider_message_id is not None
            if _tie(cur, event, event.provider_message_id) is not None:
                return


def _sharing(cur: sqlite3.Cursor, provider: str, provider_message_id: str) -> list[tuple[str, str]]:
    """``(message_id, to)`` of every message with this vendor id, oldest first."""
    rows = cur.execute(
        "SELECT message_id, phone FROM messages WHERE provider = ? AND provider_message_id = ?"
        " ORDER BY id",
        (provider, provider_message_id),
    ).fetchall()
    return [(str(m), str(p)) for m, p in rows]


def _apply(record: MessageRecord, event: AnyEvent) -> bool:
    if not isinstance(event, DeliveryReceipt):
        return False
    return apply_status(record, event.status, event.occurred_at, f"{event.kind}:{event.event_id}")


def _event(payload: str, message_id: str | None) -> AnyEvent:
    return EventAdapter.validate_json(payload).model_copy(update={"message_id": message_id})


def _insert_raw_request(
    cur: sqlite3.Cursor, table: str, entry: InboxEntry, extra: str, value: str
) -> int | None:
    """Store one raw request in ``table`` (inbox or quarantine), with the table's own
    ``extra`` column; the twin of :func:`_raw_requests`. Returns the row id."""
    return cur.execute(
        f"INSERT INTO {table} (provider, method, path, headers, body, received_at, {extra})"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",  # table and column names are constants
        (
            entry.provider,
            entry.method,
            entry.path,
            _UNICODE_JSON.encode(entry.headers),
            entry.body,
            _ts(entry.received_at),
            value,
        ),
    ).lastrowid


def _raw_requests(
    cur: sqlite3.Cursor, table: str, extra: str, limit: int | None
) -> list[tuple[dict[str, Any], Any]]:
    """Stored raw requests of ``table`` (inbox or quarantine), newest first: the common
    fields as keyword arguments, plus the table's own ``extra`` column."""
    rows = cur.execute(
        f"SELECT provider, method, path, headers, body, received_at, {extra}"  # constants only
        f" FROM {table} ORDER BY id DESC LIMIT ?",
        (-1 if limit is None else limit,),
    ).fetchall()
    return [
        (
            {
                "provider": provider,
                "method": method,
                "path": path,
                "headers": json.loads(headers),
                "body": bytes(body),
                "received_at": _dt(received_at),
            },
            last,
        )
        for provider, method, path, headers, body, received_at, last in rows
    ]


def _iso(at: datetime) -> str:
    """A timezone-aware time as the ISO 8601 UTC text SQLite's julianday() reads."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise StoreError("list_unsettled: times must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_GONE = frozenset(
    {VerificationStatus.APPROVED, VerificationStatus.CANCELED, VerificationStatus.FAILED}
)
_VERIFICATION_COLUMNS = (
    "verification_id, phone, purpose, status, code_hash, seed, attempts, sends,"
    " created_at, expires_at, updated_at"
)


def _verification(row: Sequence[Any]) -> VerificationRecord:
    return VerificationRecord(
        verification_id=row[0],
        to=row[1],
        purpose=row[2],
        status=VerificationStatus(row[3]),
        code_hash=row[4],
        seed=row[5],
        attempts=row[6],
        sends=row[7],
        created_at=row[8],
        expires_at=row[9],
        updated_at=row[10],
    )


def _load_verification(cur: sqlite3.Cursor, verification_id: str) -> VerificationRecord | None:
    row = cur.execute(
        f"SELECT {_VERIFICATION_COLUMNS} FROM verifications WHERE verification_id = ?",
        (verification_id,),
    ).fetchone()
    return None if row is None else _verification(row)


def _current_verification(cur: sqlite3.Cursor, to: str, purpose: str) -> VerificationRecord | None:
    row = cur.execute(
        f"SELECT {_VERIFICATION_COLUMNS} FROM verifications WHERE phone = ? AND purpose = ?"
        " ORDER BY id DESC LIMIT 1",
        (to, purpose),
    ).fetchone()
    return None if row is None else _verification(row)


def _insert_verification(cur: sqlite3.Cursor, record: VerificationRecord) -> None:
    cur.execute(
        f"INSERT INTO verifications ({_VERIFICATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.verification_id,
            record.to,
            record.purpose,
            record.status.value,
            record.code_hash,
            record.seed,
            record.attempts,
            record.sends,
            record.created_at,
            record.expires_at,
            record.updated_at,
        ),
    )


_SETTABLE = frozenset({"status", "attempts", "sends", "expires_at"})


def _set_verification(
    cur: sqlite3.Cursor, verification_id: str, now: float, **changes: object
) -> VerificationRecord:
    """Update the named columns (from a fixed set) and return the row as stored."""
    assert set(changes) <= _SETTABLE, changes
    assignments = ", ".join(f"{column} = ?" for column in changes)  # constant names only
    cur.execute(
        f"UPDATE verifications SET {assignments}, updated_at = ? WHERE verification_id = ?",
        (*changes.values(), now, verification_id),
    )
    record = _load_verification(cur, verification_id)
    assert record is not None
    return record


def _insert_message(cur: sqlite3.Cursor, record: MessageRecord) -> None:
    try:
        cur.execute(
            "INSERT INTO messages (message_id, phone, status, provider,"
            " provider_message_id, lease_until, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.message_id,
                record.to,
                record.status.value,
                record.provider,
                record.provider_message_id,
                None if record.lease_until is None else _ts(record.lease_until),
                record.model_dump_json(),
            ),
        )
    except sqlite3.IntegrityError:
        raise StoreError(f"message {record.message_id!r} already exists") from None


def _claim_recipient(
    cur: sqlite3.Cursor, phone: str, interval: float, message_id: str | None
) -> float | None:
    """Claim ``phone`` now, or the seconds left on a claim younger than ``interval``: one
    statement when the claim is taken (the claim made unless a young one stands), a read
    of the standing claim when refused."""
    now = time.time()
    taken = cur.execute(
        "INSERT INTO recipient_guards (phone, claimed_at, message_id) VALUES (?, ?, ?)"
        " ON CONFLICT (phone) DO UPDATE SET claimed_at = excluded.claimed_at,"
        " message_id = excluded.message_id WHERE NOT ? - claimed_at < ?",
        (phone, now, message_id, now, interval),
    ).rowcount
    if taken:
        return None
    row = cur.execute(
        "SELECT claimed_at FROM recipient_guards WHERE phone = ?", (phone,)
    ).fetchone()
    return float(interval - (now - row[0]))
