"""Whether a store is failing, as its users see it: each fault logged once, not per request.

A store fault that can pass (a read-only file, a lock held too long, a full disk, a lost
connection) fails every request while it lasts. :class:`StoreHealth` turns that stream of
failures into two log lines: ``store_failing`` (error level) with the reason when the fault
begins (or its reason changes), and ``store_recovered`` (warning level) with the number of
failed operations when an operation succeeds again.
"""

from __future__ import annotations

from notifykit.log import get_logger

__all__ = ["StoreHealth"]

log = get_logger("notifykit.store")


_TIMED_OUT = "store operation timed out (a lock held too long, or a slow disk)"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    # One fault, whichever of two equal bounds noticed it first: the caller's own timeout
    # (a bare TimeoutError) or the store's (StoreError "store operation timed out ...").
    if isinstance(exc, TimeoutError) or text.startswith("store operation timed out"):
        return _TIMED_OUT
    return text if text else type(exc).__name__


class StoreHealth:
    """The store's state as the last operation found it."""

    def __init__(self) -> None:
        self.failing: str | None = None
        """The reason of the fault in progress, or None while the store works."""
        self.failures = 0
        """Operations failed since the fault began."""

    def failed(self, exc: BaseException) -> None:
        """An operation failed with ``exc`` (a StoreError, or a timeout waiting for it)."""
        reason = _reason(exc)
        self.failures += 1
        if reason != self.failing:
            self.failing = reason
            log.error("store_failing", reason=reason)

    def succeeded(self) -> None:
        """An operation succeeded: the fault, if any, is over."""
        if self.failing is not None:
            log.warning("store_recovered", reason=self.failing, failed_operations=self.failures)
            self.failing = None
            self.failures = 0
