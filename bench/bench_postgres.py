"""Many instances on PostgreSQL: ``.venv/bin/python -m bench.bench_postgres``.

Three figures, each a ratio to a baseline measured in the same run (absolute figures
printed beside it), interleaved rounds, medians:

* callback ingestion through ``notifykit serve`` on PostgreSQL (persist before
  acknowledge, group commit) vs the bare Starlette endpoint under uvicorn, at
  concurrency 20 (target >= 0.5x); afterwards the store must hold exactly one event per
  acknowledged push;
* sends through ``AsyncNotifier`` with the PostgreSQL store vs the same sends with the
  memory store, against a fast keep-alive vendor in another process (target >= 0.6x);
* two ``notifykit serve`` processes on one database vs one, the pushes spread over both.

Needs PostgreSQL at ``$NOTIFYKIT_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); works in a schema of its own, dropped after.

``--part ingestion|latency|sends`` (repeatable; ``--rounds N``) measures only those parts,
with load-independent figures beside the rates, to compare a change back to back (``python
-m bench`` runs every part through :func:`main`): ``ingestion``, serve on PostgreSQL vs the
bare endpoint at concurrency 20 with each server's CPU per push (us); ``latency``, the p50
of one sequential pusher and of a push at concurrency 20 (ms), each server's; ``sends``,
PostgreSQL vs memory sends at concurrency 20 with the client's CPU per send (us).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_callbacks import cpu_seconds, receipt, serve
from bench.common import (
    bare_endpoint,
    code,
    emit,
    fast_server,
    median,
    phone,
    plausible,
    ratio,
    scaled,
    veesing_config,
)
from notifykit import AsyncNotifier
from notifykit.config import StoreConfig
from notifykit.store.postgres import PostgresStore

PG_URL = os.environ.get("NOTIFYKIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PUSHES = scaled(1000)
SENDS = scaled(1000)
CONCURRENCY = 20
ROUNDS = 3
_tasks = itertools.count(1)
_numbers = itertools.count()


def write_config(directory: Path, schema: str) -> Path:
    path = directory / "receiver-postgres.toml"
    path.write_text(
        '[providers.vs]\ntype = "veesing"\napp_id = "bench"\napp_key = "bench-key"\n\n'
        f'[store]\nurl = "{PG_URL}"\nschema = "{schema}"\n',
        encoding="utf-8",
    )
    return path


async def push_round(
    session: aiohttp.ClientSession, urls: list[str], pushes: int
) -> tuple[float, int]:
    """``pushes`` receipts from CONCURRENCY workers, spread over ``urls``: (seconds, acked)."""
    todo = iter([next(_tasks) for _ in range(pushes)])
    acked = 0

    async def worker(url: str) -> None:
        nonlocal acked
        for task in todo:
            for _try in range(3):  # a keep-alive connection the server just closed
                try:
                    async with session.post(
                        url,
                        data=receipt(task, "pgbench"),
                        headers={"content-type": "application/x-www-form-urlencoded"},
                    ) as answer:
                        await answer.read()
                        acked += answer.status == 200
                    break
                except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                    continue

    started = time.perf_counter()
    await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(CONCURRENCY)))
    return time.perf_counter() - started, acked


async def sequential_p50_ms(url: str, count: int = 200) -> float:
    """One pusher on one keep-alive connection: the median of ``count`` round trips (ms),
    the figure ``plausible`` checks a baseline against (docs/benchmarks.md)."""
    took: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for n in range(count + 20):  # the first 20 warm the connection up, untimed
            start = time.perf_counter()
            async with session.post(url, data=receipt(n, "pgbench")) as answer:
                await answer.read()
            if n >= 20:
                took.append((time.perf_counter() - start) * 1000)
    return median(took)


async def ingestion(targets: dict[str, list[str]], rounds: int, pushes: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {k: [] for k in targets}
    acked = dict.fromkeys(targets, 0)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=2)
    ) as session:
        for name, urls in targets.items():  # warm-up: acknowledged, not timed
            acked[name] += (await push_round(session, urls, pushes))[1]
        for _ in range(rounds):
            for name, urls in targets.items():
                seconds, n = await push_round(session, urls, pushes)
                rates[name].append(pushes / seconds)
                acked[name] += n
    return {"rates": rates, "acked": acked}


async def sends(
    vendor_url: str, schema: str, rounds: int, count: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Sends per second and client CPU seconds per send, each round, with the memory and
    the PostgreSQL store."""
    memory = AsyncNotifier(veesing_config({"vs": vendor_url}))
    config = veesing_config({"vs": vendor_url})
    store = StoreConfig(url=PG_URL, schema=schema, timeout=10)
    postgres = AsyncNotifier(config.model_copy(update={"store": store}))
    kinds = {"memory": memory, "postgres": postgres}
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}

    async def one_round(notifier: AsyncNotifier, count: int) -> tuple[float, float]:
        todo = iter([next(_numbers) for _ in range(count)])

        async def worker() -> None:
            for i in todo:
                await notifier.send(phone(i), template="verify_code", params={"code": code(i)})

        used, started = _cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started), (_cpu() - used) / count

    try:
        for notifier in kinds.values():
            await notifier.open()
            await one_round(notifier, min(200, count))  # warm-up
        for _ in range(rounds):
            for name, notifier in kinds.items():
                rate, per_send = await one_round(notifier, count)
                rates[name].append(rate)
                cpu[name].append(per_send)
    finally:
        for notifier in kinds.values():
            await notifier.close()
    return rates, cpu


async def stored(schema: str) -> tuple[int, int]:
    store = PostgresStore(PG_URL, schema=schema)
    await store.open()
    try:
        return len(await store.list_events()), await store.count_inbox()
    finally:
        await store.close()


async def drop(schema: str) -> None:
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def reachable() -> str | None:
    """None when PostgreSQL answers at PG_URL, else why not (checked before measuring)."""
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {PG_URL}: {type(exc).__name__}: {str(exc).strip()[:200]}"
    return None


def main(
    rounds: int = ROUNDS, *, pushes: int = PUSHES, sends_per_round: int = SENDS
) -> dict[str, Any]:
    """Run the three comparisons (``pushes`` per round and target, ``sends_per_round``
    sends per round and store); prints and returns the figures."""
    directory = Path(tempfile.mkdtemp(prefix="notifykit-bench-postgres-"))
    schemas = {k: f"nk_bench_{k}_{uuid.uuid4().hex[:8]}" for k in ("one", "two", "send")}
    for name in ("one", "two"):
        (directory / name).mkdir()
    bare = bare_endpoint()
    one = serve(write_config(directory / "one", schemas["one"]))
    pair_config = write_config(directory / "two", schemas["two"])
    pair = [serve(pair_config), serve(pair_config)]
    vendor = fast_server("ok")
    try:
        targets = {
            "bare_starlette": [bare.url + "/callbacks/vs"],
            "serve_postgres": [one.url + "/callbacks/vs"],
            "two_serve_postgres": [s.url + "/callbacks/vs" for s in pair],
        }
        bare_p50 = asyncio.run(sequential_p50_ms(targets["bare_starlette"][0]))
        raw = asyncio.run(ingestion(targets, rounds, pushes))
        send_rates, _ = asyncio.run(sends(vendor.url, schemas["send"], rounds, sends_per_round))
        counts = {
            "serve_postgres": asyncio.run(stored(schemas["one"])),
            "two_serve_postgres": asyncio.run(stored(schemas["two"])),
        }
    finally:
        for child in (bare, one, *pair, vendor):
            child.stop(graceful=child is not bare and child is not vendor)
        for schema in schemas.values():
            asyncio.run(drop(schema))
    per_s = {k: round(median(v)) for k, v in raw["rates"].items()}
    refused = plausible("bare_starlette", bare_p50)
    send_per_s = {k: round(median(v)) for k, v in send_rates.items()}
    figures = {
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "pushes_per_round": pushes,
        "sends_per_round": sends_per_round,
        "ingestion_per_second": per_s,
        "bare_c1_p50_ms": round(bare_p50, 2),
        "baseline_refused": refused,
        "ingestion_ratio_to_bare": ratio(per_s["serve_postgres"], per_s["bare_starlette"], refused),
        "two_serve_ratio_to_one": round(per_s["two_serve_postgres"] / per_s["serve_postgres"], 2),
        "stored": {
            name: {
                "acknowledged": raw["acked"][name],
                "events_stored": events,
                "inbox_rows": inbox,
                "exact": events == raw["acked"][name],
            }
            for name, (events, inbox) in counts.items()
        },
        "send_per_second": send_per_s,
        "send_ratio_postgres_to_memory": round(send_per_s["postgres"] / send_per_s["memory"], 2),
    }
    emit("postgres", figures)
    return figures


PARTS = ("ingestion", "latency", "sends")


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def _latencies(session: aiohttp.ClientSession, url: str, pushes: int) -> list[float]:
    """Per-push latency (ms) of ``pushes`` receipts from CONCURRENCY workers."""
    todo = iter([next(_tasks) for _ in range(pushes)])
    took: list[float] = []

    async def worker() -> None:
        for task in todo:
            start = time.perf_counter()
            async with session.post(url, data=receipt(task, "pgbench")) as answer:
                await answer.read()
            took.append((time.perf_counter() - start) * 1000)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return took


async def _serve_parts(
    parts: set[str], servers: dict[str, Any], rounds: int, pushes: int
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    urls = {name: child.url + "/callbacks/vs" for name, child in servers.items()}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=2)
    ) as session:
        for url in urls.values():  # warm-up
            await push_round(session, [url], min(200, pushes))
        if "ingestion" in parts:
            rates: dict[str, list[float]] = {name: [] for name in urls}
            cpu: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(rounds):
                for name, url in urls.items():
                    used = cpu_seconds(servers[name].process.pid)
                    seconds, _acked = await push_round(session, [url], pushes)
                    cpu[name].append((cpu_seconds(servers[name].process.pid) - used) / pushes)
                    rates[name].append(pushes / seconds)
            found["ingestion_per_second"] = {k: round(median(v)) for k, v in rates.items()}
            found["server_cpu_us_per_push"] = {k: round(median(v) * 1e6) for k, v in cpu.items()}
            per_s = found["ingestion_per_second"]
            # The same check as main(): no ratio against a stalled bare endpoint.
            bare_p50 = await sequential_p50_ms(urls["bare_starlette"])
            refused = plausible("bare_starlette", bare_p50)
            found["bare_c1_p50_ms"] = round(bare_p50, 2)
            found["baseline_refused"] = refused
            found["ingestion_ratio_to_bare"] = ratio(
                per_s["serve_postgres"], per_s["bare_starlette"], refused
            )
    if "latency" in parts:
        found["p50_ms"] = {}
        for name, url in urls.items():
            one = await sequential_p50_ms(url)
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=2)
            ) as session:
                many = await _latencies(session, url, pushes)
            found["p50_ms"][name] = {"c1": round(one, 2), f"c{CONCURRENCY}": round(median(many), 2)}
    return found


async def _send_part(vendor_url: str, schema: str, rounds: int, count: int) -> dict[str, Any]:
    rates, cpu = await sends(vendor_url, schema, rounds, count)
    per_s = {k: round(median(v)) for k, v in rates.items()}
    return {
        "send_per_second": per_s,
        "send_ratio_postgres_to_memory": round(per_s["postgres"] / per_s["memory"], 2),
        "client_cpu_us_per_send": {k: round(median(v) * 1e6) for k, v in cpu.items()},
    }


def measure_parts(
    parts: set[str], rounds: int = ROUNDS, *, pushes: int = PUSHES, sends_per_round: int = SENDS
) -> dict[str, Any]:
    """Only ``parts`` (of :data:`PARTS`), with CPU per operation; prints and returns them."""
    figures: dict[str, Any] = {"parts": sorted(parts), "rounds": rounds}
    schemas = {k: f"nk_bench_{k}_{uuid.uuid4().hex[:8]}" for k in ("one", "send")}
    try:
        if parts & {"ingestion", "latency"}:
            directory = Path(tempfile.mkdtemp(prefix="notifykit-bench-postgres-"))
            servers = {"bare_starlette": bare_endpoint()}
            try:
                servers["serve_postgres"] = serve(write_config(directory, schemas["one"]))
                figures.update(asyncio.run(_serve_parts(parts, servers, rounds, pushes)))
            finally:
                for name, child in servers.items():
                    child.stop(graceful=name != "bare_starlette")
        if "sends" in parts:
            vendor = fast_server("ok")
            try:
                figures.update(
                    asyncio.run(_send_part(vendor.url, schemas["send"], rounds, sends_per_round))
                )
            finally:
                vendor.stop()
    finally:
        for schema in schemas.values():
            asyncio.run(drop(schema))
    print(json.dumps({"bench": "postgres_parts", **figures}))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.bench_postgres")
    parser.add_argument("--part", action="append", choices=PARTS, help="only this part")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    if args.part:
        measure_parts(set(args.part), args.rounds)
    else:
        main(args.rounds)
