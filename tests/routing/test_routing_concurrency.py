"""1000 concurrent sends on one event loop while one provider fails."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from notifykit.models import DeliveryStatus, SmsMessage

pytestmark = pytest.mark.anyio

N = 1000


def message(i: int) -> SmsMessage:
    return SmsMessage(
        to=f"+86156{i:08d}",
        template="verify_code",
        params={"code": str(i)},
        idempotency_key=f"k{i}",
    )


async def test_thousand_concurrent_sends_with_a_failing_provider(make_router) -> None:
    h = make_router(
        {"recipient_min_interval": 60, "breaker": {"failure_threshold": 5, "cooldown": 600}},
        providers={
            "primary": {"fail": "ProviderUnavailable", "delay": 0.002},
            "backup": {"delay": 0.002, "balance": 10 * N},
        },
    )
    started = time.perf_counter()
    results = await asyncio.gather(*(h.router.send(message(i)) for i in range(N)))
    elapsed = time.perf_counter() - started

    assert Counter(r.provider for r in results) == {"backup": N}
    assert len({r.message_id for r in results}) == N
    assert len(h["backup"].outbox) == N
    # Every send that reached the failing provider shows it; none was lost or doubled.
    sent_to = Counter(m.to for m in h["backup"].outbox)
    assert set(sent_to.values()) == {1}
    for r in results:
        assert r.attempts[-1].outcome == "accepted"
        assert r.attempts[0].provider == "primary"
        assert r.attempts[0].outcome in {"failed", "skipped"}
    records = await h.store.list_messages()
    assert len(records) == N
    assert all(r.status is DeliveryStatus.ACCEPTED for r in records)
    assert h.router.health()["primary"]["state"] == "open"
    assert elapsed < 15

    # Once open, the next wave does not touch the failing provider at all.
    calls = h["primary"].calls
    wave = await asyncio.gather(*(h.router.send(message(N + i)) for i in range(100)))
    assert h["primary"].calls == calls
    assert all(r.attempts[0].outcome == "skipped" for r in wave)
