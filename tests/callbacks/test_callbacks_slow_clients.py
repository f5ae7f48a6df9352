"""Slow clients against a real ``notifykit serve`` process: incomplete headers and bodies
time out; connections beyond the cap are answered 503 at once; under a lowered descriptor
limit (RLIMIT_NOFILE 400), more stuck connections than it has descriptors for neither shut
it out nor stay open, and every health probe is answered meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_NOFILE is POSIX"),
]

DESCRIPTORS = 400
SLOW = 450
"""Stuck connections: more than the receiver has descriptors for."""
PROBES = 7
WAIT = 30.0
"""Bound of every wait: only a broken receiver makes a wait last this long."""

PUSH = b"mobile=15612341090&taskid=slow-1&status=1&receivetime=2024-05-01+17%3A00%3A00"


def limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


@contextlib.contextmanager
def receiver(tmp_path: Path, callbacks: str) -> Iterator[tuple[str, Path]]:
    """``notifykit serve`` with these ``[callbacks]`` settings under the descriptor limit;
    yields its base URL, once it answers, and its log file."""
    config = tmp_path / "notifykit.toml"
    db = tmp_path / "slow.sqlite3"
    config.write_text(
        '[providers.vs]\ntype = "veesing"\napp_id = "app"\napp_key = "slow-key"\n\n'
        f'[store]\nurl = "sqlite:///{db}"\n\n[callbacks]\n{callbacks}\n',
        encoding="utf-8",
    )
    log = tmp_path / "serve.log"
    with log.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
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
            stderr=stderr,
            text=True,
            env={**os.environ, "NOTIFYKIT_LOAD_PLUGINS": "veesing"},
            preexec_fn=limit_descriptors,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "notifykit receiver on" in line, line + log.read_text(encoding="utf-8")
        base = line.split()[3]
        try:
            wait_until_listening(base)
            yield base, log
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            process.stdout.close()


def wait_until_listening(base: str) -> None:
    for _ in range(int(WAIT / 0.02)):
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{base}/healthz", timeout=WAIT)
            return
        threading.Event().wait(0.02)
    raise AssertionError("the receiver never listened")


async def slow_connection(
    base: str, first: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection that sends ``first`` and then nothing; None when refused at once."""
    url = urlsplit(base)
    try:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(first)
        await writer.drain()
    except OSError:
        return None
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    try:
        return await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionResetError:
        return b"(reset)"


async def test_stuck_clients_beyond_the_descriptor_limit_neither_starve_nor_stay(
    tmp_path: Path,
) -> None:
    with receiver(tmp_path, "header_timeout = 1\nbody_timeout = 1") as (base, log):
        header_line = b"POST /callbacks/vs HTTP/1.1\r\nhost: x\r\n"  # never finished
        stuck = [await slow_connection(base, header_line) for _ in range(SLOW)]

        async with httpx.AsyncClient(timeout=WAIT) as client:
            probes = [await client.get(f"{base}/healthz") for _ in range(PROBES)]
            # Answered, every one: 200, or 503 "too many connections" while the stuck ones
            # hold the cap (a load balancer, or a vendor, tries again).
            assert {p.status_code for p in probes} <= {200, 503}

            answers = await asyncio.gather(*(closed_by_server(c[0]) for c in stuck if c))
            # Every stuck connection was closed by the receiver: timed out (408) or, beyond
            # the cap, refused at once (503; or reset, when the kernel drops the answer
            # because the refused client's bytes were never read).
            kinds = {a[:12] for a in answers}
            assert kinds <= {b"HTTP/1.1 408", b"HTTP/1.1 503", b"(reset)"}, kinds
            assert any(a.startswith(b"HTTP/1.1 408") for a in answers)

            # A body that stops halfway times out too.
            stalled = await slow_connection(
                base, b"POST /callbacks/vs HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nmo"
            )
            assert stalled is not None
            assert (await closed_by_server(stalled[0])).startswith(b"HTTP/1.1 408")

            # Nothing was held back: a real push is stored and acknowledged.
            assert (await client.get(f"{base}/healthz")).status_code == 200
            assert (await client.post(f"{base}/callbacks/vs", content=PUSH)).status_code == 200
        for connection in stuck:
            if connection is not None:
                connection[1].close()
    text = log.read_text(encoding="utf-8")
    assert "Too many open files" not in text, text
    assert "max_connections_lowered" in text, text


async def test_connections_beyond_the_cap_are_answered_503_at_once(tmp_path: Path) -> None:
    with receiver(tmp_path, "max_connections = 3\nheader_timeout = 60") as (base, log):
        held = [await slow_connection(base, b"POST /call") for _ in range(3)]
        async with httpx.AsyncClient(timeout=WAIT) as client:
            async with asyncio.timeout(WAIT):
                while (probe := await client.get(f"{base}/healthz")).status_code == 200:
                    await asyncio.sleep(0.02)  # until the receiver has taken all three
            assert (probe.status_code, probe.text) == (503, "too many connections")
            for connection in held:  # the stuck clients leave: their slots are free again
                assert connection is not None
                connection[1].close()
            async with asyncio.timeout(WAIT):
                while (probe := await client.get(f"{base}/healthz")).status_code != 200:
                    await asyncio.sleep(0.02)
    text = log.read_text(encoding="utf-8")
    assert text.count('"event": "connection_cap_reached"') == 1, text
    assert "connection_cap_cleared" in text, text
