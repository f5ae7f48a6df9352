"""One event loop on a thread of its own, running coroutines for the synchronous ``Notifier``.

A caller thread hands a coroutine over and blocks on a lock of its own until the loop has
run it; the result or the exception (its own type) comes back to that thread. Calls handed
over while the loop is busy wait in a queue that the loop takes in one go: the loop is woken
(``call_soon_threadsafe``, a write to its self-pipe) once per batch, not once per call, and
each caller sleeps on a plain lock rather than a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import threading
from collections.abc import Coroutine
from concurrent.futures import CancelledError
from typing import Any, Generic, TypeVar

from notifykit.errors import UsageError

__all__ = ["LoopThread"]

T = TypeVar("T")

_CLOSED = "the notifier is closed"


class _Call(Generic[T]):
    """One coroutine handed from a caller thread to the loop, and its outcome."""

    __slots__ = ("context", "coro", "done", "error", "result")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self.coro = coro
        # The caller's context variables, as asyncio.run_coroutine_threadsafe would carry.
        self.context = contextvars.copy_context()
        self.done = threading.Lock()
        self.done.acquire()  # released by the loop once ``result`` or ``error`` is set
        self.result: T | None = None
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        """End the call without running it."""
        self.coro.close()
        self.error = error
        self.done.release()


class LoopThread:
    """An event loop running forever on a daemon thread, until :meth:`stop`.

    :meth:`run` blocks the calling thread until a coroutine has run on the loop, from any
    number of threads at once. :meth:`stop` ends what still runs and stops the loop: a
    call waiting then, or made later, raises :class:`~notifykit.errors.UsageError`.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.closed = False
        self._queue: collections.deque[_Call[Any]] = collections.deque()
        self._woken = False  # a _start_queued is due on the loop
        self._running: set[asyncio.Task[None]] = set()  # touched on the loop only
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result, or raise its exception, here.

        Never call it from the loop's own thread (it would wait for itself forever).
        Raises :class:`UsageError` when the loop is stopped, or stops before ``coro`` ends.
        """
        call = _Call(coro)
        if self.closed:
            call.fail(UsageError(_CLOSED))
        else:
            self._queue.append(call)
            if not self._woken:
                # Two threads may both get here: the second wake-up finds nothing to start.
                self._woken = True
                try:
                    self.loop.call_soon_threadsafe(self._start_queued)
                except RuntimeError:  # the loop was closed meanwhile
                    self._woken = False
            if self.closed:
                # stop() may have swept the queue before this call joined it.
                self._fail_queued()
        call.done.acquire()
        error = call.error
        if error is None:
            return call.result  # type: ignore[return-value]
        call.error = None  # no cycle through the traceback's frames
        try:
            if isinstance(error, asyncio.CancelledError):
                if self.closed:
                    raise UsageError(_CLOSED) from None
                raise CancelledError() from None  # as a cancelled Future's result() does
            raise error
        finally:
            del error

    def _start_queued(self) -> None:
        self._woken = False  # before taking: a call queued from now on wakes the loop again
        queue = self._queue
        while True:
            try:
                call = queue.popleft()
            except IndexError:
                return
            if self.closed:
                call.fail(UsageError(_CLOSED))
                continue
            task = self.loop.create_task(self._finish(call), context=call.context)
            self._running.add(task)

    async def _finish(self, call: _Call[Any]) -> None:
        try:
            call.result = await call.coro
        except BaseException as exc:  # handed to the caller, whatever it is
            # KeyboardInterrupt and SystemExit too: they belong to the caller; raised here
            # they would end the loop, and every other caller would wait forever.
            call.error = exc
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._running.discard(task)
            call.done.release()

    def _fail_queued(self) -> None:
        queue = self._queue
        while True:
            try:
                call = queue.popleft()
            except IndexError:
                return
            call.fail(UsageError(_CLOSED))

    async def _cancel_running(self) -> None:
        running = [task for task in self._running if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)

    def stop(self) -> None:
        """Cancel the calls still running, stop the loop and its thread, close the loop.

        Calls waiting or made from now on raise :class:`UsageError`. Call it from any
        thread but the loop's (there it raises :class:`UsageError`).
        """
        if threading.current_thread() is self.thread:
            raise UsageError(
                "the event loop cannot stop itself from inside (it would wait forever)"
            )
        self.closed = True
        if self.thread.is_alive() and not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._cancel_running(), self.loop).result()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
        self.loop.close()
        self._fail_queued()
