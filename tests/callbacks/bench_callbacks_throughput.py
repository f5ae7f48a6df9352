"""Receipts per second through ``notifykit serve`` (SQLite store, fsync on and off).

Run: ``.venv/bin/python tests/callbacks/bench_callbacks_throughput.py [REQUESTS] [CONCURRENCY]``
(default 2000 at 20). The receiver runs in a subprocess on 127.0.0.1; each push is a Veesing
receipt with its own taskid; afterwards the store must hold every one of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import httpx

from notifykit.store import SQLiteStore

TOKEN = "bench-token"


def start(config: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from notifykit.cli import main; main()",
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"},
    )
    assert proc.stdout is not None
    base = proc.stdout.readline().split()[3]
    for _ in range(500):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.01)
    raise RuntimeError("receiver did not start")


async def load(base: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    # aiohttp as the client: httpx's own per-request cost would dominate the measurement.
    url = f"{base}/callbacks/vs/{TOKEN}"
    tasks = iter(range(requests))
    latencies: list[float] = []
    failures = 0
    headers = {"content-type": "application/x-www-form-urlencoded;charset=utf-8"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        for n in tasks:
            body = urlencode(
                {
                    "mobile": "15080921234",
                    "taskid": f"t{n}",
                    "status": "1",
                    "receivetime": "2024-05-01 17:00:00",
                }
            )
            began = time.perf_counter()
            async with session.post(url, data=body.encode(), headers=headers) as answer:
                await answer.read()
                failures += answer.status != 200
            latencies.append(time.perf_counter() - began)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - began, latencies, failures


def run(fsync: bool, requests: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        config = Path(tmp) / "notifykit.toml"
        config.write_text(
            f'[providers.vs]\ntype = "veesing"\napp_id = "a"\napp_key = "k"\n\n'
            f'[store]\nurl = "sqlite:///{db}"\nfsync = {str(fsync).lower()}\n\n'
            f'[callbacks]\ntoken = "{TOKEN}"\n',
            encoding="utf-8",
        )
        proc, base = start(config)
        try:
            elapsed, latencies, failures = asyncio.run(load(base, requests, concurrency))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

        async def count() -> int:
            store = SQLiteStore(db)
            await store.open()
            try:
                return len(await store.list_events())
            finally:
                await store.close()

        stored = asyncio.run(count())
        q = statistics.quantiles(latencies, n=100)
        print(
            f"fsync={'on ' if fsync else 'off'}  {requests} receipts at concurrency {concurrency}: "
            f"{requests / elapsed:7.0f}/s  p50 {q[49] * 1000:5.1f} ms  p99 {q[98] * 1000:5.1f} ms  "
            f"non-200: {failures}  stored: {stored}"
        )


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    for fsync in (False, True):
        run(fsync, n, c)
