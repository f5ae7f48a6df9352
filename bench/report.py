"""Writes docs/benchmarks.md (tables) and docs/benchmarks-latency.png (latency CDFs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.common import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
PNG = ROOT / "docs" / "benchmarks-latency.png"


def plot(send: dict[str, Any], failover: dict[str, Any], path: Path = PNG) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, data, title in (
        (axes[0], send["_latencies"], "Send latency, concurrency 50"),
        (axes[1], failover["_latencies"], "Failover: send latency by scenario"),
    ):
        for name, values in data.items():
            ordered = sorted(values)
            if not ordered:
                continue
            fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.plot(ordered, fractions, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("share of sends at or below")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PROFILE = """## What the profile showed, and what was fixed

Profiled with pyinstrument and cProfile (send benchmark, notifykit kind). Client CPU per
send, median of 5 x 2,000 sends at concurrency 50 in one process (the fast server in
another): **989 us before, 733 us after** (-26%); the first full-shape run gave 544
sends/s before the fixes.

| fix | commit |
|---|---|
| structlog drops a level the host does not log before any processor runs (masking parsed the number for every DEBUG line, logged or not) | b37b8a0 (`notifykit/log.py`) |
| `build_message` builds the already-checked `SmsMessage` with `model_construct` instead of validating it, and the number, again | b37b8a0 (`notifykit/notifier.py`) |
| Veesing's `national_mobile` is cached (the router's `decline` and `send` each parsed the number) | 435a194 |
| `parse_phone` masks the number only for an error message (masking parses it again) | see `git log -- notifykit/phone.py` |

Not fixed, in order of cost: the transport bridge itself (`httpx_over_aiohttp` above is
already under 0.4x raw aiohttp on this machine); httpx's `AsyncClient` per-request work
(`build_request`, cookie-jar extraction of every response, about 0.17 ms a send);
stamina/tenacity's retry machinery built for every send, even one that never retries;
`MemoryStore` deep-copying each record. Reaching 0.4x here would mean sending through the
transport without `AsyncClient` (keeping `httpx.Request`/`Response` and transport
injection, so respx and `MockTransport` still work), and a retry loop that costs nothing
until a first retryable failure.
"""


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write_report(
    send: dict[str, Any],
    failover: dict[str, Any],
    callbacks: dict[str, Any],
    memory: dict[str, Any],
    *,
    machine: str,
) -> None:
    plot(send, failover)
    cores = os.cpu_count()
    lines = [
        "# Benchmarks",
        "",
        "Written by `.venv/bin/python -m bench` (the code is in `bench/`); do not edit by hand.",
        f"Last run: {machine}, {cores} cores, everything on loopback. Each figure is the",
        "median of interleaved rounds run side by side in one process, against servers in",
        "other processes (so that they do not share the client's GIL).",
        "",
        "![latency CDFs](benchmarks-latency.png)",
        "",
        "## 1. Send overhead",
        "",
        f"{send['sends_per_round']} verification codes per round at concurrency "
        f"{send['concurrency']}, {send['rounds']} rounds, to a minimal asyncio keep-alive "
        "server answering Veesing's success JSON (`bench/fast_server.py`). `notifykit` is "
        "`AsyncNotifier` + the Veesing plugin with a `memory://` store; `httpx_over_aiohttp` "
        "is a bare `httpx.AsyncClient` on notifykit's default transport (aiohttp through "
        "httpx-aiohttp), the floor of notifykit's cost; the sync `Notifier` is driven from 8 "
        "threads. Target: notifykit >= 0.4x raw aiohttp.",
        "",
        _row("client", "sends/s", "x raw aiohttp", "p50 ms", "p99 ms"),
        _row("---", "---:", "---:", "---:", "---:"),
    ]
    for kind, rate in send["per_second"].items():
        lines.append(
            _row(
                kind,
                rate,
                send["ratio_to_raw_aiohttp"][kind],
                send["p50_ms"][kind],
                send["p99_ms"][kind],
            )
        )
    lines += [
        "",
        "`notifykit_sqlite` is the same send with a `sqlite:///` store (every send writes its "
        "record before the request and after it), reported apart from the memory-store "
        "comparison.",
        "",
        "## 2. Failover under outage",
        "",
        f"{failover['sends']} sends at concurrency {failover['concurrency']}; the primary's "
        f'timeout is {failover["timeout_s"]} s, `on_unknown_outcome = "failover"` (a primary '
        "that never answers ends in UnknownOutcome), default breaker (5 failures). Targets: "
        "p99 after the breaker opened <= 1.5x the healthy p99; batch <= 1.3x healthy + one "
        "timeout.",
        "",
        _row(
            "scenario",
            "batch s",
            "budget s",
            "p50 ms",
            "p99 ms",
            "p99 after open ms",
            "x healthy p99",
            "targets met",
            "failed sends",
        ),
        _row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---", "---:"),
    ]
    for name in ("healthy", "primary_refuses", "primary_hangs"):
        e = failover[name]
        met = (
            "-"
            if name == "healthy"
            else ("yes" if e["p99_target_met"] and e["batch_target_met"] else "**no**")
        )
        lines.append(
            _row(
                name,
                e["batch_s"],
                e.get("batch_budget_s", "-"),
                e["p50_ms"],
                e["p99_ms"],
                e.get("p99_after_breaker_open_ms", "-"),
                e.get("p99_ratio_to_healthy", "-"),
                met,
                e["failures"],
            )
        )
    lines += [
        "",
        "## 3. Callback ingestion",
        "",
        f"{callbacks['pushes_per_round']} Veesing receipts per round at concurrency "
        f"{callbacks['concurrency']} from one aiohttp client, {callbacks['rounds']} rounds: "
        "`notifykit serve` (SQLite store, each push stored before it is acknowledged) with "
        "`[store] fsync` off and on, against a bare ASGI app on the same uvicorn settings "
        "that discards the body (`bench/bare_asgi.py`). Target >= 0.7x.",
        "",
        _row(
            "receiver", "receipts/s", "x bare", "p99 ms", "acknowledged", "events stored", "exact"
        ),
        _row("---", "---:", "---:", "---:", "---:", "---:", "---"),
    ]
    for name, rate in callbacks["per_second"].items():
        store = callbacks["store"].get(name)
        lines.append(
            _row(
                name,
                rate,
                callbacks["ratio_to_bare"][name],
                callbacks["p99_ms"][name],
                store["acknowledged"] if store else "-",
                store["events_stored"] if store else "-",
                ("yes" if store["exact"] else "**no**") if store else "-",
            )
        )
    lines += [
        "",
        "## 4. Memory",
        "",
        f"Peak RSS of a process holding {memory['concurrent_sends']:,} concurrent sends in one "
        "`AsyncNotifier` (memory store; the connection pool holds 100, the rest wait).",
        "",
        _row(
            "RSS before MiB",
            "peak RSS MiB",
            "increase MiB",
            "KiB per queued send",
            "seconds",
            "failed",
        ),
        _row("---:", "---:", "---:", "---:", "---:", "---:"),
        _row(
            memory["rss_before_mib"],
            memory["peak_rss_mib"],
            memory["peak_increase_mib"],
            memory["kib_per_queued_send"],
            memory["seconds"],
            memory["failed"],
        ),
        "",
        PROFILE,
    ]
    DOC.write_text("\n".join(lines), encoding="utf-8")
