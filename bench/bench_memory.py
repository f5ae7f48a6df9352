"""Memory: peak RSS of a process holding 10,000 concurrent sends queued in AsyncNotifier
(the pool holds 100 connections, so nearly all of them wait), against the fast server."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from typing import Any

from bench.common import ROOT, code, emit, fast_server, phone, quiet_logs, scaled, veesing_config

SENDS = scaled(10_000)


def _status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MiB. Not ``ru_maxrss``:
    Linux carries that over from the parent across fork and exec."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: approximate


async def _child(url: str) -> dict[str, Any]:
    from notifykit import AsyncNotifier

    quiet_logs()
    async with AsyncNotifier(veesing_config({"vs": url})) as notifier:
        await notifier.send(phone(0), template="verify_code", params={"code": "1234"})
        before = _status_mib("VmRSS")
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.gather(
            *(
                notifier.send(phone(i), template="verify_code", params={"code": code(i)})
                for i in range(1, SENDS + 1)
            ),
            return_exceptions=True,
        )
        seconds = loop.time() - started
    failed = sum(isinstance(r, BaseException) for r in results)
    peak = _status_mib("VmHWM")
    return {
        "concurrent_sends": SENDS,
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(peak, 1),
        "peak_increase_mib": round(peak - before, 1),
        "kib_per_queued_send": round((peak - before) * 1024 / SENDS, 1),
        "seconds": round(seconds, 2),
        "failed": failed,
    }


def main() -> dict[str, Any]:
    server = fast_server("ok")
    try:
        out = subprocess.run(  # a process of its own, so that its peak is this benchmark's
            [sys.executable, "-m", "bench.bench_memory", "--child", server.url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    finally:
        server.stop()
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    emit("memory", figures)
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(asyncio.run(_child(sys.argv[2]))))
    else:
        main()
