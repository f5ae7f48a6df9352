"""The SQLite schema, as an ordered list of migrations.

The database's ``PRAGMA user_version`` is the number of migrations applied. Opening a store
applies the missing ones in one ``BEGIN IMMEDIATE`` transaction, so two processes opening
the same file at once cannot both migrate it. Never edit a released migration: append one.
"""

from __future__ import annotations

import sqlite3

from notifykit.errors import StoreError

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: messages, inbox, events, quarantine, idempotency keys, recipient guards.
    (
        # `record` is the MessageRecord as JSON (history and attempts included); the columns
        # beside it exist for lookups and filters.
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE,
            phone TEXT NOT NULL,
            status TEXT NOT NULL,
            provider TEXT,
            provider_message_id TEXT,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX messages_by_vendor_id ON messages (provider, provider_message_id)",
        "CREATE INDEX messages_by_phone ON messages (phone)",
        "CREATE INDEX messages_by_status ON messages (status)",
        """CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            provider TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            headers TEXT NOT NULL,
            body BLOB NOT NULL,
            received_at TEXT NOT NULL,
            event_ids TEXT NOT NULL
        )""",
        # `payload` is the event as JSON without `message_id`, which lives in its column so
        # that linking an orphan is one UPDATE.
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            inbox_id INTEGER NOT NULL REFERENCES inbox (id),
            kind TEXT NOT NULL,
            provider TEXT NOT NULL,
            provider_message_id TEXT,
            phone TEXT,
            message_id TEXT,
            received_at TEXT NOT NULL,
            dispatched INTEGER NOT NULL DEFAULT 0,
            payload TEXT NOT NULL
        )""",
        "CREATE INDEX events_by_vendor_id ON events (provider, provider_message_id)",
        "CREATE INDEX events_by_message ON events (message_id)",
        "CREATE INDEX events_by_received ON events (received_at, id)",
        "CREATE INDEX events_undispatched ON events (id) WHERE dispatched = 0",
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            provider TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            headers TEXT NOT NULL,
            body BLOB NOT NULL,
            received_at TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
        """CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            message_id TEXT NOT NULL,
            expires_at REAL NOT NULL
        )""",
        """CREATE TABLE recipient_guards (
            phone TEXT PRIMARY KEY,
            claimed_at REAL NOT NULL
        )""",
    ),
    # 2: verifications (notifykit.verify) and the last SMS per number and purpose.
    (
        # Never the code: `seed` derives it with the [verify] secret, `code_hash` checks it.
        """CREATE TABLE verifications (
            id INTEGER PRIMARY KEY,
            verification_id TEXT NOT NULL UNIQUE,
            phone TEXT NOT NULL,
            purpose TEXT NOT NULL,
            status TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            seed TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            sends INTEGER NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        # The current verification of a number and purpose: the last row (highest id).
        "CREATE INDEX verifications_current ON verifications (phone, purpose, id)",
        # `claim_id` and `previous_sent_at` let a send that no vendor accepted give the
        # interval back (an empty claim_id: no claim to give back).
        """CREATE TABLE verification_sends (
            phone TEXT NOT NULL,
            purpose TEXT NOT NULL,
            sent_at REAL NOT NULL,
            claim_id TEXT NOT NULL,
            previous_sent_at REAL,
            PRIMARY KEY (phone, purpose)
        )""",
    ),
    # 3: recovery after a crash: each message's lease (when its sender must have settled
    # it), and which message holds a recipient-guard claim.
    (
        "ALTER TABLE messages ADD COLUMN lease_until TEXT",
        "CREATE INDEX messages_pending_by_lease ON messages (lease_until) WHERE status = 'pending'",
        "ALTER TABLE recipient_guards ADD COLUMN message_id TEXT",
    ),
    # 4: dispatch by claim: who holds an undispatched event, and until when (time.time()).
    (
        "ALTER TABLE events ADD COLUMN claimed_by TEXT",
        "ALTER TABLE events ADD COLUMN claimed_until REAL",
    ),
    # 5: the fingerprint (a keyed hash, never the message) of the message holding each
    # idempotency key: a key reused for a different message is refused.
    ("ALTER TABLE idempotency_keys ADD COLUMN fingerprint TEXT",),
]


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, migrations: list[tuple[str, ...]] = MIGRATIONS) -> int:
    """Bring the schema up to date; returns the version. ``conn`` is in autocommit mode."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        if current > len(migrations):
            raise StoreError(
                f"the database has schema version {current}, newer than this notifykit "
                f"knows ({len(migrations)}): upgrade notifykit"
            )
        for version, statements in enumerate(migrations[current:], start=current + 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(migrations)
