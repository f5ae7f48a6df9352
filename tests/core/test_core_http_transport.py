"""notifykit's own aiohttp transport (real loopback sockets) and request()'s direct path."""

from __future__ import annotations

import base64
import gzip
import socket

import aiohttp
import httpx
import pytest

from notifykit.errors import ProviderUnavailable, UnknownOutcome
from notifykit.http import AiohttpTransport, create_client, default_transport, request
from notifykit.provider import ProviderContext

from .wire import Answer
from .wire import loopback_server as _server

pytestmark = pytest.mark.anyio


def _http(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _basic(user: str, password: str) -> str:
    """The basic-auth header value (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_request_and_its_answer_cross_the_transport_intact() -> None:
    body = '{"returnStatus": "1", "message": "成功"}'.encode()

    def answer(raw: bytes) -> bytes:
        return _http("201 Created", body, "content-type: application/json;charset=UTF-8")

    async with _server(answer) as (url, seen):
        transport = AiohttpTransport()
        try:
            async with httpx.AsyncClient(transport=transport) as client:
                for _ in range(3):  # one pooled connection, reused
                    response = await client.post(
                        url + "/send?x=1",
                        content=b"a=1&b=2",
                        headers={"content-type": "application/x-www-form-urlencoded"},
                    )
                    assert response.status_code == 201
                    assert response.reason_phrase == "Created"
                    assert response.json() == {"returnStatus": "1", "message": "成功"}
                    assert response.headers["content-type"] == "application/json;charset=UTF-8"
        finally:
            await transport.aclose()
    assert len(seen) == 3
    head, _, sent = seen[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /send?x=1 HTTP/1.1\r\n")
    assert b"content-type: application/x-www-form-urlencoded" in head.lower()
    assert sent == b"a=1&b=2"


async def test_a_compressed_answer_is_decoded_once() -> None:
    packed = gzip.compress(b'{"ok": true}')

    def answer(raw: bytes) -> bytes:
        return _http("200 OK", packed, "content-encoding: gzip", "content-type: application/json")

    async with _server(answer) as (url, _):
        context = ProviderContext(instance="vs")
        async with create_client(context, timeout=2.0) as client:
            response = await request(client, "GET", url + "/", provider="vs")
    assert response.json() == {"ok": True}


async def test_a_refused_connection_is_retryable_and_names_aiohttp_cause() -> None:
    context = ProviderContext(instance="vs")
    async with create_client(context, timeout=2.0) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await request(client, "POST", f"http://127.0.0.1:{_free_port()}/", provider="vs")
    assert info.value.retryable is True
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert isinstance(info.value.__cause__.__cause__, aiohttp.ClientConnectorError)


@pytest.mark.parametrize("answer", [None, lambda raw: None], ids=["hangs", "hangs_up"])
async def test_a_request_sent_but_not_answered_is_unknown(answer: Answer | None) -> None:
    context = ProviderContext(instance="vs")
    async with _server(answer) as (url, seen), create_client(context, timeout=0.3) as client:
        with pytest.raises(UnknownOutcome) as info:
            await request(client, "POST", url + "/", provider="vs", content=b"x=1")
    assert len(seen) == 1
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert isinstance(info.value.__cause__.__cause__, aiohttp.ClientError)


async def test_a_url_aiohttp_cannot_send_is_unavailable() -> None:
    transport = default_transport()
    context = ProviderContext(instance="vs", transport=transport)
    try:
        async with create_client(context, timeout=1.0) as client:
            with pytest.raises(ProviderUnavailable) as info:
                await request(client, "GET", "ftp://vendor.test/", provider="vs")
    finally:
        await transport.aclose()
    assert info.value.retryable is True


async def test_the_direct_path_applies_the_clients_settings() -> None:
    captured: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        captured.append(req)
        return httpx.Response(200, json={"ok": 1})

    context = ProviderContext(instance="tw", transport=httpx.MockTransport(handler))
    async with create_client(
        context,
        timeout=3.0,
        base_url="https://vendor.test/api",
        auth=httpx.BasicAuth("user", "pass"),
        headers={"accept": "application/json"},
    ) as client:
        first = await request(
            client, "POST", "/send", provider="tw", data={"To": "+1"}, headers={"x-a": "1"}
        )
        second = await request(client, "GET", "/balance", provider="tw", params={"q": "2"})
    assert second.status_code == 200
    assert first.json() == {"ok": 1} and first.request is captured[0]
    sent, queried = captured
    assert str(sent.url) == "https://vendor.test/api/send"
    assert sent.headers["authorization"] == _basic("user", "pass")
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["x-a"] == "1"
    assert sent.headers["user-agent"].startswith("python-httpx/")
    assert sent.content == b"To=%2B1"
    # No pool timeout: the wait for a free connection is bounded by the send's deadline.
    assert sent.extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": None}
    # params need AsyncClient's own path: still sent, same settings
    assert str(queried.url) == "https://vendor.test/api/balance?q=2"
    assert queried.headers["authorization"] == sent.headers["authorization"]
    assert "x-a" not in queried.headers


async def test_bytes_bodies_of_any_length_get_their_own_length_and_the_same_headers() -> None:
    captured: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        captured.append(req)
        return httpx.Response(200)

    context = ProviderContext(instance="vs", transport=httpx.MockTransport(handler))
    form = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
    async with create_client(context, timeout=2.0, auth=httpx.BasicAuth("u", "p")) as client:
        for body in (b"a=1", b"a=12345", b"a=1"):
            await request(
                client,
                "POST",
                "http://vendor.test:8080/send",
                provider="vs",
                content=body,
                headers=form,
            )
        # a length set by the caller is left alone (AsyncClient's own rules)
        await request(
            client,
            "POST",
            "http://vendor.test:8080/send",
            provider="vs",
            content=b"abc",
            headers={"content-length": "3"},
        )
    expected = httpx.Request(
        "POST",
        "http://vendor.test:8080/send",
        headers={**client.headers, **form},
        content=b"a=12345",
    )
    for req, body in zip(captured, (b"a=1", b"a=12345", b"a=1", b"abc"), strict=True):
        assert req.content == body
        assert req.headers["content-length"] == str(len(body))
        assert req.headers["host"] == "vendor.test:8080"
        assert req.headers["authorization"] == _basic("u", "p")
    assert sorted(captured[1].headers.multi_items()) == sorted(
        [*expected.headers.multi_items(), ("authorization", captured[1].headers["authorization"])]
    )


async def test_a_utf8_header_reaches_the_server_unchanged() -> None:
    def answer(raw: bytes) -> bytes:
        return _http("200 OK", b"ok")

    context = ProviderContext(instance="vs")
    async with _server(answer) as (url, seen), create_client(context, timeout=2.0) as client:
        await request(
            client,
            "POST",
            url + "/",
            provider="vs",
            content=b"x",
            headers={"x-name": "张三".encode()},
        )
    assert "x-name: 张三".encode() in seen[0]
