"""``send_body()``'s bare path (straight to aiohttp) against :func:`request`, the path it
stands in for: over real loopback sockets, on generated requests and answers, both must put
the same bytes on the wire, hand back the same answer and raise the same errors. When an
httpx or aiohttp release changes how a request is built or an answer read, this fails, and
``http._BARE_PATH = False`` is the fallback."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit import http
from notifykit.errors import ProviderError, ProviderUnavailable, UnknownOutcome
from notifykit.http import AiohttpTransport, Answer, create_client, send_body
from notifykit.provider import ProviderContext

from .wire import Answer as Reply
from .wire import loopback_server as _server


def _http(status: int, body: bytes, headers: list[tuple[str, str]]) -> bytes:
    head = [f"HTTP/1.1 {status} Whatever", f"content-length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _shape(answer: Answer) -> tuple[Any, ...]:
    return (
        answer.status_code,
        answer.is_success,
        answer.content,
        sorted((name.lower(), value) for name, value in answer.headers.items()),
    )


async def _both(
    reply: Reply,
    url_of: Callable[[str], tuple[str, str]],
    client_kwargs: dict[str, Any],
    **call: Any,
) -> list[tuple[Any, ...]]:
    """The same call on the bare path and on request()'s: (wire bytes, answer) each, or
    (wire bytes, the error's class, message and cause chain)."""
    results = []
    async with _server(reply) as (url, seen):
        base_url, target = url_of(url)
        for bare in (True, False):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(http, "_BARE_PATH", bare)
                context = ProviderContext(instance="vs")
                async with create_client(
                    context, timeout=2.0, base_url=base_url, **client_kwargs
                ) as client:
                    try:
                        outcome: tuple[Any, ...] = _shape(
                            await send_body(client, provider="vs", url=target, **call)
                        )
                    except ProviderError as exc:
                        chain = []
                        cause = exc.__cause__
                        while cause is not None:
                            chain.append(type(cause))
                            cause = cause.__cause__
                        outcome = (type(exc), exc.message, getattr(exc, "retryable", None), chain)
            results.append((list(seen), outcome))
            seen.clear()
    return results


_NAMES = st.sampled_from(["x-a", "X-Trace", "accept", "content-type", "user-agent"])
_VALUES = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12)
_TARGETS: list[Callable[[str], tuple[str, str]]] = [
    lambda url: ("", url + "/smsApi/verifyCode"),
    lambda url: ("", url + "/api/v1/sms?x=1&y=%2B"),
    lambda url: (url + "/api", "/send"),
    lambda url: (url + "/api/", "balance"),
]
_ANSWER_HEADERS = st.lists(
    st.tuples(st.sampled_from(["content-type", "x-vendor", "X-Request-Id"]), _VALUES),
    max_size=3,
    unique_by=lambda item: item[0].lower(),
)


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(["POST", "PUT"]),
    target=st.sampled_from(_TARGETS),
    auth=st.sampled_from([None, ("user", "pass"), ("AC123", "tok:en")]),
    defaults=st.dictionaries(_NAMES, _VALUES, max_size=2),
    headers=st.none() | st.dictionaries(_NAMES, _VALUES, max_size=3),
    body=st.binary(min_size=1, max_size=64),
    status=st.sampled_from([200, 201, 400, 404, 429, 500, 503]),
    answer_body=st.binary(max_size=64),
    answer_headers=_ANSWER_HEADERS,
    gzipped=st.booleans(),
)
def test_the_bare_path_sends_and_answers_what_request_does(
    method: str,
    target: Callable[[str], tuple[str, str]],
    auth: tuple[str, str] | None,
    defaults: dict[str, str],
    headers: dict[str, str] | None,
    body: bytes,
    status: int,
    answer_body: bytes,
    answer_headers: list[tuple[str, str]],
    gzipped: bool,
) -> None:
    sent = gzip.compress(answer_body) if gzipped else answer_body
    listed = [*answer_headers, *([("content-encoding", "gzip")] if gzipped else [])]
    client_kwargs: dict[str, Any] = {"headers": defaults}
    if auth is not None:
        client_kwargs["auth"] = httpx.BasicAuth(*auth)
    bare, public = asyncio.run(
        _both(
            lambda raw: _http(status, sent, listed),
            target,
            client_kwargs,
            method=method,
            content=body,
            headers=headers,
        )
    )
    assert bare == public
    (wire,), answer = bare
    assert wire.endswith(b"\r\n\r\n" + body)
    assert answer[2] == answer_body  # decoded, whichever way it came


@pytest.mark.parametrize(
    "reply",
    [lambda raw: None, lambda raw: b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"],
    ids=["hangs_up", "short_body"],
)
def test_a_request_sent_but_not_answered_raises_the_same_unknown_outcome(reply: Reply) -> None:
    bare, public = asyncio.run(
        _both(reply, lambda url: ("", url + "/send"), {}, method="POST", content=b"a=1")
    )
    assert bare == public
    assert bare[1][0] is UnknownOutcome


def test_a_body_that_does_not_decode_raises_the_same_error() -> None:
    def reply(raw: bytes) -> bytes:
        return _http(200, b"not gzip at all", [("content-encoding", "gzip")])

    bare, public = asyncio.run(
        _both(reply, lambda url: ("", url + "/send"), {}, method="POST", content=b"a=1")
    )
    assert bare == public
    assert bare[1][0] is UnknownOutcome and httpx.DecodingError in bare[1][3]


def test_a_refused_connection_raises_the_same_retryable_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def both() -> list[tuple[Any, ...]]:
        found = []
        for bare in (True, False):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(http, "_BARE_PATH", bare)
                context = ProviderContext(instance="vs")
                async with create_client(context, timeout=2.0) as client:
                    with pytest.raises(ProviderUnavailable) as info:
                        await send_body(
                            client,
                            "POST",
                            f"http://127.0.0.1:{port}/",
                            provider="vs",
                            content=b"a",
                        )
            exc = info.value
            found.append((exc.message, exc.retryable, type(exc.__cause__)))
        return found

    bare, public = asyncio.run(both())
    assert bare == public
    assert bare[1] is True


def test_the_switch_and_other_transports_take_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = AiohttpTransport.exchange

    async def spy(self: AiohttpTransport, *args: Any, **kwargs: Any) -> Answer:
        calls.append("bare")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AiohttpTransport, "exchange", spy)

    async def one(context_transport: httpx.AsyncBaseTransport | None = None) -> int:
        async with _server(lambda raw: _http(200, b"ok", [])) as (url, _):
            context = ProviderContext(instance="vs", transport=context_transport)
            async with create_client(context, timeout=1.0) as client:
                answer = await send_body(client, "POST", url + "/", provider="vs", content=b"a")
        return answer.status_code

    assert asyncio.run(one()) == 200
    assert calls == ["bare"]  # the bare path is on by default
    assert asyncio.run(one(httpx.AsyncHTTPTransport())) == 200
    assert calls == ["bare"]  # httpx's own transport: request()
    monkeypatch.setattr(http, "_BARE_PATH", False)
    assert asyncio.run(one()) == 200
    assert calls == ["bare"]
    monkeypatch.setattr(http, "_BARE_PATH", True)
    monkeypatch.setattr(http, "_DIRECT_PATH", False)  # turns both off
    assert asyncio.run(one()) == 200
    assert calls == ["bare"]
