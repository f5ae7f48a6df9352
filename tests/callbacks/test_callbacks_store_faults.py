"""The receiver (a real ``notifykit serve`` process) under store faults that pass: it
answers 503 while the fault lasts, logs the reason once per fault, reports it on
``GET /healthz``, and stores and acknowledges the next push once the fault is gone, without
a restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and files")

PUSHES = 5


def receipt(n: int) -> bytes:
    return urlencode(
        {
            "mobile": "15612341090",
            "taskid": f"fault-{n}",
            "status": "1",
            "receivetime": "2024-05-01 17:00:00",
        }
    ).encode()


class Receiver:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.stderr = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from notifykit.cli import main; main()",
                "serve",
                "--config",
                str(config),
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env={**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert "notifykit receiver on" in line, line + log.read_text(encoding="utf-8")
        self.base = line.split()[3]
        self.client = httpx.Client(timeout=30)

    def push(self, n: int) -> int:
        return self.client.post(f"{self.base}/callbacks/vs", content=receipt(n)).status_code

    def health(self) -> httpx.Response:
        return self.client.get(f"{self.base}/healthz")

    def stop(self) -> str:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(20)
        self.stderr.close()
        return self.log.read_text(encoding="utf-8")


def write_config(tmp_path: Path, db: Path, *, timeout: float = 5.0) -> Path:
    config = tmp_path / "notifykit.toml"
    config.write_text(
        '[providers.vs]\ntype = "veesing"\napp_id = "app"\napp_key = "fault-key"\n\n'
        f'[store]\nurl = "sqlite:///{db}"\ntimeout = {timeout}\n',
        encoding="utf-8",
    )
    return config


def stored(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT provider_message_id FROM events")]


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` cannot be opened for writing, by anyone, until the block ends. As root the
    permission bits do not stop writes: the immutable attribute (chattr +i) does."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root, and the immutable attribute is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def make_store(db: Path) -> None:
    """Create the schema (the receiver then opens an existing file)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, sys\nfrom notifykit.store import SQLiteStore\n"
            "async def main():\n    s = SQLiteStore(sys.argv[1])\n    await s.open()\n"
            "    await s.close()\nasyncio.run(main())\n",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_receiver_started_on_a_read_only_file_recovers_when_it_is_writable(
    tmp_path: Path,
) -> None:
    db = tmp_path / "receiver.sqlite3"
    make_store(db)
    config = write_config(tmp_path, db)
    with read_only(db):
        receiver = Receiver(config, tmp_path / "serve.log")
        try:
            assert [receiver.push(n) for n in range(PUSHES)] == [503] * PUSHES
            health = receiver.health()
            assert (health.status_code, health.text) == (503, "store failing")
        except BaseException:
            receiver.stop()
            raise
    try:
        assert receiver.push(PUSHES) == 200  # the very next request, no restart
        assert [receiver.push(n) for n in range(PUSHES)] == [200] * PUSHES
        assert receiver.health().status_code == 200
    finally:
        log = receiver.stop()
    assert sorted(stored(db)) == sorted(f"fault-{n}" for n in range(PUSHES + 1))
    # One line when the fault began, naming the reason, and one when it ended.
    failing = [line for line in log.splitlines() if '"event": "store_failing"' in line]
    assert len(failing) == 1 and "attempt to write a readonly database" in failing[0], log
    assert log.count('"event": "store_recovered"') == 1, log


def test_a_lock_held_too_long_fails_requests_until_it_is_released(tmp_path: Path) -> None:
    db = tmp_path / "receiver.sqlite3"
    make_store(db)
    config = write_config(tmp_path, db, timeout=0.5)
    receiver = Receiver(config, tmp_path / "serve.log")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        assert receiver.push(0) == 200
        holder.execute("BEGIN EXCLUSIVE")  # another process's transaction that never ends
        assert [receiver.push(n) for n in range(1, PUSHES + 1)] == [503] * PUSHES
        assert receiver.health().status_code == 503
        holder.execute("ROLLBACK")
        assert receiver.push(PUSHES + 1) == 200
        assert receiver.health().status_code == 200
    finally:
        holder.close()
        log = receiver.stop()
    assert sorted(stored(db)) == ["fault-0", f"fault-{PUSHES + 1}"]
    assert log.count('"event": "store_failing"') == 1, log
    assert log.count('"event": "store_recovered"') == 1, log


def test_a_timeout_is_one_fault_whichever_bound_noticed_it() -> None:
    """The caller's bound and the store's own are equal: under load either fires first,
    and the fault must still be logged once."""
    from notifykit.errors import StoreError
    from notifykit.store.health import StoreHealth

    health = StoreHealth()
    for exc in (TimeoutError(), StoreError("store operation timed out after 0.5s"), TimeoutError()):
        health.failed(exc)
    assert health.failures == 3
    assert health.failing is not None and "timed out" in health.failing
    first = health.failing
    health.failed(StoreError("store operation timed out after 0.5s"))
    assert health.failing == first
