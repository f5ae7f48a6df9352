"""``request()``'s direct path against ``AsyncClient.request``, the public path it stands in
for: on generated requests both must put the same request on the wire and hand back the
same answer. When an httpx release changes how ``AsyncClient`` builds a request (a default
header, an encoding rule), this fails, and ``http._DIRECT_PATH = False`` is the fallback."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifykit import http
from notifykit.http import create_client, request
from notifykit.provider import ProviderContext

_NAMES = st.sampled_from(["x-a", "X-Trace", "accept", "content-type", "x-b"])
_VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_HEADERS = st.none() | st.dictionaries(_NAMES, _VALUES, max_size=3)
_BODY = st.one_of(
    st.none().map(lambda _: {}),
    st.binary(max_size=40).map(lambda b: {"content": b}),
    st.dictionaries(st.sampled_from(["To", "Body", "code"]), _VALUES, max_size=3).map(
        lambda d: {"data": d}
    ),
    st.dictionaries(st.sampled_from(["to", "n"]), st.integers() | _VALUES, max_size=2).map(
        lambda d: {"json": d}
    ),
)
_TARGET = st.sampled_from(
    [
        ("", "http://vendor.test:8080/send"),
        ("", "https://vendor.test/api/v1/sms?x=1"),
        ("https://vendor.test/api", "/send"),
        ("https://vendor.test/api/", "balance"),
    ]
)
_AUTH = st.sampled_from([None, ("user", "pass"), ("AC123", "tok:en")])
_DEFAULTS = st.dictionaries(_NAMES, _VALUES, max_size=2)
# How the transport hands the answer back: read already (``content=``), or as an unread
# in-memory stream (as notifykit's own transports do), plain or gzip-encoded.
_ANSWERS = st.sampled_from(["content", "stream", "gzip"])
_ANSWER_BODY = "完成 ok".encode()


def _answer(kind: str) -> httpx.Response:
    headers = {"content-type": "text/plain", "x-v": "1"}
    if kind == "content":
        return httpx.Response(200, content=_ANSWER_BODY, headers=headers)
    body = _ANSWER_BODY
    if kind == "gzip":
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    return httpx.Response(200, stream=httpx.ByteStream(body), headers=headers)


def _wire(req: httpx.Request) -> tuple[Any, ...]:
    return (
        req.method,
        str(req.url),
        sorted((k.lower(), v) for k, v in req.headers.multi_items()),
        req.read(),
        req.extensions.get("timeout"),
    )


async def _send(
    direct: bool,
    target: tuple[str, str],
    auth: tuple[str, str] | None,
    defaults: dict[str, str],
    method: str,
    kwargs: dict[str, Any],
    answer_kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    seen: list[httpx.Request] = []

    def answer(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return _answer(answer_kind)

    monkeypatch.setattr(http, "_DIRECT_PATH", direct)
    context = ProviderContext(instance="vs", transport=httpx.MockTransport(answer))
    base_url, url = target
    async with create_client(
        context,
        timeout=2.5,
        base_url=base_url,
        auth=httpx.BasicAuth(*auth) if auth else None,
        headers=defaults,
    ) as client:
        response = await request(client, method, url, provider="vs", **kwargs)
    (sent,) = seen
    answered = (
        response.status_code,
        sorted(response.headers.multi_items()),
        response.content,
        response.text,
        response.encoding,
        response.request is sent,
        response.is_closed,
        response.is_stream_consumed,
    )
    return _wire(sent), answered


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    target=_TARGET,
    auth=_AUTH,
    defaults=_DEFAULTS,
    headers=_HEADERS,
    body=_BODY,
    answer=_ANSWERS,
)
def test_the_direct_path_sends_and_answers_what_asyncclient_request_does(
    method: str,
    target: tuple[str, str],
    auth: tuple[str, str] | None,
    defaults: dict[str, str],
    headers: dict[str, str] | None,
    body: dict[str, Any],
    answer: str,
) -> None:
    kwargs = dict(body)
    if headers is not None:
        kwargs["headers"] = headers
    with pytest.MonkeyPatch.context() as monkeypatch:
        direct = asyncio.run(
            _send(True, target, auth, defaults, method, kwargs, answer, monkeypatch)
        )
        public = asyncio.run(
            _send(False, target, auth, defaults, method, kwargs, answer, monkeypatch)
        )
    assert direct == public
    assert direct[1][2] == _ANSWER_BODY  # decoded, whichever way it came


def test_the_switch_sends_through_asyncclient_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = httpx.AsyncClient.request

    async def spy(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> httpx.Response:
        calls.append("public")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "request", spy)

    async def one() -> None:
        context = ProviderContext(
            instance="vs", transport=httpx.MockTransport(lambda r: httpx.Response(200))
        )
        async with create_client(context, timeout=1.0) as client:
            await request(client, "POST", "http://vendor.test/", provider="vs", content=b"a")

    asyncio.run(one())
    assert calls == []  # the direct path is on by default
    monkeypatch.setattr(http, "_DIRECT_PATH", False)
    asyncio.run(one())
    assert calls == ["public"]
