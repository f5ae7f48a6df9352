"""The receiver (a real ``notifykit serve`` process) under store faults that pass: it
answers 503 while the fault lasts, logs the reason once per fault, reports it on
``GET /healthz``, and stores and acknowledges the next push once the fault is gone, without
a restart."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

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

    def push(self, n: int, *, padding: int = 0) -> int:
        """POST receipt ``n`` (``padding``: bytes of an extra field, to make it bigger)."""
        body = receipt(n) + (b"&padding=" + b"0" * padding if padding else b"")
        return self.client.post(f"{self.base}/callbacks/vs", content=body).status_code

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


@contextlib.contextmanager
def own_role(pg_url: str) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A login role of the test's own on the test PostgreSQL (so that its sessions, and
    only they, can be cut), allowed to create the test's schema; yields the URL that logs
    in as it and a function running one statement as the administrator. The role and
    everything it owns are dropped after."""
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    role = f"nk_fault_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(pg_url, autocommit=True)
    name = sql.Identifier(role)

    def run(statement: str) -> None:
        admin.execute(sql.SQL(statement).format(role=name, literal=sql.Literal(role)))

    try:
        run("CREATE ROLE {role} LOGIN")
        admin.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(admin.info.dbname), name
            )
        )
        parts = urlsplit(pg_url)
        yield urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}")), run
    finally:
        run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {literal}")
        run("DROP OWNED BY {role} CASCADE")
        run("DROP ROLE {role}")
        admin.close()


def test_a_lost_postgresql_connection_fails_requests_until_the_database_is_back(
    tmp_path: Path, pg_store_url: str, pg_schema: str
) -> None:
    psycopg = pytest.importorskip("psycopg")
    with own_role(pg_store_url) as (url, admin):
        config = tmp_path / "notifykit.toml"
        config.write_text(
            '[providers.vs]\ntype = "veesing"\napp_id = "app"\napp_key = "fault-key"\n\n'
            f'[store]\nurl = "{url}"\nschema = "{pg_schema}"\ntimeout = 3\n'
            "pool_min_size = 3\n",
            encoding="utf-8",
        )
        receiver = Receiver(config, tmp_path / "serve.log")
        try:
            assert receiver.push(0) == 200
            cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {literal}"
            # Every session cut (a restart, a failover), the server still there: the push
            # that meets a dead pooled connection may fail, never the next ones (the pool
            # holds three, all dead until checked).
            admin(cut)
            answers = [receiver.push(n) for n in (10, 11, 12)]
            assert answers in ([503, 200, 200], [200, 200, 200]), answers
            # The database goes away for the receiver: every session of its role is cut,
            # and new ones are refused until the role may log in again.
            admin("ALTER ROLE {role} NOLOGIN")
            admin(cut)
            # The first meets a cut connection; the next waits the store timeout for one.
            assert [receiver.push(n) for n in range(1, 3)] == [503] * 2
            health = receiver.health()
            assert (health.status_code, health.text) == (503, "store failing")
            admin("ALTER ROLE {role} LOGIN")
            assert receiver.push(3) == 200  # the very next request, no restart
            assert receiver.health().status_code == 200
        finally:
            log = receiver.stop()
        with contextlib.closing(psycopg.connect(pg_store_url)) as conn:
            ids = [
                row[0]
                for row in conn.execute(f'SELECT provider_message_id FROM "{pg_schema}".events')
            ]
    kept = ["fault-10"] if answers[0] == 200 else []
    assert sorted(ids) == sorted(["fault-0", "fault-3", "fault-11", "fault-12", *kept])
    # One line when a fault began, naming the reason (the cut connection), one when it
    # ended, listing what was seen meanwhile: for each of the (one or) two faults.
    faults = 2 if answers[0] == 503 else 1
    failing = [line for line in log.splitlines() if '"event": "store_failing"' in line]
    assert len(failing) == faults and all("connection" in f for f in failing), log
    assert log.count('"event": "store_recovered"') == faults, log


@contextlib.contextmanager
def small_disk(path: Path, size_kib: int) -> Iterator[Path]:
    """A file system of ``size_kib`` KiB (tmpfs) mounted at ``path``: a disk that can be
    filled in a moment. Needs root on Linux; skips elsewhere."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root on Linux")
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> None:
    """Take every free byte of ``disk`` (into ``disk/filler``), leaving none to anyone."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for chunk in (65536, 4096, 512, 1):
            while True:
                try:
                    if os.write(fd, b"\0" * chunk) == 0:
                        break
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def test_a_full_disk_fails_requests_until_space_is_freed(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", 2048) as disk:
        db = disk / "receiver.sqlite3"
        make_store(db)
        config = write_config(tmp_path, db)
        receiver = Receiver(config, tmp_path / "serve.log")  # its log is not on that disk
        try:
            assert receiver.push(0) == 200
            fill(disk)
            # Before any push has failed: the health check sees it by itself (a write that
            # changes nothing would need no space, and pass).
            health = receiver.health()
            assert (health.status_code, health.text) == (503, "store failing")
            answers = []
            for n in range(1, PUSHES + 1):
                fill(disk)  # taken again before each: a failed write may have freed some
                # Bigger than anything written so far, so that it cannot fit in the space
                # the database's files already hold (SQLite reuses its WAL file's).
                answers.append(receiver.push(n, padding=48_000))
            assert answers == [503] * PUSHES
            fill(disk)
            health = receiver.health()
            assert (health.status_code, health.text) == (503, "store failing")
            (disk / "filler").unlink()
            assert receiver.push(PUSHES + 1) == 200  # the very next request, no restart
            assert receiver.health().status_code == 200
        finally:
            log = receiver.stop()
        assert sorted(stored(db)) == ["fault-0", f"fault-{PUSHES + 1}"]
    failing = [line for line in log.splitlines() if '"event": "store_failing"' in line]
    assert len(failing) == 1 and "database or disk is full" in failing[0], log
    assert log.count('"event": "store_recovered"') == 1, log
