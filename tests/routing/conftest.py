"""Fixtures for the routing tests: memory providers, a memory store and a fake clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from notifykit.config import Config
from notifykit.default_plugins.memory import MemoryOptions, MemoryProvider
from notifykit.provider import ProviderContext
from notifykit.routing import Router
from notifykit.store.memory import MemoryStore

CN = "+8615612341090"
US = "+12025550143"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    def __init__(self, router: Router, providers: dict[str, MemoryProvider], store: MemoryStore):
        self.router = router
        self.providers = providers
        self.store = store

    def __getitem__(self, name: str) -> MemoryProvider:
        return self.providers[name]


MakeRouter = Callable[..., Harness]


def build(
    routing: dict[str, Any] | None = None,
    *,
    providers: dict[str, dict[str, Any]] | None = None,
    clock: Callable[[], float] | None = None,
    rng: random.Random | None = None,
    store: MemoryStore | None = None,
) -> Harness:
    """A router over memory providers (default ``primary`` and ``backup``)."""
    provider_options = providers if providers is not None else {"primary": {}, "backup": {}}
    routing = {"retry": {"initial_delay": 0.001, "max_delay": 0.005}, **(routing or {})}
    config = Config.from_dict(
        {
            "providers": {name: {"type": "memory", **o} for name, o in provider_options.items()},
            "routing": routing,
        }
    )
    built = {
        name: MemoryProvider(MemoryOptions(**o), context=ProviderContext(instance=name))
        for name, o in provider_options.items()
    }
    store = store if store is not None else MemoryStore()
    kwargs: dict[str, Any] = {"rng": rng}
    if clock is not None:
        kwargs["clock"] = clock
    return Harness(Router(config, built, store, **kwargs), built, store)


@pytest.fixture
def make_router() -> MakeRouter:
    return build


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
