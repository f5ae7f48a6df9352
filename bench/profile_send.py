"""Client CPU per send, for profiling the send path (not part of ``python -m bench``).

``.venv/bin/python -m bench.profile_send [notifykit|notifykit_sqlite|raw_aiohttp|edge|httpx_over_aiohttp]
[--rounds N] [--pyinstrument] [--cprofile]``: rounds of 2,000 sends at concurrency 50 against the fast
server (in another process); prints the median client CPU time per send in microseconds
and sends per second, and with ``--pyinstrument`` the profile of one more round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from urllib.parse import urlencode

import aiohttp
import httpx
from notifykit_veesing.provider import SEND_PATH

from bench.bench_send import HEADERS, SENDS, WARMUP, Sender, notifykit_sender, run_round
from bench.common import fast_server, form, median, quiet_logs, veesing_config
from notifykit import AsyncNotifier
from notifykit.http import create_client, default_transport, request
from notifykit.provider import ProviderContext


async def _measure(url: str, kind: str, rounds: int, profile: bool, cprofile: bool = False) -> None:
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
        await run_round(sender, WARMUP)
        cpu: list[float] = []
        rates: list[float] = []
        for _ in range(rounds):
            started = time.process_time()
            seconds, _ = await run_round(sender)
            cpu.append((time.process_time() - started) / SENDS * 1e6)
            rates.append(SENDS / seconds)
        print(f"{kind}: {median(cpu):.0f} us CPU/send, {median(rates):.0f} sends/s")
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled", interval=0.0002)
            profiler.start()
            await run_round(sender)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        if cprofile:
            import cProfile
            import pstats

            profiler_c = cProfile.Profile()
            profiler_c.enable()
            await run_round(sender)
            profiler_c.disable()
            pstats.Stats(profiler_c).sort_stats(os.environ.get("PSORT", "tottime")).print_stats(
                int(os.environ.get("PN", "45"))
            )
    finally:
        for close in closers:
            await close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", nargs="?", default="notifykit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pyinstrument", action="store_true")
    parser.add_argument("--cprofile", action="store_true", help="cProfile one more round")
    args = parser.parse_args()
    quiet_logs()
    server = fast_server("ok")
    try:
        asyncio.run(_measure(server.url, args.kind, args.rounds, args.pyinstrument, args.cprofile))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
