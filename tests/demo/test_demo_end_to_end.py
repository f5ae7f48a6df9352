"""`notifykit demo` end to end over loopback sockets: exit 0, every message accounted for."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from click.testing import CliRunner

from notifykit.cli import cli
from notifykit.demo import DemoSettings, run_demo
from notifykit.demo_render import display_width

SUMMARY = re.compile(r"^(\d+) messages: (.*?); [\d.]+ s$", re.MULTILINE)


def test_demo_command_exits_zero_and_accounts_for_every_message(tmp_path: Path) -> None:
    env = {**os.environ, "NOTIFYKIT_CONFIG": str(tmp_path / "absent.toml")}
    env.pop("NOTIFYKIT_LOAD_PLUGINS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "notifykit", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    match = SUMMARY.search(proc.stdout)
    assert match is not None, proc.stdout
    total = int(match.group(1))
    counted = sum(int(part.split()[0]) for part in match.group(2).split(", "))
    assert total == counted >= 20
    assert "failover" in proc.stdout and "breaker of primary: closed -> open" in proc.stdout
    # The Chinese backup is Alibaba Cloud; its last message's receipt came by polling.
    assert "backup (aliyun)" in proc.stdout
    assert "#20 +86156****0703: no push for this one" in proc.stdout
    assert "QuerySendDetails: delivered" in proc.stdout or "QuerySendDetails: undelivered" in (
        proc.stdout
    )
    assert "#20's receipt by polling" in proc.stdout
    # Every row of the table ends in a final delivery status, except the one request the
    # hung primary took: unknown, and never sent a second time by the backup.
    rows = [line for line in proc.stdout.splitlines() if re.match(r"^\s+\d+\s+\+", line)]
    assert len(rows) == total
    unknown = [row for row in rows if re.search(r"\bunknown\b", row)]
    assert len(unknown) == 1, rows
    assert "primary UnknownOutcome" in unknown[0] and "backup" not in unknown[0]
    settled = [row for row in rows if row not in unknown]
    assert all(re.search(r"\b(delivered|undelivered)\b", row) for row in settled), rows
    # Piped, the output is plain: no progress bar, no escape sequence, no carriage return;
    # the table and the summary fit 80 columns.
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    assert "Sending" not in proc.stdout
    table = proc.stdout[proc.stdout.index("  #  destination") :]
    assert all(display_width(line) <= 80 for line in table.splitlines()), table
    # Every reply the summary counts is shown beside its message, Alibaba's too (its SmsUp
    # names no message: shown by number, and said so).
    replies = re.search(r"(\d+) replies", proc.stdout)
    assert replies is not None
    rows_only = table.split("\n\n")[0]
    assert len(re.findall(r"reply\*?: ", rows_only)) == int(replies.group(1)), table


def test_demo_in_process_leaves_nothing_running_and_keep_shows_history(tmp_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    lines: list[str] = []
    outcome = run_demo(
        DemoSettings(count=8, keep=tmp_path, echo=lines.append, progress=False, pace=0.0)
    )
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leftover == [], leftover
    assert len(outcome.rows) >= 8
    assert {row.provider for row in outcome.rows[:5]} == {"primary"}
    assert (
        outcome.rows[5].provider == "backup" and "InsufficientBalance" in outcome.rows[5].attempts
    )
    assert all(row.status in {"delivered", "undelivered", "unknown"} for row in outcome.rows)
    assert outcome.polled == 8  # the last Chinese message, to the Alibaba backup, by polling
    # The kept store and configuration answer `notifykit log`.
    config = tmp_path / "notifykit.toml"
    assert config.is_file()
    token_line = next(line for line in config.read_text().splitlines() if line.startswith("token"))
    token = token_line.split('"')[1]
    result = CliRunner().invoke(cli, ["log", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert token not in result.output and all(token not in line for line in lines)
    assert result.output.count('"message_id"') >= len(outcome.rows)
