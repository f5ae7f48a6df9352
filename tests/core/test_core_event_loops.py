"""One notifier, several event loops (issue 15, item 1).

An ``AsyncNotifier`` used from one loop after another (``asyncio.run`` twice, a test
runner's loop per test) follows the running loop: no send is charged to a vendor, nothing
fails over, and no "Event loop is closed" or "Unclosed client session" reaches the logs.
Used from a second loop while its first still runs (another thread), it raises
``UsageError`` before any provider is tried. Real loopback sockets; no timed assertions.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from notifykit import AsyncNotifier, Config, Notifier, SendResult
from notifykit.errors import UsageError

PHONE = "+8615612341090"
ACCEPTED = json.dumps(
    {
        "returnStatus": "1",
        "message": "ok",
        "remainPoint": "9",
        "taskId": "t-1",
        "successCounts": "1",
    }
).encode()
NOISE = ("Event loop is closed", "Unclosed client session", "Unclosed connector", "destroyed")


class _Vendor(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: pooled connections outlive a request
    requests = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).requests += 1
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(ACCEPTED)))
        self.end_headers()
        self.wfile.write(ACCEPTED)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def vendor() -> Iterator[tuple[str, type[_Vendor]]]:
    handler = type("Vendor", (_Vendor,), {"requests": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def config(url: str, store: dict[str, Any]) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "primary": {"type": "veesing", "app_id": "A1", "app_key": "K-1", "base_url": url},
                "backup": {"type": "memory"},
            },
            "templates": {"verify_code": {"primary": {"template_id": "540"}}},
            "routing": {"providers": ["primary", "backup"]},
            "store": store,
        }
    )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "memory":
        return {"url": "memory://"}
    if request.param == "sqlite":
        return {"url": f"sqlite:///{tmp_path}/nk.db"}
    return {
        "url": request.getfixturevalue("pg_store_url"),
        "schema": request.getfixturevalue("pg_schema"),
    }


def _close_without_shutting_down(loop: asyncio.AbstractEventLoop) -> None:
    """Close ``loop`` as a careful hand-run loop is closed: its tasks cancelled, but no
    ``shutdown_asyncgens()``, so the notifier's shutdown hook never runs and the next loop
    must notice on its own."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


def _quiet(caplog: pytest.LogCaptureFixture, caught: list[warnings.WarningMessage]) -> None:
    """Nothing of a loop left behind reached the logs or the warnings."""
    gc.collect()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    said += [str(w.message) for w in caught]
    assert not [s for s in said if any(n in s for n in NOISE)], said


async def _send(notifier: AsyncNotifier, code: str) -> SendResult:
    return await notifier.send(PHONE, template="verify_code", params={"code": code})


def test_one_async_notifier_follows_asyncio_run_after_asyncio_run(
    vendor: tuple[str, type[_Vendor]], store: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = vendor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        notifier = AsyncNotifier(config(url, store))
        first = asyncio.run(_send(notifier, "1111"))
        second = asyncio.run(_send(notifier, "2222"))

        async def read_first_and_close(n: AsyncNotifier) -> Any:
            try:
                return await n.get_message(first.message_id)
            finally:
                await n.close()

        record = asyncio.run(read_first_and_close(notifier))
        del notifier
        _quiet(caplog, caught)
    for result in (first, second):
        assert result.provider == "primary"  # never failed over
        assert [a.outcome for a in result.attempts] == ["accepted"]
    assert handler.requests == 2
    assert record is not None and record.provider == "primary"  # the store, on a third loop


def test_a_loop_closed_without_shutting_down_is_followed_too(
    vendor: tuple[str, type[_Vendor]], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = vendor
    notifier = AsyncNotifier(config(url, {"url": "memory://"}))
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(_send(notifier, "1111"))
    finally:
        _close_without_shutting_down(loop)

    async def send_and_close() -> SendResult:
        async with notifier:
            return await _send(notifier, "2222")

    second = asyncio.run(send_and_close())
    assert [first.provider, second.provider] == ["primary", "primary"]
    assert [len(first.attempts), len(second.attempts)] == [1, 1]
    assert handler.requests == 2


def test_a_second_running_loop_is_a_usage_error_never_a_vendor_failure(
    vendor: tuple[str, type[_Vendor]],
) -> None:
    url, handler = vendor
    with Notifier(config(url, {"url": "memory://"})) as notifier:
        assert notifier.send(PHONE, template="verify_code", params={"code": "1111"}).provider == (
            "primary"
        )
        # The sync twin's loop runs in its thread; this is another loop, running here.
        with pytest.raises(UsageError, match="another event loop that is still running"):
            asyncio.run(_send(notifier.async_notifier, "2222"))
        assert handler.requests == 1  # no provider was tried: nothing failed over
        health = notifier.health()
        assert health["primary"]["consecutive_failures"] == 0
        assert notifier.send(PHONE, template="verify_code", params={"code": "3333"}).provider == (
            "primary"
        )
    assert handler.requests == 2


def test_a_closed_notifier_is_a_usage_error(vendor: tuple[str, type[_Vendor]]) -> None:
    url, _ = vendor
    notifier = Notifier(config(url, {"url": "memory://"}))
    notifier.close()
    with pytest.raises(UsageError, match="closed"):
        notifier.send(PHONE, template="verify_code", params={"code": "1111"})


def test_shared_state_follows_the_loop_without_falling_back(
    vendor: tuple[str, type[_Vendor]],
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis connections are the loop's too: the second loop's sends still use Redis,
    with no 'shared state unavailable' fallback."""
    url, handler = vendor
    base = config(url, {"url": "memory://"})
    shared = base.model_copy(
        update={
            "shared_state": base.shared_state.model_copy(
                update={"url": redis_url, "key_prefix": redis_prefix}
            )
        }
    )
    notifier = AsyncNotifier(shared)

    async def send_and_ask() -> tuple[SendResult, dict[str, Any]]:
        result = await _send(notifier, "1111")
        return result, await notifier.health()

    first, _ = asyncio.run(send_and_ask())
    second, health = asyncio.run(send_and_ask())
    asyncio.run(notifier.close())
    assert [first.provider, second.provider] == ["primary", "primary"]
    assert health["primary"]["shared_state"] == "redis"
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [s for s in said if "shared state unavailable" in s or "closed" in s], said
    assert handler.requests == 2


def test_shared_state_follows_a_loop_closed_without_shutting_down(
    vendor: tuple[str, type[_Vendor]], redis_url: str, redis_prefix: str
) -> None:
    url, handler = vendor
    base = config(url, {"url": "memory://"})
    shared = base.model_copy(
        update={
            "shared_state": base.shared_state.model_copy(
                update={"url": redis_url, "key_prefix": redis_prefix}
            )
        }
    )
    notifier = AsyncNotifier(shared)
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(_send(notifier, "1111"))
    finally:
        _close_without_shutting_down(loop)

    async def send_and_close() -> SendResult:
        async with notifier:
            return await _send(notifier, "2222")

    second = asyncio.run(send_and_close())
    assert [first.provider, second.provider] == ["primary", "primary"]
    assert handler.requests == 2
