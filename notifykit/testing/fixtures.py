"""The pytest fixtures of the testing kit (registered through ``notifykit.testing``).

Override ``notifykit_config`` (a :class:`~notifykit.Config`, a dict as in the TOML file, or
a path) or ``notifykit_plugin_manager`` in a conftest.py or a test module to change what
``notifier`` and ``async_notifier`` are built from.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pluggy
import pytest

from notifykit.config import Config, load_config
from notifykit.notifier import AsyncNotifier, Notifier
from notifykit.testing.fake import fake_plugin_manager
from notifykit.testing.outbox import Outbox, capture_sms

__all__ = [
    "DEFAULT_CONFIG",
    "async_notifier",
    "build_config",
    "notifier",
    "notifykit_config",
    "notifykit_plugin_manager",
    "sms_outbox",
]

DEFAULT_CONFIG: Mapping[str, Any] = {
    "providers": {"memory": {"type": "memory"}},
    "store": {"url": "memory://"},
}
"""What ``notifykit_config`` returns unless overridden: one ``memory`` instance."""

ConfigLike = Config | Mapping[str, Any] | str | os.PathLike[str]


def build_config(value: ConfigLike) -> Config:
    """A :class:`Config` from a Config, a dict shaped like the TOML file, or a file path."""
    if isinstance(value, Config):
        return value
    if isinstance(value, Mapping):
        return Config.from_dict(value, source="notifykit_config fixture")
    return load_config(value)


@pytest.fixture
def sms_outbox() -> Iterator[Outbox]:
    """Every SMS sent during the test through memory (and fake) providers, in order."""
    with capture_sms() as outbox:
        yield outbox


@pytest.fixture
def notifykit_config() -> ConfigLike:
    """The configuration ``notifier`` and ``async_notifier`` use; override it."""
    return DEFAULT_CONFIG


@pytest.fixture
def notifykit_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager: built-in providers, installed plugins and ``fake``."""
    return fake_plugin_manager(load_entrypoints=True)


@pytest.fixture
def notifier(
    notifykit_config: ConfigLike,
    notifykit_plugin_manager: pluggy.PluginManager,
    sms_outbox: Outbox,
) -> Iterator[Notifier]:
    """A synchronous :class:`Notifier` over ``notifykit_config``, closed after the test."""
    built = Notifier(build_config(notifykit_config), plugin_manager=notifykit_plugin_manager)
    sms_outbox.attach(built)
    with built:
        yield built


@pytest.fixture
async def async_notifier(
    notifykit_config: ConfigLike,
    notifykit_plugin_manager: pluggy.PluginManager,
    sms_outbox: Outbox,
    anyio_backend: Any,
) -> AsyncIterator[AsyncNotifier]:
    """An :class:`AsyncNotifier` over ``notifykit_config``, opened on the test's event loop
    (anyio) and closed after the test."""
    built = AsyncNotifier(build_config(notifykit_config), plugin_manager=notifykit_plugin_manager)
    sms_outbox.attach(built)
    async with built:
        yield built
