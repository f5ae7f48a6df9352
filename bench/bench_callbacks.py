"""Callback ingestion: receipts per second through ``notifykit serve`` (SQLite store,
persist-before-acknowledge; ``[store] fsync`` off and on) against a bare ASGI endpoint on
the same server stack that discards the body. Same client, same run, interleaved rounds.

Afterwards each store must hold exactly as many events as it acknowledged.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.common import Child, emit, median, percentile
from notifykit.store import SQLiteStore

PUSHES = 2000
CONCURRENCY = 50
ROUNDS = 3
_tasks = itertools.count(1)


def write_config(directory: Path, fsync: bool) -> Path:
    path = directory / f"receiver-fsync-{fsync}.toml"
    db = directory / f"receiver-fsync-{fsync}.sqlite3"
    path.write_text(
        f'[providers.vs]\ntype = "veesing"\napp_id = "bench"\napp_key = "bench-key"\n\n'
        f'[store]\nurl = "sqlite:///{db}"\nfsync = {"true" if fsync else "false"}\n',
        encoding="utf-8",
    )
    return path


def serve(config: Path) -> Child:
    return Child(
        "-c",
        "from notifykit.cli import main; main()",
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        env={"NOTIFYKIT_LOAD_PLUGINS": "veesing"},
    )


def receipt(task: int) -> bytes:
    return urlencode(
        {
            "mobile": f"156{task % 10**8:08d}",
            "taskid": f"bench{task}",
            "status": "1",
            "receivetime": "2024-05-01 17:00:00",
        }
    ).encode()


async def push_round(session: aiohttp.ClientSession, url: str) -> tuple[float, int, list[float]]:
    """PUSHES receipts from CONCURRENCY workers: (seconds, acknowledged, latencies ms)."""
    todo = iter([next(_tasks) for _ in range(PUSHES)])
    acked = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal acked
        for task in todo:
            started = time.perf_counter()
            for _try in range(3):  # a keep-alive connection the server just closed
                try:
                    async with session.post(
                        url,
                        data=receipt(task),
                        headers={"content-type": "application/x-www-form-urlencoded"},
                    ) as answer:
                        await answer.read()
                        if answer.status == 200:
                            acked += 1
                    break
                except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                    continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, acked, latencies


async def count_events(db: Path) -> tuple[int, int]:
    store = SQLiteStore(db)
    await store.open()
    try:
        return len(await store.list_events()), await store.count_inbox()
    finally:
        await store.close()


async def measure(targets: dict[str, str], rounds: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {k: [] for k in targets}
    acked: dict[str, int] = {k: 0 for k in targets}
    latencies: dict[str, list[float]] = {k: [] for k in targets}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=2)
    ) as session:
        for name, url in targets.items():  # warm-up, not counted in the rates
            _s, n, _l = await push_round(session, url)
            acked[name] += n
        for _ in range(rounds):
            for name, url in targets.items():
                seconds, n, lat = await push_round(session, url)
                rates[name].append(PUSHES / seconds)
                acked[name] += n
                latencies[name].extend(lat)
    return {"rates": rates, "acked": acked, "latencies": latencies}


def main(rounds: int = ROUNDS) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="notifykit-bench-callbacks-"))
    configs = {fsync: write_config(directory, fsync) for fsync in (False, True)}
    bare = Child("-m", "bench.bare_asgi")
    servers = {"serve_fsync_off": serve(configs[False]), "serve_fsync_on": serve(configs[True])}
    try:
        targets = {"bare_asgi": bare.url + "/callbacks/vs"}
        targets.update({name: s.url + "/callbacks/vs" for name, s in servers.items()})
        raw = asyncio.run(measure(targets, rounds))
    finally:
        bare.stop()
        for server in servers.values():
            server.stop(graceful=True)
    per_s = {k: round(median(v)) for k, v in raw["rates"].items()}
    stored = {}
    for name, fsync in (("serve_fsync_off", False), ("serve_fsync_on", True)):
        events, inbox = asyncio.run(count_events(directory / f"receiver-fsync-{fsync}.sqlite3"))
        stored[name] = {
            "acknowledged": raw["acked"][name],
            "events_stored": events,
            "inbox_rows": inbox,
            "exact": events == raw["acked"][name],
        }
    figures = {
        "pushes_per_round": PUSHES,
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "per_second": per_s,
        "ratio_to_bare": {k: round(v / per_s["bare_asgi"], 2) for k, v in per_s.items()},
        "p99_ms": {k: round(percentile(v, 99), 2) for k, v in raw["latencies"].items()},
        "store": stored,
    }
    emit("callback_ingestion", figures)
    return {**figures, "_latencies": raw["latencies"]}


if __name__ == "__main__":
    main()
