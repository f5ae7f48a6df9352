"""Shared test set-up for the core and every plugin: async tests run on asyncio (anyio),
and the PostgreSQL and Redis servers of the many-instances tests.

Tests that need a server take the ``pg_store_url`` / ``redis_url`` fixtures: each test gets
a schema (``pg_schema``) or key prefix (``redis_prefix``) of its own, removed after. On a
machine without the server they skip, saying why; under CI (``CI=true``) or with
``NOTIFYKIT_REQUIRE_SERVICES=1`` they fail instead, so that CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

PG_URL = os.environ.get("NOTIFYKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NOTIFYKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def services_required() -> bool:
    """True under CI: a test that needs PostgreSQL or Redis fails instead of skipping."""
    return (
        os.environ.get("CI", "").lower() in ("true", "1")
        or os.environ.get("NOTIFYKIT_REQUIRE_SERVICES", "") == "1"
    )


def unavailable(what: str) -> NoReturn:
    if services_required():
        pytest.fail(f"{what} (CI=true: tests that need it must run, not skip)", pytrace=False)
    pytest.skip(what)


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers at PG_URL, else why not."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ModuleNotFoundError as exc:
        return f"{exc.name} is not installed (pip install -e '.[test]')"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {PG_URL}: {type(exc).__name__}: {str(exc).strip()[:200]}"
    return None


def _redis_reachable() -> str | None:
    try:
        import redis
    except ModuleNotFoundError as exc:
        return f"{exc.name} is not installed (pip install -e '.[test]')"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        return f"no Redis at {REDIS_URL}: {type(exc).__name__}: {exc}"
    return None


_checked: dict[str, str | None] = {}


def drop_pg_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name on the test PostgreSQL (not created: opening a store creates
    it), dropped after the test. Skips (fails under CI) when PostgreSQL is unreachable."""
    if "pg" not in _checked:
        _checked["pg"] = _pg_reachable()
    if (why := _checked["pg"]) is not None:
        unavailable(why)
    schema = f"nk_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def pg_store_url(pg_schema: str) -> str:
    """The test PostgreSQL's URL; use it with ``schema = pg_schema``."""
    return PG_URL


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test Redis; its keys are deleted after the test. Skips
    (fails under CI) when Redis is unreachable."""
    if "redis" not in _checked:
        _checked["redis"] = _redis_reachable()
    if (why := _checked["redis"]) is not None:
        unavailable(why)
    prefix = f"nk_test_{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
def redis_url(redis_prefix: str) -> str:
    """The test Redis's URL; use it with ``key_prefix = redis_prefix``."""
    return REDIS_URL
