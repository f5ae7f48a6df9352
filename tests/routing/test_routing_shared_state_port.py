"""The router asks for shared state through the interface it owns
(``notifykit.routing.shared_state``); the composition root (the notifier) supplies the Redis
implementation, so routing never imports ``notifykit.shared`` (issue 17, import direction)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from notifykit.config import Config
from notifykit.default_plugins.memory import MemoryOptions, MemoryProvider
from notifykit.errors import ConfigError
from notifykit.provider import ProviderContext
from notifykit.routing import Router
from notifykit.routing.breaker import Breaker
from notifykit.routing.shared_state import SharedState
from notifykit.shared.base import SharedState as ReExported
from notifykit.store.memory import MemoryStore

CONFIG = {
    "providers": {"primary": {"type": "memory"}},
    "routing": {"recipient_min_interval": 30},
    "shared_state": {"url": "redis://127.0.0.1:1/0"},
}


def _providers() -> dict[str, MemoryProvider]:
    return {"primary": MemoryProvider(MemoryOptions(), context=ProviderContext(instance="primary"))}


def test_a_router_with_shared_state_configured_but_no_way_to_open_it_refuses() -> None:
    with pytest.raises(ConfigError, match=r"shared_state\.url is set: the router needs"):
        Router(Config.from_dict(CONFIG), _providers(), MemoryStore())


def test_the_router_opens_shared_state_through_the_factory_with_its_breakers() -> None:
    seen: list[Mapping[str, Breaker]] = []

    def factory(breakers: Mapping[str, Breaker]) -> SharedState | None:
        seen.append(breakers)
        return None

    router = Router(Config.from_dict(CONFIG), _providers(), MemoryStore(), shared_state=factory)
    assert len(seen) == 1 and seen[0] is router.breakers and set(seen[0]) == {"primary"}
    assert router.shared is None and router.guard.shared is None
    assert ReExported is SharedState
