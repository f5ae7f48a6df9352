"""Failover under outage: the primary refuses connections, or accepts and never answers;
the backup is healthy. Compared with the all-healthy run, in interleaved rounds.

Targets: once the primary's breaker is open, p99 send latency <= 1.5x the all-healthy p99;
the whole batch <= 1.3x the healthy time plus one provider timeout.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from bench.common import (
    Child,
    code,
    emit,
    fast_server,
    median,
    percentile,
    phone,
    scaled,
    veesing_config,
)
from notifykit import AsyncNotifier
from notifykit.errors import NotifyKitError

SENDS = scaled(2000)
CONCURRENCY = 50
ROUNDS = 3
TIMEOUT = 0.5
"""The primary's timeout (connect and read), seconds."""

_next = 0


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_batch(primary: str, backup: str) -> dict[str, Any]:
    """One batch through a fresh notifier: latencies of all sends and of those started
    after the primary's breaker had opened, the batch time, failures."""
    global _next
    config = veesing_config(
        {"primary": primary, "backup": backup},
        timeout=TIMEOUT,
        # A primary that never answers ends in UnknownOutcome: this benchmark measures
        # failover, so the policy allows it (the default, "stop", would fail those sends).
        routing={"on_unknown_outcome": "failover"},
    )
    first, _next = _next, _next + SENDS
    todo = iter(range(first, first + SENDS))
    every: list[float] = []
    after_open: list[float] = []
    failures = 0
    async with AsyncNotifier(config) as notifier:
        await notifier.send(phone(first + 10**7), template="verify_code", params={"code": "1234"})

        async def worker() -> None:
            nonlocal failures
            for i in todo:
                opened = notifier.router.breakers["primary"].is_closed() is False
                started = time.perf_counter()
                try:
                    await notifier.send(phone(i), template="verify_code", params={"code": code(i)})
                except NotifyKitError:
                    failures += 1
                elapsed = (time.perf_counter() - started) * 1000
                every.append(elapsed)
                if opened:
                    after_open.append(elapsed)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "every": every, "after_open": after_open, "failures": failures}


async def measure(ok: Child, hang: Child, rounds: int) -> dict[str, Any]:
    scenarios = {
        "healthy": lambda: (ok.url, ok.url),
        "primary_refuses": lambda: (f"http://127.0.0.1:{closed_port()}", ok.url),
        "primary_hangs": lambda: (hang.url, ok.url),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in scenarios}
    for _ in range(rounds):
        for name, urls in scenarios.items():
            runs[name].append(await run_batch(*urls()))
    figures: dict[str, Any] = {"sends": SENDS, "concurrency": CONCURRENCY, "timeout_s": TIMEOUT}
    healthy_p99 = median([percentile(r["every"], 99) for r in runs["healthy"]])
    healthy_s = median([r["seconds"] for r in runs["healthy"]])
    latencies: dict[str, list[float]] = {}
    for name, results in runs.items():
        p99_open = median(
            [percentile(r["after_open"], 99) for r in results if r["after_open"]] or [float("nan")]
        )
        seconds = median([r["seconds"] for r in results])
        entry = {
            "batch_s": round(seconds, 3),
            "p50_ms": round(median([percentile(r["every"], 50) for r in results]), 2),
            "p99_ms": round(median([percentile(r["every"], 99) for r in results]), 2),
            "failures": sum(r["failures"] for r in results),
        }
        if name != "healthy":
            budget = 1.3 * healthy_s + TIMEOUT
            entry.update(
                {
                    "p99_after_breaker_open_ms": round(p99_open, 2),
                    "p99_ratio_to_healthy": round(p99_open / healthy_p99, 2),
                    "batch_budget_s": round(budget, 3),
                    "p99_target_met": p99_open <= 1.5 * healthy_p99,
                    "batch_target_met": seconds <= budget,
                }
            )
        figures[name] = entry
        latencies[name] = [x for r in results for x in r["every"]]
    figures["_latencies"] = latencies
    return figures


def main(rounds: int = ROUNDS) -> dict[str, Any]:
    ok, hang = fast_server("ok"), fast_server("hang")
    try:
        figures = asyncio.run(measure(ok, hang, rounds))
    finally:
        ok.stop()
        hang.stop()
    emit("failover", {k: v for k, v in figures.items() if not k.startswith("_")})
    return figures


if __name__ == "__main__":
    main()
