"""What the kit's pytest fixtures are built from, and the fixtures themselves.

The fixtures are defined in :mod:`_notifykit_pytest`, the cheap module the ``pytest11``
entry point names, and re-exported here (and from :mod:`notifykit.testing`) so that
``from notifykit.testing import notifier`` and an explicit
``pytest_plugins = ["notifykit.testing"]`` keep working. Override ``notifykit_config``
(a :class:`~notifykit.Config`, a dict as in the TOML file, or a path) or
``notifykit_plugin_manager`` in a conftest.py or a test module to change what ``notifier``
and ``async_notifier`` are built from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from _notifykit_pytest import (
    async_notifier,
    notifier,
    notifykit_config,
    notifykit_plugin_manager,
    sms_outbox,
)
from notifykit.config import Config, load_config

__all__ = [
    "DEFAULT_CONFIG",
    "ConfigLike",
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
