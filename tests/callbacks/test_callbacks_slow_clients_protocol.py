"""The slow-client limits use nothing of the HTTP protocol they guard but the
``asyncio.Protocol`` interface: driven here in front of a bare protocol that has nothing
else (any other attribute read fails), on a real loopback socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notifykit.slow_clients import limited_protocol

pytestmark = pytest.mark.anyio

WAIT = 30.0


class Bare(asyncio.Protocol):
    """An HTTP server of the fewest parts: answers ``200 ok`` to each complete request
    (headers, then ``content-length`` bytes), and has no attribute but the interface's."""

    __slots__ = ("buffer", "calls", "transport")

    seen: list[Bare] = []  # noqa: RUF012 (the instances of one test)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.calls: list[str] = [f"init{sorted(kwargs)}"]
        self.buffer = b""
        Bare.seen.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.calls.append("connection_made")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) >= length:
            self.buffer = rest[length:]
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append("connection_lost")


async def serve(**limits: Any) -> tuple[asyncio.Server, int]:
    protocol = limited_protocol(
        **{"header_timeout": 0.2, "body_timeout": 0.2, "max_connections": 2, **limits}
    )
    protocol.inner_protocol = Bare
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(config="c", server_state="s"), "127.0.0.1", 0
    )
    return server, server.sockets[0].getsockname()[1]


async def exchange(port: int, sent: bytes, *, until_closed: bool = True) -> bytes:
    """Send ``sent``, then read until the server closes (or, kept open, one answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        await writer.drain()
        async with asyncio.timeout(WAIT):
            return await (reader.read() if until_closed else reader.readexactly(40))
    finally:
        writer.close()


async def test_complete_requests_pass_stuck_ones_time_out_extra_ones_are_refused() -> None:
    Bare.seen.clear()
    server, port = await serve()
    async with server:
        # Complete: answered by the protocol behind, with uvicorn's arguments passed on.
        ok = await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", until_closed=False)
        assert ok == (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        assert Bare.seen[0].calls[0] == "init['config', 'server_state']"
        # Headers never finished, then a body never finished: 408 and closed.
        late = await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\n")
        assert late.startswith(b"HTTP/1.1 408 Request Timeout"), late
        late = await exchange(port, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 9\r\n\r\nab")
        assert late.startswith(b"HTTP/1.1 408 Request Timeout"), late
    assert [b.calls[1:] for b in Bare.seen] == [["connection_made", "connection_lost"]] * 3


async def test_connections_beyond_the_cap_never_reach_the_protocol_behind() -> None:
    Bare.seen.clear()
    server, port = await serve(header_timeout=60)
    async with server:
        # Two held (the cap): a third is answered 503 at once, without the protocol behind.
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        async with asyncio.timeout(WAIT):
            while len(Bare.seen) < 2:  # both accepted and handed on
                await asyncio.sleep(0.01)
        busy = await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 503 Service Unavailable"), busy
        assert len(Bare.seen) == 2
        for _, writer in held:
            writer.close()
        # Their slots are free again once they have gone.
        async with asyncio.timeout(WAIT):
            while not (
                await exchange(port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", until_closed=False)
            ).startswith(b"HTTP/1.1 200"):
                await asyncio.sleep(0.01)
