"""Every branch of the failover policy, through the router with memory providers."""

from __future__ import annotations

import logging

import pytest

from notifykit import errors
from notifykit.models import DeliveryStatus, SmsMessage
from notifykit.routing import BreakerEffect, Decision, FailoverPolicy
from notifykit.routing.policy import breaker_effect

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
MESSAGE = SmsMessage(to=PHONE, template="verify_code", params={"code": "4821"})

FAILOVER = [
    errors.AuthenticationError,
    errors.InsufficientBalance,
    errors.QuotaExceeded,
    errors.TemplateError,
    errors.ProviderUnavailable,
    errors.ProviderError,
]


@pytest.mark.parametrize("error", FAILOVER, ids=lambda e: e.__name__)
async def test_failover_errors_move_to_the_next_provider(make_router, error) -> None:
    h = make_router()
    h["primary"].fail_next(error)
    result = await h.router.send(MESSAGE)
    assert result.provider == "backup"
    assert [(a.provider, a.outcome, a.error_type) for a in result.attempts] == [
        ("primary", "failed", error.__name__),
        ("backup", "accepted", None),
    ]
    record = await h.store.get_message(result.message_id)
    assert record is not None
    assert record.status is DeliveryStatus.ACCEPTED
    assert record.provider == "backup"
    assert record.provider_message_id == result.provider_message_id
    assert record.remaining_credits == h["backup"].credits
    assert [a.outcome for a in record.attempts] == ["failed", "accepted"]


@pytest.mark.parametrize(
    ("error", "routing", "status"),
    [
        (errors.InvalidRecipient, {}, DeliveryStatus.FAILED),
        (errors.RecipientRateLimited, {}, DeliveryStatus.FAILED),
        (errors.UnknownOutcome, {}, DeliveryStatus.UNKNOWN),
        # "failover" for the other one must not change these
        (errors.RecipientRateLimited, {"on_unknown_outcome": "failover"}, DeliveryStatus.FAILED),
        (errors.UnknownOutcome, {"on_recipient_rate_limited": "failover"}, DeliveryStatus.UNKNOWN),
        (errors.InvalidRecipient, {"on_unknown_outcome": "failover"}, DeliveryStatus.FAILED),
    ],
)
async def test_stopping_errors_raise_that_error(make_router, error, routing, status) -> None:
    h = make_router(routing)
    h["primary"].fail_next(error)
    with pytest.raises(error) as info:
        await h.router.send(MESSAGE)
    assert h["backup"].calls == 0
    assert [(a.provider, a.outcome) for a in info.value.attempts] == [("primary", "failed")]
    assert "primary: failed" in str(info.value)
    (record,) = await h.store.list_messages()
    assert record.status is status
    assert [s.status for s in record.history] == [DeliveryStatus.PENDING, status]
    assert len(record.attempts) == 1


async def test_invalid_message_from_a_provider_stops(make_router) -> None:
    h = make_router()
    h["primary"].fail_next(errors.InvalidMessage("code must be 4-8 digits"))  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidMessage, match="4-8 digits"):
        await h.router.send(MESSAGE)
    assert h["backup"].calls == 0


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (errors.RecipientRateLimited, "on_recipient_rate_limited"),
        (errors.UnknownOutcome, "on_unknown_outcome"),
    ],
)
async def test_configurable_errors_fail_over_when_told(make_router, error, key) -> None:
    h = make_router({key: "failover"})
    h["primary"].fail_next(error)
    result = await h.router.send(MESSAGE)
    assert result.provider == "backup"
    assert result.attempts[0].error_type == error.__name__


async def test_every_provider_failing_raises_all_providers_failed(make_router) -> None:
    h = make_router()
    h["primary"].fail_next(errors.InsufficientBalance)
    h["backup"].fail_next(errors.ProviderUnavailable)
    with pytest.raises(errors.AllProvidersFailed) as info:
        await h.router.send(MESSAGE)
    text = str(info.value)
    assert "primary: failed (InsufficientBalance" in text
    assert "backup: failed (ProviderUnavailable" in text
    assert [a.provider for a in info.value.attempts] == ["primary", "backup"]
    (record,) = await h.store.list_messages()
    assert record.status is DeliveryStatus.FAILED
    assert len(record.attempts) == 2


async def test_declined_provider_is_a_skipped_attempt(make_router) -> None:
    h = make_router(providers={"primary": {"countries": ["US"]}, "backup": {}})
    result = await h.router.send(MESSAGE)
    assert result.provider == "backup"
    skipped = result.attempts[0]
    assert (skipped.provider, skipped.outcome) == ("primary", "skipped")
    assert skipped.error_message == "destination CN not served (serves US)"
    assert h["primary"].calls == 0


async def test_all_declined_raises_invalid_message_naming_each_reason(make_router) -> None:
    h = make_router(providers={"primary": {"countries": ["US"]}, "backup": {"countries": ["GB"]}})
    with pytest.raises(errors.InvalidMessage) as info:
        await h.router.send(MESSAGE)
    assert "primary: destination CN not served (serves US)" in info.value.message
    assert "backup: destination CN not served (serves GB)" in info.value.message
    assert [a.outcome for a in info.value.attempts] == ["skipped", "skipped"]
    assert h["primary"].calls == h["backup"].calls == 0


async def test_declined_and_failed_is_all_providers_failed(make_router) -> None:
    h = make_router(providers={"primary": {"countries": ["US"]}, "backup": {}})
    h["backup"].fail_next(errors.QuotaExceeded)
    with pytest.raises(errors.AllProvidersFailed):
        await h.router.send(MESSAGE)


async def test_foreign_exception_from_a_plugin_is_translated(make_router) -> None:
    h = make_router()

    async def broken(message: SmsMessage) -> None:
        raise KeyError("secret-ish internals")

    h["primary"].send = broken  # type: ignore[method-assign,assignment]
    result = await h.router.send(MESSAGE)
    assert result.provider == "backup"
    assert result.attempts[0].error_type == "ProviderError"
    assert "secret-ish" not in (result.attempts[0].error_message or "")

    h["backup"].send = broken  # type: ignore[method-assign,assignment]
    with pytest.raises(errors.AllProvidersFailed) as info:
        await h.router.send(MESSAGE)
    assert all(a.error_type == "ProviderError" for a in info.value.attempts)


async def test_record_is_pending_before_the_first_attempt(make_router) -> None:
    h = make_router()
    seen = []
    original = h["primary"].send

    async def spy(message: SmsMessage):  # type: ignore[no-untyped-def]
        seen.extend(await h.store.list_messages())
        return await original(message)

    h["primary"].send = spy  # type: ignore[method-assign]
    result = await h.router.send(MESSAGE)
    (record,) = seen
    assert record.message_id == result.message_id
    assert record.status is DeliveryStatus.PENDING
    assert [s.status for s in record.history] == [DeliveryStatus.PENDING]


async def test_each_attempt_is_logged_without_the_number(make_router, caplog) -> None:
    h = make_router()
    h["primary"].fail_next(errors.ProviderUnavailable)
    with caplog.at_level(logging.DEBUG, logger="notifykit"):
        result = await h.router.send(MESSAGE)
    events = [r for r in caplog.records if getattr(r, "event", None) == "attempt"]
    assert [(e.provider, e.outcome, e.error_type) for e in events] == [  # type: ignore[attr-defined]
        ("primary", "failed", "ProviderUnavailable"),
        ("backup", "accepted", None),
    ]
    assert all(e.message_id == result.message_id for e in events)  # type: ignore[attr-defined]
    assert all(isinstance(e.duration_ms, float) for e in events)  # type: ignore[attr-defined]
    assert PHONE not in caplog.text
    assert "15612341090" not in "".join(str(r.__dict__) for r in caplog.records)


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (errors.InvalidMessage("x"), Decision.STOP),
        (errors.InvalidRecipient("x"), Decision.STOP),
        (errors.RecipientRateLimited("x"), Decision.STOP),
        (errors.UnknownOutcome("x"), Decision.STOP),
        (errors.AuthenticationError("x"), Decision.FAILOVER),
        (errors.InsufficientBalance("x"), Decision.FAILOVER),
        (errors.QuotaExceeded("x"), Decision.FAILOVER),
        (errors.TemplateError("x"), Decision.FAILOVER),
        (errors.ProviderUnavailable("x"), Decision.FAILOVER),
        (errors.ProviderError("x"), Decision.FAILOVER),
        (errors.NotSupported("x"), Decision.FAILOVER),
    ],
)
def test_default_policy_table(error, decision) -> None:
    assert FailoverPolicy().decide(error) is decision


@pytest.mark.parametrize(
    ("error", "effect"),
    [
        (None, BreakerEffect.HEALTHY),
        (errors.ProviderUnavailable("x"), BreakerEffect.VENDOR_FAILURE),
        (errors.UnknownOutcome("x"), BreakerEffect.VENDOR_FAILURE),
        (errors.ProviderError("x"), BreakerEffect.VENDOR_FAILURE),
        (errors.AuthenticationError("x"), BreakerEffect.ACCOUNT_FAILURE),
        (errors.InsufficientBalance("x"), BreakerEffect.ACCOUNT_FAILURE),
        (errors.QuotaExceeded("x"), BreakerEffect.ACCOUNT_FAILURE),
        (errors.InvalidRecipient("x"), BreakerEffect.HEALTHY),
        (errors.RecipientRateLimited("x"), BreakerEffect.HEALTHY),
        (errors.TemplateError("x"), BreakerEffect.HEALTHY),
    ],
)
def test_breaker_effect_table(error, effect) -> None:
    assert breaker_effect(error) is effect
