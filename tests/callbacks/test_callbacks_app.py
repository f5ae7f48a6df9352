"""The receiver over real HTTP on loopback (uvicorn), with the Veesing plugin."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from notifykit.asgi import create_app
from notifykit.config import Config
from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import DeliveryStatus
from notifykit.notifier import AsyncNotifier
from notifykit.server import ServerThread
from notifykit.store import SQLiteStore

T = TypeVar("T")
Serve = Callable[[Any], ServerThread]
TOKEN = "s3cret-t0ken"
FORM = {"content-type": "application/x-www-form-urlencoded;charset=utf-8"}
# The two pushes of Veesing's document, number masked as the document prints it.
DOC_RECEIPT = "mobile=1508092****&taskid=123&status=1&receivetime=2019-07-23 17:00:00"
DOC_REPLY = "mobile=1508092****&taskid=123&content=收到&receivetime=2019-07-23 17:00:00"


def config(db: Path, *, token: str | None = TOKEN, **callbacks: Any) -> Config:
    section: dict[str, Any] = dict(callbacks)
    if token is not None:
        section["token"] = token
    return Config.from_dict(
        {
            "providers": {
                "vs": {"type": "veesing", "app_id": "app", "app_key": "key-do-not-show"},
                "fake": {"type": "memory"},
            },
            "templates": {"verify_code": {"vs": {"template_id": "540"}}},
            "store": {"url": f"sqlite:///{db}", "timeout": 2},
            "callbacks": section,
        }
    )


def push(
    base: str, fields: dict[str, str] | str, *, provider: str = "vs", token: str | None = TOKEN
) -> httpx.Response:
    url = f"{base}/callbacks/{provider}" + (f"/{token}" if token is not None else "")
    body = fields if isinstance(fields, str) else urlencode(fields)
    return httpx.post(url, content=body.encode(), headers=FORM)


def receipt(
    task: str, status: str = "1", *, mobile: str = "15080921234", at: str = "2024-05-01 17:00:00"
) -> dict[str, str]:
    return {"mobile": mobile, "taskid": task, "status": status, "receivetime": at}


def stored(db: Path, read: Callable[[SQLiteStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = SQLiteStore(db, timeout=5)
        await store.open()
        try:
            return await read(store)
        finally:
            await store.close()

    return asyncio.run(run())


def test_documented_receipt_and_reply_are_stored_then_acknowledged(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    first = push(server.url, DOC_RECEIPT)
    second = push(server.url, DOC_REPLY)
    assert (first.status_code, first.text) == (200, "ok")
    assert (second.status_code, second.text) == (200, "ok")
    events = stored(db, lambda s: s.list_events())
    reply, receipt_ = events
    assert isinstance(receipt_, DeliveryReceipt) and isinstance(reply, InboundMessage)
    assert receipt_.status is DeliveryStatus.DELIVERED and receipt_.provider_message_id == "123"
    assert receipt_.phone is None and receipt_.raw["mobile"] == "1508092****"
    assert reply.text == "收到" and reply.provider == "vs"
    assert receipt_.occurred_at.isoformat() == "2019-07-23T09:00:00+00:00"


def test_chinese_and_emoji_text_survive(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    text = "收到，谢谢！明天见 👍🏽"
    fields = {
        "mobile": "15080921234",
        "taskid": "77",
        "content": text,
        "receivetime": "2024-05-01 08:00:00",
    }
    assert push(server.url, fields).status_code == 200
    (event,) = stored(db, lambda s: s.list_events())
    assert isinstance(event, InboundMessage) and event.text == text
    assert event.phone == "+8615080921234"


def test_duplicate_push_is_answered_alike_stored_once_dispatched_once(
    serve: Serve, db: Path
) -> None:
    app = create_app(config(db))
    seen: list[str] = []
    app.state.notifier.subscribe(lambda event: seen.append(event.event_id))
    server = serve(app)
    answers = [push(server.url, receipt("900")) for _ in range(3)]
    assert [(r.status_code, r.text) for r in answers] == [(200, "ok")] * 3
    server.stop()
    assert len(seen) == 1
    assert len(stored(db, lambda s: s.list_events())) == 1
    assert stored(db, lambda s: s.count_inbox()) == 3


def test_out_of_order_receipts_never_move_status_back(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    sender = send_through_veesing(db, task_id="5001")
    late = push(server.url, receipt("5001", "1", at="2024-05-01 17:05:00"))
    early = push(server.url, receipt("5001", "0", at="2024-05-01 17:00:00"))
    assert late.status_code == early.status_code == 200
    record = stored(db, lambda s: s.get_message(sender))
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    statuses = [h.status for h in record.history]
    assert statuses[-2:] == [DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED]
    assert DeliveryStatus.UNDELIVERED not in statuses
    assert len(stored(db, lambda s: s.list_events(message_id=sender))) == 2


def test_orphan_receipt_is_linked_when_the_send_lands(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    assert push(server.url, receipt("6001", "1")).status_code == 200
    (orphan,) = stored(db, lambda s: s.list_events())
    assert orphan.message_id is None
    message_id = send_through_veesing(db, task_id="6001")
    record = stored(db, lambda s: s.get_message(message_id))
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert record.provider == "vs" and record.provider_message_id == "6001"
    (linked,) = stored(db, lambda s: s.list_events())
    assert linked.message_id == message_id


def send_through_veesing(db: Path, *, task_id: str) -> str:
    """Send one message through the Veesing plugin (vendor faked); its message id."""

    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "returnStatus": "1",
                "message": "成功",
                "remainPoint": "9",
                "taskId": task_id,
                "successCounts": "1",
            },
        )

    async def run() -> str:
        async with AsyncNotifier(config(db), transport=httpx.MockTransport(vendor)) as notifier:
            result = await notifier.send(
                "+8615080921234", template="verify_code", params={"code": "1234"}
            )
            return result.message_id

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("mobile=15080921234&taskid=1&receivetime=2024-05-01 17:00:00", "neither status"),
        ("mobile=15080921234&taskid=1&status=7&receivetime=2024-05-01 17:00:00", "status"),
        ("mobile=15080921234&taskid=1&status=1&receivetime=yesterday", "receivetime"),
        ("taskid=1&status=1&receivetime=2024-05-01 17:00:00", "mobile"),
        ("", "missing"),
    ],
)
def test_bad_bodies_are_quarantined_and_answered_400(
    serve: Serve, db: Path, body: str, reason: str
) -> None:
    server = serve(create_app(config(db)))
    answer = push(server.url, body)
    assert answer.status_code == 400
    (kept,) = stored(db, lambda s: s.list_quarantine())
    assert reason in kept.reason and kept.body == body.encode() and kept.provider == "vs"
    assert TOKEN not in kept.path and kept.path == "/callbacks/vs/***"
    assert stored(db, lambda s: s.list_events()) == []


def test_undecodable_body_is_quarantined_byte_for_byte(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    body = b"mobile=\xff\xfe\xfd\x80&taskid=\x81"
    answer = httpx.post(f"{server.url}/callbacks/vs/{TOKEN}", content=body, headers=FORM)
    assert answer.status_code == 400
    (kept,) = stored(db, lambda s: s.list_quarantine())
    assert kept.body == body


def test_oversize_bodies_get_413_and_nothing_is_stored(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db, max_body_bytes=512)))
    url = f"{server.url}/callbacks/vs/{TOKEN}"
    declared = httpx.post(url, content=b"x" * 513, headers=FORM)
    assert declared.status_code == 413

    def chunks() -> Any:  # no Content-Length: the receiver must count as it reads
        for _ in range(10_000):
            yield b"y" * 1024

    streamed = httpx.post(url, content=chunks(), headers=FORM)
    assert streamed.status_code == 413
    exactly = push(
        server.url, {"mobile": "1", "taskid": "1", "content": "z" * 400, "receivetime": "x"}
    )
    assert exactly.status_code == 400  # within the limit: parsed (and refused by the plugin)
    assert stored(db, lambda s: s.count_inbox()) == 0
    assert len(stored(db, lambda s: s.list_quarantine())) == 1


@pytest.fixture
def quiet_httpx() -> Iterator[None]:
    """For a test playing a prober that sends the token in every shape of URL: its own HTTP
    client's request lines are not notifykit's logs (the session's secrets scan reads all)."""
    logger = logging.getLogger("httpx")
    previous = logger.level
    logger.setLevel(logging.WARNING)  # setLevel, unlike assignment, clears the level cache
    yield
    logger.setLevel(previous)


@pytest.mark.parametrize(
    "path",
    [
        "/callbacks/vs",
        "/callbacks/vs/",
        "/callbacks/vs/wrong-token",
        f"/callbacks/vs/{TOKEN}x",
        f"/callbacks/vs/{TOKEN}/",
        f"/callbacks/vs/{TOKEN[:-1]}",
        f"/callbacks/nope/{TOKEN}",
        f"/callbacks/fake/{TOKEN}",  # a provider type that receives no callbacks
        f"/callbacks/{TOKEN}",
        f"/{TOKEN}",
    ],
)
def test_wrong_missing_token_and_unknown_provider_answer_404(
    serve: Serve, db: Path, path: str, quiet_httpx: None
) -> None:
    server = serve(create_app(config(db)))
    for method in ("POST", "GET"):
        answer = httpx.request(
            method, server.url + path, content=DOC_RECEIPT.encode(), headers=FORM
        )
        assert answer.status_code == 404, (method, path)
        assert "location" not in answer.headers
        assert TOKEN not in answer.text
    assert stored(db, lambda s: s.count_inbox()) == 0


def test_without_token_the_path_has_no_token_segment(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db, token=None)))
    assert push(server.url, DOC_RECEIPT, token=None).status_code == 200
    assert push(server.url, DOC_RECEIPT, token="extra").status_code == 404
    (entry,) = stored(db, lambda s: s.list_inbox())
    assert entry.path == "/callbacks/vs"


def test_other_methods_answer_405_after_the_token_and_provider(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = httpx.request(method, f"{server.url}/callbacks/vs/{TOKEN}")
        assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert httpx.get(f"{server.url}/callbacks/nope/{TOKEN}").status_code == 404
    assert httpx.get(f"{server.url}/callbacks/vs/bad").status_code == 404


def test_healthz(serve: Serve, db: Path) -> None:
    server = serve(create_app(config(db)))
    answer = httpx.get(f"{server.url}/healthz")
    assert (answer.status_code, answer.text) == (200, "ok")
    assert httpx.post(f"{server.url}/healthz").status_code == 405


def test_token_never_stored_logged_or_echoed(
    serve: Serve, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(create_app(config(db)))
    query = "?sig=abc"
    ok = httpx.post(
        f"{server.url}/callbacks/vs/{TOKEN}{query}",
        content=DOC_RECEIPT.encode(),
        headers={**FORM, "authorization": "Basic dmVuZG9yOnB3", "x-vendor": "kept"},
    )
    bad = push(server.url, "garbage=1")
    assert ok.status_code == 200 and bad.status_code == 400
    server.stop()
    inbox = stored(db, lambda s: s.list_inbox())
    assert [e.path for e in inbox] == ["/callbacks/vs/***?sig=abc"]
    assert inbox[0].headers["authorization"] == "***" and inbox[0].headers["x-vendor"] == "kept"
    quarantined = stored(db, lambda s: s.list_quarantine())
    # The receiver's own log lines (the test's HTTP client logs the URL it calls).
    logged = [
        r.getMessage() + repr(r.__dict__)
        for r in caplog.records
        if r.name.startswith(("notifykit", "uvicorn"))
    ]
    assert any("callback_quarantined" in line for line in logged)
    everything = repr(inbox) + repr(quarantined) + "".join(logged) + ok.text + bad.text
    assert TOKEN not in everything
    assert "key-do-not-show" not in everything
    assert db.read_bytes().find(TOKEN.encode()) == -1


def test_subscribers_and_hooks_get_each_new_event_and_failures_lose_nothing(
    serve: Serve, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(config(db))
    notifier: AsyncNotifier = app.state.notifier
    got: list[str] = []
    lock = threading.Lock()

    def broken(event: Any) -> None:
        raise RuntimeError("subscriber bug")

    async def slow(event: Any) -> None:
        await asyncio.sleep(0.05)
        with lock:
            got.append(event.provider_message_id)

    notifier.subscribe(broken)
    notifier.subscribe(slow)
    server = serve(app)
    answers = [push(server.url, receipt(str(task))) for task in range(5)]
    assert all(a.status_code == 200 for a in answers)
    server.stop()  # shutdown waits until every stored event has been dispatched
    assert sorted(got) == ["0", "1", "2", "3", "4"]
    assert caplog.text.count("subscriber_failed") == 5
    assert undispatched(db) == 0


def test_events_left_undispatched_by_a_killed_process_are_dispatched_at_start(
    serve: Serve, db: Path
) -> None:
    first = serve(create_app(config(db)))
    for task in ("a", "b"):
        assert push(first.url, receipt(task)).status_code == 200
    first.stop()

    async def forget(store: SQLiteStore) -> None:  # as if killed before dispatching
        await asyncio.to_thread(_undispatch, db)

    stored(db, forget)
    app = create_app(config(db))
    got: list[str] = []
    app.state.notifier.subscribe(lambda event: got.append(event.provider_message_id))
    serve(app).stop()
    assert sorted(got) == ["a", "b"]
    assert undispatched(db) == 0


def undispatched(db: Path) -> int:
    """Events not acknowledged yet, whether or not a claim holds them."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM events WHERE dispatched = 0").fetchone()[0])


def _undispatch(db: Path) -> None:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET dispatched = 0")


def test_mounted_inside_a_parent_app(serve: Serve, db: Path) -> None:
    receiver = create_app(config(db))
    parent = Starlette(
        routes=[Mount("/hooks", app=receiver)],
        lifespan=lambda app: receiver.router.lifespan_context(receiver),
    )
    server = serve(parent)
    assert push(server.url + "/hooks", DOC_RECEIPT).status_code == 200
    assert httpx.get(f"{server.url}/hooks/healthz").status_code == 200
    assert push(server.url, DOC_RECEIPT).status_code == 404
    server.stop()
    (entry,) = stored(db, lambda s: s.list_inbox())
    assert entry.path == "/hooks/callbacks/vs/***"
    assert len(stored(db, lambda s: s.list_events())) == 1
