"""Send overhead: notifykit (AsyncNotifier + Veesing) against raw aiohttp, the client a
user would write instead.

2,000 codes per round at concurrency 50 against a fast keep-alive server in another
process; the kinds run in interleaved rounds and each figure is the median over rounds.
Besides sends per second, the client's CPU time per send (all its threads) is
recorded: on a shared machine it moves far less than the wall clock. The headline is notifykit with a ``sqlite:///`` store (the README's "Use it" setup); the
``memory://`` store is the floor of notifykit's own cost. Also the synchronous ``Notifier``
driven from 8 threads. Before any ratio, raw aiohttp's p50 at concurrency 1 is checked
(:func:`bench.common.plausible`): a stalled baseline refuses every ratio.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from notifykit_veesing.provider import FORM_CONTENT_TYPE, SEND_PATH

from bench.common import (
    code,
    emit,
    fast_server,
    form,
    median,
    percentile,
    phone,
    plausible,
    ratio,
    scaled,
    veesing_config,
)
from notifykit import AsyncNotifier, Notifier
from notifykit.http import create_client, default_transport, request
from notifykit.provider import ProviderContext

SENDS = scaled(2000)
CONCURRENCY = 50
THREADS = 8
ROUNDS = 5
WARMUP = scaled(200)
SEQUENTIAL = scaled(300)
"""Sequential raw aiohttp sends that check the baseline (p50 at concurrency 1)."""
TARGETS = {
    # kind: (baseline kind, target ratio)
    "notifykit_sqlite": ("notifykit_memory", 0.75),
    "notifykit_memory": ("raw_aiohttp", 0.5),
    "notifykit_sync_8_threads": ("raw_aiohttp", 0.35),
}
HEADERS = {"content-type": FORM_CONTENT_TYPE, "accept": "application/json"}

_numbers = itertools.count()

Sender = Callable[[int], Awaitable[None]]


async def run_round(
    send: Sender, count: int = SENDS, concurrency: int = CONCURRENCY
) -> tuple[float, list[float]]:
    """``count`` sends from ``concurrency`` workers: (seconds, per-send latencies in ms)."""
    todo = iter([next(_numbers) for _ in range(count)])
    latencies: list[float] = []

    async def worker() -> None:
        for i in todo:
            started = time.perf_counter()
            await send(i)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def run_sync_round(notifier: Notifier, count: int = SENDS) -> tuple[float, list[float]]:
    todo = iter([next(_numbers) for _ in range(count)])
    lock = threading.Lock()
    latencies: list[float] = []

    def worker() -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            started = time.perf_counter()
            notifier.send(phone(i), template="verify_code", params={"code": code(i)})
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def notifykit_sender(notifier: AsyncNotifier) -> Sender:
    async def send(i: int) -> None:
        await notifier.send(phone(i), template="verify_code", params={"code": code(i)})

    return send


async def measure(base_url: str, rounds: int = ROUNDS, tmp: Path | None = None) -> dict[str, Any]:
    tmp = tmp or Path(tempfile.mkdtemp(prefix="notifykit-bench-"))
    url = base_url + SEND_PATH
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), headers=HEADERS)
    # The transport notifykit uses by default, under a bare httpx.AsyncClient.
    bridged = httpx.AsyncClient(transport=default_transport(), timeout=10)
    # notifykit's HTTP edge alone (create_client + request), as the Veesing plugin uses it:
    # the floor of notifykit's cost.
    edge = create_client(ProviderContext(instance="vs"), timeout=10)

    async def aiohttp_send(i: int) -> None:
        async with session.post(url, data=urlencode(form(i)).encode()) as answer:
            await answer.read()
            assert answer.status == 200

    async def bridged_send(i: int) -> None:
        answer = await bridged.post(url, content=urlencode(form(i)).encode(), headers=HEADERS)
        assert answer.status_code == 200

    async def edge_send(i: int) -> None:
        answer = await request(
            edge, "POST", url, provider="vs", content=urlencode(form(i)).encode(), headers=HEADERS
        )
        assert answer.status_code == 200

    memory = AsyncNotifier(veesing_config({"vs": base_url}))
    sqlite = AsyncNotifier(
        veesing_config({"vs": base_url}, store=f"sqlite:///{tmp / 'send.sqlite3'}")
    )
    sync = await asyncio.to_thread(Notifier, veesing_config({"vs": base_url}))
    kinds: dict[str, Sender | None] = {
        "raw_aiohttp": aiohttp_send,
        "notifykit_sqlite": notifykit_sender(sqlite),
        "notifykit_memory": notifykit_sender(memory),
        "notifykit_sync_8_threads": None,
        "notifykit_http_edge": edge_send,
        "httpx_over_aiohttp": bridged_send,
    }
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    latencies: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for sender in kinds.values():  # warm-up: connections, imports, caches
            if sender is None:
                await asyncio.to_thread(run_sync_round, sync, WARMUP)
            else:
                await run_round(sender, WARMUP)
        _s, sequential = await run_round(aiohttp_send, SEQUENTIAL, concurrency=1)
        for _ in range(rounds):
            for kind, sender in kinds.items():
                used = time.process_time()  # this process, every thread
                if sender is None:
                    seconds, lat = await asyncio.to_thread(run_sync_round, sync)
                else:
                    seconds, lat = await run_round(sender)
                cpu[kind].append((time.process_time() - used) / SENDS * 1e6)
                rates[kind].append(SENDS / seconds)
                latencies[kind].extend(lat)
    finally:
        await session.close()
        await bridged.aclose()
        await edge.aclose()
        await memory.close()
        await sqlite.close()
        await asyncio.to_thread(sync.close)
    per_s = {kind: round(median(values)) for kind, values in rates.items()}
    base = per_s["raw_aiohttp"]
    baseline_p50 = round(percentile(sequential, 50), 3)
    refused = plausible("raw_aiohttp", baseline_p50)
    return {
        "sends_per_round": SENDS,
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "baseline_c1_p50_ms": baseline_p50,
        "baseline_refused": refused,
        "per_second": per_s,
        "ratio_to_raw_aiohttp": {k: ratio(v, base, refused) for k, v in per_s.items()},
        "targets": {
            kind: {
                "baseline": against,
                "ratio": ratio(per_s[kind], per_s[against], refused),
                "target": target,
            }
            for kind, (against, target) in TARGETS.items()
        },
        "cpu_us_per_send": {k: round(median(v)) for k, v in cpu.items()},
        "p50_ms": {k: round(percentile(v, 50), 2) for k, v in latencies.items()},
        "p99_ms": {k: round(percentile(v, 99), 2) for k, v in latencies.items()},
        "_latencies": latencies,
    }


def main(rounds: int = ROUNDS) -> dict[str, Any]:
    server = fast_server("ok")
    try:
        figures = asyncio.run(measure(server.url, rounds))
    finally:
        server.stop()
    shown = {k: v for k, v in figures.items() if not k.startswith("_")}
    emit("send_overhead", shown)
    return figures


if __name__ == "__main__":
    from bench.common import quiet_logs

    quiet_logs()
    main()
