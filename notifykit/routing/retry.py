"""Retrying the same provider, with tenacity: only where the request never reached the vendor.

A try is repeated only when it raised :class:`~notifykit.errors.ProviderUnavailable` with
``retryable`` set (refused connection, connect timeout, HTTP 429/502/503/504), and only while
the caller's ``may_retry()`` agrees (the breaker is still closed and the send's deadline can
absorb the longest backoff, so that no backoff sleep ever ends after the deadline).
Backoff is exponential from ``initial_delay``, doubled per try, capped at ``max_delay``, plus
a random jitter of up to ``initial_delay``; ``attempts`` counts every try, the first
included.

tenacity rather than stamina: stamina's retry instrumentation is process-global and, with
structlog installed but unconfigured, prints every scheduled retry to stdout, which a
library must not do to its host (it corrupted ``notifykit send --json``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

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
        """The longest backoff tenacity can choose between two tries (jitter included)."""
        return self.max_delay

    async def call(
        self, try_once: Callable[[], Awaitable[T]], *, may_retry: Callable[[], bool]
    ) -> T:
        """Await ``try_once()``, trying again under this policy; the last error propagates.

        The first try runs bare: tenacity's machinery is built only once a first try has
        failed in a way that may be retried (the send path pays nothing for it otherwise).
        """

        try:
            return await try_once()
        except Exception as exc:
            return await self.after_first(exc, try_once, may_retry=may_retry)

    async def after_first(
        self,
        failed: Exception,
        try_once: Callable[[], Awaitable[T]],
        *,
        may_retry: Callable[[], bool],
    ) -> T:
        """Go on from a first try that raised ``failed`` (run bare by the caller, with no
        wrapper coroutine on the success path): raise it when it may not be retried, else
        retry as :meth:`call` would."""

        def retry_on(exc: BaseException) -> bool:
            return isinstance(exc, Exception) and is_retryable(exc) and may_retry()

        if self.attempts <= 1 or not retry_on(failed):
            raise failed
        first: Exception | None = failed

        async def replay_then_try() -> T:
            # tenacity's first attempt is the try that already failed: the same count,
            # the same backoff before the second try.
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return await try_once()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            # the router's deadline bounds the tries, through may_retry
            wait=wait_exponential_jitter(
                multiplier=self.initial_delay,
                max=self.max_delay,
                jitter=self.initial_delay,
            ),
            retry=retry_if_exception(retry_on),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await replay_then_try()
            if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
                return result
        raise AssertionError("tenacity stopped without an outcome")  # pragma: no cover
