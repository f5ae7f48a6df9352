"""Retries of the same provider under scripted faults, and the send's deadline."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from notifykit import errors
from notifykit.models import DeliveryStatus, SmsMessage
from notifykit.routing import RetryPolicy

pytestmark = pytest.mark.anyio

MESSAGE = SmsMessage(to="+8615612341090", template="verify_code", params={"code": "1"})


def retryable(name: str = "primary") -> errors.ProviderUnavailable:
    return errors.ProviderUnavailable(f"{name}: could not connect", provider=name, retryable=True)


def outcomes(attempts) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(a.provider, a.outcome) for a in attempts]


async def test_retryable_fault_is_retried_on_the_same_provider(make_router) -> None:
    h = make_router()
    h["primary"].fail_next(retryable(), times=2)
    result = await h.router.send(MESSAGE)
    assert result.provider == "primary"
    assert h["primary"].calls == 3
    assert h["backup"].calls == 0
    assert outcomes(result.attempts) == [
        ("primary", "failed"),
        ("primary", "failed"),
        ("primary", "accepted"),
    ]
    record = await h.store.get_message(result.message_id)
    assert record is not None and len(record.attempts) == 3


@pytest.mark.parametrize("tries", [1, 2, 4])
async def test_tries_are_capped_then_failover(make_router, tries) -> None:
    h = make_router({"retry": {"attempts": tries, "initial_delay": 0.001, "max_delay": 0.002}})
    h["primary"].fail_next(retryable(), times=10)
    result = await h.router.send(MESSAGE)
    assert h["primary"].calls == tries
    assert outcomes(result.attempts) == [("primary", "failed")] * tries + [("backup", "accepted")]


@pytest.mark.parametrize(
    "error",
    [
        errors.ProviderUnavailable("primary: HTTP 500", provider="primary", retryable=False),
        errors.UnknownOutcome("primary: read timeout", provider="primary"),
        errors.ProviderError("primary: odd", provider="primary"),
        errors.QuotaExceeded("primary: daily cap", provider="primary"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_faults_that_may_have_reached_the_vendor_are_not_retried(make_router, error) -> None:
    h = make_router({"on_unknown_outcome": "failover"})
    h["primary"].fail_next(error, times=3)
    result = await h.router.send(MESSAGE)
    assert h["primary"].calls == 1
    assert result.provider == "backup"


async def test_retries_stop_when_the_breaker_opens(make_router) -> None:
    h = make_router(
        {
            "retry": {"attempts": 6, "initial_delay": 0.001, "max_delay": 0.002},
            "breaker": {"failure_threshold": 2},
        }
    )
    h["primary"].fail_next(retryable(), times=10)
    result = await h.router.send(MESSAGE)
    assert h["primary"].calls == 2
    assert result.provider == "backup"


async def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=4, initial_delay=0.02, max_delay=0.05)
    stamps: list[float] = []

    async def always() -> None:
        stamps.append(time.perf_counter())
        raise retryable()

    with pytest.raises(errors.ProviderUnavailable):
        await policy.call(always, may_retry=lambda: True)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 4
    assert gaps[0] >= 0.019  # initial_delay (+ jitter up to initial_delay)
    assert gaps[1] >= 0.039  # doubled
    assert all(g < 0.05 + 0.03 for g in gaps)  # capped at max_delay (+ scheduling slack)


async def test_deadline_abandons_a_slow_vendor_as_unknown_outcome(make_router) -> None:
    h = make_router({"deadline": 0.1}, providers={"primary": {"delay": 5}, "backup": {}})
    started = time.perf_counter()
    with pytest.raises(errors.UnknownOutcome, match="deadline exceeded") as info:
        await h.router.send(MESSAGE)
    assert time.perf_counter() - started < 1.0
    assert h["backup"].calls == 0
    assert outcomes(info.value.attempts) == [("primary", "failed")]
    (record,) = await h.store.list_messages()
    assert record.status is DeliveryStatus.UNKNOWN


async def test_expired_deadline_stops_with_the_last_error(make_router) -> None:
    h = make_router(
        {"deadline": 0.1, "on_unknown_outcome": "failover"},
        providers={"primary": {"delay": 5}, "backup": {}},
    )
    with pytest.raises(errors.UnknownOutcome):
        await h.router.send(MESSAGE)
    assert h["backup"].calls == 0  # failover allowed, but no time is left


async def test_no_retry_when_the_deadline_cannot_absorb_the_backoff(make_router) -> None:
    h = make_router(
        {"deadline": 0.2, "retry": {"attempts": 5, "initial_delay": 0.1, "max_delay": 0.3}}
    )
    h["primary"].fail_next(retryable(), times=5)
    result = await h.router.send(MESSAGE)
    assert h["primary"].calls == 1
    assert result.provider == "backup"


async def test_deadline_before_any_attempt_is_provider_unavailable(make_router) -> None:
    h = make_router()
    h.router.deadline = 0.0  # the configuration refuses 0: this is a deadline already spent
    with pytest.raises(errors.ProviderUnavailable, match="deadline exceeded") as info:
        await h.router.send(MESSAGE)
    assert info.value.attempts == []
    assert h["primary"].calls == 0
    (record,) = await h.store.list_messages()
    assert record.status is DeliveryStatus.FAILED


async def test_cancelled_send_is_recorded_as_unknown(make_router) -> None:
    h = make_router(providers={"primary": {"delay": 5}, "backup": {}})
    task = asyncio.ensure_future(h.router.send(MESSAGE))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = await h.store.list_messages()
    assert record.status is DeliveryStatus.UNKNOWN
    assert record.attempts[0].error_type == "UnknownOutcome"
    assert h.router.health()["primary"]["consecutive_failures"] == 0
