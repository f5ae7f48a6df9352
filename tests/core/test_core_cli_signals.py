"""Ctrl-C stops ``serve``, ``sandbox`` and ``demo`` cleanly with status 0 (docs/cli.md), and a
sandbox on a busy port says so in one line, as ``serve`` does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from notifykit.cli import cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process is POSIX")


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "notifykit", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "NOTIFYKIT_CONFIG"},
    )


def interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, err


def wait_until_up(base: str) -> None:
    for _ in range(600):
        try:
            httpx.get(base + "/", timeout=1)
            return
        except httpx.TransportError:
            continue
    raise AssertionError(f"{base} never answered")


def test_ctrl_c_stops_serve_with_0(tmp_path: Path) -> None:
    (tmp_path / "notifykit.toml").write_text('[providers.m]\ntype = "memory"\n', encoding="utf-8")
    process = start(["serve", "--port", "0"], tmp_path)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "notifykit receiver on http://127.0.0.1:" in line, line
    wait_until_up(line.split()[3])
    code, err = interrupt(process)
    assert code == 0, err
    assert "Aborted" not in err and "Traceback" not in err
    assert "stopped" in err


@pytest.mark.parametrize("name", ["veesing", "twilio"])
def test_ctrl_c_stops_a_sandbox_with_0(tmp_path: Path, name: str) -> None:
    process = start(["sandbox", name, "--port", "0"], tmp_path)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert f"{name} sandbox on http://127.0.0.1:" in line, line
    base = line.split()[3]
    assert not base.endswith(":0"), "the banner shows the port actually bound"
    wait_until_up(base)
    code, err = interrupt(process)
    assert code == 0, err
    assert "Aborted" not in err and "Traceback" not in err


def test_a_sandbox_on_a_busy_port_is_one_clean_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["sandbox", "veesing", "--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert result.stderr.count("\n") == 1
    assert "sandbox on" not in result.stderr


def test_ctrl_c_during_a_send_says_what_may_have_happened(tmp_path: Path) -> None:
    # A vendor that takes the request and never answers: the send is interrupted mid-call.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    db = tmp_path / "nk.sqlite3"
    port = listener.getsockname()[1]
    (tmp_path / "notifykit.toml").write_text(
        f'[providers.primary]\ntype = "veesing"\nbase_url = "http://127.0.0.1:{port}"\n'
        'app_id = "a"\napp_key = "veesing-app-key"\ntimeout = 60\n'
        '[templates.verify_code.primary]\ntemplate_id = "540"\n'
        f'[store]\nurl = "sqlite:///{db}"\n',
        encoding="utf-8",
    )
    try:
        process = start(
            ["send", "+8615612341090", "-t", "verify_code", "-p", "code=4321"], tmp_path
        )
        for _ in range(600):  # until the vendor holds the request (bounded: 60 s)
            if accepted:
                break
            stop.wait(0.1)
        assert accepted, "the send never reached the vendor"
        code, err = interrupt(process)
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()
    assert code == 1, err
    assert "Aborted!" not in err and "Traceback" not in err, err
    assert "Error: interrupted: the message may already have reached a provider" in err, err
    assert "4321" not in err and "15612341090" not in err
    log = CliRunner().invoke(
        cli, ["log", "--status", "unknown", "--config", str(tmp_path / "notifykit.toml")]
    )
    assert log.exit_code == 0, log.output
    assert "+86156****1090" in log.output, log.output
