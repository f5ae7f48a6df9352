"""Kill ``notifykit serve`` with SIGKILL mid-stream; every acknowledged push survives.

The kill lands at the one moment that exposes an answer sent too early: the receiver is
killed while SQLite's COMMIT of a transaction holding pushes is held open (a hook in the
server process traces its SQLite connection and stops the writer thread at that COMMIT).
Before the kill the test makes the server's event loop answer PROBES requests one after
another, so that an answer its handlers had already been allowed to send (a push answered
before its store write, or a writer that resolved its callers before committing) has been
sent. A correct receiver has answered none of the pushes in that transaction; they are
lost with it, unacknowledged, and the vendor sends them again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from notifykit.store import SQLiteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

TOKEN = "crash-test-token"
WORKERS = 8
HOLD_AT_COMMIT = 40  # the COMMIT held open: the 40th transaction that stores pushes
MAX_PUSHES = 20000
PROBES = 50  # round trips the server's loop answers between the hold and the kill
GUARD = 60.0  # seconds before a stuck test fails (a guard against hanging, not a measure)

# Run in the first server: stop the writer thread at the HOLD_AT_COMMIT-th COMMIT of a
# transaction that inserted into the inbox, tell the test (one byte on a pipe), and wait
# there until the process is killed.
_HOLD_HOOK = """
import os, sqlite3, threading
fd, target = int(os.environ["NK_TEST_SIGNAL_FD"]), int(os.environ["NK_TEST_HOLD_AT"])
state = {"inbox": False, "commits": 0}
def trace(sql):
    if sql.startswith("INSERT INTO inbox"):
        state["inbox"] = True
    elif sql.split(None, 1)[:1] == ["COMMIT"] and state["inbox"]:
        state["inbox"] = False
        state["commits"] += 1
        if state["commits"] == target:
            os.write(fd, b"H")
            threading.Event().wait()
original = sqlite3.connect
def connect(*args, **kwargs):
    conn = original(*args, **kwargs)
    conn.set_trace_callback(trace)
    return conn
sqlite3.connect = connect
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "notifykit.toml"
    path.write_text(
        f"""
[providers.vs]
type = "veesing"
app_id = "app"
app_key = "key"

[store]
url = "sqlite:///{tmp_path / "crash.sqlite3"}"
timeout = 5

[callbacks]
token = "{TOKEN}"
dispatch_lease = "0.2s"  # what the killed process held is taken over after this
""",
        encoding="utf-8",
    )
    return path


class Server:
    """``notifykit serve --port 0`` in a subprocess; the port read from its first line."""

    def __init__(
        self,
        config: Path,
        *,
        hold_at_commit: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        env = dict(env) if env is not None else {**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"}
        code = "from notifykit.cli import main; main()"
        self.stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed with the test)
        self.held: int | None = None
        """Read end of the pipe the hook writes to when it holds the COMMIT."""
        pass_fds: tuple[int, ...] = ()
        if hold_at_commit is not None:
            self.held, signal_fd = os.pipe()
            pass_fds = (signal_fd,)
            env["NK_TEST_SIGNAL_FD"] = str(signal_fd)
            env["NK_TEST_HOLD_AT"] = str(hold_at_commit)
            code = _HOLD_HOOK + code
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            # A file, not a pipe: a pipe nobody reads fills up, and the server's next log
            # line would then block its event loop.
            stderr=self.stderr,
            env=env,
            text=True,
            pass_fds=pass_fds,
        )
        for fd in pass_fds:
            os.close(fd)  # the server's copy is its own: EOF here when it dies
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "notifykit receiver on http://127.0.0.1:" in line, self._fail(line)
        assert TOKEN not in line
        self.base = line.split()[3]
        for _ in range(500):
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            threading.Event().wait(0.01)
        raise AssertionError("receiver did not become healthy")

    def _fail(self, line: str) -> str:
        self.process.kill()
        self.process.wait()
        return f"unexpected first line {line!r}; stderr: {self.errors()}"

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=20)
        return self.errors()


def undispatched(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return int(conn.execute("SELECT count(*) FROM events WHERE dispatched = 0").fetchone()[0])


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    yield write_config(tmp_path)


def push_body(task: int) -> bytes:
    return urlencode(
        {
            "mobile": "15080921234",
            "taskid": f"t{task}",
            "status": "1",
            "receivetime": "2024-05-01 17:00:00",
        }
    ).encode()


async def stream_until_killed(server: Server) -> tuple[set[str], set[str]]:
    """Push from WORKERS connections until the server holds its COMMIT; let its loop answer
    PROBES round trips; SIGKILL it. Returns the pushes acknowledged, and those sent."""
    assert server.held is not None
    acked: set[str] = set()
    sent: set[str] = set()
    counter = iter(range(MAX_PUSHES))
    url = f"{server.base}/callbacks/vs/{TOKEN}"

    async def worker(client: httpx.AsyncClient) -> None:
        for task in counter:
            sent.add(f"t{task}")
            try:
                answer = await client.post(url, content=push_body(task))
            except httpx.TransportError:
                return  # the server is gone
            if answer.status_code == 200:
                acked.add(f"t{task}")

    async def kill_when_held(client: httpx.AsyncClient) -> None:
        assert server.held is not None
        signal_byte = await asyncio.wait_for(asyncio.to_thread(os.read, server.held, 1), GUARD)
        assert signal_byte == b"H", "the server died before its COMMIT was held"
        # A wrong token is answered without the store: these round trips prove the loop
        # went on running (and sending whatever answers it had) while the COMMIT was held.
        for _ in range(PROBES):
            probe = await client.post(f"{server.base}/callbacks/vs/not-the-token", content=b"")
            assert probe.status_code == 404
        server.process.send_signal(signal.SIGKILL)

    async with (
        httpx.AsyncClient(timeout=GUARD) as pushes,
        httpx.AsyncClient(timeout=GUARD) as probes,
    ):
        await asyncio.wait_for(
            asyncio.gather(kill_when_held(probes), *(worker(pushes) for _ in range(WORKERS))),
            2 * GUARD,
        )
    os.close(server.held)
    return acked, sent


def test_sigkill_mid_stream_loses_no_acknowledged_push(
    config: Path, tmp_path: Path, event_log: Any
) -> None:
    # The servers have an observer (an on_event plugin): a receiver without one claims and
    # dispatches nothing, leaving the events to the processes that have observers.
    env = event_log.env({**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"})
    first = Server(config, hold_at_commit=HOLD_AT_COMMIT, env=env)
    try:
        acked, sent = asyncio.run(stream_until_killed(first))
    finally:
        if first.process.poll() is None:
            first.process.kill()
    first.process.wait(timeout=10)
    assert first.process.returncode == -signal.SIGKILL
    assert len(acked) >= HOLD_AT_COMMIT - 1  # one push at least per committed transaction
    assert sent - acked, "no push was in flight when the server was killed"

    second = Server(config, env=env)  # the same file opens after the crash, and serves again
    again = httpx.post(f"{second.base}/callbacks/vs/{TOKEN}", content=push_body(0))
    assert again.status_code == 200
    # The killed process's claims end after their lease; the new one then takes them over.
    for _ in range(3000):
        if undispatched(tmp_path / "crash.sqlite3") == 0:
            break
        threading.Event().wait(0.01)
    err = second.stop()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert second.process.returncode in (0, -signal.SIGTERM), err
    assert TOKEN not in err

    async def stored() -> tuple[set[str], int, set[str]]:
        store = SQLiteStore(tmp_path / "crash.sqlite3")
        await store.open()
        try:
            events = await store.list_events()
            return (
                {e.provider_message_id or "" for e in events},
                await store.count_inbox(),
                {e.event_id for e in events},
            )
        finally:
            await store.close()

    kept, inbox, event_ids = asyncio.run(stored())
    assert acked <= kept, f"lost {len(acked - kept)} acknowledged pushes"
    assert inbox >= len(acked) + 1
    # the restart dispatched what the killed process had not: every stored event reached
    # an observer (at least once: one the killed process handed over but had not yet
    # acknowledged is handed over again)
    assert undispatched(tmp_path / "crash.sqlite3") == 0
    seen = {event_id for _, event_id in event_log.dispatched()}
    assert event_ids <= seen, f"{len(event_ids - seen)} stored events never dispatched"
