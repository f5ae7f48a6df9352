"""A circuit breaker per provider instance, behind a small interface with an injectable clock.

States::

    closed ──N consecutive vendor failures──▶ open ──cooldown elapsed──▶ half_open
      ▲                                        ▲                            │
      └────────── the probe succeeds ──────────┼──── the probe fails ◀──────┘

An account-level failure (credentials, balance, quota) opens the breaker at once for
``account_cooldown``. While open, the router skips the instance without any request.
Once the cooldown has elapsed exactly one caller is admitted as the probe; everyone else is
still turned away until the probe reports. Every method runs without awaiting, so each is
atomic on the event loop and no lock is needed.

The state belongs to whoever builds the breakers (one :class:`~notifykit.routing.Router`,
that is one Notifier), never to the process.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from notifykit.config import BreakerConfig
from notifykit.routing.policy import BreakerEffect

__all__ = ["Admission", "Breaker", "BreakerState", "CircuitBreaker", "Clock"]

Clock = Callable[[], float]
"""Seconds on a monotonic scale (``time.monotonic`` unless a test injects its own)."""


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Admission:
    """Permission to call the provider; ``probe`` when it is the half-open breaker's probe."""

    probe: bool = False


class Breaker(Protocol):
    """What the router needs from a breaker (another backend could keep it in a store)."""

    def admit(self) -> Admission | str:
        """An :class:`Admission`, or the reason the provider is skipped."""

    def record(self, admission: Admission, effect: BreakerEffect, detail: str) -> None:
        """Report how an admitted attempt went (``detail`` names the error, no secrets)."""

    def release(self, admission: Admission) -> None:
        """Give up an admission without a verdict (the caller was cancelled)."""

    def is_closed(self) -> bool: ...

    def snapshot(self) -> dict[str, Any]:
        """State, consecutive failures, reason and seconds until retry, for health()."""


class CircuitBreaker:
    """The in-memory :class:`Breaker`."""

    __slots__ = (
        "_account_cooldown",
        "_clock",
        "_cooldown",
        "_failures",
        "_open_until",
        "_probing",
        "_reason",
        "_threshold",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        account_cooldown: float = 300.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._cooldown = cooldown
        self._account_cooldown = account_cooldown
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._reason: str | None = None
        self._probing = False

    @classmethod
    def from_config(cls, config: BreakerConfig, clock: Clock = time.monotonic) -> CircuitBreaker:
        return cls(
            failure_threshold=config.failure_threshold,
            cooldown=config.cooldown,
            account_cooldown=config.account_cooldown,
            clock=clock,
        )

    @property
    def state(self) -> BreakerState:
        if self._open_until is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() >= self._open_until:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def is_closed(self) -> bool:
        return self._open_until is None

    def admit(self) -> Admission | str:
        if self._open_until is None:
            return Admission()
        if self._probing:
            return f"circuit half-open, a probe is in flight ({self._reason})"
        left = self._open_until - self._clock()
        if left > 0:
            return f"circuit open ({self._reason}); next try in {left:.1f} s"
        self._probing = True
        return Admission(probe=True)

    def record(self, admission: Admission, effect: BreakerEffect, detail: str) -> None:
        if admission.probe:
            self._probing = False
        if effect is BreakerEffect.HEALTHY:
            self._failures = 0
            self._open_until = None
            self._reason = None
        elif effect is BreakerEffect.ACCOUNT_FAILURE:
            self._open(self._account_cooldown, f"account unusable: {detail}")
        else:
            self._failures += 1
            # An answer from a request admitted before the breaker opened does not extend it;
            # a failed probe, or the failure that reaches the threshold, (re)opens it.
            if admission.probe or (self._open_until is None and self._failures >= self._threshold):
                self._open(self._cooldown, f"{self._failures} consecutive failures, last: {detail}")

    def release(self, admission: Admission) -> None:
        if admission.probe:
            self._probing = False

    def _open(self, seconds: float, reason: str) -> None:
        self._open_until = self._clock() + seconds
        self._reason = reason

    def snapshot(self) -> dict[str, Any]:
        retry_in = None
        if self._open_until is not None:
            retry_in = round(max(0.0, self._open_until - self._clock()), 3)
        return {
            "state": self.state.value,
            "consecutive_failures": self._failures,
            "reason": self._reason,
            "retry_in": retry_in,
        }

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state.value} failures={self._failures}>"
