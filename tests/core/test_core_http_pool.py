"""A burst larger than the connection pool: sends wait for a free connection within their
deadline; the wait is never a connection failure, never the vendor's fault, never counted
by its breaker (issue 15, item 5). Real loopback sockets; no timed assertions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from notifykit import AsyncNotifier, Config
from notifykit.errors import AllProvidersFailed, ProviderUnavailable
from notifykit.http import AiohttpTransport, HttpxPoolTransport, create_client, request
from notifykit.provider import ProviderContext

from .wire import read_request

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
POOL = 2
SENDS = 6
TIMEOUT = 0.1  # the per-request timeout (connect, read): far shorter than the pool wait

ACCEPTED = json.dumps(
    {
        "returnStatus": "1",
        "message": "ok",
        "remainPoint": "9",
        "taskId": "t-1",
        "successCounts": "1",
    }
).encode()


class Vendor:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 answering Veesing's success at once,
    except requests to ``/hold``, answered when ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held = 0
        self.answered = 0
        self.url = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await read_request(reader)
                if raw.startswith(b"POST /hold"):
                    self.held += 1
                    await self.release.wait()
                else:
                    self.answered += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(ACCEPTED)}\r\n\r\n".encode()
                    + ACCEPTED
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@asynccontextmanager
async def vendor() -> AsyncIterator[Vendor]:
    v = Vendor()
    server = await asyncio.start_server(v.serve, "127.0.0.1", 0)
    v.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield v
    finally:
        v.release.set()
        server.close()
        await server.wait_closed()


TRANSPORTS: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
    "aiohttp": lambda: AiohttpTransport(max_connections=POOL),
    "httpx-pool": lambda: HttpxPoolTransport(max_connections=POOL),
    # httpx's own transport as a user would inject it: its pool timeout must not apply.
    "httpx": lambda: httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=POOL)),
}


def config(url: str, **routing: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "primary": {
                    "type": "veesing",
                    "app_id": "APPID1",
                    "app_key": "KEY-0001",
                    "base_url": url,
                    "timeout": TIMEOUT,
                },
                "backup": {"type": "memory"},
            },
            "templates": {"verify_code": {"primary": {"template_id": "540"}}},
            "routing": {"providers": ["primary", "backup"], **routing},
        }
    )


async def hold_every_connection(
    transport: httpx.AsyncBaseTransport, v: Vendor
) -> list[asyncio.Task[httpx.Response]]:
    """Take every pooled connection with a request the vendor holds until released."""
    client = create_client(ProviderContext(instance="holder", transport=transport), timeout=60)
    holders = [
        asyncio.create_task(
            request(client, "POST", f"{v.url}/hold", provider="holder", content=b"x")
        )
        for _ in range(POOL)
    ]
    while v.held < POOL:
        await asyncio.sleep(0.005)
    return holders


@pytest.mark.parametrize("kind", sorted(TRANSPORTS))
async def test_a_burst_larger_than_the_pool_waits_for_free_connections(kind: str) -> None:
    transport = TRANSPORTS[kind]()
    async with vendor() as v:
        holders = await hold_every_connection(transport, v)
        async with AsyncNotifier(config(v.url), transport=transport) as notifier:
            sends = [
                asyncio.create_task(
                    notifier.send(PHONE, template="verify_code", params={"code": str(1000 + i)})
                )
                for i in range(SENDS)
            ]
            # Every send now waits for a connection, for many times its per-request timeout.
            await asyncio.sleep(TIMEOUT * 6)
            assert v.answered == 0
            v.release.set()
            results = await asyncio.gather(*sends)
            await asyncio.gather(*holders)
            assert [r.provider for r in results] == ["primary"] * SENDS  # no failover
            assert all(len(r.attempts) == 1 for r in results)
            assert v.answered == SENDS
            health = await notifier.health()
            assert health["primary"]["consecutive_failures"] == 0
            assert health["primary"]["state"] == "closed"
        await transport.aclose()


@pytest.mark.parametrize("kind", ["aiohttp", "httpx-pool"])
async def test_a_deadline_spent_waiting_for_a_connection_is_not_the_vendors_failure(
    kind: str,
) -> None:
    transport = TRANSPORTS[kind]()
    async with vendor() as v:
        holders = await hold_every_connection(transport, v)
        async with AsyncNotifier(config(v.url, deadline=TIMEOUT * 4), transport=transport) as n:
            with pytest.raises(ProviderUnavailable) as caught:
                await n.send(PHONE, template="verify_code", params={"code": "1234"})
            assert not isinstance(caught.value, AllProvidersFailed)
            assert "waiting for a free connection" in caught.value.message
            assert "never sent" in caught.value.message
            assert [a.provider for a in caught.value.attempts] == ["primary"]  # no failover
            health = await n.health()
            assert health["primary"]["consecutive_failures"] == 0
            assert v.answered == 0
            v.release.set()
            await asyncio.gather(*holders)
        await transport.aclose()
