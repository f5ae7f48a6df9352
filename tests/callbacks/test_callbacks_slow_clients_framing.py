"""The slow-client limits follow a request's framing without parsing it a second time:
after every read, what they say the client owes (headers, body, nothing) is what an
``h11.Connection`` following the same bytes says, for any requests split anywhere,
framed by ``Content-Length``, by none, or otherwise (chunked, a repeated length)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import h11
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit.slow_clients import limited_protocol


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _reference(chunks: list[bytes]) -> list[str | None]:
    """What the client owes after each chunk, by h11 (each request followed by a fresh
    connection, as uvicorn starts a new cycle for each)."""
    owed: list[str | None] = []
    state: str | None = "headers"
    reader = h11.Connection(h11.SERVER)
    for chunk in chunks:
        if state is None:
            state = "headers"
        reader.receive_data(chunk)
        while True:
            event = reader.next_event()
            if event is h11.NEED_DATA:
                break
            if isinstance(event, h11.Request):
                state = "body"
            elif isinstance(event, h11.EndOfMessage):
                state = None
                leftover, _closed = reader.trailing_data
                reader = h11.Connection(h11.SERVER)
                if not leftover:
                    break
                state = "headers"
                reader.receive_data(leftover)
        owed.append(state)
    return owed


def _followed(chunks: list[bytes]) -> list[str | None]:
    """What the limited protocol says the client owes after each chunk."""

    async def run() -> list[str | None]:
        protocol = limited_protocol(header_timeout=60, body_timeout=60, max_connections=10)
        protocol.inner_protocol = asyncio.Protocol
        connection = protocol()
        transport = _Transport()
        connection.connection_made(transport)
        owed: list[str | None] = []
        for chunk in chunks:
            connection.data_received(chunk)
            owed.append(connection.owed)
        connection.connection_lost(None)
        assert not transport.closed  # nothing timed out, nothing was refused
        return owed

    return asyncio.run(run())


_NAMES = st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"])
_SPACE = st.sampled_from(["", " ", "\t", "  "])
_EOL = st.sampled_from(["\r\n", "\n"])


@st.composite
def _request(draw: Any) -> bytes:
    eol = draw(_EOL)
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "none", "chunked", "repeated", "listed"]))
    method = "GET" if framing == "none" else "POST"
    extra = draw(st.lists(st.sampled_from(["x-a: 1", "accept: */*", "x-length: 9"]), max_size=2))
    lines = [f"{method} /callbacks/vs HTTP/1.1", "host: x", *extra]
    name, space = draw(_NAMES), draw(_SPACE)
    if framing == "length":
        lines.append(f"{name}:{space}{len(body)}{draw(_SPACE)}")
    elif framing == "repeated":
        lines += [f"{name}: {len(body)}", f"content-length:{space}{len(body)}"]
    elif framing == "listed":
        lines.append(f"{name}: {len(body)}, {len(body)}")
    elif framing == "chunked":
        lines.append(f"Transfer-Encoding:{space}chunked")
    head = (eol.join(lines) + eol + eol).encode()
    if framing == "none":
        return head
    if framing == "chunked":
        cut = draw(st.integers(0, len(body)))
        parts = [p for p in (body[:cut], body[cut:]) if p]
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
        return head + encoded + b"0\r\n\r\n"
    return head + body


@st.composite
def _split(draw: Any) -> list[bytes]:
    stream = b"".join(draw(st.lists(_request(), min_size=1, max_size=4)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=8)))
    edges = [0, *[c for c in cuts if c < len(stream)], len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges) if b > a]


@settings(max_examples=300, deadline=None)
@given(_split())
def test_what_the_client_owes_is_what_h11_says(chunks: list[bytes]) -> None:
    assert _followed(chunks) == _reference(chunks)


def test_a_request_framed_otherwise_is_followed_by_h11_from_then_on() -> None:
    chunked = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    chunks = [chunked, b"2\r\nok\r\n", b"0\r\n\r\n", b"GET / HTTP/1.1\r\nhost: x\r\n", b"\r\n"]
    assert _followed(chunks) == ["body", "body", None, "headers", None]
