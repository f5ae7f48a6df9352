"""The circuit breaker: open, half-open, close on a fake clock; account cooldown; per router."""

from __future__ import annotations

import asyncio

import pytest

from notifykit import AsyncNotifier, errors
from notifykit.config import Config
from notifykit.models import SmsMessage
from notifykit.routing import Admission, BreakerEffect, BreakerState, CircuitBreaker

pytestmark = pytest.mark.anyio

MESSAGE = SmsMessage(to="+8615612341090", template="verify_code", params={"code": "1"})
VENDOR = BreakerEffect.VENDOR_FAILURE


def breaker(clock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=threshold, cooldown=30, account_cooldown=300, clock=clock
    )


def fail(b: CircuitBreaker, times: int, effect: BreakerEffect = VENDOR) -> None:
    for _ in range(times):
        admission = b.admit()
        assert isinstance(admission, Admission)
        b.record(admission, effect, "ProviderUnavailable")


def test_opens_after_n_consecutive_failures(clock) -> None:
    b = breaker(clock)
    fail(b, 2)
    assert b.state is BreakerState.CLOSED
    b.record(Admission(), BreakerEffect.HEALTHY, "accepted")  # a success resets the count
    fail(b, 2)
    assert b.state is BreakerState.CLOSED
    fail(b, 1)
    assert b.state is BreakerState.OPEN
    reason = b.admit()
    assert isinstance(reason, str)
    assert "circuit open (3 consecutive failures, last: ProviderUnavailable)" in reason
    assert b.snapshot() == {
        "state": "open",
        "consecutive_failures": 3,
        "reason": "3 consecutive failures, last: ProviderUnavailable",
        "retry_in": 30.0,
    }


def test_half_open_lets_exactly_one_probe_through(clock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(29.9)
    assert isinstance(b.admit(), str)
    clock.advance(0.1)
    assert b.state is BreakerState.HALF_OPEN
    probe = b.admit()
    assert probe == Admission(probe=True)
    assert isinstance(b.admit(), str)  # a second caller while the probe is in flight
    assert "probe is in flight" in str(b.admit())
    b.record(probe, BreakerEffect.HEALTHY, "accepted")
    assert b.state is BreakerState.CLOSED
    assert b.snapshot()["consecutive_failures"] == 0
    assert b.admit() == Admission()


def test_failed_probe_reopens_for_a_new_cooldown(clock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(30)
    probe = b.admit()
    assert isinstance(probe, Admission) and probe.probe
    b.record(probe, VENDOR, "UnknownOutcome")
    assert b.state is BreakerState.OPEN
    assert b.snapshot()["retry_in"] == 30.0
    clock.advance(30)
    assert b.admit() == Admission(probe=True)


def test_released_probe_lets_the_next_caller_probe(clock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.advance(31)
    probe = b.admit()
    assert isinstance(probe, Admission)
    b.release(probe)
    assert b.admit() == Admission(probe=True)


def test_late_failure_does_not_extend_an_open_breaker(clock) -> None:
    b = breaker(clock, threshold=1)
    early = b.admit()
    fail(b, 1)
    clock.advance(10)
    assert isinstance(early, Admission)
    b.record(early, VENDOR, "ProviderError")
    assert b.snapshot()["retry_in"] == 20.0


def test_account_failure_takes_the_instance_out_for_its_own_cooldown(clock) -> None:
    b = breaker(clock, threshold=100)
    fail(b, 1, BreakerEffect.ACCOUNT_FAILURE)
    assert b.state is BreakerState.OPEN
    assert b.snapshot()["reason"] == "account unusable: ProviderUnavailable"
    clock.advance(299)
    assert isinstance(b.admit(), str)
    clock.advance(1)
    assert b.admit() == Admission(probe=True)


async def test_router_skips_an_open_provider_without_a_call(make_router, clock) -> None:
    h = make_router(
        {"breaker": {"failure_threshold": 2, "cooldown": 30}},
        clock=clock,
        providers={"primary": {"fail": "ProviderUnavailable"}, "backup": {}},
    )
    for _ in range(2):
        await h.router.send(MESSAGE)
    assert h["primary"].calls == 2
    assert h.router.health()["primary"]["state"] == "open"
    assert h.router.health()["backup"] == {
        "state": "closed",
        "consecutive_failures": 0,
        "reason": None,
        "retry_in": None,
    }
    result = await h.router.send(MESSAGE)
    assert h["primary"].calls == 2
    skipped = result.attempts[0]
    assert (skipped.provider, skipped.outcome) == ("primary", "skipped")
    assert skipped.error_message is not None and "circuit open" in skipped.error_message

    # After the cooldown one probe goes through; it fails, so the breaker opens again.
    clock.advance(30)
    assert h.router.health()["primary"]["state"] == "half_open"
    await h.router.send(MESSAGE)
    assert h["primary"].calls == 3
    assert h.router.health()["primary"]["state"] == "open"

    # The vendor recovers: the next probe closes it.
    clock.advance(30)
    h["primary"].fail_next(None)
    result = await h.router.send(MESSAGE)
    assert result.provider == "primary"
    assert h.router.health()["primary"]["state"] == "closed"


async def test_concurrent_sends_do_not_all_probe(make_router, clock) -> None:
    h = make_router(
        {"breaker": {"failure_threshold": 1, "cooldown": 5}},
        clock=clock,
        providers={"primary": {"delay": 0.02}, "backup": {}},
    )
    h["primary"].fail_next(errors.ProviderUnavailable)
    await h.router.send(MESSAGE)
    assert h.router.health()["primary"]["state"] == "open"
    clock.advance(5)
    results = await asyncio.gather(*(h.router.send(MESSAGE) for _ in range(20)))
    assert h["primary"].calls == 2  # the first failure and exactly one probe
    assert sum(r.provider == "primary" for r in results) == 1
    assert h.router.health()["primary"]["state"] == "closed"


async def test_recipient_errors_do_not_open_the_breaker(make_router, clock) -> None:
    h = make_router({"breaker": {"failure_threshold": 1}}, clock=clock)
    h["primary"].fail_next(errors.InvalidRecipient, times=3)
    for _ in range(3):
        with pytest.raises(errors.InvalidRecipient):
            await h.router.send(MESSAGE)
    assert h["primary"].calls == 3
    assert h.router.health()["primary"]["state"] == "closed"


async def test_account_failure_skips_the_instance(make_router, clock) -> None:
    h = make_router({"breaker": {"failure_threshold": 50, "account_cooldown": 60}}, clock=clock)
    h["primary"].fail_next(errors.InsufficientBalance)
    await h.router.send(MESSAGE)
    result = await h.router.send(MESSAGE)
    assert h["primary"].calls == 1
    assert result.attempts[0].outcome == "skipped"
    assert "account unusable: InsufficientBalance" in (result.attempts[0].error_message or "")
    clock.advance(60)
    assert (await h.router.send(MESSAGE)).provider == "primary"


async def test_all_open_is_all_providers_failed_without_calls(make_router, clock) -> None:
    h = make_router(
        {"breaker": {"failure_threshold": 1}},
        clock=clock,
        providers={"primary": {"fail": "ProviderError"}, "backup": {"fail": "ProviderError"}},
    )
    with pytest.raises(errors.AllProvidersFailed):
        await h.router.send(MESSAGE)
    with pytest.raises(errors.AllProvidersFailed) as info:
        await h.router.send(MESSAGE)
    assert [a.outcome for a in info.value.attempts] == ["skipped", "skipped"]
    assert h["primary"].calls == h["backup"].calls == 1


async def test_two_notifiers_never_share_a_breaker() -> None:
    config = Config.from_dict(
        {
            "providers": {"primary": {"type": "memory", "fail": "ProviderError"}},
            "routing": {"breaker": {"failure_threshold": 1}},
        }
    )
    async with AsyncNotifier(config) as first, AsyncNotifier(config) as second:
        with pytest.raises(errors.AllProvidersFailed):
            await first.send("+8615612341090", template="t")
        assert (await first.health())["primary"]["state"] == "open"
        assert (await second.health())["primary"]["state"] == "closed"
