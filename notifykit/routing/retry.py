"""Retrying the same provider, with stamina: only where the request never reached the vendor.

A try is repeated only when it raised :class:`~notifykit.errors.ProviderUnavailable` with
``retryable`` set (refused connection, connect timeout, HTTP 429/502/503/504), and only while
the caller's ``may_retry()`` agrees (the breaker is still closed and the send's deadline can
absorb the longest backoff, so that no backoff sleep ever ends after the deadline).
Backoff is exponential from ``initial_delay``, doubled per try, capped at ``max_delay``, plus
a random jitter of up to ``initial_delay``; ``attempts`` counts every try, the first
included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import stamina

from notifykit.config import RetryConfig
from notifykit.routing.policy import is_retryable

__all__ = ["RetryPolicy"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    initial_delay: float = 0.05
    max_delay: float = 1.0

    @classmethod
    def from_config(cls, config: RetryConfig) -> RetryPolicy:
        return cls(
            attempts=config.attempts,
            initial_delay=config.initial_delay,
            max_delay=max(config.max_delay, config.initial_delay),
        )

    @property
    def longest_wait(self) -> float:
        """The longest backoff stamina can choose between two tries."""
        return self.max_delay

    async def call(
        self, try_once: Callable[[], Awaitable[T]], *, may_retry: Callable[[], bool]
    ) -> T:
        """Await ``try_once()``, trying again under this policy; the last error propagates."""

        def retry_on(exc: Exception) -> bool:
            return is_retryable(exc) and may_retry()

        caller = stamina.AsyncRetryingCaller(
            attempts=self.attempts,
            timeout=None,  # the router's deadline bounds the tries, through may_retry
            wait_initial=self.initial_delay,
            wait_max=self.max_delay,
            wait_jitter=self.initial_delay,
        )
        return await caller(retry_on, try_once)
