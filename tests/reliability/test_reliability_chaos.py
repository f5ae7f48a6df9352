"""Chaos: 2,000 sends over two faulty Veesing sandboxes, one stopped mid-run.

Final state of a send: the status its stored record holds once ``send`` has returned or
raised: ``accepted`` (a vendor took it), ``failed`` (no provider took it), or ``unknown``
(the send stopped on an attempt that may have reached a vendor). ``pending`` is not final:
a record left pending, or missing, is a lost message.

A copy is a message a sandbox accepted for the send's number and code. Every copy must be
explained by an attempt: the accepted one, or one that ended in ``UnknownOutcome`` (the
request left, no answer came). A second copy can therefore only exist where an attempt
ended in UnknownOutcome and the policy (``on_unknown_outcome = "failover"`` here) let the
send go on to the other sandbox.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

import pytest

from notifykit import AsyncNotifier
from notifykit.config import Config
from notifykit.errors import NotifyKitError
from notifykit.models import DeliveryStatus
from notifykit.store import SQLiteStore

from .conftest import APP_ID, APP_KEY, StartSandbox

pytestmark = pytest.mark.anyio

SENDS = 2000
CONCURRENCY = 100
SLOW_FROM, SLOW_UNTIL = 300, 450
"""Between these counts of completed sends, sandbox ``a`` answers after the provider's
timeout, having accepted the message: the UnknownOutcome that may become a second copy."""
KILL_AT = 700
"""Sends completed before sandbox ``a`` is stopped."""
FINAL = {DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN}
FAULTS = {"error_rate": 0.08, "hang_rate": 0.03, "garbage_rate": 0.05}


def phone(i: int) -> str:
    return f"+86156{i:08d}"


def code(i: int) -> str:
    return f"{100000 + i}"


async def test_chaos_loses_nothing_and_duplicates_only_after_unknown_outcome(
    sandboxes: StartSandbox, tmp_path: Path
) -> None:
    box_a, server_a = sandboxes(seed=1, **FAULTS)
    box_b, server_b = sandboxes(seed=2, **FAULTS)
    db = tmp_path / "chaos.sqlite3"
    config = Config.from_dict(
        {
            "providers": {
                name: {
                    "type": "veesing",
                    "app_id": APP_ID,
                    "app_key": APP_KEY,
                    "base_url": server.url,
                    "timeout": 0.3,
                }
                for name, server in (("a", server_a), ("b", server_b))
            },
            "templates": {"verify": {"a": {"template_id": "540"}, "b": {"template_id": "540"}}},
            "routing": {
                "providers": ["a", "b"],
                "on_unknown_outcome": "failover",
                "deadline": 5,
                "retry": {"attempts": 2, "initial_delay": "10ms", "max_delay": "20ms"},
                "breaker": {"failure_threshold": 5, "cooldown": "300ms"},
            },
            "store": {"url": f"sqlite:///{db}"},
        }
    )
    outcomes: collections.Counter[str] = collections.Counter()
    done = 0
    killed = asyncio.Event()
    todo = iter(range(SENDS))
    started = time.monotonic()

    async with AsyncNotifier(config) as notifier:

        async def worker() -> None:
            nonlocal done
            for i in todo:
                try:
                    await notifier.send(phone(i), template="verify", params={"code": code(i)})
                    outcomes["returned"] += 1
                except NotifyKitError as exc:
                    outcomes[type(exc).__name__] += 1
                done += 1

        async def kill_a() -> None:
            while done < SLOW_FROM:
                await asyncio.sleep(0.01)
            box_a.configure(latency=0.4)
            while done < SLOW_UNTIL:
                await asyncio.sleep(0.01)
            box_a.configure(latency=0.0)
            while done < KILL_AT:
                await asyncio.sleep(0.01)
            box_a.release_hangs()
            await asyncio.to_thread(server_a.stop, 5.0)
            killed.set()

        killer = asyncio.create_task(kill_a())
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), 45)
        await asyncio.wait_for(killer, 10)
    elapsed = time.monotonic() - started

    store = SQLiteStore(db)
    await store.open()
    try:
        records = await store.list_messages()
    finally:
        await store.close()

    # Exactly one record per send, each in a final state: nothing lost, nothing doubled.
    by_phone = collections.Counter(r.to for r in records)
    assert len(records) == SENDS, f"{len(records)} records for {SENDS} sends"
    assert set(by_phone) == {phone(i) for i in range(SENDS)}
    assert max(by_phone.values()) == 1
    statuses = collections.Counter(r.status for r in records)
    assert set(statuses) <= FINAL, f"non-final states: {statuses}"

    copies: collections.Counter[tuple[str, str]] = collections.Counter()
    for box in (box_a, box_b):
        for sent in box.state.sent:
            copies[("+86" + sent.phone, sent.variables)] += 1
    report: collections.Counter[str] = collections.Counter()
    for i, record in enumerate(sorted(records, key=lambda r: r.to)):
        assert record.to == phone(i)
        n = copies[(record.to, code(i))]
        accepted = [a for a in record.attempts if a.outcome == "accepted"]
        unknown = [a for a in record.attempts if a.error_type == "UnknownOutcome"]
        assert len(accepted) <= 1
        # Each copy is explained by the accepted attempt or an UnknownOutcome attempt.
        assert len(accepted) <= n <= len(accepted) + len(unknown), (record.attempts, n)
        if n >= 2:
            assert unknown and record.attempts.index(unknown[0]) < len(record.attempts) - 1
            report["second_copy_after_unknown_outcome"] += 1
        if record.status is DeliveryStatus.ACCEPTED:
            assert accepted and record.provider == accepted[0].provider
            box = box_a if record.provider == "a" else box_b
            assert any("+86" + s.phone == record.to for s in box.state.sent)
        else:
            assert not accepted
        if unknown and n == 0:
            report["unknown_outcome_not_delivered"] += 1
        if unknown and n == 1 and not accepted:
            report["unknown_outcome_delivered_once"] += 1

    assert killed.is_set()
    assert report["second_copy_after_unknown_outcome"] > 0  # the slow window made some
    assert statuses[DeliveryStatus.ACCEPTED] > SENDS // 2
    assert outcomes["returned"] == statuses[DeliveryStatus.ACCEPTED]
    print(
        f"\nchaos: {SENDS} sends in {elapsed:.1f}s; records {len(records)}; "
        f"statuses {dict(sorted((s.value, n) for s, n in statuses.items()))}; "
        f"raised {dict(o for o in outcomes.items() if o[0] != 'returned')}; "
        f"copies a={len(box_a.state.sent)} b={len(box_b.state.sent)}; "
        f"faults a={dict(box_a.state.faults_injected)} b={dict(box_b.state.faults_injected)}; "
        f"{dict(report)}"
    )
