"""LoopThread: the synchronous Notifier's event loop, running coroutines for other threads.

Thread joins and event waits carry a generous bound only so that a regression fails the
test instead of hanging the suite; nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import gc
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import CancelledError
from typing import Any

import pytest

from notifykit import Config, Notifier
from notifykit.errors import InvalidMessage, UsageError
from notifykit.loop_thread import LoopThread
from notifykit.plugins import get_plugin_manager

HANG = 10  # seconds: only a guard against a hang


class OtherLoop(asyncio.SelectorEventLoop):
    """A loop of an event-loop policy's own (as uvloop's is): LoopThread keeps it."""


class OtherLoopPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return OtherLoop()


@pytest.fixture(params=["standard", "policy"])
def runner(request: pytest.FixtureRequest) -> Iterator[LoopThread]:
    """A LoopThread on the standard loop (batches handed over by its selector), and one on
    an event-loop policy's loop (woken once per batch, callers woken at once)."""
    if request.param == "standard":
        runner = LoopThread("test-loop")
    else:
        before = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(OtherLoopPolicy())
        try:
            runner = LoopThread("test-loop")
        finally:
            asyncio.set_event_loop_policy(before)
        assert type(runner.loop) is OtherLoop
    yield runner
    if not runner.closed:
        runner.stop()


def count_wakes(runner: LoopThread) -> list[Any]:
    """Record each ``call_soon_threadsafe`` (a write to the loop's self-pipe)."""
    wakes: list[Any] = []
    original = runner.loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
        wakes.append(callback)
        return original(callback, *args, **kwargs)

    runner.loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
    return wakes


class Blocked:
    """Holds the loop's thread inside a callback until ``release()``."""

    def __init__(self, runner: LoopThread) -> None:
        self.inside = threading.Event()
        self._go = threading.Event()
        runner.loop.call_soon_threadsafe(self._hold)
        assert self.inside.wait(HANG)

    def _hold(self) -> None:
        self.inside.set()
        self._go.wait(HANG)

    def release(self) -> None:
        self._go.set()


def in_threads(count: int, fn: Any) -> list[Any]:
    """``fn(i)`` in ``count`` threads at once: each one's result or exception."""
    outcomes: list[Any] = [None] * count

    def work(i: int) -> None:
        try:
            outcomes[i] = fn(i)
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG)
        assert not thread.is_alive()
    return outcomes


async def on_loop_thread(value: int) -> tuple[int, int]:
    await asyncio.sleep(0)
    return value, threading.get_ident()


def test_results_come_back_to_each_caller_from_one_loop_thread(runner: LoopThread) -> None:
    outcomes = in_threads(8, lambda i: [runner.run(on_loop_thread(i * 100 + j)) for j in range(50)])
    assert [[value for value, _ in results] for results in outcomes] == [
        [i * 100 + j for j in range(50)] for i in range(8)
    ]
    assert {thread for results in outcomes for _, thread in results} == {runner.thread.ident}


def test_exceptions_reach_the_caller_with_their_own_type(runner: LoopThread) -> None:
    async def refuse() -> None:
        await asyncio.sleep(0)
        raise InvalidMessage("no such number")

    with pytest.raises(InvalidMessage, match="no such number"):
        runner.run(refuse())
    assert runner.run(on_loop_thread(1))[0] == 1


def test_keyboard_interrupt_on_the_loop_reaches_the_caller_and_the_loop_goes_on(
    runner: LoopThread,
) -> None:
    async def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(interrupted())
    assert runner.thread.is_alive()
    assert runner.run(on_loop_thread(2))[0] == 2


def test_a_coroutine_cancelling_itself_is_a_cancelled_future_for_the_caller(
    runner: LoopThread,
) -> None:
    async def cancelled() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    with pytest.raises(CancelledError):
        runner.run(cancelled())


def test_the_callers_context_variables_are_seen_on_the_loop(runner: LoopThread) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

    async def read() -> str:
        value = request_id.get()
        request_id.set("changed on the loop")
        return value

    def call(i: int) -> tuple[str, str]:
        request_id.set(f"request-{i}")
        return runner.run(read()), request_id.get()

    assert in_threads(4, call) == [(f"request-{i}", f"request-{i}") for i in range(4)]


def test_calls_queued_while_the_loop_is_busy_wake_it_once_at_most(runner: LoopThread) -> None:
    blocked = Blocked(runner)
    wakes = count_wakes(runner)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(runner.run(on_loop_thread(i))))
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    # The loop is held, so all six calls wait in the queue.
    while len(runner._queue) < 6:
        assert all(thread.is_alive() for thread in threads)
        threading.Event().wait(0.001)
    blocked.release()
    for thread in threads:
        thread.join(HANG)
    assert sorted(value for value, _ in results) == list(range(6))
    # The standard loop takes them before it next sleeps, unasked; a policy's loop is
    # woken once for the batch.
    assert len(wakes) == (0 if type(runner.loop) is asyncio.SelectorEventLoop else 1)


def test_a_sleeping_loop_is_woken_by_a_call(runner: LoopThread) -> None:
    wakes = count_wakes(runner)
    for i in range(3):  # one after the other: the loop sleeps between them
        assert runner.run(on_loop_thread(i))[0] == i
    assert len(wakes) == 3


def test_a_loop_that_never_sleeps_still_hands_results_back(runner: LoopThread) -> None:
    spinning = True

    async def spin() -> None:  # always ready: the loop's selector is never asked to wait
        while spinning:
            await asyncio.sleep(0)

    spinner = asyncio.run_coroutine_threadsafe(spin(), runner.loop)
    try:
        assert in_threads(4, lambda i: runner.run(on_loop_thread(i))[0]) == [0, 1, 2, 3]
    finally:
        spinning = False
        spinner.result(HANG)


def test_stop_cancels_running_calls_and_they_raise_usage_error(runner: LoopThread) -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    outcome: list[BaseException] = []
    caller = threading.Thread(
        target=lambda: outcome.extend(in_threads(1, lambda _: runner.run(forever())))
    )
    caller.start()
    assert started.wait(HANG)
    runner.stop()
    caller.join(HANG)
    assert cancelled.is_set()
    assert len(outcome) == 1 and isinstance(outcome[0], UsageError)
    assert "closed" in str(outcome[0])
    assert not runner.thread.is_alive() and runner.loop.is_closed()


def test_calls_queued_when_the_loop_stops_raise_usage_error(runner: LoopThread) -> None:
    blocked = Blocked(runner)
    outcomes: list[Any] = []
    waiting = threading.Thread(
        target=lambda: outcomes.extend(in_threads(3, lambda i: runner.run(on_loop_thread(i))))
    )
    waiting.start()
    while len(runner._queue) < 3:
        threading.Event().wait(0.001)
    stopper = threading.Thread(target=runner.stop)
    stopper.start()
    while not runner.closed:
        threading.Event().wait(0.001)
    blocked.release()
    stopper.join(HANG)
    waiting.join(HANG)
    assert len(outcomes) == 3 and all(isinstance(o, UsageError) for o in outcomes), outcomes


def test_after_stop_a_call_is_a_usage_error_and_its_coroutine_is_closed(
    runner: LoopThread,
) -> None:
    runner.stop()
    coro = on_loop_thread(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be one
        with pytest.raises(UsageError, match="closed"):
            runner.run(coro)
        del coro
        gc.collect()


def test_the_loop_cannot_stop_itself(runner: LoopThread) -> None:
    async def stop_from_inside() -> None:
        runner.stop()

    with pytest.raises(UsageError, match="from inside"):
        runner.run(stop_from_inside())
    assert not runner.closed and runner.run(on_loop_thread(3))[0] == 3


def test_a_notifier_closed_from_its_own_loop_refuses_and_stays_open() -> None:
    config = Config.from_dict({"providers": {"primary": {"type": "memory"}}})
    with Notifier(config, plugin_manager=get_plugin_manager()) as notifier:

        async def close_from_inside() -> None:
            notifier.close()

        with pytest.raises(UsageError, match="own event loop"):
            notifier._runner.run(close_from_inside())
        assert notifier.send("+8615612341090", template="t").provider == "primary"
    with pytest.raises(UsageError, match="closed"):
        notifier.send("+8615612341090", template="t")


def test_a_thread_made_after_close_is_not_taken_for_the_loops_own() -> None:
    """A new thread may get the ended loop thread's identifier: close() there is a no-op
    and a call there says closed, not 'its own event loop'."""
    config = Config.from_dict({"providers": {"primary": {"type": "memory"}}})
    notifier = Notifier(config, plugin_manager=get_plugin_manager())
    notifier.close()
    outcomes = [
        in_threads(1, lambda _: notifier.close())[0]
        for _ in range(10)  # one thread at a time: each may reuse the last one's identifier
    ]
    assert outcomes == [None] * 10
    errors = [in_threads(1, lambda _: notifier.health())[0] for _ in range(3)]
    assert all(isinstance(e, UsageError) and "closed" in str(e) for e in errors), errors


class RecordingDeque(collections.deque[Any]):
    """LoopThread's chain of callers to wake, recording which thread took each one."""

    def __init__(self) -> None:
        super().__init__()
        self.taken_by: list[int] = []

    def popleft(self) -> Any:
        call = super().popleft()
        self.taken_by.append(threading.get_ident())
        return call


def test_calls_ending_together_are_handed_back_as_a_chain() -> None:
    """The loop wakes one caller; each caller woken wakes the next, so that one thread
    at a time wants the GIL."""
    runner = LoopThread("test-loop")
    try:
        chain = runner._to_wake = RecordingDeque()
        blocked = Blocked(runner)
        outcomes: list[Any] = []
        waiting = threading.Thread(
            target=lambda: outcomes.extend(in_threads(6, lambda i: runner.run(on_loop_thread(i))))
        )
        waiting.start()
        while len(runner._queue) < 6:  # all six start together, so they end together
            threading.Event().wait(0.001)
        blocked.release()
        waiting.join(HANG)
        assert sorted(value for value, _ in outcomes) == list(range(6))
        # Six wake-ups: one by the loop's thread, the other five by five callers.
        assert len(chain.taken_by) == 6
        assert chain.taken_by.count(runner.thread.ident) == 1
        assert len(set(chain.taken_by) - {runner.thread.ident}) == 5
    finally:
        runner.stop()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals (pthread_kill)")
def test_an_interrupted_main_thread_does_not_hold_up_the_callers_behind_it(
    runner: LoopThread,
) -> None:
    """A signal handler raising in the main thread while it waits leaves its call behind
    unwatched; the callers whose calls end with it are woken all the same."""

    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    assert threading.current_thread() is threading.main_thread()
    blocked = Blocked(runner)
    before = signal.signal(signal.SIGUSR1, interrupt)
    try:

        def interrupt_once_queued() -> None:
            while not runner._queue:
                threading.Event().wait(0.001)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

        interrupter = threading.Thread(target=interrupt_once_queued)
        interrupter.start()
        with pytest.raises(Interrupted):
            runner.run(on_loop_thread(-1))  # first in the queue: first to end, first woken
        interrupter.join(HANG)
    finally:
        signal.signal(signal.SIGUSR1, before)
    outcomes: list[Any] = []
    waiting = threading.Thread(
        target=lambda: outcomes.extend(in_threads(3, lambda i: runner.run(on_loop_thread(i))))
    )
    waiting.start()
    while len(runner._queue) < 4:
        threading.Event().wait(0.001)
    blocked.release()
    waiting.join(HANG)
    assert sorted(value for value, _ in outcomes) == [0, 1, 2]


def test_a_busy_loop_hands_results_back_while_other_calls_still_run(
    runner: LoopThread,
) -> None:
    """A loop that never sleeps and still runs a call hands the ended ones back anyway."""
    spinning = True
    release = asyncio.Event()

    async def spin() -> None:  # always ready: the loop's selector is never asked to wait
        while spinning:
            await asyncio.sleep(0)

    async def until_released() -> str:
        await release.wait()
        return "released"

    spinner = asyncio.run_coroutine_threadsafe(spin(), runner.loop)
    long_call: list[Any] = []
    holder = threading.Thread(target=lambda: long_call.append(runner.run(until_released())))
    holder.start()
    try:
        while not runner._running:
            threading.Event().wait(0.001)
        assert in_threads(4, lambda i: runner.run(on_loop_thread(i))[0]) == [0, 1, 2, 3]
        assert holder.is_alive()  # the long call was still running meanwhile
    finally:
        runner.loop.call_soon_threadsafe(release.set)
        holder.join(HANG)
        spinning = False
        spinner.result(HANG)
    assert long_call == ["released"]
