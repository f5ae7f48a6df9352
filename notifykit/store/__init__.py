"""Message stores: ``memory://``, ``sqlite:///path`` and ``postgresql://…``, behind one
interface. The PostgreSQL backend is imported only when a URL names it."""

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
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from notifykit.store.postgres import PostgresStore
        except ModuleNotFoundError as exc:  # psycopg / psycopg_pool not installed
            raise ConfigError(
                f"store.url: {url.split(':', 1)[0]}:// needs `pip install notifykit[postgres]` "
                f"({exc.name} is missing)"
            ) from None
        return PostgresStore.from_config(config)
    raise ConfigError(
        f"store.url: unsupported store {url.split(':', 1)[0]!r} "
        "(use memory://, sqlite:///path or postgresql://…)"
    )
