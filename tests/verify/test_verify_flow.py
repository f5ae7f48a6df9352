"""Every status transition of a verification, on a fake clock (docs/verify.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifykit import VerificationCheckStatus, VerificationStatus
from notifykit.errors import (
    AllProvidersFailed,
    ConfigError,
    InsufficientBalance,
    InvalidMessage,
    InvalidRecipient,
    ProviderUnavailable,
    UnknownOutcome,
    VerificationRateLimited,
)
from notifykit.testing import Outbox, accept, fail, unknown

from .conftest import OTHER, PHONE, T0, FakeClock, MakeNotifier, fake_of

pytestmark = pytest.mark.anyio

APPROVED = VerificationCheckStatus.APPROVED
INCORRECT = VerificationCheckStatus.INCORRECT
EXPIRED = VerificationCheckStatus.EXPIRED
MAX_ATTEMPTS = VerificationCheckStatus.MAX_ATTEMPTS
NOT_FOUND = VerificationCheckStatus.NOT_FOUND


def wrong(code: str) -> str:
    """A code of the same length that is not ``code``."""
    return "".join(str((int(d) + 1) % 10) for d in code)


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_start_sends_a_code_and_returns_the_verification(
    make: MakeNotifier, outbox: Outbox
) -> None:
    notifier = make()
    started = await notifier.verify.start("+86 156 1234 1090", purpose="login")
    sms = outbox.last
    assert (sms.to, sms.template) == (PHONE, "verify_code")
    assert set(sms.tags) == {"verify", "verify:login"}
    code = sms.params["code"]
    assert len(code) == 6 and code.isdigit() and outbox.last_code(PHONE) == code
    assert (started.to, started.purpose, started.status, started.sends) == (
        PHONE,
        "login",
        VerificationStatus.PENDING,
        1,
    )
    assert started.expires_at == utc(T0 + 600) and started.resend_after == utc(T0 + 60)
    assert started.send.provider == "fake" and started.send.message_id
    assert code not in repr(started) + started.model_dump_json()
    record = await notifier.store.get_verification(started.verification_id)
    assert record is not None and record.sends == 1 and record.attempts == 0


async def test_right_code_approves_once_then_not_found(make: MakeNotifier, outbox: Outbox) -> None:
    notifier = make()
    started = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    checked = await notifier.verify.check(PHONE, code)
    assert (checked.status, checked.attempts_left, checked.verification_id) == (
        APPROVED,
        5,
        started.verification_id,
    )
    assert checked.approved
    replay = await notifier.verify.check(PHONE, code)
    assert (replay.status, replay.attempts_left, replay.verification_id) == (NOT_FOUND, 0, None)
    record = await notifier.store.get_verification(started.verification_id)
    assert record is not None and record.status is VerificationStatus.APPROVED


async def test_wrong_codes_use_attempts_and_the_last_one_locks(
    make: MakeNotifier, outbox: Outbox
) -> None:
    notifier = make(max_attempts=3)
    started = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    answers = [await notifier.verify.check(PHONE, wrong(code)) for _ in range(3)]
    assert [(a.status, a.attempts_left) for a in answers] == [
        (INCORRECT, 2),
        (INCORRECT, 1),
        (MAX_ATTEMPTS, 0),
    ]
    late_right = await notifier.verify.check(PHONE, code)
    assert (late_right.status, late_right.attempts_left) == (MAX_ATTEMPTS, 0)
    record = await notifier.store.get_verification(started.verification_id)
    assert record is not None and (record.status, record.attempts) == (
        VerificationStatus.MAX_ATTEMPTS,
        3,
    )


async def test_expiry_is_checked_first(
    make: MakeNotifier, outbox: Outbox, clock: FakeClock
) -> None:
    notifier = make(ttl=120)
    started = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    clock.advance(119.999)
    assert (await notifier.verify.check(PHONE, wrong(code))).status is INCORRECT
    clock.advance(0.001)  # exactly expires_at
    expired = await notifier.verify.check(PHONE, code)
    assert (expired.status, expired.attempts_left) == (EXPIRED, 4)
    assert (await notifier.verify.check(PHONE, code)).status is EXPIRED
    record = await notifier.store.get_verification(started.verification_id)
    assert record is not None and record.status is VerificationStatus.EXPIRED


async def test_a_bad_code_is_refused_and_uses_no_attempt(
    make: MakeNotifier, outbox: Outbox
) -> None:
    notifier = make()
    await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    for bad in ("12345", "1234567", "12a456", "١٢٣٤٥٦", "", 123456):
        with pytest.raises(InvalidMessage, match=r"code: expected .*6 digits") as caught:
            await notifier.verify.check(PHONE, bad)  # type: ignore[arg-type]
        assert code not in str(caught.value)
    checked = await notifier.verify.check(PHONE, f" {wrong(code)} ")
    assert (checked.status, checked.attempts_left) == (INCORRECT, 4)


async def test_no_verification_is_not_found(make: MakeNotifier) -> None:
    checked = await make().verify.check(PHONE, "123456")
    assert (checked.status, checked.attempts_left, checked.verification_id) == (NOT_FOUND, 0, None)


async def test_start_inside_the_interval_is_refused_without_a_vendor_request(
    make: MakeNotifier, outbox: Outbox, clock: FakeClock
) -> None:
    notifier = make()
    await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    # Burning the attempts and starting again gains nothing.
    for _ in range(5):
        await notifier.verify.check(PHONE, wrong(code))
    clock.advance(45)
    with pytest.raises(VerificationRateLimited) as caught:
        await notifier.verify.start(PHONE)
    assert caught.value.retry_after == pytest.approx(15)
    assert PHONE not in str(caught.value) and "+86156****1090" in str(caught.value)
    assert len(fake_of(notifier).calls) == 1 and len(outbox) == 1
    # Another purpose and another number have intervals of their own.
    await notifier.verify.start(PHONE, purpose="reset")
    await notifier.verify.start(OTHER)
    assert len(outbox) == 3


async def test_resend_repeats_the_code_moves_expiry_and_keeps_attempts(
    make: MakeNotifier, outbox: Outbox, clock: FakeClock
) -> None:
    notifier = make()
    first = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    assert (await notifier.verify.check(PHONE, wrong(code))).attempts_left == 4
    clock.advance(60)
    again = await notifier.verify.start(PHONE)
    assert outbox.last_code(PHONE) == code and len(outbox) == 2
    assert again.verification_id == first.verification_id
    assert (again.sends, again.expires_at, again.resend_after) == (
        2,
        utc(T0 + 660),
        utc(T0 + 120),
    )
    assert again.send.message_id != first.send.message_id
    assert (await notifier.verify.check(PHONE, wrong(code))).attempts_left == 3
    clock.advance(599)  # past the first SMS's expiry, inside the resend's
    assert (await notifier.verify.check(PHONE, code)).status is APPROVED


async def test_max_sends_limits_until_expiry_then_a_new_code(
    make: MakeNotifier, outbox: Outbox, clock: FakeClock
) -> None:
    notifier = make(max_sends=2, ttl=300)
    first = await notifier.verify.start(PHONE)
    clock.advance(60)
    second = await notifier.verify.start(PHONE)
    assert second.sends == 2 and second.resend_after == second.expires_at == utc(T0 + 360)
    clock.advance(60)
    with pytest.raises(VerificationRateLimited) as caught:
        await notifier.verify.start(PHONE)
    assert caught.value.retry_after == pytest.approx(240)
    assert len(outbox) == 2
    clock.advance(240)
    third = await notifier.verify.start(PHONE)
    assert third.verification_id != first.verification_id and third.sends == 1
    old = await notifier.store.get_verification(first.verification_id)
    assert old is not None and old.status is VerificationStatus.EXPIRED


@pytest.mark.parametrize("end", ["approved", "max_attempts", "expired", "canceled"])
async def test_after_the_end_a_start_makes_a_new_verification_with_a_new_code(
    make: MakeNotifier, outbox: Outbox, clock: FakeClock, end: str
) -> None:
    notifier = make(max_attempts=1)
    first = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    if end == "approved":
        assert (await notifier.verify.check(PHONE, code)).status is APPROVED
    elif end == "max_attempts":
        assert (await notifier.verify.check(PHONE, wrong(code))).status is MAX_ATTEMPTS
    elif end == "expired":
        clock.advance(600)
    else:
        assert await notifier.verify.cancel(PHONE) is True
    clock.advance(60)
    second = await notifier.verify.start(PHONE)
    assert second.verification_id != first.verification_id and second.sends == 1
    new_code = outbox.last_code(PHONE)
    if new_code != code:  # one chance in a million that a new code repeats the old one
        assert (await notifier.verify.check(PHONE, code)).status is MAX_ATTEMPTS
    else:
        assert (await notifier.verify.check(PHONE, code)).status is APPROVED


async def test_cancel(make: MakeNotifier, outbox: Outbox, clock: FakeClock) -> None:
    notifier = make()
    assert await notifier.verify.cancel(PHONE) is False
    started = await notifier.verify.start(PHONE)
    assert await notifier.verify.cancel(PHONE, purpose="other") is False
    assert await notifier.verify.cancel(PHONE) is True
    assert await notifier.verify.cancel(PHONE) is False
    assert (await notifier.verify.check(PHONE, outbox.last_code(PHONE))).status is NOT_FOUND
    record = await notifier.store.get_verification(started.verification_id)
    assert record is not None and record.status is VerificationStatus.CANCELED
    with pytest.raises(VerificationRateLimited):  # the interval still counts
        await notifier.verify.start(PHONE)


async def test_a_first_send_no_vendor_accepted_fails_it_and_charges_no_interval(
    make: MakeNotifier, outbox: Outbox
) -> None:
    notifier = make("a", "b")
    fake_of(notifier, "a").script(fail(InsufficientBalance))
    fake_of(notifier, "b").script(fail(ProviderUnavailable))
    with pytest.raises(AllProvidersFailed):
        await notifier.verify.start(PHONE)
    assert len(outbox) == 0
    failed_code = fake_of(notifier, "a").calls[0].message.params["code"]
    assert (await notifier.verify.check(PHONE, failed_code)).status is NOT_FOUND
    # No interval charged: a new start goes out at once, with a new verification (through
    # b: a is out of rotation after an account-level failure).
    again = await notifier.verify.start(PHONE)
    assert again.sends == 1 and again.send.provider == "b"
    stored = await notifier.store.list_messages(phone=PHONE)
    assert [m.status.value for m in stored] == ["accepted", "failed"]


async def test_a_resend_no_vendor_accepted_leaves_the_verification_as_it_was(
    make: MakeNotifier, outbox: Outbox, clock: FakeClock
) -> None:
    notifier = make()
    first = await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)
    clock.advance(100)
    fake_of(notifier).script(fail(ProviderUnavailable))
    with pytest.raises(AllProvidersFailed):
        await notifier.verify.start(PHONE)
    record = await notifier.store.get_verification(first.verification_id)
    assert record is not None
    assert (record.status, record.sends, record.expires_at) == (
        VerificationStatus.PENDING,
        1,
        T0 + 600,
    )
    # The interval is given back (the last SMS is the first one): trying again goes at once.
    again = await notifier.verify.start(PHONE)
    assert again.verification_id == first.verification_id and again.sends == 2
    assert outbox.last_code(PHONE) == code
    assert (await notifier.verify.check(PHONE, code)).status is APPROVED


async def test_an_unknown_outcome_counts_as_sent(
    make: MakeNotifier, outbox: Outbox, clock: FakeClock
) -> None:
    notifier = make()
    fake_of(notifier).script(unknown(went_out=True))
    with pytest.raises(UnknownOutcome):
        await notifier.verify.start(PHONE)
    code = outbox.last_code(PHONE)  # it did arrive
    clock.advance(30)
    with pytest.raises(VerificationRateLimited) as caught:
        await notifier.verify.start(PHONE)
    assert caught.value.retry_after == pytest.approx(30)
    clock.advance(30)
    again = await notifier.verify.start(PHONE)
    assert again.sends == 2 and outbox.last_code(PHONE) == code
    assert (await notifier.verify.check(PHONE, code)).status is APPROVED


async def test_an_unknown_outcome_then_failover_failure_still_counts_as_sent(
    make: MakeNotifier, outbox: Outbox
) -> None:
    notifier = make("a", "b", extra={"routing": {"on_unknown_outcome": "failover"}})
    fake_of(notifier, "a").script(unknown(went_out=False))
    fake_of(notifier, "b").script(fail(InsufficientBalance))
    with pytest.raises(AllProvidersFailed):
        await notifier.verify.start(PHONE)
    with pytest.raises(VerificationRateLimited):
        await notifier.verify.start(PHONE)


async def test_allowed_countries_refuse_before_any_vendor_or_store(make: MakeNotifier) -> None:
    notifier = make(allowed_countries=["cn", "HK"])
    for number in ("+14155550100", "+80012345678"):  # elsewhere; no region at all
        with pytest.raises(InvalidMessage, match=r"outside verify\.allowed_countries") as caught:
            await notifier.verify.start(number)
        assert number not in str(caught.value)
    assert fake_of(notifier).calls == []
    assert await notifier.store.list_messages() == []
    assert (await notifier.verify.start(PHONE)).sends == 1


async def test_purpose_and_template(make: MakeNotifier, outbox: Outbox) -> None:
    notifier = make(template="otp", code_param="pin", code_length=8)
    await notifier.verify.start(PHONE, template="login_code", purpose="sign-up.v2")
    assert outbox.last.template == "login_code" and len(outbox.last.params["pin"]) == 8
    assert outbox.last_code(PHONE, purpose="sign-up.v2", param="pin") == outbox.last.params["pin"]
    await notifier.verify.start(OTHER)
    assert outbox.last.template == "otp"
    for bad in ("", "has space", "x" * 65):
        with pytest.raises(InvalidMessage, match="purpose"):
            await notifier.verify.start(PHONE, purpose=bad)
    with pytest.raises(InvalidMessage, match="template"):
        await notifier.verify.start(PHONE, template=" ")
    with pytest.raises(InvalidMessage, match="to:"):
        await notifier.verify.start("12345")


async def test_codes_are_per_purpose(make: MakeNotifier, outbox: Outbox) -> None:
    notifier = make()
    await notifier.verify.start(PHONE, purpose="login")
    login = outbox.last_code(PHONE, purpose="login")
    await notifier.verify.start(PHONE, purpose="reset")
    reset = outbox.last_code(PHONE, purpose="reset")
    if login != reset:
        assert (await notifier.verify.check(PHONE, login, purpose="reset")).status is INCORRECT
    assert (await notifier.verify.check(PHONE, login, purpose="login")).status is APPROVED
    assert (await notifier.verify.check(PHONE, reset, purpose="reset")).status is APPROVED


async def test_no_secret_is_a_config_error(make: MakeNotifier) -> None:
    notifier = make(secret=None)
    for call in (
        notifier.verify.start(PHONE),
        notifier.verify.check(PHONE, "123456"),
        notifier.verify.cancel(PHONE),
    ):
        with pytest.raises(ConfigError, match=r"verify\.secret: required"):
            await call
    assert fake_of(notifier).calls == []


@pytest.mark.parametrize("refusal", [ProviderUnavailable, InvalidRecipient])
async def test_a_vendor_echoing_the_code_does_not_put_it_in_the_exception(
    make: MakeNotifier, outbox: Outbox, refusal: type[Exception]
) -> None:
    """Failover (AllProvidersFailed) or the recipient's fault (raised as it is): the code
    is in none of the errors' texts, ``vendor_message`` or ``vendor_code``."""
    notifier = make()
    fake_of(notifier).script(
        lambda m: fail(
            refusal,
            f"rejected template param code={m.params['code']}",
            vendor_message=f"bad {m.params['code']}",
            vendor_code=f"E{m.params['code']}",  # a plugin may put any vendor text here
        )
    )
    with pytest.raises(AllProvidersFailed if refusal is ProviderUnavailable else refusal) as caught:
        await notifier.verify.start(PHONE)
    code = fake_of(notifier).calls[0].message.params["code"]
    shown: list[str] = []
    error: BaseException | None = caught.value
    while error is not None:  # the whole chain, the vendor's own error included
        shown += [str(error), repr(error), str(getattr(error, "vendor_message", ""))]
        shown.append(str(getattr(error, "vendor_code", "")))
        shown.append(repr(getattr(error, "attempts", "")))
        error = error.__cause__ or error.__context__
    assert all(code not in text for text in shown), shown
    assert "code=***" in str(caught.value)
    # Nor in the attempts the store keeps for the message (the router blanks parameters).
    records = await notifier.store.list_messages(phone=PHONE)
    assert records and all(code not in r.model_dump_json() for r in records)
    assert "code=***" in (records[0].attempts[0].error_message or "")


async def test_the_sync_notifier_has_the_same_verify(outbox: Outbox, clock: FakeClock) -> None:
    from notifykit.testing import fake_sync_notifier

    from .conftest import verify_settings

    with fake_sync_notifier(extra={"verify": verify_settings()}) as notifier:
        notifier.verify.clock = clock
        assert notifier.verify.clock is clock
        started = notifier.verify.start(PHONE)
        assert started.expires_at == utc(T0 + 600)
        assert notifier.verify.check(PHONE, wrong(outbox.last_code(PHONE))).status is INCORRECT
        assert notifier.verify.check(PHONE, outbox.last_code(PHONE)).status is APPROVED
        assert notifier.verify.cancel(PHONE) is False
        assert "SyncVerifier" in repr(notifier.verify)


async def test_accept_statuses_from_the_vendor_are_kept(make: MakeNotifier) -> None:
    notifier = make()
    fake_of(notifier).script(accept("vid-7"))
    started = await notifier.verify.start(PHONE)
    assert started.send.provider_message_id == "vid-7"


async def test_last_code_finds_the_last_verification_sms_only(
    make: MakeNotifier, outbox: Outbox
) -> None:
    notifier = make()
    with pytest.raises(
        AssertionError, match=r"no verification SMS was sent to \+86156\*\*\*\*1090"
    ):
        outbox.last_code(PHONE)
    await notifier.send(PHONE, template="welcome", params={"code": "not-a-verification"})
    with pytest.raises(AssertionError, match="no verification SMS"):
        outbox.last_code(PHONE)
    await notifier.verify.start(PHONE, purpose="login")
    code = outbox.last_code("+86 156 1234 1090")
    assert code == outbox.last_code(PHONE, purpose="login") == outbox.last.params["code"]
    with pytest.raises(AssertionError, match="for purpose 'reset'"):
        outbox.last_code(PHONE, purpose="reset")
    with pytest.raises(AssertionError, match="has no parameter 'pin'"):
        outbox.last_code(PHONE, param="pin")
