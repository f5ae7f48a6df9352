"""One send in progress: its attempts, its deadline, and the structured log of each attempt."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from notifykit.errors import NotifyKitError
from notifykit.log import get_logger
from notifykit.models import Attempt, SmsMessage
from notifykit.routing.policy import may_have_been_accepted

__all__ = ["SendRun"]

log = get_logger("notifykit.routing")


@dataclass(slots=True)
class SendRun:
    """The bookkeeping of one ``Router.send``; ``deadline`` is on the event loop's clock."""

    message: SmsMessage
    message_id: str
    deadline: float
    attempts: list[Attempt] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)
    last_error: NotifyKitError | None = None
    maybe_accepted: bool = False
    """True once any attempt may have reached a vendor that took the message."""

    def skipped(self, provider: str, reason: str, *, declined: bool = False) -> None:
        self._add(Attempt(provider=provider, outcome="skipped", error_message=reason))
        if declined:
            self.declined.append(f"{provider}: {reason}")

    def failed(self, provider: str, exc: NotifyKitError, started: float) -> None:
        self.last_error = exc
        if may_have_been_accepted(exc):
            self.maybe_accepted = True
        self._add(
            Attempt(
                provider=provider,
                outcome="failed",
                error_type=type(exc).__name__,
                error_message=exc.message,
                duration_ms=_ms(started),
            )
        )

    def accepted(self, provider: str, started: float) -> None:
        self.maybe_accepted = True
        self._add(Attempt(provider=provider, outcome="accepted", duration_ms=_ms(started)))

    @property
    def all_declined(self) -> bool:
        return bool(self.attempts) and len(self.declined) == len(self.attempts)

    def _add(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        log_method = log.warning if attempt.outcome == "failed" else log.info
        log_method(
            "attempt",
            message_id=self.message_id,
            provider=attempt.provider,
            outcome=attempt.outcome,
            error_type=attempt.error_type,
            duration_ms=round(attempt.duration_ms, 2),
        )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
