"""Races on the claims the store contract makes, forced rather than hoped for.

Every claim (an idempotency key, a recipient's interval) is a read-modify-write that the
contract calls atomic. Two processes landing in the gap between the read and the write
happen only by chance, so a test that starts two claims and hopes catches a broken claim
only sometimes. Here the interleaving is chosen by the test:

* ``memory://`` lives in one event loop: its contenders are coroutines on one store, and
  they can only interleave where a claim awaits. ``asyncio.gather`` runs the first until
  it suspends, then the second, so a claim that awaits between its check and its write
  is caught every time.
The claims: idempotency keys (a claim, a takeover of an expired key, a release), the
recipient guard, the verification steps (a start's send claim, and checks: at most the
attempts left are evaluated, a code approves at most once), and the recovery sweep (each
left record resolved once, never over a slow sender's acceptance, giving back only its own
claims).

* ``sqlite://`` contenders are separate stores on one file (each its own connection and
  thread, exactly as two processes would be). :class:`StatementGate` pauses each
  connection before every statement that takes or needs SQLite's write lock (``BEGIN``,
  ``INSERT``/``UPDATE``/``DELETE``/``REPLACE``, ``COMMIT``) and lets one contender through
  at a time, switching to the other whenever it can run without blocking on the lock. A
  claim made of a separate read and write (a read job and then a write job, two write
  transactions, or a deferred transaction that reads before it writes) lets the other
  contender's whole claim land in its gap, every run; an atomic claim makes the other wait.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    VerificationCheckStatus,
    VerificationRecord,
    VerificationStatus,
)
from notifykit.store import MemoryStore, SQLiteStore, Store
from notifykit.store.base import IdempotencyHolder, VerificationCheckStep

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
GUARD_TIMEOUT = 30.0
"""Seconds before a stuck schedule fails the test (a guard against hanging, not a measure)."""

# What a statement's first keyword means for SQLite's write lock.
_BEGIN, _BEGIN_WRITE, _WRITE, _END = "begin", "begin-write", "write", "end"


def _kind(sql: str) -> str | None:
    """The gate a statement stops at, or None for one that never takes the write lock."""
    words = sql.split(None, 2)
    if not words:
        return None
    first = words[0].upper()
    second = words[1].upper() if len(words) > 1 else ""
    if first == "BEGIN":
        return _BEGIN_WRITE if second in ("IMMEDIATE", "EXCLUSIVE") else _BEGIN
    if first in ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"):
        return _WRITE
    if first in ("COMMIT", "END") or (first == "ROLLBACK" and second != "TO"):
        return _END
    return None


@dataclass
class _Contender:
    index: int
    pending: str | None = None
    """The kind of statement it is paused before, or None while it runs (or is idle)."""
    passes: int = 0
    in_transaction: bool = False
    holds_lock: bool = False


class StatementGate:
    """Pauses the SQLite connections it traces before each write-lock statement.

    Install :meth:`connect` in place of ``sqlite3.connect``: the n-th connection made
    (once per store, in the order the stores are opened) is contender n. Until
    :meth:`arm` nothing is paused; after :meth:`free` nothing is paused again.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, path: Path) -> None:
        self.loop = loop
        self.path = str(path)
        self.contenders: list[_Contender] = []
        self.changed = asyncio.Event()
        self._cond = threading.Condition()
        self._armed = False
        self._free = False

    def connect(self, original: Callable[..., sqlite3.Connection]) -> Callable[..., Any]:
        @functools.wraps(original)
        def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = original(database, *args, **kwargs)
            if str(database) == self.path:
                with self._cond:
                    contender = _Contender(len(self.contenders))
                    self.contenders.append(contender)
                conn.set_trace_callback(functools.partial(self._trace, contender))
            return conn

        return connect

    def arm(self) -> None:
        with self._cond:
            self._armed = True

    def free(self) -> None:
        """Let every statement through, now and from now on."""
        with self._cond:
            self._free = True
            self._cond.notify_all()

    # -- in the stores' writer threads ----------------------------------------------------

    def _trace(self, contender: _Contender, sql: str) -> None:
        kind = _kind(sql)
        if kind is None:
            return
        with self._cond:
            if self._armed and not self._free:
                contender.pending = kind
                self.loop.call_soon_threadsafe(self.changed.set)
                while not (self._free or contender.passes):
                    self._cond.wait()
                if contender.passes:
                    contender.passes -= 1
                contender.pending = None
            if kind in (_BEGIN, _BEGIN_WRITE):
                contender.in_transaction = True
                contender.holds_lock = kind == _BEGIN_WRITE
            elif kind == _WRITE and contender.in_transaction:
                contender.holds_lock = True
            elif kind == _END:
                contender.in_transaction = contender.holds_lock = False

    # -- in the test's event loop ---------------------------------------------------------

    def _blocked(self, contender: _Contender) -> bool:
        """Would its next statement wait for a lock another contender holds?"""
        needs_lock = contender.pending == _BEGIN_WRITE or (
            contender.pending == _WRITE and not contender.holds_lock
        )
        return needs_lock and any(
            other.holds_lock for other in self.contenders if other is not contender
        )

    async def _settle(self, tasks: Sequence[asyncio.Task[Any]]) -> None:
        """Wait until every contender is paused at a gate or its operation has finished."""
        while True:
            self.changed.clear()
            with self._cond:
                moving = [
                    i
                    for i, task in enumerate(tasks)
                    if not task.done() and self.contenders[i].pending is None
                ]
            if not moving:
                return
            try:
                await asyncio.wait_for(self.changed.wait(), GUARD_TIMEOUT)
            except TimeoutError:
                raise AssertionError(f"contenders {moving} neither paused nor finished") from None

    async def run(self, operations: Sequence[Coroutine[Any, Any, Any]], first: int) -> list[Any]:
        """Run ``operations[n]`` as contender n, ``first`` first, then alternating at every
        gate where the other contender can run."""
        tasks = [asyncio.ensure_future(op) for op in operations]
        assert len(tasks) == len(self.contenders), "one store (one connection) per contender"
        for task in tasks:
            task.add_done_callback(lambda _t: self.changed.set())
        self.arm()
        last: int | None = None if first == 0 else first - 1
        try:
            while True:
                await self._settle(tasks)
                with self._cond:
                    ready = [
                        c.index
                        for c in self.contenders
                        if c.pending is not None and not self._blocked(c)
                    ]
                    if not ready:
                        stuck = [c for c in self.contenders if c.pending is not None]
                        assert not stuck, f"every contender waits for another: {stuck}"
                        break
                    chosen = next((i for i in ready if i != last), ready[0])
                    self.contenders[chosen].passes += 1
                    self.contenders[chosen].pending = None
                    self._cond.notify_all()
                last = chosen
        finally:
            self.free()
        return list(await asyncio.gather(*tasks, return_exceptions=True))


class Race:
    """Contenders on one backend's shared state, and the schedule that interleaves them."""

    def __init__(
        self,
        stores: Sequence[Store],
        schedule: Callable[[Sequence[Coroutine[Any, Any, Any]], int], Awaitable[list[Any]]],
    ) -> None:
        self.stores = list(stores)
        self._schedule = schedule

    async def run(
        self, operations: Sequence[Coroutine[Any, Any, Any]], first: int = 0
    ) -> list[Any]:
        """Results of ``operations[n]`` run on ``stores[n]``, contender ``first`` first."""
        assert len(operations) == len(self.stores)
        return await self._schedule(operations, first)


async def _gather(operations: Sequence[Coroutine[Any, Any, Any]], first: int) -> list[Any]:
    order = [first, *(i for i in range(len(operations)) if i != first)]
    results = await asyncio.gather(*(operations[i] for i in order), return_exceptions=True)
    return [results[order.index(i)] for i in range(len(operations))]


@pytest.fixture(params=["memory", "sqlite"])
async def race(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Race]:
    """Two contenders: one memory store twice, or two SQLite stores on one file."""
    if request.param == "memory":
        memory = MemoryStore()
        await memory.open()
        try:
            yield Race([memory, memory], _gather)
        finally:
            await memory.close()
        return
    path = tmp_path / "race.sqlite3"
    gate = StatementGate(asyncio.get_running_loop(), path)
    monkeypatch.setattr(sqlite3, "connect", gate.connect(sqlite3.connect))
    stores = [SQLiteStore(path, timeout=GUARD_TIMEOUT) for _ in range(2)]
    opened: list[Store] = []
    try:
        for store in stores:  # one at a time: contender n is the n-th connection
            await store.open()
            opened.append(store)
        assert len(gate.contenders) == len(stores)
        yield Race(stores, gate.run)
    finally:
        gate.free()
        for store in opened:
            await store.close()


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
