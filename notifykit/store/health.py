"""Whether a store is failing, as its users see it: each fault logged once, not per request.

A store fault that can pass (a read-only file, a lock held too long, a full disk, a lost
connection) fails every request while it lasts. :class:`StoreHealth` turns that stream of
failures into two log lines: ``store_failing`` (error level) with the reason when the fault
begins, and ``store_recovered`` (warning level) with the number of failed operations and
every reason seen meanwhile (a lost database connection shows several in turn: the
connection cut, then no connection to be had) when an operation succeeds again.
"""

from __future__ import annotations

from notifykit.log import get_logger

__all__ = ["MAX_REASONS", "StoreHealth"]

MAX_REASONS = 5
"""Distinct reasons one fault's ``store_recovered`` line lists at most."""

log = get_logger("notifykit.store")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text and isinstance(exc, TimeoutError):
        return "store operation timed out (a lock held too long, a slow disk, or no connection)"
    return text if text else type(exc).__name__


class StoreHealth:
    """The store's state as the last operation found it."""

    def __init__(self) -> None:
        self.failing: str | None = None
        """The reason of the fault in progress, or None while the store works."""
        self.failures = 0
        """Operations failed since the fault began."""
        self.reasons: list[str] = []
        """The distinct reasons seen since the fault began (at most :data:`MAX_REASONS`)."""

    def failed(self, exc: BaseException) -> None:
        """An operation failed with ``exc`` (a StoreError, or a timeout waiting for it)."""
        reason = _reason(exc)
        self.failures += 1
        if reason not in self.reasons and len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)
        if self.failing is None:
            log.error("store_failing", reason=reason)
        self.failing = reason

    def succeeded(self) -> None:
        """An operation succeeded: the fault, if any, is over."""
        if self.failing is not None:
            log.warning(
                "store_recovered",
                reason=self.reasons[0],
                reasons=list(self.reasons),
                failed_operations=self.failures,
            )
            self.failing = None
            self.failures = 0
            self.reasons = []
