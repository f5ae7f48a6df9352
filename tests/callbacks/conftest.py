"""Receivers on loopback for the callback tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notifykit.server import ServerThread

Serve = Callable[[Any], ServerThread]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(app)`` runs ``app`` with uvicorn on 127.0.0.1, lifespan on; stopped after."""
    started: list[ServerThread] = []

    def start(app: Any) -> ServerThread:
        server = ServerThread(app, lifespan="on")
        started.append(server.start())
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A SQLite store file for the receiver under test."""
    return tmp_path / "receiver.sqlite3"


def serve_argv(config: Path, *flags: str, port: int = 0) -> list[str]:
    """The command line of ``notifykit serve`` (this interpreter) on 127.0.0.1:``port``
    with ``config``; ``flags`` go before ``serve`` (``-v``)."""
    return [
        sys.executable, "-m", "notifykit", *flags,
        "serve", "--port", str(port), "--config", str(config),
    ]  # fmt: skip
