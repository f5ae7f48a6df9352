"""Ctrl-C stops ``serve``, ``sandbox`` and ``demo`` cleanly with status 0 (docs/cli.md), and a
sandbox on a busy port says so in one line, as ``serve`` does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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
