"""The base of vendor sandboxes: local stand-ins that plugins contribute through the
``register_sandboxes`` hook and ``notifykit sandbox <name>`` runs."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Sandbox", "SandboxSettings", "unique_number"]

_last_number = 0
_number_lock = threading.Lock()


def unique_number() -> int:
    """A number no sandbox hands out twice, in this run or any later one: the microseconds
    since the Unix epoch, or one more than the last number when the clock has not moved on.

    For a sandbox's vendor ids (message ids, batch ids, reply sequence numbers), so that a
    second run against the same store never reuses an id of the first (a receipt would then be
    tied to the first run's message). Independent of a sandbox's ``seed``: a seed repeats the
    sandbox's draws (which messages fail, which get replies), never its ids. A later process
    starts above every number an earlier one handed out unless that one handed out more than
    one number per microsecond on average. Shape: a positive ``int`` of 16 digits (until 2286).
    """
    global _last_number
    with _number_lock:
        _last_number = max(_last_number + 1, time.time_ns() // 1000)
        return _last_number


class SandboxSettings(BaseModel):
    """Settings every sandbox has. Subclasses add their own fields; each field becomes a
    ``--kebab-case`` option of ``notifykit sandbox <name>`` (lists are comma-separated)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=0, ge=0, le=65535, description="Port to listen on (0: any free).")


class Sandbox(ABC):
    """A local stand-in for one vendor's API, as an ASGI application."""

    name: ClassVar[str]
    Settings: ClassVar[type[SandboxSettings]] = SandboxSettings

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings

    @abstractmethod
    def app(self) -> Any:
        """The ASGI application that answers as the vendor would."""

    async def aclose(self) -> None:
        """Stop background work (pending pushes). Called when the server stops."""
