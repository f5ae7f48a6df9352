"""Versioned migrations of notifykit's PostgreSQL schema.

The migrations are the files ``migrations/NNNN_name.sql`` beside this module, applied in
order; the table ``schema_migrations`` in notifykit's schema records each applied version.
Migrating takes a transaction-level advisory lock first (one key per schema), so when ten
instances start at once one migrates and the nine others wait, then find nothing to do.
Each migration runs in that one transaction: a failure leaves the schema as it was.
Never edit a released migration: append one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from notifykit.errors import StoreError

__all__ = ["Migration", "SchemaStatus", "migrate", "migrations", "schema_status"]

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this notifykit's migrations."""

    schema: str
    current: int
    """The highest version applied (0: no notifykit schema yet)."""
    latest: int
    """The highest version this notifykit knows."""
    applied: list[tuple[int, str]]
    """``(version, name)`` of each applied migration, oldest first."""

    @property
    def pending(self) -> int:
        return max(0, self.latest - self.current)


def migrations() -> list[Migration]:
    """Every migration shipped, oldest first."""
    found = []
    for item in (resources.files(__package__ or __name__) / "migrations").iterdir():
        match = _FILE.fullmatch(item.name)
        if match:
            found.append(Migration(int(match[1]), match[2], item.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreError("notifykit's PostgreSQL migrations are not numbered 1, 2, 3…")
    return found


def lock_key(schema: str) -> int:
    """The advisory lock key that serialises migrations of ``schema`` (signed 64 bits)."""
    digest = hashlib.blake2b(f"notifykit.migrate:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


Conn = psycopg.AsyncConnection[tuple[Any, ...]]


async def _applied(conn: Conn, schema: str) -> list[tuple[int, str]]:
    cur = await conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL",
        (sql.Identifier(schema, "schema_migrations").as_string(conn),),
    )
    row = await cur.fetchone()
    if row is None or not row[0]:
        return []
    cur = await conn.execute(
        sql.SQL("SELECT version, name FROM {} ORDER BY version").format(
            sql.Identifier(schema, "schema_migrations")
        )
    )
    return [(int(v), str(n)) for v, n in await cur.fetchall()]


async def schema_status(conn: Conn, schema: str) -> SchemaStatus:
    """Read where ``schema`` stands (``conn`` in autocommit mode)."""
    applied = await _applied(conn, schema)
    return SchemaStatus(
        schema=schema,
        current=max((v for v, _ in applied), default=0),
        latest=len(migrations()),
        applied=applied,
    )


async def migrate(conn: Conn, schema: str) -> list[int]:
    """Apply the missing migrations to ``schema`` under the advisory lock; returns the
    versions this call applied (empty when another instance had done it). ``conn`` is in
    autocommit mode. Raises StoreError when the database is newer than this notifykit."""
    known = migrations()
    table = sql.Identifier(schema, "schema_migrations")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema),))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        current = max((v for v, _ in await _applied(conn, schema)), default=0)
        if current > len(known):
            raise StoreError(newer_message(schema, current, len(known)))
        done = []
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        for migration in known[current:]:
            await conn.execute(migration.sql.encode())
            await conn.execute(
                sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(table),
                (migration.version, migration.name),
            )
            done.append(migration.version)
    return done


def newer_message(schema: str, current: int, latest: int) -> str:
    return (
        f"the PostgreSQL schema {schema!r} has version {current}, newer than this notifykit "
        f"knows ({latest}): upgrade notifykit"
    )


def older_message(schema: str, current: int, latest: int) -> str:
    return (
        f"the PostgreSQL schema {schema!r} has version {current}, this notifykit needs "
        f"{latest}, and [store] migrate is false: run `notifykit store migrate` first"
    )
