"""The callback receiver: vendor pushes in, unified events out, stored before acknowledged."""

from __future__ import annotations

from notifykit.callbacks.app import CallbackReceiver, create_app
from notifykit.callbacks.processor import CallbackProcessor, CallbackResponse, Subscriber

__all__ = ["CallbackProcessor", "CallbackReceiver", "CallbackResponse", "Subscriber", "create_app"]
