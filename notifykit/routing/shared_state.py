"""The shared state the router asks for breakers and the recipient guard: a port that
:mod:`notifykit.shared` implements (Redis), so that routing never imports it.

Without ``[shared_state]`` the router keeps its own in-process
:class:`~notifykit.routing.breaker.CircuitBreaker` per instance and the recipient guard
lives in the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from notifykit.routing.breaker import Admission
from notifykit.routing.policy import BreakerEffect

__all__ = ["SharedState"]


class SharedState(ABC):
    """Breakers and the recipient guard, shared by every instance naming the same server.

    Every method answers, whatever the server's state: when it cannot be reached the
    answer comes from the process-local fallback (the router's own breakers, the store's
    guard). No method raises for an unreachable server.
    """

    async def close(self) -> None:
        """Release connections."""

    @abstractmethod
    async def admit(self, instance: str) -> Admission | str:
        """An :class:`Admission` to call ``instance`` (``probe`` for the one caller let
        through after the cooldown, across all processes), or why it is skipped."""

    @abstractmethod
    async def record(
        self, instance: str, admission: Admission, effect: BreakerEffect, detail: str
    ) -> None:
        """Count how an admitted attempt went (``detail``: the error's class name)."""

    @abstractmethod
    def release(self, instance: str, admission: Admission) -> None:
        """Give up an admission without a verdict (the caller was cancelled); does not
        wait for the server."""

    @abstractmethod
    def is_closed(self, instance: str) -> bool:
        """Whether the breaker was closed at the last answer (no round trip)."""

    @abstractmethod
    def snapshot(self, instance: str) -> dict[str, Any]:
        """The breaker as last seen (state, consecutive_failures, reason, retry_in) plus
        ``shared_state``: where the answer came from."""

    @abstractmethod
    async def check_recipient(
        self, phone: str, interval: float, *, message_id: str | None = None
    ) -> float | None:
        """Claim ``phone`` for ``interval`` seconds, or the seconds left on the claim."""

    @abstractmethod
    async def release_recipient(self, phone: str, message_id: str) -> bool:
        """Give back the claim on ``phone`` (E.164) when ``message_id`` still holds it; a
        claim since taken by another message stays. Called by the recovery sweep for a
        send whose process died before any vendor call. True when a claim was given back;
        False when none was (another holder, none, or the server unreachable: a claim
        there then ends with its interval)."""
