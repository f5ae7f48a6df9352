"""Helpers shared by the benchmarks: child processes, configurations, statistics."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from notifykit.config import Config

ROOT = Path(__file__).resolve().parent.parent


def _scale() -> float:
    text = os.environ.get("NOTIFYKIT_BENCH_SCALE", "1")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise SystemExit(
            f"bench: NOTIFYKIT_BENCH_SCALE must be a number in (0, 1], got {text!r} "
            "(e.g. 0.1 for a smoke run with a tenth of the sends and pushes)"
        )
    return value


SCALE = _scale()
"""``$NOTIFYKIT_BENCH_SCALE`` (default 1): the fraction of each benchmark's sends and
pushes to run, for a smoke run in bounded time (its figures are noisier, and the report
says it was scaled)."""


def scaled(count: int, least: int = 50) -> int:
    """``count`` times :data:`SCALE`, at least ``least`` (and never more than ``count``)."""
    return min(count, max(least, round(count * SCALE)))


APP_ID = "bench-app"
APP_KEY = "bench-app-key-not-a-secret"
TEMPLATE_ID = "540"


class Child:
    """A child process that names its port when ready, killed on ``stop()`` unless asked
    to end gracefully.

    ``python -m ...`` children print ``PORT <n>`` (or ``notifykit serve``'s banner) on
    stdout; ``uvicorn=True`` children are the ``uvicorn`` command line, whose banner
    ("Uvicorn running on http://127.0.0.1:<n>") is a log line on stderr.
    """

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, uvicorn: bool = False
    ) -> None:
        command = [*_uvicorn_command(), *args] if uvicorn else [sys.executable, *args]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        port = None
        seen = []
        if uvicorn:
            for _ in range(50):
                line = self.process.stderr.readline()
                seen.append(line)
                found = _UVICORN_BANNER.search(line)
                if found or not line:
                    port = int(found.group(1)) if found else None
                    break
        else:
            line = self.process.stdout.readline()
            seen.append(line)
            if line.startswith("PORT "):
                port = int(line.split()[1])
            elif line.startswith("notifykit receiver on http://127.0.0.1:"):
                port = int(line.split()[3].rsplit(":", 1)[1])
        if port is None:
            self.process.kill()
            err = self.process.stderr.read()
            raise RuntimeError(f"child {command} did not start: {seen!r} {err}")
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self, graceful: bool = False) -> None:
        if self.process.poll() is None:
            if graceful:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
            else:
                self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


_UVICORN_BANNER = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def _uvicorn_command() -> list[str]:
    """The ``uvicorn`` script next to this Python (a virtualenv's), else ``-m uvicorn``."""
    script = Path(sys.executable).with_name("uvicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "uvicorn"]


@contextmanager
def child(*args: str, env: dict[str, str] | None = None) -> Iterator[Child]:
    started = Child(*args, env=env)
    try:
        yield started
    finally:
        started.stop()


def bare_endpoint() -> Child:
    """The bare Starlette endpoint (:mod:`bench.bare_starlette`) under the ``uvicorn``
    command line, binding its own port, as a user would start it."""
    return Child(
        "bench.bare_starlette:app",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-access-log",
        "--log-level",
        "info",  # the banner naming the port is an info line
        "--lifespan",
        "off",
        uvicorn=True,
    )


def fast_server(mode: str = "ok") -> Child:
    return Child("-m", "bench.fast_server", mode)


def veesing_config(
    instances: dict[str, str],
    *,
    store: str = "memory://",
    fsync: bool = False,
    timeout: float = 10.0,
    routing: dict[str, Any] | None = None,
) -> Config:
    """One Veesing instance per ``name -> base_url``, routed in that order."""
    return Config.from_dict(
        {
            "providers": {
                name: {
                    "type": "veesing",
                    "app_id": APP_ID,
                    "app_key": APP_KEY,
                    "base_url": url,
                    "timeout": timeout,
                }
                for name, url in instances.items()
            },
            "templates": {
                "verify_code": {name: {"template_id": TEMPLATE_ID} for name in instances}
            },
            "routing": {"providers": list(instances), **(routing or {})},
            "store": {"url": store, "fsync": fsync},
        },
        source="bench",
    )


def phone(i: int) -> str:
    """A valid Chinese mobile number (E.164), distinct for i < 10**8."""
    return f"+86156{i % 10**8:08d}"


def code(i: int) -> str:
    return f"{i % 1000000:06d}"


def form(i: int) -> dict[str, str]:
    """The form notifykit's Veesing plugin posts for send ``i``."""
    return {
        "appId": APP_ID,
        "appKey": APP_KEY,
        "phone": phone(i)[3:],
        "templateId": TEMPLATE_ID,
        "variables": code(i),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


PLAUSIBLE_P50_MS = 5.0
"""A baseline whose p50 at concurrency 1 on loopback is above this is broken (a stalled
socket answers in about 40 ms): no ratio is reported against it."""


def plausible(name: str, p50_ms: float) -> str | None:
    """None when a baseline's sequential p50 is plausible, else why it is refused."""
    if p50_ms <= PLAUSIBLE_P50_MS:
        return None
    return (
        f"{name}: p50 {p50_ms:.2f} ms at concurrency 1 is above {PLAUSIBLE_P50_MS:g} ms on "
        "loopback; the baseline itself is stalled or the machine is overloaded, so no "
        "ratio is reported against it"
    )


def ratio(value: float, base: float, refused: str | None) -> float | None:
    """``value / base`` rounded, or None when the baseline was refused."""
    return None if refused is not None or not base else round(value / base, 2)


def emit(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print one JSON line for a benchmark and return it."""
    line = {"bench": name, **figures}
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return line


def quiet_logs() -> None:
    """No log output from the library during a benchmark (warnings would reach stderr
    through logging's last-resort handler, and cost time)."""
    logging.getLogger("notifykit").addHandler(logging.NullHandler())
    logging.getLogger("notifykit").propagate = False
