"""Promises of the receiver that are held here directly, over real sockets on loopback:
the token is compared in constant time for every request, nothing is answered before it is
stored, and credentials sent to the receiver are not kept in the inbox."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from notifykit.asgi import create_app
from notifykit.config import Config
from notifykit.notifier import AsyncNotifier
from notifykit.server import ServerThread
from notifykit.store import MemoryStore, SQLiteStore, Store

Serve = Callable[[Any], ServerThread]
TOKEN = "s3cret-t0ken"
FORM = {"content-type": "application/x-www-form-urlencoded;charset=utf-8"}
RECEIPT = b"mobile=15080921234&taskid=77&status=1&receivetime=2024-05-01 17:00:00"


def config(db: Path, **store: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {"vs": {"type": "veesing", "app_id": "app", "app_key": "key"}},
            "store": {"url": f"sqlite:///{db}", "timeout": 5, **store},
            "callbacks": {"token": TOKEN},
        }
    )


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[bytes, bytes]]]:
    """Every (given, expected) pair compared through notifykit.compare's one primitive."""
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    yield seen


TOKENS = [
    (TOKEN, 200),  # right
    (TOKEN[:-1] + "X", 404),  # wrong, same length
    (TOKEN[:3], 404),  # shorter
    (TOKEN + "0", 404),  # longer
    ("", 404),  # empty
    ("tøken-秘密", 404),  # not ASCII
]


def test_every_token_is_compared_in_constant_time(
    serve: Serve, db: Path, comparisons: list[tuple[bytes, bytes]]
) -> None:
    server = serve(create_app(config(db)))
    for given, status in TOKENS:
        comparisons.clear()
        answer = httpx.post(
            f"{server.url}/callbacks/vs/{quote(given)}", content=RECEIPT, headers=FORM
        )
        assert answer.status_code == status, given
        against_token = [pair for pair in comparisons if pair[1] == TOKEN.encode()]
        assert against_token == [(given.encode(), TOKEN.encode())], given


# -- stored before acknowledged -------------------------------------------------------------
#
# The store write of a push is held open; the test then lets the receiver's event loop run
# every callback it has (LOOP_TURNS turns, far more than an answer needs once the handler
# returns) and proves that no answer was started by the app nor reached the client's socket.
# Only then is the write released; the answer must come after it, and say what was stored.
# No sleeps: the hold is an event, and the turns are counted, not timed.

LOOP_TURNS = 200
GUARD = 30.0
"""Seconds before a stuck test fails (a guard against hanging, not a measure)."""


async def _turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


class Watched:
    """The receiver app, with every answer's start recorded and checked as it is sent."""

    def __init__(self, app: Any, stored: Callable[[], bool]) -> None:
        self.app = app
        self.stored = stored
        self.answers: list[bool] = []
        """For each answer started on a callback path: was the push stored at that moment?"""
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()

        async def watched_send(message: Any) -> None:
            if message["type"] == "http.response.start" and "/callbacks/" in scope["path"]:
                self.answers.append(self.stored())
            await send(message)

        await self.app(scope, receive, watched_send)

    def run_turns(self) -> None:
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(_turns(LOOP_TURNS), self.loop).result(GUARD)


def _raw_push(port: int, body: bytes = RECEIPT) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    head = (
        f"POST /callbacks/vs/{TOKEN} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"content-type: application/x-www-form-urlencoded\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def _nothing_received(sock: socket.socket) -> bool:
    """No byte (nor the end of the connection) is waiting on the client's socket."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
    return False


def _answer(sock: socket.socket) -> bytes:
    sock.settimeout(GUARD)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data


def _held_store(kind: type[Store], *args: Any) -> Store:
    """A ``kind`` store whose ``ingest`` waits for ``release()`` before writing."""

    class Held(kind):  # type: ignore[valid-type,misc]
        entered = threading.Event()
        done = False
        _gate: asyncio.Event | None = None
        _loop: asyncio.AbstractEventLoop | None = None

        async def ingest(self, entry: Any, events: Any, **claim: Any) -> Any:
            self._loop = asyncio.get_running_loop()
            self._gate = asyncio.Event()
            self.entered.set()
            await self._gate.wait()
            new = await super().ingest(entry, events, **claim)
            self.done = True
            return new

        def release(self) -> None:
            assert self._loop is not None and self._gate is not None
            self._loop.call_soon_threadsafe(self._gate.set)

    return Held(*args)  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_no_answer_leaves_before_the_store_write_completes(
    serve: Serve, db: Path, backend: str
) -> None:
    store = _held_store(MemoryStore) if backend == "memory" else _held_store(SQLiteStore, db)
    notifier = AsyncNotifier(config(db, timeout=GUARD), store=store)
    app = Watched(create_app(notifier=notifier), lambda: bool(store.done))  # type: ignore[attr-defined]
    server = serve(app)
    client = _raw_push(server.port)
    assert store.entered.wait(GUARD), "the push never reached the store"  # type: ignore[attr-defined]
    app.run_turns()
    assert app.answers == [], "the receiver answered before the push was stored"
    assert _nothing_received(client), "an answer reached the client before the store write"
    store.release()  # type: ignore[attr-defined]
    answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert app.answers == [True]


def test_no_answer_leaves_before_sqlite_commits(
    serve: Serve, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, one level down: SQLite's COMMIT of the push is held, so a writer that
    resolved its callers before committing would let the answer out."""
    at_commit = threading.Event()
    release = threading.Event()
    pending_inbox = threading.local()

    def trace(sql: str) -> None:
        if sql.startswith("INSERT INTO inbox"):
            pending_inbox.value = True
        elif sql.split(None, 1)[:1] == ["COMMIT"] and getattr(pending_inbox, "value", False):
            pending_inbox.value = False
            at_commit.set()
            release.wait(GUARD)

    original = sqlite3.connect

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original(database, *args, **kwargs)
        if str(database) == str(db):
            conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)

    def committed() -> bool:
        with contextlib.closing(original(db)) as check:
            return int(check.execute("SELECT count(*) FROM inbox").fetchone()[0]) == 1

    app = Watched(create_app(config(db, timeout=GUARD)), committed)
    server = serve(app)
    try:
        client = _raw_push(server.port)
        assert at_commit.wait(GUARD), "the push's transaction never reached COMMIT"
        app.run_turns()
        assert app.answers == [], "the receiver answered before SQLite committed the push"
        assert _nothing_received(client), "an answer reached the client before the COMMIT"
    finally:
        release.set()
    answer = _answer(client)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert app.answers == [True]


# -- credentials sent to the receiver are not kept ------------------------------------------

CREDENTIALS = {
    "Authorization": "Basic dmVuZG9yOmF1dGgtc2VjcmV0",
    "Proxy-Authorization": "Bearer proxy-secret",
    "Cookie": "session=cookie-secret",
}


def _assert_redacted(headers: dict[str, str]) -> None:
    for name in CREDENTIALS:
        assert headers[name.lower()] == "***", (name, headers)
    assert headers["x-vendor"] == "kept"
    assert not any("secret" in value for value in headers.values()), headers


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_credentials_are_blanked_in_the_inbox_and_the_quarantine(
    db: Path, backend: str
) -> None:
    """At the notifier's level, on every store backend."""
    store: Store = MemoryStore() if backend == "memory" else SQLiteStore(db)
    headers = {**FORM, **CREDENTIALS, "X-Vendor": "kept"}
    async with AsyncNotifier(config(db), store=store) as notifier:
        status, _, _ = await notifier.handle_callback("vs", "POST", headers, RECEIPT)
        assert status == 200
        status, _, _ = await notifier.handle_callback("vs", "POST", headers, b"garbage=1")
        assert status == 400
        (stored,) = await store.list_inbox()
        (quarantined,) = await store.list_quarantine()
    _assert_redacted(stored.headers)
    _assert_redacted(quarantined.headers)


def test_credentials_are_blanked_over_real_sockets(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    url = f"{server.url}/callbacks/vs/{TOKEN}"
    headers = {**FORM, **CREDENTIALS, "X-Vendor": "kept"}
    assert httpx.post(url, content=RECEIPT, headers=headers).status_code == 200
    assert httpx.post(url, content=b"garbage=1", headers=headers).status_code == 400
    server.stop()

    async def read() -> tuple[dict[str, str], dict[str, str]]:
        store = SQLiteStore(db)
        await store.open()
        try:
            (stored,) = await store.list_inbox()
            (quarantined,) = await store.list_quarantine()
            return stored.headers, quarantined.headers
        finally:
            await store.close()

    inbox_headers, quarantine_headers = asyncio.run(read())
    _assert_redacted(inbox_headers)
    _assert_redacted(quarantine_headers)
    for path in db.parent.iterdir():
        if path.name.startswith(db.name):
            assert b"secret" not in path.read_bytes(), path.name


# -- a push answered "try again" is not stored behind the vendor's back ----------------------


def test_a_push_answered_503_after_a_store_timeout_is_never_stored_later(
    serve: Serve, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer takes the push's write and is held at its BEGIN (as by another process's
    lock) until the receiver has answered 503; the write must then be skipped."""
    timeout = 0.3
    at_begin = threading.Event()
    release = threading.Event()
    armed = threading.Event()
    original = sqlite3.connect

    def trace(sql: str) -> None:
        if armed.is_set() and sql.startswith("BEGIN"):
            armed.clear()
            at_begin.set()
            release.wait(GUARD)

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original(database, *args, **kwargs)
        if str(database) == str(db):
            conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    server = serve(create_app(config(db, timeout=timeout)))
    url = f"{server.url}/callbacks/vs/{TOKEN}"
    try:
        first = b"mobile=15080921234&taskid=1&status=1&receivetime=2024-05-01 17:00:00"
        assert httpx.post(url, content=first, headers=FORM).status_code == 200
        armed.set()
        late = b"mobile=15080921234&taskid=2&status=1&receivetime=2024-05-01 17:00:00"
        answer = httpx.post(url, content=late, headers=FORM, timeout=GUARD)
        answered = time.monotonic()
        assert answer.status_code == 503, answer.text
        assert at_begin.is_set(), "the writer had not taken the write"
        # The write's own deadline is `timeout` after it was queued, which was before the
        # answer: past this bound of the clock it has passed, however slow the machine.
        time.sleep(max(0.0, answered + timeout - time.monotonic()))
    finally:
        release.set()
    after = b"mobile=15080921234&taskid=3&status=1&receivetime=2024-05-01 17:00:00"
    assert httpx.post(url, content=after, headers=FORM).status_code == 200
    server.stop()

    async def vendor_ids() -> set[str]:
        store = SQLiteStore(db)
        await store.open()
        try:
            return {e.provider_message_id or "" for e in await store.list_events()}
        finally:
            await store.close()

    assert asyncio.run(vendor_ids()) == {"1", "3"}
