"""What the protocol behind the slow-client limits writes in one turn of the event loop
reaches the connection as one write, in order; closing sends what is held first, aborting
discards it."""

from __future__ import annotations

import asyncio
from typing import Any

from notifykit.slow_clients import limited_protocol


class Real(asyncio.Transport):
    """The connection's transport: records every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(bytes(data))

    def is_closing(self) -> bool:
        return "close" in self.calls or "abort" in self.calls

    def close(self) -> None:
        self.calls.append("close")

    def abort(self) -> None:
        self.calls.append("abort")

    def get_write_buffer_size(self) -> int:
        return 0


class Writer(asyncio.Protocol):
    """Answers each read with what the test set in ``then``: writes, a close or an abort."""

    then: list[Any] = []  # noqa: RUF012 (set by each test)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for step in Writer.then:
            if step == "close":
                self.transport.close()
            elif step == "abort":
                self.transport.abort()
            else:
                self.transport.write(step)
                assert self.transport.get_write_buffer_size() >= len(step)


def run(steps: list[Any]) -> list[Any]:
    """The real transport's calls after one request answered with ``steps`` and one turn."""

    async def go() -> list[Any]:
        protocol = limited_protocol(header_timeout=60, body_timeout=60, max_connections=10)
        protocol.inner_protocol = Writer
        Writer.then = steps
        connection = protocol()
        real = Real()
        connection.connection_made(real)
        connection.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await asyncio.sleep(0)  # the end of the turn
        await asyncio.sleep(0)
        connection.connection_lost(None)
        return real.calls

    return asyncio.run(go())


def test_the_writes_of_one_turn_leave_as_one() -> None:
    head, body = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"ok"
    assert run([head, bytearray(body), b""]) == [head + body]
    assert run([head]) == [head]


def test_closing_sends_what_is_held_first_and_aborting_discards_it() -> None:
    assert run([b"HTTP/1.1 400 ", b"Bad Request\r\n\r\n", "close", b"late"]) == [
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        "close",
    ]
    assert run([b"HTTP/1.1 200 OK\r\n", "abort"]) == ["abort"]
