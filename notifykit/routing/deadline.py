"""The send deadline's timer: one per router and event loop, not one per vendor call.

``asyncio.timeout_at`` around every vendor call schedules a timer per call (a handle on
the loop's heap, cancelled and left there until its time comes). Every send of a router
has the same deadline duration, so one timer for the soonest deadline of the sends in
flight does the same job: when it fires, each send past its deadline that is waiting for
a vendor has its task cancelled (its call then ends as ``TimeoutError``, exactly as under
``asyncio.timeout_at``; see :class:`~notifykit.routing.run.SendRun`), and the timer is set
again for the next soonest deadline.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifykit.routing.run import SendRun

__all__ = ["DeadlineWatch"]

# asyncio runs a timer up to its clock's resolution early: a deadline within it is due.
_RESOLUTION = time.get_clock_info("monotonic").resolution


class DeadlineWatch:
    """The sends in flight on one event loop, and one timer for the soonest deadline."""

    __slots__ = ("_runs", "_timer", "_timer_at", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._runs: dict[SendRun, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, run: SendRun) -> None:
        """Watch ``run`` until :meth:`discard` (or its deadline)."""
        self._runs[run] = None
        run.watch = self
        if self._timer is None or run.deadline < self._timer_at:
            self._schedule(run.deadline)

    def discard(self, run: SendRun) -> None:
        """Stop watching ``run`` (its send ended). The timer stays: when it fires for no
        send, it is set for the next soonest one (fewer timers than cancelling it here)."""
        self._runs.pop(run, None)
        run.watch = None

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        due = self.loop.time() + _RESOLUTION
        soonest = math.inf
        for run in list(self._runs):
            if run.deadline <= due:
                del self._runs[run]
                run.watch = None
                run.expire()
            elif run.deadline < soonest:
                soonest = run.deadline
        if soonest < math.inf:
            self._schedule(soonest)
