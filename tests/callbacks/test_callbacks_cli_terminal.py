"""``notifykit log`` on a real terminal of 80 columns: a record wider than the terminal is
wrapped at spaces with indented continuation lines, never run over into the next line;
piped, each record stays one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from notifykit import Notifier
from notifykit.cli import cli

RunInPty = Callable[..., tuple[int, str]]
"""The ``run_in_pty`` fixture (tests/conftest.py)."""


def test_log_fits_the_terminal_and_stays_one_line_per_record_when_piped(
    tmp_path: Path, run_in_pty: RunInPty
) -> None:
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
    _, shown = run_in_pty(["log", "--config", str(config)], 80)
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


def test_events_config_check_and_providers_fit_the_terminal(
    tmp_path: Path, run_in_pty: RunInPty
) -> None:
    """Every command that prints records or warnings wraps them on an 80-column terminal:
    ``events --pending``, ``events --quarantine`` (its reason and body), ``config check``'s
    warnings (a Veesing instance without a callbacks token gets a long one) and
    ``providers``' rows; piped, each stays one line."""
    config = tmp_path / "notifykit.toml"
    config.write_text(
        '[providers.a-rather-long-veesing-instance]\ntype = "veesing"\napp_id = "app"\n'
        'app_key = "key"\n\n[store]\nurl = "sqlite:///nk.sqlite3"\n',
        encoding="utf-8",
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with Notifier(config) as notifier:
        for body in (
            b"mobile=15612341090&taskid=17959964977129621234&status=1"
            b"&receivetime=2026-11-30+07%3A55%3A00",
            b"garbage-that-is-no-push " * 8,
        ):
            status, _, _ = notifier.handle_callback(
                "a-rather-long-veesing-instance", "POST", form, body
            )
            assert status in (200, 400)
    for args in (
        ["events", "--pending"],
        ["events", "--quarantine"],
        ["config", "check"],
        ["providers"],
    ):
        # the configuration by its relative path: a long path is the user's, not a row's
        _, shown = run_in_pty([*args, "--config", config.name], 80, cwd=tmp_path)
        lines = shown.replace("\r\n", "\n").splitlines()
        assert len(lines) >= 2 and all(len(line) <= 79 for line in lines), (args, lines)
        piped = subprocess.run(
            [sys.executable, "-m", "notifykit", *args, "--config", config.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.splitlines()
        assert any(len(line) > 80 for line in piped), (args, piped)
