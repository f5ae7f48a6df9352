"""The async twin's methods are coroutines, as docs/quickstart.md says."""

from __future__ import annotations

import asyncio
import inspect

from notifykit import AsyncNotifier, Notifier
from notifykit.config import Config

PLAIN = {"subscribe", "from_config"}  # registers a callback; builds an instance


def test_every_shared_public_method_of_the_async_twin_is_a_coroutine() -> None:
    shared = {
        name
        for name, member in vars(Notifier).items()
        if callable(member) and not name.startswith("_")
    } & set(dir(AsyncNotifier))
    assert "health" in shared and "send" in shared
    for name in sorted(shared - PLAIN):
        assert inspect.iscoroutinefunction(getattr(AsyncNotifier, name)), name


def test_health_is_awaited_and_the_sync_twin_answers_the_same() -> None:
    config = Config.from_dict({"providers": {"p": {"type": "memory"}}})

    async def ask() -> dict[str, dict[str, object]]:
        async with AsyncNotifier(config) as notifier:
            return await notifier.health()

    health = asyncio.run(ask())
    assert health["p"]["state"] == "closed"
    with Notifier(config) as sync:
        assert sync.health() == health
