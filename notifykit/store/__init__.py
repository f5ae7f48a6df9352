"""Message stores: ``memory://`` and ``sqlite:///path``, behind one interface."""

from __future__ import annotations

from notifykit.config import StoreConfig
from notifykit.errors import ConfigError
from notifykit.store.base import InboxEntry, QuarantineEntry, Store
from notifykit.store.memory import MemoryStore
from notifykit.store.sqlite import SQLiteStore

__all__ = ["InboxEntry", "MemoryStore", "QuarantineEntry", "SQLiteStore", "Store", "open_store"]


def open_store(config: StoreConfig) -> Store:
    """The store a ``[store]`` section names (not yet opened: call ``await store.open()``)."""
    url = config.url
    if url == "memory://":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SQLiteStore(
            url.removeprefix("sqlite:///"), fsync=config.fsync, timeout=config.timeout
        )
    raise ConfigError(
        f"store.url: unsupported store {url.split(':', 1)[0]!r} (use memory:// or sqlite:///path)"
    )
