"""Notifiers with ``[shared_state]``: breakers and the recipient guard shared by two
notifiers (two processes' worth of state: own routers, own clients), and ``health()``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from notifykit import AsyncNotifier, Config
from notifykit.errors import RecipientRateLimited
from notifykit.models import Attempt, DeliveryStatus, MessageRecord, utcnow
from notifykit.store import SQLiteStore

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

RedisState = pytest.importorskip("notifykit.shared.redis").RedisState

PHONE = "+8615612341090"


def config(url: str, prefix: str, **routing: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "down": {"type": "memory", "fail": "ProviderUnavailable"},
                "backup": {"type": "memory"},
            },
            "routing": {
                "providers": ["down", "backup"],
                "retry": {"attempts": 1},
                "breaker": {"failure_threshold": 2, "cooldown": 600},
                **routing,
            },
            "shared_state": {"url": url, "key_prefix": prefix, "timeout": 10},
        }
    )


async def test_a_breaker_opened_by_one_notifier_skips_the_vendor_for_another(
    redis_url: str, redis_prefix: str
) -> None:
    async with (
        AsyncNotifier(config(redis_url, redis_prefix)) as a,
        AsyncNotifier(config(redis_url, redis_prefix)) as b,
    ):
        for n in range(2):
            result = await a.send(f"+86156123410{n:02d}", template="t")
            assert [(x.provider, x.outcome) for x in result.attempts] == [
                ("down", "failed"),
                ("backup", "accepted"),
            ]
        down_b = b.providers["down"]
        result = await b.send("+8615612341099", template="t")
        assert [(x.provider, x.outcome) for x in result.attempts] == [
            ("down", "skipped"),
            ("backup", "accepted"),
        ]
        assert "circuit open (2 consecutive failures" in (result.attempts[0].error_message or "")
        assert down_b.calls == 0  # type: ignore[attr-defined]
        health = await b.health()
        assert health["down"]["state"] == "open" and health["down"]["shared_state"] == "redis"
        assert health["backup"]["shared_state"] == "redis"


async def test_the_recipient_guard_lives_in_redis(redis_url: str, redis_prefix: str) -> None:
    cfg = config(redis_url, redis_prefix, recipient_min_interval=600, providers=["backup"])
    async with AsyncNotifier(cfg) as a, AsyncNotifier(cfg) as b:
        await a.send(PHONE, template="t")
        with pytest.raises(RecipientRateLimited):
            await b.send(PHONE, template="t")
        # The store (memory://, one per notifier) never saw the claim: Redis holds it.
        assert await b.store.check_recipient(PHONE, 600) is None


async def test_an_unreachable_redis_never_stops_a_send(redis_prefix: str) -> None:
    cfg = config("redis://127.0.0.1:1/0", redis_prefix, recipient_min_interval=600)
    async with AsyncNotifier(cfg) as notifier:
        result = await notifier.send(PHONE, template="t")
        assert result.provider == "backup"
        with pytest.raises(RecipientRateLimited):  # the store's guard meanwhile
            await notifier.send(PHONE, template="t")
        health = await notifier.health()
        assert health["down"]["shared_state"].startswith("local (redis unreachable since")


def test_without_the_client_the_url_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from notifykit.errors import ConfigError

    for name in [m for m in sys.modules if m.startswith(("notifykit.shared.redis", "redis"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigError, match=r"notifykit\[redis\]"):
        AsyncNotifier(config("redis://127.0.0.1:6379/0", "x:"))


async def test_the_recovery_sweep_gives_back_redis_claims_of_sends_that_never_reached_a_vendor(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    db = tmp_path / "nk.db"
    cfg = Config.from_dict(
        {
            "providers": {"backup": {"type": "memory"}},
            "routing": {"providers": ["backup"], "recipient_min_interval": 600},
            "shared_state": {"url": redis_url, "key_prefix": redis_prefix, "timeout": 10},
            "store": {"url": f"sqlite:///{db}", "recovery_interval": 0},
        }
    )
    never, reached, taken = "+8615612341001", "+8615612341002", "+8615612341003"
    # What a process killed before (never) and during (reached) its vendor call left: a
    # pending record past its lease, and its number claimed in Redis for it. The third
    # dead send's claim was since taken by another message, which keeps it.
    store = SQLiteStore(db)
    await store.open()
    dead = RedisState.from_config(cfg, store, {})
    try:
        past = utcnow() - timedelta(seconds=1)
        for message_id, phone in (("never", never), ("reached", reached), ("taken", taken)):
            await store.create_message(
                MessageRecord(message_id=message_id, to=phone, template="t", lease_until=past)
            )
        await store.update_message(
            "reached", attempts=[Attempt(provider="backup", outcome="started", started_at=past)]
        )
        assert await dead.check_recipient(never, 600, message_id="never") is None
        assert await dead.check_recipient(reached, 600, message_id="reached") is None
        assert await dead.check_recipient(taken, 600, message_id="another") is None
    finally:
        await dead.close()
        await store.close()

    async with AsyncNotifier(cfg) as notifier:  # opening it sweeps
        statuses = {m: (await notifier.get_message(m)) for m in ("never", "reached", "taken")}
        assert {m: r.status if r else None for m, r in statuses.items()} == {
            "never": DeliveryStatus.FAILED,
            "reached": DeliveryStatus.UNKNOWN,
            "taken": DeliveryStatus.FAILED,
        }
        # The number whose send never reached a vendor may be sent to again at once.
        assert (await notifier.send(never, template="t")).provider == "backup"
        # The vendor may have the other one's message: its claim holds the interval.
        with pytest.raises(RecipientRateLimited):
            await notifier.send(reached, template="t")
        # Another message's claim is never given back for a dead one.
        with pytest.raises(RecipientRateLimited):
            await notifier.send(taken, template="t")
