"""Message stores behind one interface, picked by the scheme of ``[store] url``.

:data:`BACKENDS` maps each scheme to the class that serves it, named as ``"module:Class"``
and imported only when a URL with that scheme is opened: a SQLite user never imports a
PostgreSQL driver. Each backend parses its own URL (``Store.from_config``). Writing one:
see :mod:`notifykit.store.base`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

from notifykit.config import StoreConfig
from notifykit.errors import ConfigError
from notifykit.store.base import DEFAULT_LEASE, AnyEvent, InboxEntry, QuarantineEntry, Store

if TYPE_CHECKING:
    from notifykit.store.memory import MemoryStore
    from notifykit.store.sqlite import SQLiteStore

__all__ = [
    "BACKENDS",
    "DEFAULT_LEASE",
    "AnyEvent",
    "InboxEntry",
    "MemoryStore",
    "QuarantineEntry",
    "SQLiteStore",
    "Store",
    "StoreBackend",
    "open_store",
    "store_class",
]


class StoreBackend(NamedTuple):
    """Where the store class for one URL scheme lives, and what installs its driver."""

    target: str
    """``"module:Class"``; the class is a :class:`Store` with a ``from_config``."""
    extra: str | None = None
    """The ``notifykit[extra]`` that installs the backend's driver; None: nothing to install."""


BACKENDS: dict[str, StoreBackend] = {
    "memory": StoreBackend("notifykit.store.memory:MemoryStore"),
    "sqlite": StoreBackend("notifykit.store.sqlite:SQLiteStore"),
    "postgresql": StoreBackend("notifykit.store.postgres:PostgresStore", "postgres"),
    "postgres": StoreBackend("notifykit.store.postgres:PostgresStore", "postgres"),
}
"""URL scheme -> backend. One line per scheme; a backend may serve several schemes."""


def _scheme(url: str) -> str:
    scheme, colon, _ = url.partition(":")
    return scheme.lower() if colon else ""


def store_class(scheme: str) -> type[Store]:
    """The class serving ``scheme``, imported now.

    Raises ConfigError for an unknown scheme, and for a backend whose driver is not
    installed (naming the ``notifykit[extra]`` to install).
    """
    backend = BACKENDS.get(scheme)
    if not scheme:
        raise ConfigError("store.url: no scheme (use memory://, sqlite:///path, ...)")
    if backend is None:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise ConfigError(f"store.url: unsupported store {scheme!r} (known: {known})")
    module_name, _, class_name = backend.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if backend.extra is None or (exc.name or "notifykit").partition(".")[0] == "notifykit":
            raise  # not a missing driver: a broken installation or a wrong table entry
        raise ConfigError(
            f"store.url: {scheme}:// needs `pip install 'notifykit[{backend.extra}]'` "
            f"({exc.name} is not installed)"
        ) from exc
    found: type[Store] = getattr(module, class_name)
    return found


def open_store(config: StoreConfig) -> Store:
    """The store a ``[store]`` section names (not yet opened: call ``await store.open()``).

    Raises ConfigError for an unknown scheme, a URL the backend cannot read, or a backend
    whose driver is not installed.
    """
    return store_class(_scheme(config.url)).from_config(config)


def __getattr__(name: str) -> Any:
    # The backends' classes, importable from here as before, loaded only when asked for.
    if name == "MemoryStore":
        return store_class("memory")
    if name == "SQLiteStore":
        return store_class("sqlite")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
