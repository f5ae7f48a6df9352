"""One event loop on a thread of its own, running coroutines for the synchronous ``Notifier``.

A caller thread hands a coroutine over and blocks on a lock of its own until the loop has
run it; the result or the exception (its own type) comes back to that thread.

Every hand-over between threads costs a wake-up and a turn of the GIL, so the loop takes
calls and gives results back in batches, at the point where it is about to wait for I/O:
its selector (``asyncio.SelectorEventLoop`` with a :class:`_Selector`) starts the calls
queued since its last look and hands the calls that ended back, then waits. A caller
wakes the loop itself (``call_soon_threadsafe``, a write to its self-pipe) only when the
loop is asleep there, and only one caller per sleep. The calls that ended are handed back
when the loop is about to sleep (the GIL is then free) or has no other call to run, or
after a few looks (:data:`_ENDED_LOOKS`) of a loop that never sleeps, as a chain: the
loop wakes the first caller, and each caller woken wakes the next one as soon as it runs. Woken all at once, the callers would all
queue for the GIL behind the loop and each other, a sleep and a wake-up more per call; in
a chain, one thread at a time wants it. (The main thread, where a signal handler may
raise while it waits, is woken but passes nothing on, so that an interrupt there cannot
break the chain: whoever wakes it goes on to the next.) With an event-loop policy whose
loop is not the standard selector loop (uvloop), the loop is the policy's, woken once per
batch of calls, and each caller is woken as soon as its call ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import selectors
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import CancelledError
from typing import Any, Generic, TypeVar

from notifykit.errors import UsageError

__all__ = ["LoopThread"]

T = TypeVar("T")

_CLOSED = "the notifier is closed"

_ENDED_LOOKS = 16
"""How many looks in a row a busy loop (one that does not sleep) keeps ended calls before
it hands them back: while it runs other calls, their callers would only wait for the GIL
behind it. A loop that sleeps hands them back at once, and so does one that has no other
call of ours to run. (``bench/profile_send.py sync``: 1.9 voluntary context switches per
send when handing back after one look, 1.6 after 16; a loop that busy sleeps about once
every six sends, so the bound is seldom what hands them back.)"""


class _Call(Generic[T]):
    """One coroutine handed from a caller thread to the loop, and its outcome."""

    __slots__ = ("context", "coro", "done", "error", "relay", "result", "task")

    def __init__(self, coro: Coroutine[Any, Any, T], relay: bool) -> None:
        self.coro = coro
        self.relay = relay  # its caller wakes the next caller in the chain once woken
        self.task: asyncio.Task[None] | None = None
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


class _Selector(selectors.DefaultSelector):
    """The loop's selector: ``before`` maps the timeout of each wait for I/O (handing
    batches over first), ``after`` runs once the wait is over."""

    def __init__(
        self, before: Callable[[float | None], float | None], after: Callable[[], None]
    ) -> None:
        super().__init__()
        self._before = before
        self._after = after

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        timeout = self._before(timeout)
        try:
            return super().select(timeout)
        finally:
            self._after()


class LoopThread:
    """An event loop running forever on a daemon thread, until :meth:`stop`.

    :meth:`run` blocks the calling thread until a coroutine has run on the loop, from any
    number of threads at once. :meth:`stop` ends what still runs and stops the loop: a
    call waiting then, or made later, raises :class:`~notifykit.errors.UsageError`.
    """

    def __init__(self, name: str) -> None:
        self.closed = False
        self._queue: collections.deque[_Call[Any]] = collections.deque()
        self._woken = False  # a wake-up of the loop is due: no other caller need write
        self._running: set[asyncio.Task[None]] = set()  # touched on the loop only
        # Calls ended, their callers not yet woken, and how many looks in a row found some.
        self._ended: list[_Call[Any]] = []
        self._ended_looks = 0
        # Ended calls handed back, their callers still to be woken, each by the one before.
        self._to_wake: collections.deque[_Call[Any]] = collections.deque()
        self._main = threading.main_thread().ident
        loop = asyncio.new_event_loop()
        self._batched = type(loop) is asyncio.SelectorEventLoop  # the standard loop
        if self._batched:
            loop.close()
            loop = asyncio.SelectorEventLoop(_Selector(self._before_wait, self._after_wait))
        # True while the loop waits in its selector; always True for a loop without ours,
        # so that each batch of calls wakes it.
        self._asleep = not self._batched
        self.loop: asyncio.AbstractEventLoop = loop
        self.thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result, or raise its exception, here.

        Never call it from the loop's own thread (it would wait for itself forever).
        Raises :class:`UsageError` when the loop is stopped, or stops before ``coro`` ends.
        """
        call = _Call(coro, relay=threading.get_ident() != self._main)
        if self.closed:
            call.fail(UsageError(_CLOSED))
        else:
            self._queue.append(call)
            # The loop looks at the queue before it sleeps; once asleep, it is woken once.
            # (The GIL orders this read after the append, and the loop's look after
            # ``_asleep = True``: a call is never left in the queue of a sleeping loop.)
            if self._asleep and not self._woken:
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
        if call.relay:
            self._wake_next()
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
        for call in self._take_queued():
            if self.closed:
                call.fail(UsageError(_CLOSED))
                continue
            task = call.task = self.loop.create_task(self._finish(call), context=call.context)
            self._running.add(task)

    async def _finish(self, call: _Call[Any]) -> None:
        try:
            call.result = await call.coro
        except BaseException as exc:  # handed to the caller, whatever it is
            # KeyboardInterrupt and SystemExit too: they belong to the caller; raised here
            # they would end the loop, and every other caller would wait forever.
            call.error = exc
        finally:
            if call.task is not None:
                self._running.discard(call.task)
                call.task = None
            if self._batched:
                self._ended.append(call)  # its caller is woken by the selector
            else:
                call.done.release()

    def _before_wait(self, timeout: float | None) -> float | None:
        """On the loop, before it waits for I/O up to ``timeout``: start the calls queued,
        wake the callers whose calls ended; the timeout to wait with."""
        if self._queue:
            self._start_queued()
            timeout = 0  # the calls just started are ready to run
        if timeout is None or timeout > 0:
            self._asleep = True  # from here on, a call queued wakes the loop
            if self._queue:  # a call queued between the look above and now
                self._asleep = False
                self._start_queued()
                timeout = 0
        if self._ended:
            self._wake_ended(sleeping=self._asleep)
        return timeout

    def _after_wait(self) -> None:
        self._asleep = False

    def _wake_ended(self, sleeping: bool) -> None:
        """Hand the ended calls back if the loop is about to sleep, if no other call runs
        (none to wait for), or after _ENDED_LOOKS looks without a sleep."""
        if sleeping or not self._running or self._ended_looks >= _ENDED_LOOKS:
            ended, self._ended = self._ended, []
            self._ended_looks = 0
            self._to_wake.extend(ended)
            self._wake_next()
        else:
            self._ended_looks += 1

    def _wake_next(self) -> None:
        """Wake the caller of the next ended call handed back (from any thread): a caller
        that relays wakes the one after it; for one that does not, go on to the next."""
        to_wake = self._to_wake
        while to_wake:
            try:
                call = to_wake.popleft()
            except IndexError:  # another thread took the last one meanwhile
                return
            call.done.release()
            if call.relay:
                return

    def _fail_queued(self) -> None:
        for call in self._take_queued():
            call.fail(UsageError(_CLOSED))

    def _take_queued(self) -> Iterator[_Call[Any]]:
        """The calls queued, oldest first, each taken off the queue as it is yielded (a
        call queued meanwhile by another thread is taken too)."""
        queue = self._queue
        while True:
            try:
                call = queue.popleft()
            except IndexError:
                return
            yield call

    async def _cancel_running(self) -> None:
        running = [task for task in self._running if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
        self._wake_ended(sleeping=True)  # the loop stops next: no selector look to wait for

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
        self._wake_ended(sleeping=True)  # the loop's thread has ended: safe from here
        while self._to_wake:  # each caller woken relays too; this just does not wait for it
            self._wake_next()
        self._fail_queued()
