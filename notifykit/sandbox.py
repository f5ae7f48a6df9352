"""The base of vendor sandboxes: local stand-ins that plugins contribute through the
``register_sandboxes`` hook and ``notifykit sandbox <name>`` runs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Sandbox", "SandboxSettings"]


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
