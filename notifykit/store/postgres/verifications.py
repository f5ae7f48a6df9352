"""The verification steps of :class:`~notifykit.store.base.Store` on PostgreSQL.

Each step is one write of the group commit (one transaction) that first takes a
transaction-level advisory lock on (number, purpose): the steps of one number and purpose
run one after the other across every instance, and each reads what the previous committed.
The rules are those of the SQLite store, step for step (the contract suite runs both).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from notifykit.compare import constant_time_equal
from notifykit.errors import StoreError
from notifykit.models import (
    VerificationCheckStatus,
    VerificationRecord,
    VerificationStatus,
)
from notifykit.store.base import VerificationCheckStep, VerificationClaim, resend_wait
from notifykit.store.postgres.commit import Conn

__all__ = ["cancel", "check", "claim_send", "finish_send", "load", "load_current"]

_GONE = frozenset(
    {VerificationStatus.APPROVED, VerificationStatus.CANCELED, VerificationStatus.FAILED}
)
_COLUMNS = (
    "verification_id, phone, purpose, status, code_hash, seed, attempts, sends,"
    " created_at, expires_at, updated_at"
)
_SETTABLE = frozenset({"status", "attempts", "sends", "expires_at"})


def _key(schema: str, to: str, purpose: str) -> int:
    digest = hashlib.blake2b(f"{schema}\0verify\0{to}\0{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _lock(conn: Conn, schema: str, to: str, purpose: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key(schema, to, purpose),))


def _record(row: Sequence[Any]) -> VerificationRecord:
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


async def load(conn: Conn, verification_id: str) -> VerificationRecord | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM verifications WHERE verification_id = %s", (verification_id,)
    )
    row = await cur.fetchone()
    return None if row is None else _record(row)


async def load_current(conn: Conn, to: str, purpose: str) -> VerificationRecord | None:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM verifications WHERE phone = %s AND purpose = %s"
        " ORDER BY id DESC LIMIT 1",
        (to, purpose),
    )
    row = await cur.fetchone()
    return None if row is None else _record(row)


async def _set(
    conn: Conn, verification_id: str, now: float, **changes: object
) -> VerificationRecord:
    """Update the named columns (from a fixed set) and return the row as stored."""
    assert set(changes) <= _SETTABLE, changes
    assignments = ", ".join(f"{column} = %s" for column in changes)  # constant names only
    cur = await conn.execute(
        f"UPDATE verifications SET {assignments}, updated_at = %s WHERE verification_id = %s"
        f" RETURNING {_COLUMNS}",
        (*changes.values(), now, verification_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return _record(row)


async def claim_send(
    conn: Conn,
    schema: str,
    new: VerificationRecord,
    *,
    now: float,
    resend_interval: float,
    max_sends: int,
) -> VerificationClaim:
    await _lock(conn, schema, new.to, new.purpose)
    cur = await conn.execute(
        "SELECT sent_at FROM verification_sends WHERE phone = %s AND purpose = %s",
        (new.to, new.purpose),
    )
    row = await cur.fetchone()
    last: float | None = None if row is None else float(row[0])
    if last is not None and now - last < resend_interval:
        return VerificationClaim("limited", retry_after=resend_wait(now, last, resend_interval))
    current = await load_current(conn, new.to, new.purpose)
    outcome: Literal["new", "resend"] = "new"
    if current is not None and current.status is VerificationStatus.PENDING:
        if current.expires_at > now:
            if current.sends >= max_sends:
                return VerificationClaim("limited", retry_after=current.expires_at - now)
            outcome = "resend"
        else:
            await _set(conn, current.verification_id, now, status="expired")
    if outcome == "new":
        cur = await conn.execute(
            f"INSERT INTO verifications ({_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (verification_id) DO NOTHING",
            (
                new.verification_id,
                new.to,
                new.purpose,
                new.status.value,
                new.code_hash,
                new.seed,
                new.attempts,
                new.sends,
                new.created_at,
                new.expires_at,
                new.updated_at,
            ),
        )
        if cur.rowcount == 0:
            raise StoreError(f"verification {new.verification_id!r} already exists")
        current = new
    claim_id = uuid.uuid4().hex
    await conn.execute(
        "INSERT INTO verification_sends (phone, purpose, sent_at, claim_id, previous_sent_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (phone, purpose) DO UPDATE SET"
        " sent_at = excluded.sent_at, claim_id = excluded.claim_id,"
        " previous_sent_at = excluded.previous_sent_at",
        (new.to, new.purpose, now, claim_id, last),
    )
    return VerificationClaim(outcome, current, claim_id)


async def finish_send(
    conn: Conn,
    schema: str,
    verification_id: str,
    claim_id: str,
    *,
    sent: bool,
    now: float,
    expires_at: float,
) -> VerificationRecord | None:
    found = await load(conn, verification_id)
    if found is None:
        return None
    await _lock(conn, schema, found.to, found.purpose)
    record = await load(conn, verification_id)  # as it stands under the lock
    assert record is not None
    pending = record.status is VerificationStatus.PENDING
    if sent:
        if pending:
            return await _set(
                conn, verification_id, now, sends=record.sends + 1, expires_at=expires_at
            )
        return await _set(conn, verification_id, now, sends=record.sends + 1)
    cur = await conn.execute(
        "SELECT previous_sent_at FROM verification_sends"
        " WHERE phone = %s AND purpose = %s AND claim_id = %s",
        (record.to, record.purpose, claim_id),
    )
    previous = await cur.fetchone()
    if previous is not None and previous[0] is None:
        await conn.execute(
            "DELETE FROM verification_sends WHERE phone = %s AND purpose = %s",
            (record.to, record.purpose),
        )
    elif previous is not None:
        await conn.execute(
            "UPDATE verification_sends SET sent_at = %s, claim_id = '', previous_sent_at = NULL"
            " WHERE phone = %s AND purpose = %s",
            (previous[0], record.to, record.purpose),
        )
    if pending and record.sends == 0:
        return await _set(conn, verification_id, now, status="failed")
    return record


async def check(
    conn: Conn, schema: str, to: str, purpose: str, code_hash: str, *, now: float, max_attempts: int
) -> VerificationCheckStep:
    await _lock(conn, schema, to, purpose)
    record = await load_current(conn, to, purpose)
    if record is None or record.status in _GONE:
        return VerificationCheckStep(VerificationCheckStatus.NOT_FOUND, record)
    vid = record.verification_id
    if record.expires_at <= now or record.status is VerificationStatus.EXPIRED:
        if record.status is VerificationStatus.PENDING:
            record = await _set(conn, vid, now, status="expired")
        return VerificationCheckStep(VerificationCheckStatus.EXPIRED, record)
    if record.status is VerificationStatus.MAX_ATTEMPTS:
        return VerificationCheckStep(VerificationCheckStatus.MAX_ATTEMPTS, record)
    if constant_time_equal(code_hash, record.code_hash):
        record = await _set(conn, vid, now, status="approved")
        return VerificationCheckStep(VerificationCheckStatus.APPROVED, record)
    attempts = record.attempts + 1
    if attempts >= max_attempts:
        record = await _set(conn, vid, now, attempts=attempts, status="max_attempts")
        return VerificationCheckStep(VerificationCheckStatus.MAX_ATTEMPTS, record)
    record = await _set(conn, vid, now, attempts=attempts)
    return VerificationCheckStep(VerificationCheckStatus.INCORRECT, record)


async def cancel(
    conn: Conn, schema: str, to: str, purpose: str, *, now: float
) -> VerificationRecord | None:
    await _lock(conn, schema, to, purpose)
    record = await load_current(conn, to, purpose)
    if record is None or record.status is not VerificationStatus.PENDING:
        return None
    if record.expires_at <= now:
        await _set(conn, record.verification_id, now, status="expired")
        return None
    return await _set(conn, record.verification_id, now, status="canceled")
