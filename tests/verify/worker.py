"""One process of the cross-process verification tests (run as a script, not collected).

``python worker.py JOB`` where JOB is JSON: ``db`` (SQLite path), ``secret``, ``action``
(``check`` or ``start``), ``phone``, ``codes`` (checks to run at once), ``hold_send`` (start:
stop inside the vendor call until told). Protocol on stdin/stdout, one line each:

* the worker opens the store, prints ``ready`` and waits for ``go``;
* it then runs the job; with ``hold_send`` it prints ``sending`` once the vendor call has
  begun (the interval claimed in the store) and waits for ``release``;
* it prints one JSON line: the answers, and how many SMS its provider sent.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from notifykit import AsyncNotifier, Config, SmsMessage
from notifykit.default_plugins.memory import MemoryProvider
from notifykit.errors import VerificationRateLimited
from notifykit.models import SendReceipt
from notifykit.plugins import get_plugin_manager


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def hear(expected: str) -> None:
    line = (await asyncio.to_thread(sys.stdin.readline)).strip()
    if line != expected:
        raise SystemExit(f"expected {expected!r} on stdin, got {line!r}")


async def main(job: dict[str, Any]) -> None:
    config = Config.from_dict(
        {
            # memory, not the testing kit's fake: importing notifykit.testing imports pytest,
            # seconds per process on a loaded machine.
            "providers": {"memory": {"type": "memory"}},
            "store": {"url": f"sqlite:///{job['db']}", "timeout": 60},
            "verify": {"secret": job["secret"]},
        }
    )
    pm = get_plugin_manager(load_entrypoints=False)
    async with AsyncNotifier(config, plugin_manager=pm) as notifier:
        provider = notifier.providers["memory"]
        assert isinstance(provider, MemoryProvider)
        if job.get("hold_send"):
            send = provider.send

            async def held(message: SmsMessage) -> SendReceipt:
                say("sending")
                await hear("release")
                return await send(message)

            provider.send = held  # type: ignore[method-assign]
        say("ready")
        await hear("go")
        answers: list[dict[str, Any]] = []
        if job["action"] == "check":
            checks = await asyncio.gather(
                *(notifier.verify.check(job["phone"], code) for code in job["codes"])
            )
            answers = [{"status": c.status.value, "left": c.attempts_left} for c in checks]
        else:
            try:
                started = await notifier.verify.start(job["phone"])
                answers = [{"status": "started", "sends": started.sends}]
            except VerificationRateLimited as exc:
                answers = [{"status": "rate_limited", "retry_after": exc.retry_after}]
        say(json.dumps({"answers": answers, "sms": len(provider.outbox)}))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
