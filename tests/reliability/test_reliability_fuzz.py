"""Callback fuzz: hypothesis against the live receiver (uvicorn on 127.0.0.1, create_app,
Veesing provider, SQLite store). Random and malformed bodies, wrong content types, huge
fields, broken UTF-8: never a 5xx; every request within the size limit is stored, as an
inbox row (acknowledged 200) or a quarantine row (400); one over the limit gets 413 and
stores nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifykit.asgi import create_app
from notifykit.config import Config
from notifykit.server import ServerThread

from .conftest import APP_ID, APP_KEY, CB_TOKEN

LIMIT = 4096


class Receiver:
    def __init__(self, db: Path, server: ServerThread) -> None:
        self.db = db
        self.url = f"{server.url}/callbacks/vs/{CB_TOKEN}"
        self.client = httpx.Client(timeout=10)

    def stored(self) -> tuple[int, int]:
        with sqlite3.connect(self.db) as conn:
            inbox = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
            quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        return int(inbox), int(quarantined)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite3"
    config = Config.from_dict(
        {
            "providers": {"vs": {"type": "veesing", "app_id": APP_ID, "app_key": APP_KEY}},
            "store": {"url": f"sqlite:///{db}"},
            "callbacks": {"token": CB_TOKEN, "max_body_bytes": LIMIT},
        }
    )
    server = ServerThread(create_app(config), lifespan="on").start()
    try:
        recv = Receiver(db, server)
        yield recv
        recv.client.close()
    finally:
        server.stop()


FIELDS = ["mobile", "taskid", "taskId", "status", "receivetime", "content", "extra"]
receipt_values = {
    "mobile": st.sampled_from(["15080921234", "+8615080921234", "1508092****", "", "abc"]),
    "taskid": st.text(max_size=30),
    "status": st.sampled_from(["1", "0", "", "2", "DELIVRD"]),
    "receivetime": st.sampled_from(["2024-05-01 17:00:00", "2024-13-45 99:99:99", "", "now"]),
}


@st.composite
def form_bodies(draw: st.DrawFn) -> bytes:
    fields = {
        name: draw(receipt_values.get(name, st.text(max_size=50)))
        for name in draw(st.lists(st.sampled_from(FIELDS), unique=True))
    }
    body = urlencode(fields).encode()
    if draw(st.booleans()):  # a huge field, maybe over the limit
        body += b"&content=" + b"x" * draw(st.integers(LIMIT // 2, LIMIT * 2))
    return body


@st.composite
def broken_utf8(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(form_bodies()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        body[at:at] = draw(st.sampled_from([b"\xff", b"\xc3", b"\xe4\xb8", b"\xed\xa0\x80"]))
    return bytes(body)


bodies = st.one_of(
    form_bodies(),
    broken_utf8(),
    st.binary(max_size=600),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.just(b""),
    st.binary(min_size=LIMIT - 2, max_size=LIMIT + 2),  # the limit's edges
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=gbk",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=xyz",
        "",
        "\x7f/garbage;;;=",
    ]
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies, content_type=content_types)
def test_receiver_never_fails_and_stores_every_request_within_the_limit(
    receiver: Receiver, body: bytes, content_type: str
) -> None:
    before = receiver.stored()
    headers = {"content-type": content_type} if content_type.isprintable() else {}
    if len(body) > LIMIT:
        # The receiver answers 413 and reads no further, then closes: with the rest of the
        # body unread, the kernel may reset the connection before the client reads the 413.
        try:
            answer = receiver.client.post(receiver.url, content=body, headers=headers)
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            pass
        else:
            assert answer.status_code == 413
        assert receiver.stored() == before
        return
    answer = receiver.client.post(receiver.url, content=body, headers=headers)
    after = receiver.stored()
    assert answer.status_code < 500, answer.text
    if answer.status_code == 200:
        assert after == (before[0] + 1, before[1])  # acknowledged: in the inbox
    else:
        assert answer.status_code == 400, answer.status_code
        assert after == (before[0], before[1] + 1)  # quarantined, with its reason


def test_known_good_receipt_is_acknowledged(receiver: Receiver) -> None:
    """The fuzz test's premise: a well-formed receipt is acknowledged and kept."""
    before = receiver.stored()
    body = urlencode(
        {
            "mobile": "15080921234",
            "taskid": "t-1",
            "status": "1",
            "receivetime": "2024-05-01 17:00:00",
        }
    ).encode()
    answer = receiver.client.post(receiver.url, content=body)
    assert answer.status_code == 200
    assert receiver.stored() == (before[0] + 1, before[1])
