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

Profiled with pyinstrument, cProfile and ablation (a component replaced by a no-op, the
CPU difference measured), with `bench/profile_send.py`: client CPU per send, median of 5 x
2,000 sends at concurrency 50, the fast server in another process. Raw aiohttp costs
about 84 us a send on this machine, so 0.4x means about 210 us for the whole notifykit send.

| change | notifykit CPU per send | commit |
|---|---:|---|
| first full-shape run | 989 us | |
| structlog level check first, `build_message` without re-validation, Veesing's `national_mobile` cached, `parse_phone` masks only for errors | 733 us | b37b8a0, 435a194, 390f77e |
| (re-measured at the start of this round) | 688 us | |
| notifykit's own `AiohttpTransport` (replaces httpx-aiohttp), and `request()` sends a `create_client` request straight to the transport, without `AsyncClient`'s per-request machinery | 546 us | 2e02a6c |
| loggers bound once and level-checked before any processing; tenacity built only after a first retryable failure; `MemoryStore` copies records two levels down instead of `model_copy(deep=True)`; the parsed number shared between `parse_phone` and Veesing; Veesing's form, headers and charset done once or with a regex | 330 us | c0f3ed7 |
| request headers built once per (method, URL, headers), the body and its length per call; an answer without content-encoding handed back already read | 287 us | 52ec036 |
| Veesing asks phonenumbers for the line type only (a mobile type implies a valid number) | ~280 us | b452073 |
| the TLS context (certifi's CA bundle, ~17 ms to load) made once per process, when a transport is built, not inside its first request on the loop | (latency) | see `git log -- notifykit/http.py` |
| (second round, re-measured at its start) | ~285 us | |
| `MemoryStore` keeps each message as tuples of plain values (records built on read) and indexes orphan events by vendor id (`update_message` scanned every stored event) | ~264 us | 80b96d2 |
| one phone parse and one line-type lookup per send: `parse_phone` validates with `number_type` and caches the type; Veesing and `mask_phone` read the cache | ~253 us | f24188f |
| one deadline timer per router and loop (`DeadlineWatch`) instead of `asyncio.timeout_at` per vendor call, same cancellation semantics | 255 -> 251 us (A/B) | 9221182 |
| a disabled log level costs one level check; message ids from `os.urandom` spelled as `uuid4().hex` | 251 -> 244 us (A/B) | db67cea |
| no GC-tracked object kept per number (phone cache) or per message (one flat tuple per stored message): fewer collections, far fewer full ones | ~224 us | aa61724 |

Why the transport changed: the `httpx-aiohttp` bridge wrapped every answer in a streaming
body, mapped exceptions through a generic table and built an aiohttp `ClientTimeout` per
request; under `AsyncClient` it cost 253 us a send against raw aiohttp's 81 us. notifykit's
`AiohttpTransport` (in `notifykit/http.py`, about 130 lines) reads the answer whole (vendor
answers are small), caches timeouts and URLs, keeps no cookie jar, and raises httpx
exceptions with the aiohttp error as `__cause__`, so fault classification is unchanged.
With `request()`'s direct path the HTTP edge alone costs about 109 us a send
(`notifykit_http_edge` above). Tests still inject `httpx.MockTransport`, respx routers or
`httpx.AsyncHTTPTransport()` under `respx.mock`; any other `AsyncClient`, and requests
that need its machinery (query params, cookies, auth other than basic), take
`AsyncClient.request` as before.

Where the time goes now (about 224 us a send; raw aiohttp about 82, so 0.4x needs about
205): the HTTP edge about 109 (raw aiohttp 84 of it; the rest is the httpx request and
response objects and the header hand-over); phonenumbers' parse about 12 and its line
type about 3.5, once each per send; Veesing's own work (form, JSON answer) about 15; the
memory store about 8 (it was about 40: record copies, an O(events) scan per accepted
send, and the collector walking ~15 objects per stored message); the deadline about 1
(was 5 to 20); the router's bookkeeping (ids, attempt and result models, breaker, a
chain of a dozen coroutines per send) and the event loop the rest. What is left for 0.4x
is about 20 us: the httpx objects around each aiohttp request (the edge costs 25 over raw
aiohttp), the pydantic models a send builds (MessageRecord, StatusChange, Attempt,
SendReceipt, SendResult: about 6 us together), and a shorter coroutine chain.

Garbage collection and the failover target (benchmark 2): the failover p99 ratio is
decided by full (generation 2) collections of about 23 ms, which walk the whole heap
(about 55,000 tracked objects: phonenumbers' metadata, pydantic's schemas, the modules)
and stall every send on the loop; whichever batch one lands in gets a p99 near 35-40 ms
instead of about 15. A full collection runs when enough objects were promoted to the
oldest generation since the last one, and every younger collection promotes the objects
of the sends in flight; what drove the younger collections, and so the full ones, was
what notifykit kept per send. Traced with gc callbacks over 2,000-send batches: the
phone cache's PhoneNumber objects (1,890 promoted a batch, with the 1,892 tuples holding
them) and the memory store's models (about 15 tracked objects a message). Both now keep
plain values in tuples the collector stops tracking: 4,131 -> 352 objects promoted a
batch; collections over 6 healthy batches (gen0/gen1/gen2) 179/16/2 -> 101/9/1 (68/6/0
with the store's writes made no-ops). The benchmark does not call `gc.freeze` or
`gc.disable`. A full collection can still land inside a batch, less often; each scenario's
figure is the median of its rounds.

Memory (benchmark 4): the 10,000 queued sends held 27.6 KiB each before this round (httpx
`AsyncClient` and httpx-aiohttp objects per waiting request, deep copies). tracemalloc now
shows, per waiting send (17.8 KiB traced): aiohttp's own request state and coroutine
frames about 5.7 KiB; notifykit's coroutine chain (notifier, router, retry, provider, HTTP
edge) about 5.4 KiB; the stored record and its copies about 2.5 KiB; the `httpx.Request`
with its headers about 1.2 KiB; the rest is asyncio tasks, timers and futures.
"""


def _verdict(ratio: float, target: float, who: str, against: str) -> str:
    met = "met" if ratio >= target else "not met"
    return f"**Target {met}**: {who} at {ratio}x {against} (target {target}x)."


def _failover_verdict(name: str, e: dict[str, Any]) -> str:
    p99 = "met" if e["p99_target_met"] else "**not met**"
    batch = "met" if e["batch_target_met"] else "**not met**"
    return (
        f"- `{name}`: p99 after the breaker opened {e['p99_after_breaker_open_ms']} ms = "
        f"{e['p99_ratio_to_healthy']}x the healthy p99 (target <= 1.5x): {p99}; batch "
        f"{e['batch_s']} s against a budget of {e['batch_budget_s']} s: {batch}."
    )


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
        "is a bare `httpx.AsyncClient` on notifykit's default transport "
        "(`notifykit.http.AiohttpTransport`); `notifykit_http_edge` is `create_client` + "
        "`request()` alone, as the Veesing plugin calls them, the floor of notifykit's cost; "
        "the sync `Notifier` is driven from 8 threads. Target: notifykit >= 0.4x raw aiohttp.",
        "",
        _verdict(send["ratio_to_raw_aiohttp"]["notifykit"], 0.4, "notifykit", "raw aiohttp"),
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
        (
            "**Targets met** in both outage scenarios."
            if all(
                failover[n]["p99_target_met"] and failover[n]["batch_target_met"]
                for n in ("primary_refuses", "primary_hangs")
            )
            else "**Targets not met** in at least one outage scenario (see below)."
        ),
        "",
        *(_failover_verdict(name, failover[name]) for name in ("primary_refuses", "primary_hangs")),
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
        _verdict(
            min(v for k, v in callbacks["ratio_to_bare"].items() if k != "bare_asgi"),
            0.7,
            "the slower `notifykit serve` setting",
            "the bare ASGI app",
        ),
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
        "`AsyncNotifier` (memory store; the connection pool holds 100, the rest wait). No "
        "target; 27.6 KiB per queued send before the changes below.",
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
