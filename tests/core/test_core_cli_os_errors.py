"""Conditions a user can cause (a closed pipe, a path that cannot be written, a full disk)
are never an "unexpected error"."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifykit.cli import cli


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFYKIT_CONFIG", raising=False)


@pytest.mark.parametrize("args", [["providers"], ["log"], ["providers", "--json"]])
def test_a_closed_stdout_ends_quietly(tmp_path: Path, args: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line, as `| head -0` would be
    try:
        done = subprocess.run(
            [sys.executable, "-m", "notifykit", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert "unexpected error" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr


def test_a_full_disk_is_said_as_the_system_says_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(_data: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/var/out.json")

    monkeypatch.setattr("notifykit.cli.core.echo_json", full)
    result = CliRunner().invoke(cli, ["providers", "--json"])
    assert result.exit_code == 1
    assert result.stderr.endswith(f"\nError: {os.strerror(errno.ENOSPC)}: /var/out.json\n")
    assert "unexpected" not in result.stderr


def test_demo_keep_in_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    result = CliRunner().invoke(cli, ["demo", "--keep", str(blocker / "sub"), "--count", "1"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: --keep {blocker / 'sub'}: cannot create the folder: ")
    assert "unexpected" not in result.stderr


def test_a_store_that_cannot_be_created_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    config = tmp_path / "nk.toml"
    config.write_text(
        f'[providers.c]\ntype = "console"\n[store]\nurl = "sqlite:///{blocker}/x.db"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["log", "--config", str(config)])
    assert result.exit_code == 1
    assert "opening the store failed: " in result.stderr
    assert str(blocker) in result.stderr
    assert "Error:" in result.stderr and "FileExistsError" not in result.stderr
