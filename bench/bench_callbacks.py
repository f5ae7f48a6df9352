"""Callback ingestion: Veesing receipts through ``notifykit serve`` (SQLite store, each push
stored before it is acknowledged; ``[store] fsync`` off and on) against the bare endpoint a
user would write instead (:mod:`bench.bare_starlette` under the ``uvicorn`` command line).

One aiohttp client on keep-alive connections, in the same run, interleaved rounds:

* concurrency 1: one sequential pusher, p50 and p99 latency;
* concurrency 20 and 50: throughput (pushes per second), and each server's CPU time per
  push (all its threads, from ``/proc``), which a shared machine disturbs far less.

The bare endpoint's p50 at concurrency 1 is checked first (:func:`bench.common.plausible`):
above 5 ms on loopback it is stalled, and no ratio is reported against it. Afterwards each
store must hold exactly as many events as it acknowledged.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.common import Child, bare_endpoint, emit, median, percentile, plausible, ratio, scaled
from notifykit.store import SQLiteStore

SEQUENTIAL = scaled(300)
"""Pushes per round from the one sequential pusher."""
PUSHES = scaled(2000)
"""Pushes per round at concurrency 20 and 50."""
CONCURRENCIES = (20, 50)
ROUNDS = 3
TARGET_C20 = 0.7
TARGET_P50 = 2.0
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


def receipt(task: int, prefix: str = "bench") -> bytes:
    """A Veesing receipt (form body) for vendor task ``<prefix><task>``."""
    return urlencode(
        {
            "mobile": f"156{task % 10**8:08d}",
            "taskid": f"{prefix}{task}",
            "status": "1",
            "receivetime": "2024-05-01 17:00:00",
        }
    ).encode()


HEADERS = {"content-type": "application/x-www-form-urlencoded"}


async def push_round(
    session: aiohttp.ClientSession, url: str, count: int, concurrency: int
) -> tuple[float, int, list[float]]:
    """``count`` receipts from ``concurrency`` workers: (seconds, acknowledged, latencies ms)."""
    todo = iter([next(_tasks) for _ in range(count)])
    acked = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal acked
        for task in todo:
            started = time.perf_counter()
            for _try in range(3):  # a keep-alive connection the server just closed
                try:
                    async with session.post(url, data=receipt(task), headers=HEADERS) as answer:
                        await answer.read()
                        if answer.status == 200:
                            acked += 1
                    break
                except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                    continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, acked, latencies


async def count_events(db: Path) -> tuple[int, int]:
    store = SQLiteStore(db)
    await store.open()
    try:
        return len(await store.list_events()), await store.count_inbox()
    finally:
        await store.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), seconds (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(targets: dict[str, str], pids: dict[str, int], rounds: int) -> dict[str, Any]:
    sequential: dict[str, list[float]] = {k: [] for k in targets}
    rates: dict[int, dict[str, list[float]]] = {c: {k: [] for k in targets} for c in CONCURRENCIES}
    latencies: dict[str, list[float]] = {k: [] for k in targets}
    acked: dict[str, int] = {k: 0 for k in targets}
    cpu: dict[str, list[float]] = {k: [] for k in targets}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=2)
    ) as session:
        for name, url in targets.items():  # warm-up, not counted in the figures
            _s, n, _l = await push_round(session, url, 200, 20)
            acked[name] += n
        for _ in range(rounds):
            for name, url in targets.items():
                _s, n, lat = await push_round(session, url, SEQUENTIAL, 1)
                sequential[name].extend(lat)
                acked[name] += n
                for concurrency in CONCURRENCIES:
                    used = cpu_seconds(pids[name])
                    seconds, n, lat = await push_round(session, url, PUSHES, concurrency)
                    cpu[name].append((cpu_seconds(pids[name]) - used) / PUSHES * 1e6)
                    rates[concurrency][name].append(PUSHES / seconds)
                    acked[name] += n
                    if concurrency == CONCURRENCIES[-1]:
                        latencies[name].extend(lat)
    return {
        "sequential": sequential,
        "rates": rates,
        "latencies": latencies,
        "acked": acked,
        "cpu": cpu,
    }


def main(rounds: int = ROUNDS) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="notifykit-bench-callbacks-"))
    configs = {fsync: write_config(directory, fsync) for fsync in (False, True)}
    bare = bare_endpoint()
    servers = {"serve_fsync_off": serve(configs[False]), "serve_fsync_on": serve(configs[True])}
    try:
        targets = {"bare_starlette": bare.url + "/callbacks/vs"}
        targets.update({name: s.url + "/callbacks/vs" for name, s in servers.items()})
        pids = {"bare_starlette": bare.process.pid}
        pids.update({name: s.process.pid for name, s in servers.items()})
        raw = asyncio.run(measure(targets, pids, rounds))
    finally:
        bare.stop()
        for server in servers.values():
            server.stop(graceful=True)
    p50 = {k: round(percentile(v, 50), 3) for k, v in raw["sequential"].items()}
    p99 = {k: round(percentile(v, 99), 3) for k, v in raw["sequential"].items()}
    refused = plausible("bare_starlette", p50["bare_starlette"])
    per_s = {
        f"c{c}": {k: round(median(v)) for k, v in by_kind.items()}
        for c, by_kind in raw["rates"].items()
    }
    stored = {}
    for name, fsync in (("serve_fsync_off", False), ("serve_fsync_on", True)):
        events, inbox = asyncio.run(count_events(directory / f"receiver-fsync-{fsync}.sqlite3"))
        stored[name] = {
            "acknowledged": raw["acked"][name],
            "events_stored": events,
            "inbox_rows": inbox,
            "exact": events == raw["acked"][name] == inbox,
        }
    figures = {
        "sequential_pushes_per_round": SEQUENTIAL,
        "pushes_per_round": PUSHES,
        "rounds": rounds,
        "baseline_refused": refused,
        "c1_p50_ms": p50,
        "c1_p99_ms": p99,
        "c1_p50_x_bare": {k: ratio(v, p50["bare_starlette"], refused) for k, v in p50.items()},
        "per_second": per_s,
        "x_bare": {
            level: {k: ratio(v, rates["bare_starlette"], refused) for k, v in rates.items()}
            for level, rates in per_s.items()
        },
        "server_cpu_us_per_push": {k: round(median(v)) for k, v in raw["cpu"].items()},
        "c50_p99_ms": {k: round(percentile(v, 99), 2) for k, v in raw["latencies"].items()},
        "store": stored,
    }
    emit("callback_ingestion", figures)
    return {**figures, "_latencies": raw["sequential"]}


if __name__ == "__main__":
    from bench.common import quiet_logs

    quiet_logs()
    main()
