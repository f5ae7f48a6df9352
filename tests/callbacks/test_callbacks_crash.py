"""Kill ``notifykit serve`` with SIGKILL mid-stream; every acknowledged push survives."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from notifykit.store import SQLiteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

TOKEN = "crash-test-token"
WORKERS = 8
KILL_AFTER = 150  # acknowledged pushes before the kill
MAX_PUSHES = 3000


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

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from notifykit.cli import main; main()",
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
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
        return f"unexpected first line {line!r}; stderr: {self.process.communicate()[1]}"

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        _out, err = self.process.communicate(timeout=20)
        return err


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


async def stream_until_killed(server: Server) -> tuple[set[str], int]:
    """Push from WORKERS connections; SIGKILL the server after KILL_AFTER acks, mid-stream."""
    acked: set[str] = set()
    sent = 0
    counter = iter(range(MAX_PUSHES))
    killed = asyncio.Event()
    url = f"{server.base}/callbacks/vs/{TOKEN}"

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        for task in counter:
            sent += 1
            try:
                answer = await client.post(url, content=push_body(task))
            except httpx.TransportError:
                return  # the server is gone
            if answer.status_code == 200:
                acked.add(f"t{task}")
            if len(acked) >= KILL_AFTER and not killed.is_set():
                killed.set()
                server.process.send_signal(signal.SIGKILL)

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(WORKERS))), 60)
    return acked, sent


def test_sigkill_mid_stream_loses_no_acknowledged_push(config: Path, tmp_path: Path) -> None:
    first = Server(config)
    acked, sent = asyncio.run(stream_until_killed(first))
    first.process.wait(timeout=10)
    assert first.process.returncode == -signal.SIGKILL
    assert len(acked) >= KILL_AFTER and sent < MAX_PUSHES  # it died mid-stream

    second = Server(config)  # the same file opens after the crash, and serves again
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

    async def stored() -> tuple[set[str], int, int]:
        store = SQLiteStore(tmp_path / "crash.sqlite3")
        await store.open()
        try:
            events = await store.list_events()
            return {e.provider_message_id or "" for e in events}, await store.count_inbox()
        finally:
            await store.close()

    kept, inbox = asyncio.run(stored())
    assert acked <= kept, f"lost {len(acked - kept)} acknowledged pushes"
    assert inbox >= len(acked) + 1
    # the restart dispatched what the killed process had not
    assert undispatched(tmp_path / "crash.sqlite3") == 0
