"""Promises of the receiver that are held here directly, over real sockets on loopback:
the token is compared in constant time for every request, nothing is answered before it is
stored, and credentials sent to the receiver are not kept in the inbox."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from notifykit.callbacks import create_app
from notifykit.config import Config
from notifykit.server import ServerThread

Serve = Callable[[Any], ServerThread]
TOKEN = "s3cret-t0ken"
FORM = {"content-type": "application/x-www-form-urlencoded;charset=utf-8"}
RECEIPT = b"mobile=15080921234&taskid=77&status=1&receivetime=2024-05-01 17:00:00"


def config(db: Path, **store: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {"vs": {"type": "veesing", "app_id": "app", "app_key": "key"}},
            "store": {"url": f"sqlite:///{db}", "timeout": 5, **store},
            "callbacks": {"token": TOKEN},
        }
    )


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[bytes, bytes]]]:
    """Every (given, expected) pair compared through notifykit.compare's one primitive."""
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    yield seen


TOKENS = [
    (TOKEN, 200),  # right
    (TOKEN[:-1] + "X", 404),  # wrong, same length
    (TOKEN[:3], 404),  # shorter
    (TOKEN + "0", 404),  # longer
    ("", 404),  # empty
    ("tøken-秘密", 404),  # not ASCII
]


def test_every_token_is_compared_in_constant_time(
    serve: Serve, db: Path, comparisons: list[tuple[bytes, bytes]]
) -> None:
    server = serve(create_app(config(db)))
    for given, status in TOKENS:
        comparisons.clear()
        answer = httpx.post(
            f"{server.url}/callbacks/vs/{quote(given)}", content=RECEIPT, headers=FORM
        )
        assert answer.status_code == status, given
        against_token = [pair for pair in comparisons if pair[1] == TOKEN.encode()]
        assert against_token == [(given.encode(), TOKEN.encode())], given
