"""Many instances, proven with real processes against real PostgreSQL (and Redis): one
idempotency key sent by two processes, the recipient guard across processes, a send tied
to the receipt another process received, a breaker opened by one process seen by another,
``notifykit serve`` killed mid-stream, two receivers on one database (each push stored once,
each event dispatched once), a bare receiver leaving its events to an instance with a
subscriber."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from notifykit import AsyncNotifier

from .conftest import CB_TOKEN, ENV, StartSandbox, free_port, start_serve, write_config

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals"),
]

PHONE = "+8615612341090"

SENDER = """
import asyncio, json, os, sys
from notifykit import AsyncNotifier
from notifykit.errors import NotifyKitError

async def main():
    config, go, to, key = sys.argv[1:5]
    async with AsyncNotifier(config) as notifier:
        print("ready", flush=True)
        for _ in range(60000):  # at most a minute
            if os.path.exists(go):
                break
            await asyncio.sleep(0.001)
        for number in to.split(","):  # several numbers: one after the other
            try:
                result = await notifier.send(
                    number, template="verify_code", params={"code": "1234"},
                    idempotency_key=key or None,
                )
                out = {"message_id": result.message_id, "vendor_id": result.provider_message_id,
                       "attempts": [[a.provider, a.outcome] for a in result.attempts]}
            except NotifyKitError as exc:
                out = {"error": type(exc).__name__,
                       "attempts": [[a.provider, a.outcome] for a in exc.attempts]}
            print(json.dumps(out), flush=True)

asyncio.run(main())
"""


async def run_senders(
    tmp_path: Path, config: Path, jobs: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Start one sender process per ``(number, idempotency key)``, wait until each has its
    notifier open, then let them all send at the same instant; their results."""
    go = tmp_path / f"go-{len(list(tmp_path.iterdir()))}"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER, str(config), str(go), to, key],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for to, key in jobs
    ]
    try:
        for process in started:
            assert process.stdout is not None
            line = await asyncio.to_thread(process.stdout.readline)
            assert line.strip() == "ready", (line, process.stderr and process.stderr.read())
        go.touch()
        results = []
        for process in started:
            out, err = await asyncio.to_thread(process.communicate, timeout=60)
            assert process.returncode == 0, err
            results.extend(json.loads(line) for line in out.strip().splitlines())
        return results
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()


async def cli_json(config: Path, *args: str) -> Any:
    out = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            "from notifykit.cli import main; main()",
            *args,
            "--json",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


async def test_one_idempotency_key_from_two_processes_is_one_vendor_request(
    tmp_path: Path, sandbox: StartSandbox, pg_store_url: str, pg_schema: str
) -> None:
    box, server = sandbox(latency=0.2)  # both sends overlap with the first one's call
    config = write_config(
        tmp_path / "nk.toml", vendor_url=server.url, pg_url=pg_store_url, schema=pg_schema
    )
    first, second = await run_senders(tmp_path, config, [(PHONE, "order-7"), (PHONE, "order-7")])
    assert "error" not in first and "error" not in second, (first, second)
    assert first["message_id"] == second["message_id"]
    assert box.snapshot()["requests"] == 1
    messages = await cli_json(config, "log")
    assert [m["message_id"] for m in messages] == [first["message_id"]]


@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.redis)])
async def test_the_recipient_guard_refuses_the_second_process(
    request: pytest.FixtureRequest,
    shared: bool,
    tmp_path: Path,
    sandbox: StartSandbox,
    pg_store_url: str,
    pg_schema: str,
) -> None:
    box, server = sandbox()
    redis = None
    if shared:
        redis = (request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix"))
    config = write_config(
        tmp_path / "nk.toml",
        vendor_url=server.url,
        pg_url=pg_store_url,
        schema=pg_schema,
        redis=redis,
        extra="[routing]\nrecipient_min_interval = 600\n",
    )
    results = await run_senders(tmp_path, config, [(PHONE, ""), (PHONE, "")])
    errors = sorted(r.get("error", "sent") for r in results)
    assert errors == ["RecipientRateLimited", "sent"], results
    assert box.snapshot()["requests"] == 1


async def test_a_send_in_one_process_is_tied_to_the_receipt_another_receives(
    tmp_path: Path,
    sandbox: StartSandbox,
    pg_store_url: str,
    pg_schema: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    port = free_port()
    _box, server = sandbox(
        callback_url=f"http://127.0.0.1:{port}/callbacks/vs/{CB_TOKEN}", receipt_delay=0.0
    )
    config = write_config(
        tmp_path / "nk.toml", vendor_url=server.url, pg_url=pg_store_url, schema=pg_schema
    )
    processes.append(start_serve(config, port))  # process B: the receiver
    (sent,) = await run_senders(tmp_path, config, [(PHONE, "")])  # process A
    assert "error" not in sent, sent
    for _ in range(600):  # the sandbox pushes the receipt to B; bounded wait (60 s)
        if await status_of(pg_store_url, pg_schema, sent["message_id"]) == "delivered":
            break
        await asyncio.sleep(0.1)
    (message,) = await cli_json(config, "log")  # `notifykit log`, a third process
    assert message["message_id"] == sent["message_id"]
    assert message["status"] == "delivered", message
    assert [h["status"] for h in message["history"]][-1] == "delivered"


@pytest.mark.redis
async def test_failures_seen_by_one_process_open_the_breaker_for_another(
    tmp_path: Path,
    sandbox: StartSandbox,
    pg_store_url: str,
    pg_schema: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    box, server = sandbox(error_rate=1.0)  # every request answered HTTP 500
    config = write_config(
        tmp_path / "nk.toml",
        vendor_url=server.url,
        pg_url=pg_store_url,
        schema=pg_schema,
        redis=(redis_url, redis_prefix),
        extra=(
            '[providers.backup]\ntype = "memory"\n\n'
            '[routing]\nproviders = ["vs", "backup"]\n\n'
            "[routing.retry]\nattempts = 1\n\n"
            "[routing.breaker]\nfailure_threshold = 2\ncooldown = 600\n"
        ),
    )
    # Process A: two sends, each fails at vs (HTTP 500) and fails over to backup.
    for a in await run_senders(tmp_path, config, [("+8615612341000,+8615612341001", "")]):
        assert a["attempts"] == [["vs", "failed"], ["backup", "accepted"]], a
    assert box.snapshot()["requests"] == 2
    # Process B: vs is skipped without a request, for a breaker A's failures opened.
    (b,) = await run_senders(tmp_path, config, [("+8615612341099", "")])
    assert b["attempts"] == [["vs", "skipped"], ["backup", "accepted"]], b
    assert box.snapshot()["requests"] == 2


def push(n: int) -> bytes:
    return urlencode(
        {
            "mobile": f"150{n:08d}",
            "taskid": f"multi-{n}",
            "status": "1",
            "receivetime": "2024-05-01 17:00:00",
        }
    ).encode()


async def stored(pg_url: str, schema: str) -> tuple[list[str], int]:
    """The vendor ids of the stored events (one per event) and the inbox's size."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cur = await conn.execute(f"SELECT provider_message_id FROM {schema}.events")
        ids = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute(f"SELECT count(*) FROM {schema}.inbox")
        row = await cur.fetchone()
        assert row is not None
        return ids, int(row[0])


async def status_of(pg_url: str, schema: str, message_id: str) -> str | None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cur = await conn.execute(
            f"SELECT status FROM {schema}.messages WHERE message_id = %s", (message_id,)
        )
        row = await cur.fetchone()
        return None if row is None else str(row[0])


async def test_serve_killed_mid_stream_keeps_every_acknowledged_push(
    tmp_path: Path,
    sandbox: StartSandbox,
    pg_store_url: str,
    pg_schema: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    _, server = sandbox()
    config = write_config(
        tmp_path / "nk.toml", vendor_url=server.url, pg_url=pg_store_url, schema=pg_schema
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/callbacks/vs/{CB_TOKEN}"
    processes.append(start_serve(config, port))
    total, kill_after = 120, 45
    acked: set[int] = set()
    todo = iter(range(total))
    restarting = asyncio.Lock()

    async def restart() -> None:
        async with restarting:
            old = processes[-1]
            if old.poll() is None:
                old.send_signal(signal.SIGKILL)
                await asyncio.to_thread(old.wait, 10)
                processes.append(await asyncio.to_thread(start_serve, config, port))

    async def worker(client: httpx.AsyncClient) -> None:
        for n in todo:
            while n not in acked:  # a vendor retries until it is acknowledged
                try:
                    answer = await client.post(url, content=push(n))
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
                    continue
                if answer.status_code == 200:
                    acked.add(n)
                    if len(acked) == kill_after:
                        await restart()
                else:
                    assert answer.status_code == 503, answer.status_code
                    await asyncio.sleep(0.05)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(8))), 120)
    assert len(processes) == 2 and processes[0].returncode == -signal.SIGKILL
    ids, inbox = await stored(pg_store_url, pg_schema)
    assert sorted(ids) == sorted(f"multi-{n}" for n in range(total))  # each one, once
    assert inbox >= total


async def dispatch_state(pg_url: str, schema: str) -> tuple[list[str], int]:
    """Every stored event's id, and how many no observer has acknowledged yet."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cur = await conn.execute(f"SELECT event_id FROM {schema}.events")
        ids = [str(row[0]) for row in await cur.fetchall()]
        cur = await conn.execute(f"SELECT count(*) FROM {schema}.events WHERE NOT dispatched")
        row = await cur.fetchone()
        assert row is not None
        return ids, int(row[0])


def stop_gracefully(process: subprocess.Popen[str]) -> None:
    """SIGTERM: uvicorn shuts down, the receiver hands over what it holds, then exits."""
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    assert process.returncode in (0, -signal.SIGTERM), process.returncode


async def test_two_receivers_on_one_database_store_each_push_once_and_dispatch_it_once(
    tmp_path: Path,
    sandbox: StartSandbox,
    pg_store_url: str,
    pg_schema: str,
    processes: list[subprocess.Popen[str]],
    event_log: Any,
) -> None:
    """One stream of pushes, alternated between two ``notifykit serve`` processes on one
    database, half of them also retried to the other receiver at the same instant: each
    push is stored once and each event handed to an observer (an ``on_event`` plugin in
    both processes) once, across both."""
    _, server = sandbox()
    config = write_config(
        tmp_path / "nk.toml", vendor_url=server.url, pg_url=pg_store_url, schema=pg_schema
    )
    ports = [free_port(), free_port()]
    env = event_log.env(ENV)
    processes.extend(start_serve(config, port, env) for port in ports)
    urls = [f"http://127.0.0.1:{port}/callbacks/vs/{CB_TOKEN}" for port in ports]
    total = 200

    async def deliver(client: httpx.AsyncClient, n: int) -> None:
        # A load balancer alternates the pushes; for half of them the vendor's retry (as if
        # the first answer was lost) reaches the other receiver at the same time.
        targets = [urls[n % 2]] + ([urls[(n + 1) % 2]] if n % 4 < 2 else [])
        answers = await asyncio.gather(*(client.post(url, content=push(n)) for url in targets))
        assert [a.status_code for a in answers] == [200] * len(targets)

    async with httpx.AsyncClient(timeout=30) as client:
        for start in range(0, total, 20):
            await asyncio.gather(*(deliver(client, n) for n in range(start, start + 20)))
    for process in processes:
        stop_gracefully(process)
    ids, inbox = await stored(pg_store_url, pg_schema)
    assert sorted(ids) == sorted(f"multi-{n}" for n in range(total))  # each push once
    assert inbox == total + total // 2  # the inbox keeps every request: an audit log
    event_ids, undispatched = await dispatch_state(pg_store_url, pg_schema)
    dispatched = event_log.dispatched()
    handed = [event_id for _, event_id in dispatched]
    assert sorted(handed) == sorted(event_ids), "an event dispatched twice, or never"
    assert undispatched == 0
    # Pushes n % 4 == 2 reach only the first receiver, n % 4 == 3 only the second: both
    # stored (and so dispatched) some, and nothing else dispatched anything.
    assert {pid for pid, _ in dispatched} == {p.pid for p in processes}


async def test_a_bare_receiver_leaves_its_events_to_the_instance_with_a_subscriber(
    tmp_path: Path,
    sandbox: StartSandbox,
    pg_store_url: str,
    pg_schema: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    """``notifykit serve`` with no observers stores events and claims none of them;
    ``notifykit events --pending`` shows them unclaimed; an application instance with a
    subscriber then receives each once."""
    _, server = sandbox()
    config = write_config(
        tmp_path / "nk.toml", vendor_url=server.url, pg_url=pg_store_url, schema=pg_schema
    )
    port = free_port()
    processes.append(start_serve(config, port))
    total = 20
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(total):
            answer = await client.post(
                f"http://127.0.0.1:{port}/callbacks/vs/{CB_TOKEN}", content=push(n)
            )
            assert answer.status_code == 200
    pending = await cli_json(config, "events", "--pending")
    assert len(pending) == total
    assert [p["claimed_by"] for p in pending] == [None] * total
    seen: list[str] = []
    app = AsyncNotifier(config)
    app.subscribe(lambda event: seen.append(event.event_id))
    async with app:
        for _ in range(3000):  # a bound against hanging, not a measure
            if len(seen) >= total:
                break
            await asyncio.sleep(0.01)
    assert sorted(seen) == sorted(p["event_id"] for p in pending)
    assert await cli_json(config, "events", "--pending") == []
    stop_gracefully(processes[0])
