"""Helpers shared by the benchmarks: child processes, configurations, statistics."""

from __future__ import annotations

import json
import logging
import os
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
APP_ID = "bench-app"
APP_KEY = "bench-app-key-not-a-secret"
TEMPLATE_ID = "540"


class Child:
    """A Python child process whose first line names its port (``PORT <n>``, or
    ``notifykit serve``'s banner); killed on ``stop()`` unless asked to end gracefully."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.startswith("PORT "):
            self.port = int(line.split()[1])
        elif line.startswith("notifykit receiver on http://127.0.0.1:"):
            self.port = int(line.split()[3].rsplit(":", 1)[1])
        else:
            self.process.kill()
            err = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"child {args} did not start: {line!r} {err}")
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


@contextmanager
def child(*args: str, env: dict[str, str] | None = None) -> Iterator[Child]:
    started = Child(*args, env=env)
    try:
        yield started
    finally:
        started.stop()


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
