"""notifykit's pytest plugin: the fixtures of the testing kit (``pytest11`` entry point
``notifykit``).

Installing notifykit makes every pytest run on the machine import this module, whether or
not the project tests anything of notifykit's, so it imports nothing but pytest: notifykit
(pydantic, httpx, ...) is imported inside the fixtures, by the tests that use them. It lives
outside the ``notifykit`` package because importing any part of that package first imports
``notifykit`` itself (hypothesis ships ``_hypothesis_pytestplugin`` the same way).

Fixtures: ``sms_outbox``, ``notifier``, ``async_notifier``, and the two they are built
from, ``notifykit_config`` and ``notifykit_plugin_manager``. The helpers are in
:mod:`notifykit.testing` (docs/testing.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pluggy

    from notifykit.notifier import AsyncNotifier, Notifier
    from notifykit.testing.fixtures import ConfigLike
    from notifykit.testing.outbox import Outbox

__all__ = [
    "async_notifier",
    "notifier",
    "notifykit_config",
    "notifykit_plugin_manager",
    "sms_outbox",
]


@pytest.fixture
def sms_outbox() -> Iterator[Outbox]:
    """Every SMS sent during the test through memory (and fake) providers, in order."""
    from notifykit.testing.outbox import capture_sms

    with capture_sms() as outbox:
        yield outbox


@pytest.fixture
def notifykit_config() -> ConfigLike:
    """The configuration ``notifier`` and ``async_notifier`` use; override it."""
    from notifykit.testing.fixtures import DEFAULT_CONFIG

    return DEFAULT_CONFIG


@pytest.fixture
def notifykit_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager: built-in providers, installed plugins and ``fake``."""
    from notifykit.testing.fake import fake_plugin_manager

    return fake_plugin_manager(load_entrypoints=True)


@pytest.fixture
def notifier(
    notifykit_config: ConfigLike,
    notifykit_plugin_manager: pluggy.PluginManager,
    sms_outbox: Outbox,
) -> Iterator[Notifier]:
    """A synchronous :class:`Notifier` over ``notifykit_config``, closed after the test."""
    from notifykit.notifier import Notifier
    from notifykit.testing.fixtures import build_config

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
    from notifykit.notifier import AsyncNotifier
    from notifykit.testing.fixtures import build_config

    built = AsyncNotifier(build_config(notifykit_config), plugin_manager=notifykit_plugin_manager)
    sms_outbox.attach(built)
    async with built:
        yield built
