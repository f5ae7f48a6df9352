"""One send in progress: its attempts, its deadline, and the structured log of each attempt."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from notifykit.errors import NotifyKitError
from notifykit.log import get_logger
from notifykit.models import Attempt, SmsMessage
from notifykit.routing.policy import may_have_been_accepted

if TYPE_CHECKING:
    from notifykit.routing.deadline import DeadlineWatch

__all__ = ["SendRun"]

log = get_logger("notifykit.routing")
_std_log = logging.getLogger("notifykit.routing")


@dataclass(slots=True, eq=False)
class SendRun:
    """The bookkeeping of one ``Router.send``; ``deadline`` is on the event loop's clock.

    While a :class:`~notifykit.routing.deadline.DeadlineWatch` watches it (``watch``), a
    vendor call is bracketed by :meth:`enter_call` and :meth:`leave_call`, which follow
    ``asyncio.Timeout``: the watch's :meth:`expire` cancels the task waiting for the vendor,
    and ``leave_call`` takes that cancellation back (``Task.uncancel``) and says whether the
    call must end as ``TimeoutError`` (no other cancellation was requested meanwhile).
    """

    message: SmsMessage
    message_id: str
    deadline: float
    attempts: list[Attempt] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)
    last_error: NotifyKitError | None = None
    maybe_accepted: bool = False
    """True once any attempt may have reached a vendor that took the message."""
    watch: DeadlineWatch | None = None
    calling: asyncio.Task[Any] | None = None
    """The task waiting for a vendor call, while it waits."""
    cancelling: int = 0
    expiring: bool = False
    call_expired: bool = False
    """True when the deadline passed during the current (or last) vendor call."""
    stored: bool = False
    """Whether the record is stored yet: the send's first write (``Store.start_send``)
    stores it with the attempts made so far, just before the first vendor call."""

    def enter_call(self) -> None:
        watch = self.watch
        # On the watch's loop (the running one): asking for it again costs a system call
        # (getpid) on CPython 3.11.
        task = asyncio.current_task(watch.loop) if watch is not None else asyncio.current_task()
        if task is None:
            raise RuntimeError("a send's deadline needs to run inside a task")
        self.calling = task
        self.cancelling = task.cancelling()
        self.call_expired = False

    def leave_call(self, cancelled: bool) -> bool:
        """End the vendor call (``cancelled``: it ended in CancelledError); True when that
        cancellation was the deadline's alone, to be raised as TimeoutError."""
        task, self.calling = self.calling, None
        if not self.expiring or task is None:
            return False
        self.expiring = False
        return task.uncancel() <= self.cancelling and cancelled

    def expire(self) -> None:
        """The deadline passed: cancel the vendor call in progress, if any."""
        if self.calling is not None and not self.expiring:
            self.calling.cancel()
            self.expiring = True
            self.call_expired = True

    def skipped(self, provider: str, reason: str, *, declined: bool = False) -> None:
        self._add(Attempt(provider=provider, outcome="skipped", error_message=reason))
        if declined:
            self.declined.append(f"{provider}: {reason}")

    def failed(
        self, provider: str, exc: NotifyKitError, started: float, started_at: datetime | None
    ) -> None:
        self.last_error = exc
        if may_have_been_accepted(exc):
            self.maybe_accepted = True
        self._add(
            Attempt(
                provider=provider,
                outcome="failed",
                error_type=type(exc).__name__,
                error_message=without_params(exc.message, self.message.params),
                duration_ms=_ms(started),
                started_at=started_at,
            )
        )

    def accepted(self, provider: str, started: float, started_at: datetime) -> None:
        self.maybe_accepted = True
        self._add(
            Attempt(
                provider=provider,
                outcome="accepted",
                duration_ms=_ms(started),
                started_at=started_at,
            )
        )

    @property
    def all_declined(self) -> bool:
        return bool(self.attempts) and len(self.declined) == len(self.attempts)

    def _add(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        failed = attempt.outcome == "failed"
        # Asked first: when the level is off (INFO, usually) nothing is built at all.
        if not _std_log.isEnabledFor(logging.WARNING if failed else logging.INFO):
            return
        log_method = log.warning if failed else log.info
        log_method(
            "attempt",
            message_id=self.message_id,
            provider=attempt.provider,
            outcome=attempt.outcome,
            error_type=attempt.error_type,
            duration_ms=round(attempt.duration_ms, 2),
        )


MIN_BLANKED_PARAM = 4
"""Shorter parameter values would blank ordinary words; verification codes have 4 or more."""


def without_params(text: str, params: Mapping[str, str]) -> str:
    """``text`` with every parameter value of the message (4 characters or more, as a whole
    token) replaced by ``***``.

    A vendor may echo the request in its error text, a verification code included; the
    attempt built from it is logged and stored, and must not repeat the code.
    """
    for value in sorted(params.values(), key=len, reverse=True):
        if len(value) >= MIN_BLANKED_PARAM and value in text:
            token = re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")
            text = token.sub("***", text)
    return text


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
