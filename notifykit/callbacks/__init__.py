"""The old home of the callback receiver, kept so that existing imports keep working.

The inbox (parse, store, correlate, dispatch) is :mod:`notifykit.inbox`, part of the core;
the Starlette app is :mod:`notifykit.asgi`, an adapter nothing in the core imports. Old
paths: ``notifykit.callbacks.processor`` is :mod:`notifykit.inbox` itself (registered
below, as :mod:`os.path` is); ``notifykit.callbacks.app`` re-exports :mod:`notifykit.asgi`;
``create_app`` and ``CallbackReceiver`` are looked up here only when asked for, so that
importing this package does not load Starlette.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from notifykit import inbox as processor
from notifykit.inbox import CallbackProcessor, CallbackResponse, Subscriber

__all__ = ["CallbackProcessor", "CallbackReceiver", "CallbackResponse", "Subscriber", "create_app"]

sys.modules.setdefault(f"{__name__}.processor", processor)

_IN_ASGI = frozenset({"CallbackReceiver", "create_app"})


def __getattr__(name: str) -> Any:
    if name in _IN_ASGI:
        return getattr(importlib.import_module("notifykit.asgi"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
