"""``notifykit serve`` whose store cannot be used at start: one ``Error:`` line naming what
is wrong (password masked), exit 1 as every store failure of the CLI, no traceback, and no
banner claiming it serves. Real subprocesses on loopback, bounded by timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from notifykit.cli.common import EXIT_FAILED, EXIT_USAGE

from .conftest import serve_argv

PASSWORD = "Serve-Start-PW-never-shown-0042"
APP_KEY = "serve-start-app-key-never-shown"
TOKEN = "serve-start-TOKEN-never-shown-0042"


def _config(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(
        f'[providers.primary]\ntype = "veesing"\napp_id = "app"\napp_key = "{APP_KEY}"\n\n'
        f'[callbacks]\ntoken = "{TOKEN}"\n\n[store]\n{store}\ntimeout = 5\n',
        encoding="utf-8",
    )
    return path


def _serve(tmp_path: Path, config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFYKIT_LOAD_PLUGINS": "veesing"}
    env.pop("NOTIFYKIT_CONFIG", None)
    return subprocess.run(
        serve_argv(config, *flags),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_one_error(done: subprocess.CompletedProcess[str], *expected: str) -> str:
    both = done.stdout + done.stderr
    assert done.returncode == EXIT_FAILED, both
    assert "Traceback" not in both and "Application startup failed" not in both, both
    assert "receiver on" not in both and "push URL" not in both, both  # no banner
    assert done.stdout == "", both
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and done.stderr.strip() == errors[0], both
    for secret in (PASSWORD, APP_KEY, TOKEN):
        assert secret not in both
    for part in expected:
        assert part in errors[0], errors[0]
    return errors[0]


def _with_password(url: str, port: int | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{PASSWORD}@{parts.hostname}:{port if port is not None else parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_an_unreachable_postgresql_is_one_error_line_before_any_banner(
    tmp_path: Path, pg_url: str
) -> None:
    url = _with_password(pg_url, port=5999)  # nothing listens there
    done = _serve(tmp_path, _config(tmp_path, f'url = "{url}"'))
    _assert_one_error(done, "cannot start", "cannot connect", "5999", "***")


def test_an_unmigrated_schema_with_migrate_false_says_to_migrate(
    tmp_path: Path, pg_store_url: str, pg_schema: str
) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(pg_store_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')  # there, but never migrated
    config = _config(tmp_path, f'url = "{pg_store_url}"\nschema = "{pg_schema}"\nmigrate = false')
    done = _serve(tmp_path, config)
    _assert_one_error(done, "cannot start", pg_schema, "notifykit store migrate")
    # It only looked: the schema is still unmigrated (no table made).
    with psycopg.connect(pg_store_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            (pg_schema,),
        ).fetchone()
    assert tables == (0,)


def test_a_migration_that_fails_is_one_error_line(
    tmp_path: Path, pg_store_url: str, pg_schema: str
) -> None:
    """A role that may not create the schema (no CREATE on the database): the migration
    fails at start. Its password is in the URL, and never in the output."""
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    role = f"{pg_schema}_r"
    with psycopg.connect(pg_store_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(PASSWORD)
            )
        )
        try:
            parts = urlsplit(pg_store_url)
            url = urlunsplit(
                parts._replace(netloc=f"{role}:{PASSWORD}@{parts.hostname}:{parts.port}")
            )
            config = _config(tmp_path, f'url = "{url}"\nschema = "{pg_schema}"')
            done = _serve(tmp_path, config)
        finally:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    _assert_one_error(done, "cannot start", "***")


@pytest.mark.parametrize("where", ["under_a_file", "a_directory", "read_only_fs"])
def test_a_sqlite_path_that_cannot_be_written_is_one_error_line(tmp_path: Path, where: str) -> None:
    if where == "under_a_file":
        (tmp_path / "plain").write_text("not a folder", encoding="utf-8")
        path = str(tmp_path / "plain" / "nk.sqlite3")
    elif where == "a_directory":
        (tmp_path / "folder.sqlite3").mkdir()
        path = str(tmp_path / "folder.sqlite3")
    else:
        if not Path("/proc/self").is_dir():
            pytest.skip("needs Linux's /proc (read-only, root included)")
        path = "/proc/nk-serve-start.sqlite3"
    done = _serve(tmp_path, _config(tmp_path, f'url = "sqlite:///{path}"'))
    _assert_one_error(done, "cannot start", path)


def test_a_port_in_use_is_still_a_usage_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _config(tmp_path, f'url = "sqlite:///{tmp_path / "nk.sqlite3"}"')
        env = {**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"}
        done = subprocess.run(
            serve_argv(config, port=port),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert (
        done.stderr.strip() == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_a_usable_store_prints_the_banner_serves_and_stops_with_0(tmp_path: Path) -> None:
    """The banner comes once the store is open, and the receiver answers at once."""
    config = _config(tmp_path, f'url = "sqlite:///{tmp_path / "nk.sqlite3"}"')
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NOTIFYKIT_LOAD_PLUGINS": "veesing"}
    proc = subprocess.Popen(
        serve_argv(config),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("notifykit receiver on http://127.0.0.1:"), banner
        port = banner.split("127.0.0.1:", 1)[1].split()[0]
        assert "push URL of primary" in proc.stdout.readline()
        assert (tmp_path / "nk.sqlite3").exists()  # opened before the banner
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert (health.status_code, health.text) == (200, "ok")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err, err


def test_demo_keep_with_a_store_that_cannot_be_opened_is_one_error_line_before_any_server(
    tmp_path: Path,
) -> None:
    """The receiver the demo runs would fail its start on this store: found first."""
    keep = tmp_path / "kept"
    (keep / "notifykit.sqlite3").mkdir(parents=True)  # a folder where the store goes
    env = {**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"}
    env.pop("NOTIFYKIT_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "notifykit", "demo", "--keep", str(keep), "--count", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip()
    assert line.startswith(f"Error: --keep {keep}: the store ") and "\n" not in line, line
    assert "cannot be opened" in line
    assert not (keep / "notifykit.toml").exists()  # nothing was started
