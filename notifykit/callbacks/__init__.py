"""The callback receiver: vendor pushes in, unified events out, stored before acknowledged."""

from __future__ import annotations

from notifykit.callbacks.processor import CallbackProcessor, CallbackResponse

__all__ = ["CallbackProcessor", "CallbackResponse"]
