"""Any sequence of start / check / cancel / clock moves keeps the invariants of
docs/verify.md (hypothesis state machine, memory and SQLite stores).

Invariants: at most one ``approved`` per verification; ``attempts`` never above
``max_attempts``; nothing is approved or counted once ``expires_at`` has passed; a refused
``start`` sends nothing; ``sends`` equals the SMS that went out (or may have) for it. Each
step's answer is also compared with the rules applied to the state just before it.
"""

from __future__ import annotations

import asyncio
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from notifykit import AsyncNotifier, VerificationCheckStatus, VerificationStatus
from notifykit.errors import NotifyKitError, VerificationRateLimited
from notifykit.models import VerificationRecord
from notifykit.testing import (
    Outbox,
    Outcome,
    accept,
    capture_sms,
    fail,
    fake_notifier,
    fake_providers,
    unknown,
)
from notifykit.verify import CodeKeys

from .conftest import PHONE, SECRET, T0, FakeClock, verify_settings

MAX_ATTEMPTS = 3
MAX_SENDS = 3
TTL = 300.0
INTERVAL = 60.0
PURPOSES = st.sampled_from(["login", "reset"])
KEYS = CodeKeys(SECRET, 6)
GONE = {VerificationStatus.APPROVED, VerificationStatus.CANCELED, VerificationStatus.FAILED}


class VerificationMachine(RuleBasedStateMachine):
    store_url = "memory://"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock(T0)
        self.capture = capture_sms()
        self.outbox: Outbox = self.capture.__enter__()
        self.tmp = TemporaryDirectory()
        url = self.store_url.replace("{tmp}", self.tmp.name)
        self.notifier: AsyncNotifier = fake_notifier(
            extra={
                "verify": verify_settings(
                    max_attempts=MAX_ATTEMPTS,
                    max_sends=MAX_SENDS,
                    ttl=TTL,
                    resend_interval=INTERVAL,
                ),
                "store": {"url": url},
                "routing": {"retry": {"attempts": 1}},
            }
        )
        self.notifier.verify.clock = self.clock
        self.fake = fake_providers(self.notifier)["fake"]
        self.next_outcome: Outcome = accept()
        self.fake.then(lambda _message: self.next_outcome)
        self.approvals: dict[str, int] = {}
        self.seen: set[str] = set()
        self.last_sms: dict[str, float] = {}  # purpose -> when the last SMS was counted
        self.sms_for: dict[str, int] = {}  # verification id -> SMS counted as sent

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.notifier.close())
        finally:
            self.loop.close()
            self.capture.__exit__(None, None, None)
            self.tmp.cleanup()

    def current(self, purpose: str) -> VerificationRecord | None:
        record: VerificationRecord | None = self.run(
            self.notifier.store.current_verification(PHONE, purpose)
        )
        return record

    @initialize()
    def open(self) -> None:
        self.run(self.notifier.open())

    # -- rules ----------------------------------------------------------------------------

    @rule(purpose=PURPOSES, outcome=st.sampled_from(["accept", "fail", "unknown"]))
    def start(self, purpose: str, outcome: str) -> None:
        before = self.current(purpose)
        now = self.clock.now
        live = (
            before is not None
            and before.status is VerificationStatus.PENDING
            and before.expires_at > now
        )
        last = self.last_sms.get(purpose)
        limited = (last is not None and now - last < INTERVAL) or (
            live and before is not None and before.sends >= MAX_SENDS
        )
        self.next_outcome = {
            "accept": accept(),
            "fail": fail(NotifyKitError("scripted")),
            "unknown": unknown(went_out=True),
        }[outcome]
        sms_before = len(self.outbox)
        try:
            started = self.run(self.notifier.verify.start(PHONE, purpose=purpose))
        except VerificationRateLimited as exc:
            assert limited, "refused although the rules allow a start"
            assert exc.retry_after > 0
            assert len(self.outbox) == sms_before, "a refused start sent an SMS"
            return
        except NotifyKitError:
            # Refused by the vendor, or never offered to it: a breaker opened by earlier
            # unknown outcomes skips the provider, and nothing went out.
            went_out = len(self.outbox) > sms_before
            assert not limited and (outcome != "accept" or not went_out)
        else:
            went_out = True
            assert not limited and outcome == "accept"
            assert started.status is VerificationStatus.PENDING
            if live:
                assert before is not None and started.verification_id == before.verification_id
        after = self.current(purpose)
        assert after is not None
        self.seen.add(after.verification_id)
        if live:
            assert before is not None and after.verification_id == before.verification_id
            assert after.attempts == before.attempts
        if went_out:
            assert outcome != "fail"
            self.last_sms[purpose] = now
            self.sms_for[after.verification_id] = self.sms_for.get(after.verification_id, 0) + 1
            assert after.expires_at == now + TTL
            sms = self.outbox.last
            assert sms.params["code"] == KEYS.code(bytes.fromhex(after.seed))
        elif not live:
            assert after.status is VerificationStatus.FAILED

    def _check(self, purpose: str, right: bool) -> None:
        before = self.current(purpose)
        now = self.clock.now
        if before is not None and right:
            code = KEYS.code(bytes.fromhex(before.seed))
        else:
            code = "000000"
            if before is not None and KEYS.code(bytes.fromhex(before.seed)) == code:
                code = "000001"
        answer = self.run(self.notifier.verify.check(PHONE, code, purpose=purpose))
        if before is None or before.status in GONE:
            expected = VerificationCheckStatus.NOT_FOUND
        elif before.expires_at <= now or before.status is VerificationStatus.EXPIRED:
            expected = VerificationCheckStatus.EXPIRED
        elif before.status is VerificationStatus.MAX_ATTEMPTS:
            expected = VerificationCheckStatus.MAX_ATTEMPTS
        elif right:
            expected = VerificationCheckStatus.APPROVED
        elif before.attempts + 1 >= MAX_ATTEMPTS:
            expected = VerificationCheckStatus.MAX_ATTEMPTS
        else:
            expected = VerificationCheckStatus.INCORRECT
        assert answer.status is expected, (answer, before, now)
        if before is not None and before.expires_at <= now:
            after = self.run(self.notifier.store.get_verification(before.verification_id))
            assert after.attempts == before.attempts, "an attempt counted after expiry"
        if answer.status is VerificationCheckStatus.APPROVED:
            assert before is not None
            vid = before.verification_id
            self.approvals[vid] = self.approvals.get(vid, 0) + 1
        if answer.status is VerificationCheckStatus.MAX_ATTEMPTS:
            assert answer.attempts_left == 0

    @rule(purpose=PURPOSES)
    def check_right(self, purpose: str) -> None:
        self._check(purpose, right=True)

    @rule(purpose=PURPOSES)
    def check_wrong(self, purpose: str) -> None:
        self._check(purpose, right=False)

    @rule(purpose=PURPOSES)
    def cancel(self, purpose: str) -> None:
        before = self.current(purpose)
        now = self.clock.now
        canceled = self.run(self.notifier.verify.cancel(PHONE, purpose=purpose))
        live = (
            before is not None
            and before.status is VerificationStatus.PENDING
            and before.expires_at > now
        )
        assert canceled is live

    @rule(seconds=st.sampled_from([1.0, 30.0, 59.0, 60.0, 61.0, 299.0, 300.0, 301.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def at_most_one_approval_and_attempts_within_the_limit(self) -> None:
        assert all(count <= 1 for count in self.approvals.values()), self.approvals
        for vid in self.seen:
            record = self.run(self.notifier.store.get_verification(vid))
            assert record is not None and record.attempts <= MAX_ATTEMPTS
            assert record.sends == self.sms_for.get(vid, 0), (record, self.sms_for)
            if record.status is VerificationStatus.MAX_ATTEMPTS:
                assert record.attempts == MAX_ATTEMPTS


class SQLiteVerificationMachine(VerificationMachine):
    store_url = "sqlite:///{tmp}/nk.db"


SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize(
    "machine", [VerificationMachine, SQLiteVerificationMachine], ids=["memory", "sqlite"]
)
def test_any_sequence_keeps_the_invariants(machine: type[VerificationMachine]) -> None:
    examples = SETTINGS if machine is VerificationMachine else settings(SETTINGS, max_examples=10)
    run_state_machine_as_test(machine, settings=examples)
