"""Old path of :mod:`notifykit.asgi` (loads Starlette), kept so that existing imports keep
working."""

from __future__ import annotations

from notifykit.asgi import DRAIN_FACTOR, CallbackReceiver, create_app, drain_bound

__all__ = ["DRAIN_FACTOR", "CallbackReceiver", "create_app", "drain_bound"]
