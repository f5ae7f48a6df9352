"""The callback route answered directly (without Starlette's router and middleware) answers
every request exactly as through them: the same status, headers and body, and the same
stored request. An app with middleware added sends the route through it. The URL and
stored path kept per URL called are what each request says."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from notifykit.asgi import _CallbackEndpoint, _stored_path, create_app
from notifykit.config import Config
from notifykit.store import SQLiteStore

from .conftest import Serve

TOKEN = "r0ute-t0ken"
RECEIPT = b"mobile=15080921234&taskid=7&status=1&receivetime=2024-05-01+17%3A00%3A00"
FORM = {"content-type": "application/x-www-form-urlencoded", "authorization": "Basic eDp5"}


def config(db: Path, token: str | None) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "vs": {"type": "veesing", "app_id": "app", "app_key": "route-key"},
                "fake": {"type": "memory"},
            },
            "store": {"url": f"sqlite:///{db}"},
            "callbacks": {"max_body_bytes": 300, **({"token": token} if token else {})},
        }
    )


class Counting:
    """Middleware that passes everything through and counts the HTTP requests it saw."""

    seen = 0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Counting.seen += 1
        await self.app(scope, receive, send)


def requests(token: str | None) -> list[tuple[str, str, bytes | Any, dict[str, str]]]:
    secret = f"/{token}" if token else ""
    push = f"/callbacks/vs{secret}"

    def chunks() -> Any:  # no Content-Length: counted as read, drained, then 413
        yield from (b"y" * 100 for _ in range(20))

    return [
        ("POST", push, RECEIPT, FORM),
        ("POST", push + "?sig=abc", RECEIPT.replace(b"taskid=7", b"taskid=8"), FORM),
        ("POST", push, RECEIPT, FORM),  # a duplicate
        ("POST", push, b"mobile=1&taskid=1", FORM),  # quarantined: 400
        ("POST", push, b"x" * 301, FORM),  # over the limit: drained, 413
        ("POST", push, b"x" * 301 * 17, FORM),  # beyond the drain bound: cut off
        ("POST", push, chunks(), FORM),
        ("GET", push, b"", {}),  # not a POST: 405 with allow
        ("PUT", push, RECEIPT, FORM),
        ("POST", f"/callbacks/nope{secret}", RECEIPT, FORM),
        ("POST", f"/callbacks/fake{secret}", RECEIPT, FORM),
        ("POST", "/callbacks/vs/wrong", RECEIPT, FORM),
        ("POST", f"/callbacks/vs{secret}/", RECEIPT, FORM),
        ("GET", "/healthz", b"", {}),
        ("POST", "/healthz", b"", {}),
        ("GET", "/nothing", b"", {}),
    ]


def answers(serve: Serve, db: Path, token: str | None, *, middleware: bool) -> Any:
    app = create_app(config(db, token))
    if middleware:
        app.add_middleware(Counting)
    server = serve(app)
    got = []
    with httpx.Client(base_url=server.url) as client:
        for method, path, body, headers in requests(token):
            answer = client.request(method, path, content=body, headers=headers)
            got.append(
                (method, path, answer.status_code, answer.headers.multi_items(), answer.content)
            )
    server.stop()

    async def read() -> Any:
        store = SQLiteStore(db)
        await store.open()
        try:
            inbox = [e.model_dump(exclude={"received_at"}) for e in await store.list_inbox()]
            kept = [e.model_dump(exclude={"received_at"}) for e in await store.list_quarantine()]
            for entry in inbox + kept:  # the server's port differs
                assert entry["headers"].pop("host") == f"127.0.0.1:{server.port}"
            return inbox, kept
        finally:
            await store.close()

    return got, asyncio.run(read())


def _without_date(got: Any) -> Any:
    answered, stored = got
    return [
        (m, p, s, [h for h in headers if h[0] != "date"], body)
        for m, p, s, headers, body in answered
    ], stored


@pytest.mark.parametrize("token", [TOKEN, None])
def test_direct_route_answers_as_the_router_does(
    serve: Serve, tmp_path: Path, token: str | None
) -> None:
    Counting.seen = 0
    direct = answers(serve, tmp_path / "direct.sqlite3", token, middleware=False)
    assert Counting.seen == 0
    routed = answers(serve, tmp_path / "routed.sqlite3", token, middleware=True)
    assert Counting.seen == len(requests(token))  # the middleware saw every one
    assert _without_date(direct) == _without_date(routed)
    statuses = [s for _m, _p, s, _h, _b in direct[0]]
    assert statuses == [
        200,
        200,
        200,
        400,
        413,
        413,
        413,
        405,
        405,
        404,
        404,
        404,
        404,
        200,
        405,
        404,
    ]
    inbox, quarantined = direct[1]
    secret = "/***" if token else ""
    assert sorted(e["path"] for e in inbox) == sorted(
        [f"/callbacks/vs{secret}", f"/callbacks/vs{secret}?sig=abc", f"/callbacks/vs{secret}"]
    )
    assert inbox[0]["headers"]["authorization"] == "***" and len(quarantined) == 1


_SCOPES = st.fixed_dictionaries(
    {
        "scheme": st.sampled_from(["http", "https"]),
        "server": st.sampled_from([("127.0.0.1", 80), ("127.0.0.1", 8000), ("::1", 443), None]),
        "path": st.sampled_from(["/callbacks/vs/", "/hooks/callbacks/vs/", "/callbacks/v?s/"]).map(
            lambda p: p + TOKEN
        ),
        "query_string": st.sampled_from([b"", b"sig=abc", b"a=%20b&c"]),
        "headers": st.sampled_from(
            [
                [],
                [(b"host", b"example.com")],
                [(b"host", b"example.com:8443")],
                [(b"host", b"bad host")],
            ]
        ),
    }
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_SCOPES, min_size=1, max_size=12))
def test_the_url_and_stored_path_are_what_the_request_says(scopes: list[dict[str, Any]]) -> None:
    # Kept per URL: requests one after another, alike in all but one part, each get their own.
    receiver = create_app(config(Path("unused.sqlite3"), TOKEN)).state.receiver
    endpoint = _CallbackEndpoint(receiver)
    for scope in scopes:
        url = URL(scope=scope)
        assert endpoint.addresses(scope) == (str(url), _stored_path(url, receiver.token))
        assert TOKEN not in endpoint.addresses(scope)[1]
