"""Writes docs/benchmarks.md (tables) and docs/benchmarks-latency.png (latency CDFs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.common import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
PNG = ROOT / "docs" / "benchmarks-latency.png"


def plot(
    send: dict[str, Any], failover: dict[str, Any], callbacks: dict[str, Any], path: Path = PNG
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for ax, data, title in (
        (axes[0], send["_latencies"], "Send latency, concurrency 50"),
        (axes[1], callbacks["_latencies"], "Callback push latency, one sequential pusher"),
        (axes[2], failover["_latencies"], "Failover: send latency by scenario"),
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
| (third round, re-measured at its start, load average near 5: read the ratios) | 332-532 us, 1,015 calls | |
| a send receipt's `raw` not redacted (nothing of it is kept, logged or returned); an in-memory answer read with `Response.read()`, not the async iteration | 1,015 -> 944 calls | 2fbb48f |
| Veesing sends through `send_body()`: on `AiohttpTransport` a plain request goes straight to aiohttp, built from the direct path's prototype, no `httpx.Request`/`Response` (switch, differential test, ledger row below) | 944 -> 770 calls; A/B 348 -> 265, 419 -> 310 us | 34a4971 |
| `open()` awaited only when not open on the loop; `MemoryStore.start_send` one coroutine; Veesing encodes the template id once (phone and code are digits) | 770 -> 743 calls; whole round A/B (load ~6.7) 532/436/404 -> 349/304/290 us | db9499a |

### Issue 12: the private shortcuts removed, public API only

httpx's private names (`Headers._list`, `Request._content`, `Response._content`,
`AsyncClient._merge_url`, `_merge_headers`, `_default_encoding`) and phonenumbers' private
parse steps are gone, and with them the `httpx<0.29` and `phonenumbers<10` caps: a host
application can upgrade either the day a release ships (phonenumbers' releases carry new
number ranges). `tests/core/test_core_public_api_only.py` fails if `notifykit/http.py` or
`notifykit/phone.py` reads a private name again. What it cost, measured A/B with
`bench/profile_send.py` (3 x 2,000 sends at concurrency 50, the old and new trees run one
after the other) on the shared machine at a load average near 10, where every CPU figure
is about five times its idle value, so read the ratios, not the microseconds:

| change | before | after | commit |
|---|---:|---:|---|
| HTTP edge alone (`create_client` + `request()`), CPU per send | 542 us | 600 us (+11 %) | this round |
| whole send, memory store (also pays phonenumbers' public `parse` for each new number), CPU per send | 1,131 us | 1,359 us (+20 %) | this round |
| building one request (micro-benchmark, min of 7 x 20,000): private header patch / public `content=` / public `stream=` + our own content-length | 12.4 us | 100 us / **19.6 us** (kept) | this round |

The public request path sets a bytes body's content-length itself on a cached prototype
(URL and headers built once per method, URL and headers), as the private one did; what
it cannot avoid is httpx reading each answer through its public `aread()` (decoders and
chunker), which the private path skipped by assigning `_content`.

### Issue 17: every shortcut held to one standard

A speed shortcut stays only with a row here, a test that fails loudly when its premise or
its dependency changes, and a fallback to the public path. Measured with `timeit`,
interleaved, min of 7 x 50,000 calls (load average near 6, so read the differences, not
the microseconds):

| shortcut | measured | verdict | guard |
|---|---:|---|---|
| `build_message` returned `SmsMessage.model_construct(...)` (skip validation) | 3.53 us vs 2.13 us validating (an earlier run: 2.17 vs 1.79) | dropped: `parse_phone` caches validated numbers, so validating is cheaper | `test_build_message_validates_through_the_model` |
| hand-rolled UUID4 bits for message ids | 0.93 us vs 3.01 us for `uuid.uuid4().hex` (an earlier run: 1.05 vs 2.25), about 1-2 us of a ~224 us send | dropped: `uuid.uuid4().hex`, one definition of a UUID | `tests/routing/test_routing_message_id.py` (version and variant bits, drawn from `uuid.uuid4`) |
| `request()`'s direct path (public httpx API: the request built and sent to the transport without `AsyncClient.request`) | about 2x on the HTTP edge (`notifykit_http_edge` vs `httpx_over_aiohttp` above) | kept | `notifykit.http._DIRECT_PATH = False` sends everything through `AsyncClient.request`; `tests/core/test_core_http_direct.py` compares both paths on generated requests (wire request and answer) |
| `send_body()`'s bare path (public httpx and aiohttp API: a plain request from a `create_client` client on `AiohttpTransport` sent straight to aiohttp, built from the direct path's prototype, the answer aiohttp's, no `httpx.Request`/`Response`) | whole send 1,030 -> 770 function calls; CPU 348 -> 265 and 419 -> 310 us (A/B, load average near 5) | kept (Veesing's send and balance) | `notifykit.http._BARE_PATH = False` (or `_DIRECT_PATH = False`) sends through `request()`; `tests/core/test_core_http_bare.py` compares both over loopback on generated requests and answers (wire bytes, answer, errors) |
| private names of dependencies | - | none left in notifykit or the plugins | `tests/core/test_core_public_api_only.py` scans every module |

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

Where the time went at the end of the previous round, before this round's changes (about 224 us a send; raw aiohttp about 82, so 0.4x needs about
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

### The synchronous `Notifier` from 8 threads

Each call crosses threads twice (caller to loop, loop back to caller), and each crossing
is a wake-up and a turn of the GIL; the send itself is `AsyncNotifier.send` unchanged.
`asyncio.run_coroutine_threadsafe` paid, per call, a write to the loop's self-pipe (which
drops the GIL in the caller, so the caller and the loop fought for it again), a
`concurrent.futures.Future` with its condition and callbacks, and a chained asyncio
future. `notifykit/loop_thread.py` (`LoopThread`) queues each call and blocks its caller on
a plain lock; on the standard selector loop, the loop's selector starts the queued calls
and wakes the callers whose calls ended just before it waits for I/O (a caller writes to
the self-pipe only while the loop sleeps), so the crossings happen in batches when the
GIL is free. Measured in one process, interleaved rounds of 2,000 sends (8 rounds, load
average near 6, so read the differences): `bench/profile_send.py sync` measures the same.

| synchronous wrapper | CPU us/send (user + system) | context switches/send | calls/send (cProfile) |
|---|---:|---:|---:|
| `run_coroutine_threadsafe` + `Future.result()` | 350 (303 + 47) | 2.84 | 875 |
| lock per call, one self-pipe write per batch | 343 (289 + 53) | 3.25 | - |
| the selector hands batches over before each wait (kept) | 316 (277 + 39) | 2.54 | 792 |
| and hands ended calls back as a chain (the loop wakes one caller, each caller the next; a busy loop keeps them up to 16 looks) (kept) | 334 against 353 (same process, below) | 1.65 + 1.26 against 2.64 + 1.83 (voluntary + forced) | - |
| `AsyncNotifier` itself, 8 / 50 concurrent sends (no threads) | 296 / 310 | 0 | 748 |

On a trivial coroutine (8 threads, the wrapper alone): 53 -> 29 us CPU per call. A call
that `close()` (from another thread) finds still running is now cancelled and raises
`UsageError` (it used to wait forever), and so does one queued when the loop stops.

The chain row: two `Notifier`s in one process, one on each `LoopThread`, 16 alternating
rounds of 2,000 sends (load average 4-5): median 353 -> 334 us CPU/send, 2,027 -> 2,316
sends/s, context switches per send as in the table. Other series at that load put the CPU
anywhere from 10 % lower to level, so only the context switches are a firm gain. On the
trivial coroutine: about 19 -> 13 us per call, 2.4 -> 1.5 voluntary context switches per
call. Of a send's CPU, the caller threads now use about 25 us and the loop's thread the
rest.

### Round of 2026-11-30: counted, since the clock would not say

Four parallel changes on a machine whose load stayed between 1 and 6, where CPU figures of
one build moved by 25 % from run to run; each change was judged by a load-independent
count (`valgrind --tool=callgrind` instructions, function calls, statements), A/B against
the build before it:

| change | before | after | commit |
|---|---:|---:|---|
| send path: the running loop looked up once per send (each lookup a `getpid` on 3.11), no union type built per `isinstance`, Veesing's national number and charset worked out once | 1,078k instructions/send (real loopback; raw aiohttp 504k); 734-750 calls; 6.1 `getpid` | 1,043k; 713 calls; 4.1 `getpid` | c74765d, 8880d63 |
| serve + SQLite: no timer of the inbox's own where the store keeps a deadline (`Store.call_timeout`), headers read in one pass and copied only to redact, the inbox row's JSON written directly, no sweeper wake-up per push without observers | 1.313e9 instructions per 1,000 pushes (whole server; bare endpoint 0.781e9) | 1.234e9 (-6.0 %) | b04136b, c396225, 1b66b8f |
| PostgreSQL store: a batch's rows as one JSON parameter (psycopg dumps a list parameter element by element in Python), one timer for all callers' timeouts, one-statement batches without pipeline mode, UPDATE and orphan look-up through their indexes | store-only callgrind, batches of 20: 395k instructions per operation; client CPU start_send / update_message / ingest 45 / 72 / 84 us | 341k; 34 / 58 / 67 us | b652ee1, ab2ea68, d51fff4, b77cedf, 9e0ee4b |
| sync `Notifier`: ended calls handed back as a chain (table above) | 2.64 + 1.83 context switches/send | 1.65 + 1.26 | 9a662c1 |

Where a send's instructions go now (aiohttp replaced by a canned answer, parts removed one
at a time): phonenumbers' public `parse` and line type about 227k of notifykit's own 590k
(numbers differ per send, so nothing is cached; its search for an extension alone is about
50k), Veesing and the HTTP edge about 105k, notifier, router, memory store and models
about 120k (7 model validations, about 10 us warm; `model_construct` measured slower than
validating in pydantic 2.14). A push through `serve` (callgrind, per push): the SQLite
writer thread about 209k (about 58k of it SQLite itself), Veesing's parsing about 150k,
`inbox.handle` about 75k, the endpoint about 45k, the `LimitedProtocol` wrapper about 46k;
the bare endpoint's whole request is about 781k. Tried and not kept: one multi-row
statement per ingest batch (-0.2 %), building events without validation (slower), a
PostgreSQL commit gate that doubled jobs per transaction (7 -> 13) but cut sends/s by 20 %.
"""


STALL = """## The stall, and how the benchmark guards against it

Until this round every server notifykit started on a socket it made itself (`notifykit
serve`, the `ServerThread` behind `notifykit demo`, the sandboxes and the tests, and the
benchmark's own baseline, `bench/bare_asgi.py`) made it as `socket.socket(AF_INET,
SOCK_STREAM)`, protocol 0. asyncio turns Nagle's algorithm off (`TCP_NODELAY`) only on
connections whose socket reports protocol `IPPROTO_TCP`, so each response's second write
(uvicorn writes the headers and the body apart) waited for the client's delayed ACK, about
40 ms on Linux. A sequential client got about 23 answers a second, and throughput grew
exactly with concurrency: 415 pushes/s at 20 against ~7,200/s for a plain Starlette
endpoint. The benchmark reported 0.82x because its baseline was made the same way and
stalled the same way.

Now every such socket comes from `notifykit.server.listening_socket` (protocol
`IPPROTO_TCP`, `TCP_NODELAY` set), IPv4 and IPv6; `tests/core/test_core_server_socket.py`
reads `TCP_NODELAY` on connections accepted by `ServerThread`, by asyncio, and on
`notifykit serve`'s socket, so the stall cannot come back unnoticed. The benchmark's
baselines are what a user would run instead, started the ordinary way: the bare endpoint
is a Starlette route (`bench/bare_starlette.py`) under the `uvicorn` command line, which
binds its own port; the client baseline is raw aiohttp. Before any ratio is printed, each
baseline's p50 at concurrency 1 is checked: above 5 ms on loopback (a stalled socket
answers in ~40 ms, a healthy one in well under 1 ms on an idle machine) the baseline is
refused and no ratio is reported against it; the refusal is printed instead.
"""


def _x(value: float | None) -> str:
    return "refused" if value is None else f"{value}x"


def _check(ratio: float | None, target: float, *, at_most: bool = False) -> str:
    if ratio is None:
        return "**not checked** (baseline refused)"
    met = ratio <= target if at_most else ratio >= target
    return "**met**" if met else "**not met**"


def _failover_verdict(name: str, e: dict[str, Any]) -> str:
    p99 = "met" if e["p99_target_met"] else "**not met**"
    batch = "met" if e["batch_target_met"] else "**not met**"
    failed = (
        f" **{e['failures']} sends failed** (timeouts of 0.5 s on an overloaded machine), so "
        "the run does not show the targets met."
        if e["failures"]
        else ""
    )
    return (
        f"- `{name}`: p99 after the breaker opened {e['p99_after_breaker_open_ms']} ms = "
        f"{e['p99_ratio_to_healthy']}x the healthy p99 (target <= 1.5x): {p99}; batch "
        f"{e['batch_s']} s against a budget of {e['batch_budget_s']} s: {batch}.{failed}"
    )


def _stored_table(stores: dict[str, dict[str, Any]]) -> list[str]:
    """What each receiver acknowledged against what its store holds, a row a receiver."""
    lines = [
        _row("receiver", "acknowledged", "events stored", "inbox rows", "exact"),
        _row("---", "---:", "---:", "---:", "---"),
    ]
    for name, store in stores.items():
        exact = "yes" if store["exact"] else "**no**"
        lines.append(
            _row(name, store["acknowledged"], store["events_stored"], store["inbox_rows"], exact)
        )
    return lines


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write_report(
    send: dict[str, Any],
    failover: dict[str, Any],
    callbacks: dict[str, Any],
    memory: dict[str, Any],
    postgres: dict[str, Any] | None = None,
    *,
    machine: str,
    plot_it: bool = True,
    image: bool | None = None,
    load: str = "",
    round_trips: dict[str, Any] | None = None,
) -> None:
    if plot_it:
        plot(send, failover, callbacks)
    cores = os.cpu_count()
    cb = callbacks
    lines = [
        "# Benchmarks",
        "",
        "Written by `.venv/bin/python -m bench` (the code is in `bench/`); do not edit by hand.",
        f"Last run: {machine}, {cores} cores, everything on loopback{load}. Each figure is the",
        "median of interleaved rounds run side by side in one process, against servers in",
        "other processes (so that they do not share the client's GIL). Every ratio is printed",
        "beside the absolute figures it comes from, and only when its baseline passed its",
        "plausibility check (see the last section). CPU time per operation (from the",
        "process's own clock, or `/proc` for a server) is printed too: on a machine shared",
        "with other work it moves far less than the wall clock.",
        "",
        *(
            ["![latency CDFs](benchmarks-latency.png)", ""]
            if (plot_it if image is None else image)
            else []
        ),
        "## Baseline checks",
        "",
        _row("baseline", "p50 at concurrency 1 (ms)", "limit (ms)", "verdict"),
        _row("---", "---:", "---:", "---"),
        _row(
            "bare Starlette endpoint under the `uvicorn` CLI",
            cb["c1_p50_ms"]["bare_starlette"],
            5,
            cb["baseline_refused"] or "plausible",
        ),
        _row(
            "raw aiohttp against the fast server",
            send["baseline_c1_p50_ms"],
            5,
            send["baseline_refused"] or "plausible",
        ),
        "",
        "## 1. Callback ingestion",
        "",
        "Veesing receipts from one aiohttp client on keep-alive connections: "
        "`notifykit serve` with a SQLite store (each push stored before it is acknowledged), "
        "`[store] fsync` off (the default) and on, against a bare Starlette endpoint that "
        "reads the body and answers 200 (`bench/bare_starlette.py`, started as "
        "`uvicorn bench.bare_starlette:app`). "
        f"{cb['rounds']} rounds; per round {cb['sequential_pushes_per_round']} pushes from one "
        f"sequential pusher and {cb['pushes_per_round']} at each of concurrency 20 and 50.",
        "",
        f"- Target: `serve` (fsync off) >= 0.7x the bare endpoint at concurrency 20: "
        f"{_x(cb['x_bare']['c20']['serve_fsync_off'])}, "
        f"{_check(cb['x_bare']['c20']['serve_fsync_off'], 0.7)}.",
        f"- Target: one sequential pusher's p50 <= 2x the bare endpoint's: "
        f"{_x(cb['c1_p50_x_bare']['serve_fsync_off'])}, "
        f"{_check(cb['c1_p50_x_bare']['serve_fsync_off'], 2.0, at_most=True)}.",
        "",
        _row(
            "receiver",
            "c1 p50 ms",
            "c1 p99 ms",
            "c1 p50 x bare",
            "c20 pushes/s",
            "c20 x bare",
            "c50 pushes/s",
            "c50 x bare",
            "c50 p99 ms",
            "server CPU us/push",
        ),
        _row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"),
    ]
    for name in cb["c1_p50_ms"]:
        lines.append(
            _row(
                name,
                cb["c1_p50_ms"][name],
                cb["c1_p99_ms"][name],
                _x(cb["c1_p50_x_bare"][name]),
                cb["per_second"]["c20"][name],
                _x(cb["x_bare"]["c20"][name]),
                cb["per_second"]["c50"][name],
                _x(cb["x_bare"]["c50"][name]),
                cb["c50_p99_ms"][name],
                cb["server_cpu_us_per_push"][name],
            )
        )
    lines += ["", *_stored_table(cb["store"])]
    lines += [
        "",
        "## 2. Send",
        "",
        f"{send['sends_per_round']} verification codes per round at concurrency "
        f"{send['concurrency']}, {send['rounds']} rounds, to a minimal asyncio keep-alive "
        "server answering Veesing's success JSON (`bench/fast_server.py`). "
        "`notifykit_sqlite` (the headline) is `AsyncNotifier` + the Veesing plugin with a "
        "`sqlite:///` store, the README's setup; `notifykit_memory` is the same with the "
        "`memory://` store, the floor of notifykit's own cost; the sync `Notifier` (memory "
        "store) is driven from 8 threads; `notifykit_http_edge` is `create_client` + "
        "`request()` alone; `httpx_over_aiohttp` is a bare `httpx.AsyncClient` on notifykit's "
        "transport. CPU us/send is the client process's CPU time (all threads) per send.",
        "",
    ]
    for kind, t in send["targets"].items():
        lines.append(
            f"- Target: `{kind}` >= {t['target']}x `{t['baseline']}`: "
            f"{send['per_second'][kind]} vs {send['per_second'][t['baseline']]} sends/s, "
            f"{_x(t['ratio'])}, {_check(t['ratio'], t['target'])}."
        )
    lines += [
        "",
        _row("client", "sends/s", "x raw aiohttp", "CPU us/send", "p50 ms", "p99 ms"),
        _row("---", "---:", "---:", "---:", "---:", "---:"),
    ]
    for kind, rate in send["per_second"].items():
        lines.append(
            _row(
                kind,
                rate,
                _x(send["ratio_to_raw_aiohttp"][kind]),
                send["cpu_us_per_send"][kind],
                send["p50_ms"][kind],
                send["p99_ms"][kind],
            )
        )
    lines += [
        "",
        "## 3. Failover under outage",
        "",
        f"{failover['sends']} sends at concurrency {failover['concurrency']}; the primary's "
        f'timeout is {failover["timeout_s"]} s, `on_unknown_outcome = "failover"` (a primary '
        "that never answers ends in UnknownOutcome), default breaker (5 failures). Targets: "
        "p99 after the breaker opened <= 1.5x the healthy p99; batch <= 1.3x healthy + one "
        "timeout.",
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
            "failed sends",
        ),
        _row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"),
    ]
    for name in ("healthy", "primary_refuses", "primary_hangs"):
        e = failover[name]
        lines.append(
            _row(
                name,
                e["batch_s"],
                e.get("batch_budget_s", "-"),
                e["p50_ms"],
                e["p99_ms"],
                e.get("p99_after_breaker_open_ms", "-"),
                e.get("p99_ratio_to_healthy", "-"),
                e["failures"],
            )
        )
    lines += [
        "",
        "## 4. Memory",
        "",
        f"Peak RSS of a process holding {memory['concurrent_sends']:,} concurrent sends in one "
        "`AsyncNotifier` (memory store; the connection pool holds 100, the rest wait). No "
        "target.",
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
        *(
            [
                f"**{memory['failed']:,} of the sends failed**: they outlasted `routing.deadline` "
                "on an overloaded machine, so this run's memory figure is not comparable with "
                "an idle one.",
                "",
            ]
            if memory["failed"]
            else []
        ),
        *postgres_section(postgres),
        *round_trips_section(round_trips),
        STALL,
        PROFILE,
    ]
    DOC.write_text("\n".join(lines), encoding="utf-8")


def postgres_section(pg: dict[str, Any] | None) -> list[str]:
    """Section 5 of the report: bench/bench_postgres.py's figures (None: not run)."""
    head = ["## 5. Many instances (PostgreSQL)", ""]
    if pg is None:
        return [
            *head,
            "Not run (`--no-postgres`, or no PostgreSQL): these figures are missing from "
            "this report.",
            "",
        ]
    per_s = pg["ingestion_per_second"]
    lines = [
        *head,
        f"`bench/bench_postgres.py`, {pg['rounds']} rounds, interleaved. Ingestion: "
        f"{pg['pushes_per_round']} Veesing receipts per round and target from "
        f"{pg['concurrency']} aiohttp workers, to `notifykit serve` with a PostgreSQL store "
        "(each push stored before it is acknowledged, group commit), to two such processes "
        "on one database (the workers spread over both), and to the bare Starlette endpoint "
        f"(its sequential p50 {pg['bare_c1_p50_ms']} ms: "
        f"{pg['baseline_refused'] or 'plausible'}). Send: {pg['sends_per_round']} sends per "
        "round through `AsyncNotifier` with the PostgreSQL store and with the memory store, "
        "to the fast keep-alive vendor.",
        "",
        f"- Target: `serve` on PostgreSQL >= 0.5x the bare endpoint at concurrency "
        f"{pg['concurrency']}: {per_s['serve_postgres']} vs {per_s['bare_starlette']} "
        f"pushes/s, {_x(pg['ingestion_ratio_to_bare'])}, "
        f"{_check(pg['ingestion_ratio_to_bare'], 0.5)}.",
        f"- Target: send with the PostgreSQL store >= 0.6x the memory store: "
        f"{pg['send_per_second']['postgres']} vs {pg['send_per_second']['memory']} sends/s, "
        f"{_x(pg['send_ratio_postgres_to_memory'])}, "
        f"{_check(pg['send_ratio_postgres_to_memory'], 0.6)}.",
        f"- Two `serve` processes against one on the same database: "
        f"{per_s['two_serve_postgres']} vs {per_s['serve_postgres']} pushes/s, "
        f"{_x(pg['two_serve_ratio_to_one'])} (no target; on {os.cpu_count()} cores shared "
        "with the client and PostgreSQL).",
        "",
        *_stored_table(pg["stored"]),
    ]
    return [*lines, ""]


ROUND_TRIP_ROWS = {
    "send_c1": "send, one sender",
    "send_c20": "send, 20 concurrent",
    "send_guard_c1": "send with `recipient_min_interval`, one sender",
    "send_idempotency_c1": "send with an idempotency key, one sender",
    "push_c1": "push, one pusher",
    "push_c20": "push, 20 concurrent",
    "push_observed_c1": "push with a subscriber, one pusher",
    "push_observed_c20": "push with a subscriber, 20 concurrent",
}


def round_trips_section(counts: dict[str, Any] | None) -> list[str]:
    """Section 6: store work per send and per push, counted (bench/round_trips.py)."""
    head = ["## 6. Store work per send and per push (counted, not timed)", ""]
    if counts is None:
        return [*head, "Not run.", ""]
    backends = [name for name in ("memory", "sqlite", "postgres") if name in counts]
    lines = [
        *head,
        "`bench/round_trips.py`: what one send (FakeProvider, no network) and one pushed "
        "receipt cost the store, averaged; these move only when the design does, never with "
        "the machine's load (`tests/store/test_store_round_trips.py` pins them). `jobs`: "
        "writes handed to the store's writer; `tx`: transactions committed (group commit "
        "shares them); `stmts`: SQL statements (SQLite: BEGIN, SAVEPOINT and COMMIT "
        "included; PostgreSQL: BEGIN and COMMIT not). The memory store has no writer.",
        "",
        _row("operation", *(f"{b} jobs / tx / stmts" for b in backends if b != "memory")),
        _row("---", *("---:" for b in backends if b != "memory")),
    ]
    for key, label in ROUND_TRIP_ROWS.items():
        cells = []
        for backend in backends:
            if backend == "memory":
                continue
            c = counts[backend].get(key)
            cells.append(
                "-" if c is None else f"{c['jobs']:g} / {c['transactions']:g} / {c['statements']:g}"
            )
        lines.append(_row(label, *cells))
    return [*lines, ""]
