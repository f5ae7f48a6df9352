"""Real processes against real PostgreSQL and Redis: a Veesing sandbox on loopback, a
config file per test, helpers to run senders and ``notifykit serve`` as subprocesses."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from notifykit_veesing import VeesingSandbox

from notifykit.server import ServerThread

APP_ID = "multi-app"
APP_KEY = "MULTI-APP-KEY-never-shown-0042"
CB_TOKEN = "MULTI-CB-TOKEN-never-shown-0042"
ENV = {**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"}

StartSandbox = Callable[..., tuple[VeesingSandbox, ServerThread]]


@pytest.fixture
def sandbox(veesing_sandboxes: StartSandbox) -> StartSandbox:
    """``start(**settings)``: a Veesing sandbox on 127.0.0.1 (no per-number limits)."""
    return functools.partial(veesing_sandboxes, app_id=APP_ID, app_key=APP_KEY)


def write_config(
    path: Path,
    *,
    vendor_url: str,
    pg_url: str,
    schema: str,
    extra: str = "",
    redis: tuple[str, str] | None = None,
) -> Path:
    text = (
        f'[providers.vs]\ntype = "veesing"\napp_id = "{APP_ID}"\napp_key = "{APP_KEY}"\n'
        f'base_url = "{vendor_url}"\ntimeout = 30\n\n'
        '[templates.verify_code.vs]\ntemplate_id = "540"\n\n'
        f'[store]\nurl = "{pg_url}"\nschema = "{schema}"\ntimeout = 30\n\n'
        f'[callbacks]\ntoken = "{CB_TOKEN}"\n\n'
    )
    if redis is not None:
        text += (
            f'[shared_state]\nurl = "{redis[0]}"\nkey_prefix = "{redis[1]}"\n'
            "timeout = 10\n\n"  # a slow machine must not look like an outage here
        )
    path.write_text(text + extra, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    config: Path, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``notifykit serve`` on ``port`` (environment ``env``, else :data:`ENV`), returned
    once it listens."""
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
        env=ENV if env is None else env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert f"127.0.0.1:{port}" in line and CB_TOKEN not in line, line
    return process


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Subprocesses to kill after the test, whatever happens."""
    running: list[subprocess.Popen[str]] = []
    yield running
    for process in running:
        if process.poll() is None:
            process.kill()
            process.wait(10)
