"""A caller cancelled while its SQLite job finishes is cancelled, never handed the result:
swallowing the cancellation kept ``notifykit demo`` running after Ctrl-C."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from notifykit.store import writer as writer_module
from notifykit.store.writer import SQLiteWriter

result_set = threading.Event()


class _SignallingFuture(Future[Any]):
    def set_result(self, result: Any) -> None:
        super().set_result(result)  # queues the result's delivery on the caller's loop
        result_set.set()


@dataclass
class _SignallingJob(writer_module._Job[Any]):
    future: Future[Any] = field(default_factory=_SignallingFuture)


def test_a_cancellation_that_meets_a_finished_job_is_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "_Job", _SignallingJob)
    result_set.clear()
    release = threading.Event()

    def job(_conn: sqlite3.Connection) -> int:
        release.wait(30)
        return 1

    async def main() -> None:
        writer = SQLiteWriter(
            lambda: sqlite3.connect(tmp_path / "w.db", check_same_thread=False),
            timeout=30,
            name="test-writer",
        )
        await writer.start()
        try:
            task = asyncio.ensure_future(writer.run(job, write=False))
            await asyncio.sleep(0)  # the task now waits for the job
            release.set()
            assert result_set.wait(30)  # the loop is blocked: the result waits in its queue
            task.cancel()  # ... and the cancellation arrives in the same turn
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await writer.stop()

    asyncio.run(main())


def test_an_opener_cancelled_while_connecting_leaves_no_thread_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    connecting = threading.Event()
    release = threading.Event()

    def connect() -> sqlite3.Connection:
        connecting.set()
        release.wait(30)
        return sqlite3.connect(tmp_path / "w.db", check_same_thread=False)

    writer = SQLiteWriter(connect, timeout=30, name="test-writer-open")

    async def main() -> None:
        task = asyncio.ensure_future(writer.start())
        await asyncio.to_thread(connecting.wait, 30)
        task.cancel()  # Ctrl-C while the store opens
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await writer.stop()  # the thread finishes, closing its connection

    asyncio.run(main())
    assert failures == []
    assert not writer.running
