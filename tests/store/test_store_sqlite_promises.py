"""Two promises of the SQLite writer, held here at the store level without timing:
a caller is answered only after the COMMIT holding its write, and a write whose caller was
told it timed out never lands afterwards. (The receiver's tests hold the same promises over
real sockets: tests/callbacks/test_callbacks_promises.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from notifykit.errors import StoreError
from notifykit.models import MessageRecord
from notifykit.store import SQLiteStore

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
GUARD = 30.0
"""Seconds before a stuck test fails (a guard against hanging, not a measure)."""
LOOP_TURNS = 200


def record(message_id: str) -> MessageRecord:
    return MessageRecord(message_id=message_id, to=PHONE, template="t")


async def test_the_caller_is_answered_only_after_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT is held in the writer thread; while it is, the caller's await must not
    return, however many turns the event loop takes."""
    path = tmp_path / "nk.sqlite3"
    at_commit = threading.Event()
    release = threading.Event()
    armed = threading.Event()
    original = sqlite3.connect

    def trace(sql: str) -> None:
        if armed.is_set() and sql.split(None, 1)[:1] == ["COMMIT"]:
            armed.clear()
            at_commit.set()
            release.wait(GUARD)

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original(database, *args, **kwargs)
        if str(database) == str(path):
            conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    store = SQLiteStore(path, timeout=GUARD)
    await store.open()
    try:
        armed.set()
        write = asyncio.ensure_future(store.create_message(record("m1")))
        assert await asyncio.to_thread(at_commit.wait, GUARD), "the write never reached COMMIT"
        for _ in range(LOOP_TURNS):
            await asyncio.sleep(0)
        assert not write.done(), "the caller was answered before its write was committed"
        with contextlib.closing(original(path)) as other:
            assert other.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
        release.set()
        await asyncio.wait_for(write, GUARD)
        with contextlib.closing(original(path)) as other:
            assert other.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    finally:
        release.set()
        await store.close()


async def test_a_write_whose_caller_timed_out_never_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer has taken the write and is held at its BEGIN (as by another process's
    lock) until the caller has been told it timed out; when the writer goes on, the write
    must be skipped, not made behind the caller's back."""
    path = tmp_path / "nk.sqlite3"
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
        if str(database) == str(path):
            conn.set_trace_callback(trace)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    store = SQLiteStore(path, timeout=0.2)
    await store.open()
    try:
        armed.set()
        with pytest.raises(StoreError, match="timed out"):
            await store.create_message(record("late"))
        assert at_begin.is_set(), "the writer had not taken the write"
        release.set()
        # A later write is queued behind the one given up on: once it is done, that one
        # has been dealt with: skipped, not written.
        await store.create_message(record("next"))
        assert await store.get_message("next") is not None
        assert await store.get_message("late") is None
    finally:
        release.set()
        await store.close()
