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
from collections.abc import Iterator, Mapping
from pathlib import Path
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
def pg_url() -> str:
    """The test PostgreSQL's URL, without a schema of the test's own (take ``pg_schema``
    beside it)."""
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


_EVENT_LOG_PLUGIN = """
import os

from notifykit import hookimpl

_PATH = os.environ["NK_TEST_EVENT_LOG"]


@hookimpl
def on_event(event):
    # One small O_APPEND write per event: whole lines, whichever process writes.
    fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{os.getpid()} {event.event_id}\\n".encode())
    finally:
        os.close(fd)
"""


class EventLog:
    """An installed plugin (a real distribution, entry point ``nk_event_log``) whose
    ``on_event`` appends ``<pid> <event_id>`` to a file: what each ``notifykit`` subprocess
    handed to its observers. Give the subprocess :meth:`env`."""

    def __init__(self, root: Path) -> None:
        self.site = root / "event-log-site"
        self.path = root / "events-dispatched.log"
        self.site.mkdir()
        (self.site / "nk_event_log_plugin.py").write_text(_EVENT_LOG_PLUGIN, encoding="utf-8")
        info = self.site / "nk_event_log-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: nk-event-log\nVersion: 1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            "[notifykit]\nnk_event_log = nk_event_log_plugin\n", encoding="utf-8"
        )

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with the plugin importable and loaded (beside the plugins ``base``'s
        ``NOTIFYKIT_LOAD_PLUGINS`` names, or beside all when it names none)."""
        env = dict(base)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(self.site) + (os.pathsep + path if path else "")
        wanted = env.get("NOTIFYKIT_LOAD_PLUGINS")
        if wanted is not None:
            env["NOTIFYKIT_LOAD_PLUGINS"] = f"{wanted},nk_event_log" if wanted else "nk_event_log"
        env["NK_TEST_EVENT_LOG"] = str(self.path)
        return env

    def dispatched(self) -> list[tuple[int, str]]:
        """``(pid, event_id)`` for every event handed to an observer so far, in order."""
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            pid, event_id = line.split(" ", 1)
            found.append((int(pid), event_id))
        return found


@pytest.fixture
def event_log(tmp_path: Path) -> EventLog:
    """An ``on_event`` plugin for ``notifykit`` subprocesses that logs what they dispatch
    (:class:`EventLog`)."""
    return EventLog(tmp_path)
