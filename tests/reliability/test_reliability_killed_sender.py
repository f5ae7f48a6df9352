"""A sending process killed with SIGKILL mid-send, against a vendor that accepts each
message at once and answers late: the records it leaves say which instance had a call in
flight and since when; the recovery sweep makes them ``unknown`` (never ``pending``
forever, never sent again); receipts the vendor then pushes, with vendor ids the dead
process never learnt, are tied to their messages where exactly one matches."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from notifykit import AsyncNotifier
from notifykit.errors import UnknownOutcome
from notifykit.models import DeliveryStatus, utcnow
from notifykit.recovery import sweep
from notifykit.server import ServerThread
from notifykit.store import SQLiteStore

from .conftest import APP_ID, APP_KEY

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]

SINGLES = [f"+86156123410{i:02d}" for i in range(18)]
TWIN = "+8615612349999"
"""Two messages to this number: their receipts match both, so they stay orphans."""
NUMBERS = [*SINGLES, TWIN, TWIN]

SENDER = """
import asyncio, sys
from notifykit import AsyncNotifier

async def main():
    async with AsyncNotifier(sys.argv[1]) as notifier:
        sends = [
            notifier.send(n, template="verify_code", params={"code": "1234"},
                          idempotency_key=f"key-{i}")
            for i, n in enumerate(sys.argv[2:])
        ]
        await asyncio.gather(*sends, return_exceptions=True)

asyncio.run(main())
"""


class SlowVendor:
    """Veesing's send endpoint: takes each message at once (a task id per request), then
    holds the answer until released."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, str]] = []
        """(national number, taskId) of each request, in arrival order."""
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.all_in = threading.Event()
        self.expected = len(NUMBERS)

    async def send(self, request: Request) -> JSONResponse:
        fields = dict(parse_qsl((await request.body()).decode()))
        with self.lock:
            task_id = f"task-{len(self.accepted)}"
            self.accepted.append((fields["phone"], task_id))
            if len(self.accepted) >= self.expected:
                self.all_in.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)
        return JSONResponse({"returnStatus": "1", "message": "ok", "taskId": task_id})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/smsApi/verifyCode", self.send, methods=["POST"])])


@pytest.fixture
def vendor() -> Iterator[tuple[SlowVendor, ServerThread]]:
    slow = SlowVendor()
    server = ServerThread(slow.app()).start()
    try:
        yield slow, server
    finally:
        slow.release.set()
        server.stop(5.0)


def receipt(national: str, task_id: str) -> bytes:
    return urlencode(
        {"mobile": national, "taskid": task_id, "status": "1", "receivetime": "2024-05-01 17:00:00"}
    ).encode()


async def test_killed_sender_leaves_evidence_and_the_sweep_resolves_it(
    tmp_path: Path, vendor: tuple[SlowVendor, ServerThread]
) -> None:
    slow, server = vendor
    db = tmp_path / "killed.sqlite3"
    config = tmp_path / "notifykit.toml"
    config.write_text(
        f'[providers.vs]\ntype = "veesing"\napp_id = "{APP_ID}"\napp_key = "{APP_KEY}"\n'
        f'base_url = "{server.url}"\ntimeout = 60\n\n'
        '[templates.verify_code.vs]\ntemplate_id = "540"\n\n'
        "[routing]\ndeadline = 60\n\n"
        f'[store]\nurl = "sqlite:///{db}"\ntimeout = 5\nrecovery_interval = 0\n',
        encoding="utf-8",
    )
    env = {**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"}
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER, str(config), *NUMBERS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        arrived = await asyncio.to_thread(slow.all_in.wait, 60)
        assert arrived, f"the vendor saw {len(slow.accepted)} requests; sender: {sender.poll()}"
    finally:
        sender.send_signal(signal.SIGKILL)
        await asyncio.to_thread(sender.wait, 10)
    assert sender.returncode == -signal.SIGKILL

    store = SQLiteStore(db, timeout=5)
    await store.open()
    try:
        left = await store.list_messages()
        assert len(left) == len(NUMBERS)
        # The evidence: every record names the instance its call was in flight at, and when.
        for record in left:
            assert record.status is DeliveryStatus.PENDING
            assert [(a.provider, a.outcome) for a in record.attempts] == [("vs", "started")]
            assert record.attempts[0].started_at is not None
            assert record.lease_until is not None and record.lease_until > utcnow()
        # Half the receipts arrive while the records are still pending (and are orphans).
        first_half = [(n, t) for n, t in slow.accepted if "+86" + n in SINGLES][:9]
        async with AsyncNotifier(config) as receiver:
            for national, task_id in first_half:
                status, _, _ = await receiver.handle_callback(
                    "vs", "POST", {}, receipt(national, task_id)
                )
                assert status == 200
        # Still inside their lease (60 s deadline): opening a notifier left them alone.
        assert {r.status for r in await store.list_messages()} == {DeliveryStatus.PENDING}

        resolved = await sweep(store, now=utcnow() + timedelta(seconds=120))
        assert len(resolved) == len(NUMBERS)
        assert await sweep(store, now=utcnow() + timedelta(seconds=120)) == []
    finally:
        await store.close()

    unknown = _log(config, env, "unknown")
    assert sorted(r["to"] for r in unknown) == sorted(
        [n for n in SINGLES if n[3:] not in {m for m, _ in first_half}] + [TWIN, TWIN]
    )
    delivered = _log(config, env, "delivered")
    assert sorted(r["provider_message_id"] for r in delivered) == sorted(t for _, t in first_half)

    # The other receipts arrive after the sweep: the singles' are tied, the twins' are not.
    async with AsyncNotifier(config) as receiver:
        for national, task_id in slow.accepted:
            if (national, task_id) not in first_half:
                await receiver.handle_callback("vs", "POST", {}, receipt(national, task_id))
        records = {r.to: r for r in await receiver.store.list_messages() if r.to != TWIN}
        for national, task_id in slow.accepted:
            if "+86" + national in records:
                record = records["+86" + national]
                assert record.status is DeliveryStatus.DELIVERED
                assert (record.provider, record.provider_message_id) == ("vs", task_id)
        twins = [r for r in await receiver.store.list_messages() if r.to == TWIN]
        assert [r.status for r in twins] == [DeliveryStatus.UNKNOWN] * 2
        orphans = [e for e in await receiver.store.list_events() if e.message_id is None]
        assert sorted(e.provider_message_id or "" for e in orphans) == sorted(
            t for n, t in slow.accepted if "+86" + n == TWIN
        )
        # Never sent again automatically: a repeat with the twin's key makes no request.
        twin_key = next(r.idempotency_key for r in twins)
        before = len(slow.accepted)
        with pytest.raises(UnknownOutcome):
            await receiver.send(
                TWIN, template="verify_code", params={"code": "1234"}, idempotency_key=twin_key
            )
        assert len(slow.accepted) == before


def _log(config: Path, env: dict[str, str], status: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from notifykit.cli import main; main()",
            "log",
            "--status",
            status,
            "--json",
            "--config",
            str(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found
