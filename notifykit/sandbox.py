"""The base of vendor sandboxes: local stand-ins that plugins contribute through the
``register_sandboxes`` hook and ``notifykit sandbox <name>`` runs."""

from __future__ import annotations

import json
import re
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from notifykit.config import mask_url_password

__all__ = ["Sandbox", "SandboxSettings", "hide_callback_token", "toml_value", "unique_number"]

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


_CALLBACK_TOKEN = re.compile(r"(/callbacks/[^/?#]+/)[^/?#]+")


def hide_callback_token(url: str) -> str:
    """``url`` (a sandbox's ``--callback-url``) as a banner may show it: the token segment of a
    receiver path ``.../callbacks/<instance>/<token>`` replaced by ``<token>`` (the form
    ``notifykit serve`` prints) and any password by ``***`` (:func:`mask_url_password`). The token is
    the only thing keeping strangers out of a receiver (docs/callbacks.md), so it is never
    printed; a URL without one is returned with only its password masked."""
    url = mask_url_password(url)
    return _CALLBACK_TOKEN.sub(r"\1<token>", url, count=1)


def toml_value(value: str | int | float | bool) -> str:
    """``value`` as a TOML value (a string quoted and escaped), for
    :meth:`Sandbox.provider_config` snippets."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


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

    def provider_config(self, base_url: str, instance: str | None = None) -> str:
        """How to point a provider at this sandbox served at ``base_url``: a
        ``notifykit.toml`` snippet (TOML text) with the ``[providers.<instance>]`` table
        (``type``, the URL option, the credentials the sandbox accepts) and a
        ``[templates.verify_code.<instance>]`` entry it accepts, with ``#`` comments on
        where receipts and replies go. ``instance`` defaults to the sandbox's name.
        ``notifykit sandbox <name>`` prints it when it starts. Empty for a plugin that
        gives none."""
        return ""

    async def aclose(self) -> None:
        """Stop background work (pending pushes). Called when the server stops."""
