"""``notifykit log`` on a real terminal of 80 columns: a record wider than the terminal is
wrapped at spaces with indented continuation lines, never run over into the next line;
piped, each record stays one line."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

from click.testing import CliRunner

from notifykit.cli import cli


def _in_pty(args: list[str], columns: int) -> str:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "notifykit", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_log_fits_the_terminal_and_stays_one_line_per_record_when_piped(tmp_path: Path) -> None:
    config = tmp_path / "notifykit.toml"
    config.write_text(
        '[providers.a-rather-long-instance-name]\ntype = "memory"\n\n'
        '[store]\nurl = "sqlite:///nk.sqlite3"\n',
        encoding="utf-8",
    )
    sent = CliRunner().invoke(
        cli, ["send", "+8615612341090", "-t", "verify_code_for_login", "--config", str(config)]
    )
    assert sent.exit_code == 0, sent.output
    shown = _in_pty(["log", "--config", str(config)], 80)
    lines = shown.replace("\r\n", "\n").splitlines()
    assert lines and all(len(line) <= 79 for line in lines), lines
    assert lines[1].startswith("  ") and not lines[1].startswith("    "), lines
    assert "a-rather-long-instance-name" in shown
    piped = subprocess.run(
        [sys.executable, "-m", "notifykit", "log", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    assert len(piped[0]) > 80 and "a-rather-long-instance-name" in piped[0], piped
