"""A minimal asyncio keep-alive HTTP/1.1 server, run in its own process.

``python -m bench.fast_server ok``: answers every request with Veesing's success JSON.
``python -m bench.fast_server hang``: accepts connections, reads, never answers.
``python -m bench.fast_server discard``: answers ``200 ok`` with an empty-ish body.
Prints ``PORT <n>`` on its first line, then serves until killed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys

from notifykit.server import listening_socket

SUCCESS = json.dumps(
    {
        "returnStatus": "1",
        "message": "成功",
        "remainPoint": "1000",
        "taskId": "TASKID00",
        "successCounts": "1",
    },
    ensure_ascii=False,
).encode()
"""A success; ``TASKID00`` is replaced by a fresh id per answer, as a real vendor gives."""


def _response(body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: keep-alive\r\n\r\n"
        + body
    )


ANSWERS = {
    "ok": _response(SUCCESS, b"application/json;charset=UTF-8"),
    "discard": _response(b"ok", b"text/plain"),
}
_task_ids = itertools.count(10_000_000)


class KeepAlive(asyncio.Protocol):
    """Parses just enough HTTP/1.1 (headers, content-length) to answer each request."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer = answer
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            if self.answer is not None and self.transport is not None:
                # Same length for every id, so content-length stays right.
                self.transport.write(self.answer.replace(b"TASKID00", b"%d" % next(_task_ids), 1))


async def serve(mode: str) -> None:
    sock = listening_socket("127.0.0.1", 0)  # IPPROTO_TCP: no Nagle stall
    sock.listen(1024)
    answer = ANSWERS.get(mode)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: KeepAlive(answer), sock=sock, backlog=1024)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1] if len(sys.argv) > 1 else "ok"))
