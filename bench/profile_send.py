"""Client CPU per send, for profiling the send path (not part of ``python -m bench``).

``.venv/bin/python -m bench.profile_send [notifykit|notifykit_sqlite|sync|raw_aiohttp|edge|httpx_over_aiohttp]
[--rounds N] [--pyinstrument] [--cprofile] [--concurrency C]``: rounds of 2,000 sends at concurrency C
(default 50) against the fast
server (in another process); prints the median client CPU time per send in microseconds
and sends per second, and with ``--pyinstrument`` the profile of one more round.
``sync`` is the synchronous ``Notifier`` (memory store) driven from 8 threads, as in
``bench.bench_send``; its ``--cprofile`` profiles every thread (the loop's and the callers').
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import tempfile
import threading
from urllib.parse import urlencode

import aiohttp
import httpx
from notifykit_veesing.provider import SEND_PATH

from bench.bench_send import (
    HEADERS,
    SENDS,
    WARMUP,
    Sender,
    notifykit_sender,
    run_round,
    run_sync_round,
)
from bench.common import fast_server, form, median, quiet_logs, veesing_config
from notifykit import AsyncNotifier, Notifier
from notifykit.http import create_client, default_transport, request
from notifykit.provider import ProviderContext


class _Meter:
    """Per-send medians over rounds: CPU (user + system, all threads), context switches."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float, float]] = []
        self.rates: list[float] = []

    def __enter__(self) -> None:
        self._start = resource.getrusage(resource.RUSAGE_SELF)

    def __exit__(self, *_exc: object) -> None:
        end = resource.getrusage(resource.RUSAGE_SELF)
        self.samples.append(
            (
                (end.ru_utime - self._start.ru_utime) / SENDS * 1e6,
                (end.ru_stime - self._start.ru_stime) / SENDS * 1e6,
                (end.ru_nvcsw - self._start.ru_nvcsw) / SENDS,
                (end.ru_nivcsw - self._start.ru_nivcsw) / SENDS,
            )
        )

    def print(self, kind: str) -> None:
        user, system, voluntary, forced = (median(list(c)) for c in zip(*self.samples, strict=True))
        print(
            f"{kind}: {user + system:.0f} us CPU/send ({user:.0f} user, {system:.0f} system), "
            f"{median(self.rates):.0f} sends/s, context switches/send: "
            f"{voluntary:.2f} voluntary, {forced:.2f} forced"
        )


def _measure_sync(url: str, rounds: int, profile: bool, cprofile: bool) -> None:
    notifier = Notifier(veesing_config({"vs": url}))
    try:
        run_sync_round(notifier, WARMUP)
        meter = _Meter()
        for _ in range(rounds):
            with meter:
                seconds, _ = run_sync_round(notifier)
            meter.rates.append(SENDS / seconds)
        meter.print("sync")
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled", interval=0.0002)
            profiler.start()
            run_sync_round(notifier)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        if cprofile:
            print_stats(_profile_sync_round(notifier))
    finally:
        notifier.close()


def _profile_sync_round(notifier: Notifier) -> list[cProfile.Profile]:
    """cProfile one ``run_sync_round``: one profiler per thread (the loop's and each caller's)."""
    profilers: list[cProfile.Profile] = []

    def start(*_args: object) -> None:  # first event in a new thread: profile it
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()

    def on_loop() -> None:
        start()
        started.set()

    started = threading.Event()
    # The bench reaches into the notifier it measures: the loop thread is its own.
    notifier._loop.call_soon_threadsafe(on_loop)
    started.wait()
    threading.setprofile(start)
    try:
        run_sync_round(notifier)
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
    stopped = threading.Event()

    def off_loop() -> None:
        profilers[0].disable()
        stopped.set()

    notifier._loop.call_soon_threadsafe(off_loop)
    stopped.wait()
    return profilers


def print_stats(profilers: list[cProfile.Profile]) -> None:
    stats = pstats.Stats(profilers[0])
    for profiler in profilers[1:]:
        stats.add(profiler)
    stats.sort_stats(os.environ.get("PSORT", "tottime")).print_stats(
        int(os.environ.get("PN", "45"))
    )


async def _measure(
    url: str, kind: str, rounds: int, profile: bool, cprofile: bool = False, concurrency: int = 50
) -> None:
    closers = []
    sender: Sender
    if kind in ("notifykit", "notifykit_sqlite"):
        store = "memory://"
        if kind == "notifykit_sqlite":
            store = f"sqlite:///{tempfile.mkdtemp(prefix='notifykit-profile-')}/send.sqlite3"
        notifier = AsyncNotifier(veesing_config({"vs": url}, store=store))
        sender = notifykit_sender(notifier)
        closers.append(notifier.close)
    elif kind == "raw_aiohttp":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100), headers=HEADERS)

        async def sender(i: int) -> None:
            async with session.post(url + SEND_PATH, data=urlencode(form(i)).encode()) as r:
                await r.read()

        closers.append(session.close)
    elif kind == "edge":  # notifykit.http alone: create_client + request
        edge = create_client(ProviderContext(instance="vs"), timeout=10)

        async def sender(i: int) -> None:
            await request(
                edge,
                "POST",
                url + SEND_PATH,
                provider="vs",
                content=urlencode(form(i)).encode(),
                headers=HEADERS,
            )

        closers.append(edge.aclose)
    else:
        client = httpx.AsyncClient(transport=default_transport(), timeout=10)

        async def sender(i: int) -> None:
            await client.post(url + SEND_PATH, content=urlencode(form(i)).encode(), headers=HEADERS)

        closers.append(client.aclose)
    try:
        await run_round(sender, WARMUP, concurrency)
        meter = _Meter()
        for _ in range(rounds):
            with meter:
                seconds, _ = await run_round(sender, SENDS, concurrency)
            meter.rates.append(SENDS / seconds)
        meter.print(kind)
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled", interval=0.0002)
            profiler.start()
            await run_round(sender, SENDS, concurrency)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        if cprofile:
            profiler_c = cProfile.Profile()
            profiler_c.enable()
            await run_round(sender, SENDS, concurrency)
            profiler_c.disable()
            print_stats([profiler_c])
    finally:
        for close in closers:
            await close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", nargs="?", default="notifykit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--cprofile", action="store_true", help="cProfile one more round")
    parser.add_argument(
        "--concurrency", type=int, default=50, help="concurrent sends (not for sync: 8 threads)"
    )
    args = parser.parse_args()
    quiet_logs()
    server = fast_server("ok")
    try:
        if args.kind == "sync":
            _measure_sync(server.url, args.rounds, args.pyinstrument, args.cprofile)
        else:
            asyncio.run(
                _measure(
                    server.url,
                    args.kind,
                    args.rounds,
                    args.pyinstrument,
                    args.cprofile,
                    args.concurrency,
                )
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
