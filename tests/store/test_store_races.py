"""Races on the claims the store contract makes, forced rather than hoped for, on every
backend of the registry (conftest.py ``STORE_BACKENDS``; each names its schedule in
races.py).

Every claim is a read-modify-write that the contract calls atomic. Two processes landing in
the gap between the read and the write happen only by chance, so a test that starts two
claims and hopes catches a broken claim only sometimes. Here the interleaving is chosen by
the test (races.py says how, per backend), so that a claim made of a separate check and
write fails these tests every run.

The claims: idempotency keys (a claim, a takeover of an expired key, a release), the
recipient guard (alone, and inside a send's first write), the dispatch claim (two dispatchers never hold one event; a takeover of
an expired claim; a late acknowledgement against a new claim), the verification steps (a
start's send claim, and checks: at most the attempts left are evaluated, a code approves at
most once), and the recovery sweep (each left record resolved once, never over a slow
sender's acceptance, giving back only its own claims).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifykit.events import DeliveryReceipt
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    VerificationCheckStatus,
    VerificationRecord,
    VerificationStatus,
)
from notifykit.store import InboxEntry, Store
from notifykit.store.base import IdempotencyHolder, VerificationCheckStep

from .races import Race

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"


def _one_winner(results: list[Any], names: Sequence[str]) -> str:
    """Exactly one claim succeeded (None) and every other names the winner."""
    assert not [r for r in results if isinstance(r, BaseException)], results
    winners = [name for name, result in zip(names, results, strict=True) if result is None]
    assert len(winners) == 1, f"claims returned {results}: {len(winners)} winners"
    assert all(r.message_id == winners[0] for r in results if r is not None), results
    return winners[0]


FIRST = pytest.mark.parametrize("first", [0, 1], ids=["a-first", "b-first"])
"""Each race is run in both orders: which order exposes a broken claim depends on how it
is broken (and on the backend)."""


@FIRST
async def test_two_claims_of_one_key_have_one_winner(race: Race, first: int) -> None:
    a, b = race.stores
    results = await race.run(
        [a.claim_idempotency_key("k", "m-a", 60), b.claim_idempotency_key("k", "m-b", 60)],
        first,
    )
    winner = _one_winner(results, ["m-a", "m-b"])
    assert await a.claim_idempotency_key("k", "m-c", 60) == IdempotencyHolder(winner)


@FIRST
async def test_two_takeovers_of_an_expired_key_have_one_winner(race: Race, first: int) -> None:
    a, b = race.stores
    assert await a.claim_idempotency_key("k", "m-dead", 0) is None  # expired at once
    results = await race.run(
        [a.claim_idempotency_key("k", "m-a", 60), b.claim_idempotency_key("k", "m-b", 60)],
        first,
    )
    winner = _one_winner(results, ["m-a", "m-b"])
    assert await b.claim_idempotency_key("k", "m-c", 60) == IdempotencyHolder(winner)


@FIRST
async def test_a_late_release_never_frees_the_claim_that_took_over(race: Race, first: int) -> None:
    a, b = race.stores
    assert await a.claim_idempotency_key("k", "m-old", 0) is None  # expired at once
    released, taken = await race.run(
        [a.release_idempotency_key("k", "m-old"), b.claim_idempotency_key("k", "m-new", 60)],
        first,
    )
    assert taken is None and released is None
    assert await a.claim_idempotency_key("k", "m-other", 60) == IdempotencyHolder("m-new")


@FIRST
async def test_two_guards_of_one_number_let_one_send_through(race: Race, first: int) -> None:
    a, b = race.stores
    results = await race.run([a.check_recipient(PHONE, 60), b.check_recipient(PHONE, 60)], first)
    assert not [r for r in results if isinstance(r, BaseException)], results
    through = [r for r in results if r is None]
    assert len(through) == 1, f"guards returned {results}: {len(through)} let through"
    waits = [r for r in results if r is not None]
    assert len(waits) == 1 and 0 < waits[0] <= 60
    later = await a.check_recipient(PHONE, 60)
    assert later is not None and later <= waits[0]


@FIRST
async def test_two_sends_starting_to_one_number_claim_it_once(race: Race, first: int) -> None:
    """``start_send`` claims the number in the send's first write: of two sends to one
    number, one is let through (its record holds its started attempt), the other is told
    to wait and its record holds no attempt (no vendor call will be made)."""
    a, b = race.stores

    def record(message_id: str) -> MessageRecord:
        started = Attempt(provider="vs", outcome="started", started_at=T0)
        return MessageRecord(
            message_id=message_id, to=PHONE, template="verify_code", attempts=[started]
        )

    results = await race.run(
        [
            a.start_send(record("m-a"), recipient_interval=60),
            b.start_send(record("m-b"), recipient_interval=60),
        ],
        first,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r is None for r in results) == [False, True], results
    wait = next(r for r in results if r is not None)
    assert 0 < wait <= 60
    stored = [await a.get_message(m) for m in ("m-a", "m-b")]
    assert [bool(r and r.attempts) for r in stored] == [r is None for r in results]
    assert await a.check_recipient(PHONE, 60) is not None


# -- the dispatch claim ---------------------------------------------------------------------

E0 = datetime(2024, 5, 1, 17, 0, tzinfo=UTC)


async def _stored_events(store: Store, count: int) -> list[str]:
    """``count`` unclaimed events, stored in order; their ids."""
    events = [
        DeliveryReceipt(
            event_id=f"e{n}",
            provider="vs",
            provider_message_id=f"task-{n}",
            phone=PHONE,
            occurred_at=E0 + timedelta(seconds=n),
            received_at=E0 + timedelta(seconds=n),
            status=DeliveryStatus.DELIVERED,
            vendor_status="1",
        )
        for n in range(count)
    ]
    entry = InboxEntry(provider="vs", method="POST", path="/callbacks/vs/***", body=b"x")
    new = await store.ingest(entry, events)
    assert [e.event_id for e in new] == [e.event_id for e in events]
    return [e.event_id for e in events]


def _disjoint_and_complete(results: list[Any], every: list[str]) -> None:
    """Each event went to exactly one of the racing claims."""
    assert not [r for r in results if isinstance(r, BaseException)], results
    held = [[e.event_id for e in claimed] for claimed in results]
    given = [event_id for ids in held for event_id in ids]
    assert sorted(given) == sorted(every), f"claims returned {held}: an event twice or never"


@FIRST
async def test_two_dispatch_claims_never_hand_out_one_event_twice(race: Race, first: int) -> None:
    a, b = race.stores
    every = await _stored_events(a, 3)
    results = await race.run(
        [a.claim_dispatch("owner-a", limit=2), b.claim_dispatch("owner-b", limit=2)], first
    )
    _disjoint_and_complete(results, every)
    assert sorted(len(r) for r in results) == [1, 2], results  # oldest first, up to the limit
    assert await a.claim_dispatch("owner-c") == []


@FIRST
async def test_two_takeovers_of_a_dead_dispatchers_events_share_none(
    race: Race, first: int
) -> None:
    a, b = race.stores
    every = await _stored_events(a, 3)
    dead = await a.claim_dispatch("owner-dead", lease=0)  # its lease ends at once
    assert [e.event_id for e in dead] == every
    results = await race.run(
        [a.claim_dispatch("owner-a", limit=2), b.claim_dispatch("owner-b", limit=2)], first
    )
    _disjoint_and_complete(results, every)
    assert await a.ack_dispatch("owner-dead", every) == 0  # it holds none of them now


@FIRST
async def test_a_late_acknowledgement_and_a_new_claim_never_both_take_an_event(
    race: Race, first: int
) -> None:
    """A dispatcher whose lease ran out acknowledges while another claims the event: either
    the acknowledgement lands (and the claim finds nothing) or the claim does (and the
    acknowledgement records nothing); never both, never neither."""
    a, b = race.stores
    (event_id,) = await _stored_events(a, 1)
    assert [e.event_id for e in await a.claim_dispatch("owner-old", lease=0)] == [event_id]
    acked, claimed = await race.run(
        [a.ack_dispatch("owner-old", [event_id]), b.claim_dispatch("owner-new")], first
    )
    assert not isinstance(acked, BaseException) and not isinstance(claimed, BaseException)
    taken = [e.event_id for e in claimed]
    assert (acked, taken) in [(1, []), (0, [event_id])], (acked, taken)
    assert await a.claim_dispatch("owner-later", lease=0) == []  # settled or held by new


# -- verifications --------------------------------------------------------------------------

V0 = 1_700_000_000.0
TTL = 600.0
INTERVAL = 60.0
RIGHT = "hash-of-the-right-code"


def _verification(verification_id: str) -> VerificationRecord:
    return VerificationRecord(
        verification_id=verification_id,
        to=PHONE,
        purpose="login",
        code_hash=RIGHT,
        seed=f"seed-of-{verification_id}",
        created_at=V0,
        expires_at=V0 + TTL,
        updated_at=V0,
    )


async def _started(store: Store, *, wrong_guesses: int) -> None:
    claim = await store.claim_verification_send(
        _verification("v1"), now=V0, resend_interval=INTERVAL, max_sends=5
    )
    assert claim.outcome == "new" and claim.claim_id is not None
    await store.finish_verification_send(
        "v1", claim.claim_id, sent=True, now=V0, expires_at=V0 + TTL
    )
    for i in range(wrong_guesses):
        step = await _check(store, "wrong", V0 + 1 + i)
        assert step.status is VerificationCheckStatus.INCORRECT


async def _check(store: Store, code_hash: str, now: float) -> VerificationCheckStep:
    return await store.check_verification(PHONE, "login", code_hash, now=now, max_attempts=3)


@FIRST
async def test_two_starts_inside_the_interval_send_one_code(race: Race, first: int) -> None:
    a, b = race.stores
    results = await race.run(
        [
            a.claim_verification_send(
                _verification("va"), now=V0, resend_interval=INTERVAL, max_sends=5
            ),
            b.claim_verification_send(
                _verification("vb"), now=V0, resend_interval=INTERVAL, max_sends=5
            ),
        ],
        first,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r.outcome for r in results) == ["limited", "new"], results


@FIRST
async def test_two_wrong_guesses_use_two_attempts(race: Race, first: int) -> None:
    a, b = race.stores
    await _started(a, wrong_guesses=1)  # two attempts left
    results = await race.run([_check(a, "wrong", V0 + 10), _check(b, "wrong", V0 + 10)], first)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r.status for r in results) == [
        VerificationCheckStatus.INCORRECT,
        VerificationCheckStatus.MAX_ATTEMPTS,
    ], results
    after = await a.get_verification("v1")
    assert after is not None and after.attempts == 3
    assert after.status is VerificationStatus.MAX_ATTEMPTS


@FIRST
async def test_the_last_attempt_is_spent_once(race: Race, first: int) -> None:
    """A wrong guess and the right code race for the last attempt: either the guess locks the
    verification (and the code comes too late) or the code approves it (and the guess finds
    nothing); never both."""
    a, b = race.stores
    await _started(a, wrong_guesses=2)  # one attempt left
    wrong, right = await race.run([_check(a, "wrong", V0 + 10), _check(b, RIGHT, V0 + 10)], first)
    assert not isinstance(wrong, BaseException) and not isinstance(right, BaseException)
    assert (wrong.status, right.status) in [
        (VerificationCheckStatus.MAX_ATTEMPTS, VerificationCheckStatus.MAX_ATTEMPTS),
        (VerificationCheckStatus.NOT_FOUND, VerificationCheckStatus.APPROVED),
    ], (wrong, right)


@FIRST
async def test_the_right_code_approves_once(race: Race, first: int) -> None:
    a, b = race.stores
    await _started(a, wrong_guesses=0)
    results = await race.run([_check(a, RIGHT, V0 + 10), _check(b, RIGHT, V0 + 10)], first)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(r.status for r in results) == [
        VerificationCheckStatus.APPROVED,
        VerificationCheckStatus.NOT_FOUND,
    ], results


# -- recovery of what a dead sender left ----------------------------------------------------

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
LEASE = T0 + timedelta(seconds=40)
LATER = T0 + timedelta(minutes=5)


async def _left_pending(
    store: Store, message_id: str, *, started: bool, key: str | None = None
) -> None:
    """A record as a process stopped mid-send leaves it: pending past its lease."""
    await store.create_message(
        MessageRecord(
            message_id=message_id,
            to=PHONE,
            template="verify_code",
            idempotency_key=key,
            created_at=T0,
            lease_until=LEASE,
        )
    )
    if started:
        await store.update_message(
            message_id,
            attempts=[Attempt(provider="vs", outcome="started", started_at=T0)],
        )


@FIRST
async def test_two_sweeps_resolve_a_record_once(race: Race, first: int) -> None:
    a, b = race.stores
    await _left_pending(a, "m1", started=True)
    results = await race.run([a.recover_expired(now=LATER), b.recover_expired(now=LATER)], first)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(len(r) for r in results) == [0, 1], results
    record = await a.get_message("m1")
    assert record is not None and record.status is DeliveryStatus.UNKNOWN
    assert [h.source for h in record.history].count("recovery") == 1


@FIRST
async def test_a_sweep_never_undoes_the_acceptance_of_a_slow_sender(race: Race, first: int) -> None:
    """The sender was slow, not dead: its acceptance lands while a sweep resolves the
    record. Whatever the order, the record ends accepted with the vendor's id."""
    a, b = race.stores
    await _left_pending(a, "m1", started=True)
    accepted = Attempt(provider="vs", outcome="accepted", started_at=T0)
    results = await race.run(
        [
            a.recover_expired(now=LATER),
            b.update_message(
                "m1",
                attempts=[accepted],
                status=DeliveryStatus.ACCEPTED,
                provider="vs",
                provider_message_id="task-1",
            ),
        ],
        first,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    record = await a.get_message("m1")
    assert record is not None
    assert (record.status, record.provider, record.provider_message_id) == (
        DeliveryStatus.ACCEPTED,
        "vs",
        "task-1",
    )


@FIRST
async def test_a_sweep_gives_back_only_its_own_key(race: Race, first: int) -> None:
    """The dead send's key expired and another send takes it over while the sweep gives the
    dead one's back: the new holder keeps it."""
    a, b = race.stores
    assert await a.claim_idempotency_key("k", "dead", 0) is None  # expired at once
    await _left_pending(a, "dead", started=False, key="k")
    swept, taken = await race.run(
        [a.recover_expired(now=LATER), b.claim_idempotency_key("k", "next", 600)], first
    )
    assert not isinstance(swept, BaseException) and taken is None, (swept, taken)
    assert await a.claim_idempotency_key("k", "third", 600) == IdempotencyHolder("next")
