"""Restart: the receiver (``notifykit serve``, SQLite store) is killed with SIGKILL twice
while 16 clients stream receipts, and restarted on the same port each time. The clients
behave as a vendor does: a push not acknowledged is sent again until it is. Afterwards
every acknowledged push is stored, every push was eventually acknowledged, and retries
of pushes the dead process had stored did not duplicate any event."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from .conftest import APP_ID, APP_KEY, CB_TOKEN

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

PUSHES = 600
WORKERS = 16
KILL_AFTER = (150, 350)
"""Acknowledged pushes after which the running receiver is killed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    config: Path, port: int, started: list[subprocess.Popen[str]], env: dict[str, str]
) -> subprocess.Popen[str]:
    """Start ``serve`` (environment ``env``) and wait for its banner. The process is put in
    ``started`` before the wait, so that a test cancelled meanwhile (its time limit) still
    stops it: none is left running after the test."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from notifykit.cli import main; main()",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    started.append(process)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert f"127.0.0.1:{port}" in line and CB_TOKEN not in line, line
    return process


def undispatched(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return int(conn.execute("SELECT count(*) FROM events WHERE dispatched = 0").fetchone()[0])


def receipt(n: int) -> bytes:
    return urlencode(
        {
            "mobile": f"150{n:08d}",
            "taskid": f"restart-{n}",
            "status": "1",
            "receivetime": "2024-05-01 17:00:00",
        }
    ).encode()


async def test_sigkill_twice_while_streaming_loses_no_acknowledged_push(
    tmp_path: Path, event_log: Any
) -> None:
    db = tmp_path / "restart.sqlite3"
    config = tmp_path / "notifykit.toml"
    config.write_text(
        f'[providers.vs]\ntype = "veesing"\napp_id = "{APP_ID}"\napp_key = "{APP_KEY}"\n\n'
        f'[store]\nurl = "sqlite:///{db}"\n\n[callbacks]\ntoken = "{CB_TOKEN}"\n'
        # what a killed receiver held is taken over by the next one after this
        'dispatch_lease = "0.2s"\n',
        encoding="utf-8",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/callbacks/vs/{CB_TOKEN}"
    started: list[subprocess.Popen[str]] = []
    # The receivers have an observer (an on_event plugin): one without claims nothing and
    # leaves the events to the processes that have observers.
    env = event_log.env({**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"})
    processes = [start(config, port, started, env)]
    acked: set[int] = set()
    attempts = 0
    kills = list(KILL_AFTER)
    restarting = asyncio.Lock()
    todo = iter(range(PUSHES))

    async def kill_and_restart() -> None:
        async with restarting:
            old = processes[-1]
            if old.poll() is None:
                old.send_signal(signal.SIGKILL)
                await asyncio.to_thread(old.wait, 10)
                assert old.returncode == -signal.SIGKILL
                processes.append(await asyncio.to_thread(start, config, port, started, env))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal attempts
        for n in todo:
            while n not in acked:  # a vendor retries until it is acknowledged
                attempts += 1
                try:
                    answer = await client.post(url, content=receipt(n))
                except httpx.TransportError:
                    await asyncio.sleep(0.05)  # the receiver is down or restarting
                    continue
                if answer.status_code == 200:
                    acked.add(n)
                else:
                    assert answer.status_code == 503, answer.status_code
                    await asyncio.sleep(0.05)
                if kills and len(acked) >= kills[0]:
                    kills.pop(0)
                    await kill_and_restart()

    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(WORKERS))), 90)
        for _ in range(1000):  # the last receiver takes over the killed ones' leases
            if await asyncio.to_thread(undispatched, db) == 0:
                break
            await asyncio.sleep(0.02)
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 5)
            if process.stdout is not None:
                process.stdout.close()

    assert len(processes) == 3 and not kills  # killed twice, mid-stream
    assert acked == set(range(PUSHES))
    with sqlite3.connect(db) as conn:
        stored = [row[0] for row in conn.execute("SELECT provider_message_id FROM events")]
        inbox = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
    left = undispatched(db)
    assert sorted(stored) == sorted(f"restart-{n}" for n in range(PUSHES))  # each once
    assert inbox >= PUSHES  # a retried push is kept again in the inbox (an audit log)
    assert left == 0  # the last receiver dispatched what the killed ones had not
    with sqlite3.connect(db) as conn:
        event_ids = {row[0] for row in conn.execute("SELECT event_id FROM events")}
    assert event_ids <= {event_id for _, event_id in event_log.dispatched()}
    print(f"\nrestart: {PUSHES} pushes, {attempts} requests, 2 SIGKILLs, inbox rows {inbox}")
