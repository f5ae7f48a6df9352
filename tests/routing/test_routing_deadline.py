"""The send deadline's shared timer: the same outcomes as asyncio.timeout_at, fewer timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from notifykit import errors
from notifykit.models import DeliveryStatus, SmsMessage
from notifykit.routing.deadline import DeadlineWatch

CN = "+8615612341090"
MakeRouter = Callable[..., Any]  # tests/routing/conftest.py's make_router

pytestmark = pytest.mark.anyio

MESSAGE = SmsMessage(to=CN, template="verify_code", params={"code": "1234"})


def messages(n: int) -> list[SmsMessage]:
    return [
        SmsMessage(to=f"+86156123{i:05d}", template="verify_code", params={"code": "1"})
        for i in range(n)
    ]


async def test_many_sends_share_one_timer(
    make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_router({"deadline": 30}, providers={"primary": {}})
    loop = asyncio.get_running_loop()
    timers: list[Any] = []
    real_call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        timers.append(callback)
        return real_call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    results = await asyncio.gather(*(h.router.send(m) for m in messages(200)))
    monkeypatch.undo()
    assert len(results) == 200
    assert len(timers) == 1  # asyncio.timeout_at per call: 200
    assert len(h.router._watch or ()) == 0  # every finished send left the watch


async def test_slow_sends_are_each_abandoned_at_their_own_deadline(make_router: MakeRouter) -> None:
    h = make_router({"deadline": 0.2}, providers={"primary": {"delay": 5}})
    started = time.perf_counter()

    async def send_after(delay: float, message: SmsMessage) -> float:
        await asyncio.sleep(delay)
        begun = time.perf_counter()
        with pytest.raises(errors.UnknownOutcome, match="deadline exceeded") as info:
            await h.router.send(message)
        assert [a.outcome for a in info.value.attempts] == ["failed"]
        return time.perf_counter() - begun

    waits = await asyncio.gather(*(send_after(0.05 * i, m) for i, m in enumerate(messages(4))))
    assert all(0.19 <= w < 0.6 for w in waits), waits
    assert time.perf_counter() - started < 1.5
    for record in await h.store.list_messages():
        assert record.status is DeliveryStatus.UNKNOWN


async def test_a_fast_send_after_a_slow_one_is_not_cut_short(make_router: MakeRouter) -> None:
    h = make_router({"deadline": 0.3}, providers={"primary": {"delay": 5}, "backup": {}})
    slow = asyncio.ensure_future(h.router.send(MESSAGE))
    await asyncio.sleep(0.2)
    # the next call outlives the slow one's deadline, not its own
    h["primary"].options = h["primary"].options.model_copy(update={"delay": 0.2})
    result = await h.router.send(messages(1)[0])
    assert result.provider == "primary"
    with pytest.raises(errors.UnknownOutcome):
        await slow


async def test_outside_cancellation_is_not_taken_for_the_deadline(make_router: MakeRouter) -> None:
    h = make_router({"deadline": 30}, providers={"primary": {"delay": 5}})
    task = asyncio.ensure_future(h.router.send(MESSAGE))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = await h.store.list_messages()
    assert record.status is DeliveryStatus.UNKNOWN
    assert "cancelled while waiting" in (record.attempts[0].error_message or "")


async def test_a_cancellation_on_top_of_the_deadline_wins(make_router: MakeRouter) -> None:
    # As under asyncio.timeout: when the task is also cancelled from outside, CancelledError
    # propagates instead of the deadline's TimeoutError.
    h = make_router({"deadline": 30}, providers={"primary": {"delay": 5}})
    task = asyncio.ensure_future(h.router.send(MESSAGE))
    await asyncio.sleep(0.05)
    watch = h.router._watch
    assert watch is not None
    (run,) = list(watch._runs)
    run.expire()  # the deadline's cancellation...
    task.cancel()  # ...and one from outside, before the task runs again
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelling() == 1  # only the outside request remains


async def test_the_deadline_alone_is_taken_back(make_router: MakeRouter) -> None:
    h = make_router({"deadline": 30}, providers={"primary": {"delay": 5}})
    outer = asyncio.current_task()
    assert outer is not None
    before = outer.cancelling()
    sending = asyncio.ensure_future(h.router.send(MESSAGE))
    await asyncio.sleep(0.05)
    watch = h.router._watch
    assert watch is not None
    (run,) = list(watch._runs)
    run.expire()
    with pytest.raises(errors.UnknownOutcome, match="deadline exceeded"):
        await sending
    assert sending.cancelling() == 0  # uncancelled, as asyncio.Timeout does
    assert outer.cancelling() == before


async def test_a_watch_stays_with_its_loop() -> None:
    loop = asyncio.get_running_loop()
    watch = DeadlineWatch(loop)
    assert watch.loop is loop and len(watch) == 0
