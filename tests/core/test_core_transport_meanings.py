"""Transport faults read in plain English beside their class name (issue 15 item 19):
``could not connect: connection refused: nothing listens at that address
(ClientConnectorError)``, never the class name alone."""

from __future__ import annotations

import errno
import socket

import aiohttp
import httpx
import pytest

from notifykit.errors import ProviderUnavailable, UnknownOutcome
from notifykit.http import classify_transport_error, create_client, request
from notifykit.provider import ProviderContext
from notifykit.transport_errors import describe_transport_error, transport_meaning

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_refused_connection_says_so_in_words(transport: str) -> None:
    kwargs = {} if transport == "aiohttp" else {"transport": httpx.AsyncHTTPTransport()}
    context = ProviderContext(instance="vs", **kwargs)
    async with create_client(context, timeout=2.0) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await request(client, "POST", f"http://127.0.0.1:{_free_port()}/", provider="vs")
    message = info.value.message
    # aiohttp keeps the OS error (refused); httpx's anyio reports "all attempts failed".
    if transport == "aiohttp":
        expected = "connection refused: nothing listens at that address (ClientConnectorError)"
    else:
        expected = "could not open a connection (ConnectError)"
    assert message == f"vs: could not connect: {expected}", message


KINDS = [
    (httpx.ConnectTimeout("x"), "no connection within the timeout"),
    (httpx.ReadTimeout("x"), "no answer within the timeout"),
    (httpx.PoolTimeout("x"), "no free pooled connection within the timeout"),
    (httpx.RemoteProtocolError("x"), "closed the connection or answered with broken HTTP"),
    (aiohttp.ServerDisconnectedError(), "closed the connection without answering"),
    (aiohttp.ConnectionTimeoutError(), "no connection within the timeout"),
    (aiohttp.SocketTimeoutError(), "no answer within the timeout"),
    (aiohttp.ClientPayloadError(), "cut off or malformed"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "reset by the other end"),
    (OSError(errno.EHOSTUNREACH, "no route"), "the host is unreachable"),
    (TimeoutError(), "timed out"),
]


@pytest.mark.parametrize(("exc", "meaning"), KINDS, ids=lambda v: type(v).__name__)
def test_every_transport_kind_has_a_meaning(exc: BaseException, meaning: str) -> None:
    found = transport_meaning(exc)
    assert found is not None and meaning in found
    assert describe_transport_error(exc) == f"{found} ({type(exc).__name__})"


def test_an_unknown_kind_is_its_class_name_and_never_its_text() -> None:
    class Odd(Exception):
        pass

    assert describe_transport_error(Odd("https://user:secret@vendor.test")) == "Odd"


def test_a_sent_request_without_answer_reads_in_words() -> None:
    exc = httpx.ReadTimeout("x")
    exc.__cause__ = aiohttp.SocketTimeoutError()
    error = classify_transport_error(exc, "vs")
    assert isinstance(error, UnknownOutcome)
    assert "no answer within the timeout (SocketTimeoutError)" in error.message
