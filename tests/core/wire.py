"""A scripted keep-alive HTTP/1.1 server on loopback, shared by the transport tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

Answer = Callable[[bytes], bytes | None]
"""Given one raw request (head and body), the raw answer; None: close without answering."""


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One raw request (head and a ``Content-Length`` body) from a keep-alive connection;
    raises ``asyncio.IncompleteReadError`` when the client closes it."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def loopback_server(answer: Answer | None) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A keep-alive HTTP/1.1 server on 127.0.0.1; ``answer`` None: read and never answer.

    Yields its base URL and the raw requests it received."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await read_request(reader)
                seen.append(raw)
                if answer is None:
                    await asyncio.sleep(30)
                    return
                out = answer(raw)
                if out is None:
                    return
                writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()
