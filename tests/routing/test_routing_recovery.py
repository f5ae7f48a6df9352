"""The evidence a send leaves before each vendor call, and the recovery sweep run by an
open notifier (on open, then on its timer)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from notifykit import AsyncNotifier
from notifykit.cli import cli
from notifykit.config import Config
from notifykit.default_plugins.memory import MemoryProvider
from notifykit.errors import ProviderUnavailable
from notifykit.models import Attempt, DeliveryStatus, MessageRecord, SendReceipt, SmsMessage, utcnow
from notifykit.store import SQLiteStore

from .conftest import CN, MakeRouter

pytestmark = pytest.mark.anyio


async def test_each_vendor_call_is_preceded_by_a_stored_started_attempt(
    make_router: MakeRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = make_router({"retry": {"attempts": 1}})
    seen: list[list[tuple[str, str]]] = []

    def spy(provider: MemoryProvider) -> None:
        original = provider.send

        async def send(message: SmsMessage) -> SendReceipt:
            (record,) = await harness.store.list_messages()
            seen.append([(a.provider, a.outcome) for a in record.attempts])
            assert record.attempts[-1].started_at is not None
            return await original(message)

        monkeypatch.setattr(provider, "send", send)

    spy(harness["primary"])
    spy(harness["backup"])
    harness["primary"].fail_next(ProviderUnavailable)

    result = await harness.router.send(SmsMessage(to=CN, template="verify_code"))

    assert seen == [
        [("primary", "started")],
        [("primary", "failed"), ("backup", "started")],
    ]
    record = await harness.store.get_message(result.message_id)
    assert record is not None
    assert [(a.provider, a.outcome) for a in record.attempts] == [
        ("primary", "failed"),
        ("backup", "accepted"),
    ]
    assert all(a.started_at is not None for a in record.attempts)
    assert record.lease_until is not None and record.lease_until > record.created_at


def _config(db: Path, **store: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {"m": {"type": "memory"}},
            "store": {"url": f"sqlite:///{db}", **store},
        }
    )


async def _left_by_a_dead_process(db: Path, message_id: str, *, started: bool) -> None:
    store = SQLiteStore(db)
    await store.open()
    try:
        past = utcnow() - timedelta(seconds=1)
        await store.create_message(
            MessageRecord(message_id=message_id, to=CN, template="t", lease_until=past)
        )
        if started:
            await store.update_message(
                message_id, attempts=[Attempt(provider="m", outcome="started", started_at=past)]
            )
    finally:
        await store.close()


async def test_opening_a_notifier_resolves_what_a_dead_process_left(tmp_path: Path) -> None:
    db = tmp_path / "nk.db"
    await _left_by_a_dead_process(db, "reached", started=True)
    await _left_by_a_dead_process(db, "never", started=False)

    async with AsyncNotifier(_config(db, recovery_interval=0)) as notifier:
        reached = await notifier.get_message("reached")
        never = await notifier.get_message("never")

    assert reached is not None and reached.status is DeliveryStatus.UNKNOWN
    assert never is not None and never.status is DeliveryStatus.FAILED


async def test_an_open_notifier_sweeps_on_its_timer(tmp_path: Path) -> None:
    db = tmp_path / "nk.db"
    async with AsyncNotifier(_config(db, recovery_interval=0.05)) as notifier:
        # Left after this notifier opened: only the timer can find it.
        await _left_by_a_dead_process(db, "later", started=True)
        async with asyncio.timeout(30):
            while True:
                record = await notifier.get_message("later")
                assert record is not None
                if record.status is not DeliveryStatus.PENDING:
                    break
                await asyncio.sleep(0.05)
    assert record.status is DeliveryStatus.UNKNOWN
    assert not notifier.recovery.running  # stopped with the notifier


def test_log_status_unknown_shows_the_call_that_needs_a_human(tmp_path: Path) -> None:
    db = tmp_path / "nk.db"
    asyncio.run(_left_by_a_dead_process(db, "reached", started=True))
    asyncio.run(_left_by_a_dead_process(db, "never", started=False))
    config = tmp_path / "notifykit.toml"
    config.write_text(
        f'[providers.m]\ntype = "memory"\n\n[store]\nurl = "sqlite:///{db}"\n', encoding="utf-8"
    )
    # Any command that opens a notifier runs the sweep; `log` alone only reads.
    assert "pending" in CliRunner().invoke(cli, ["log", "--config", str(config)]).output
    opened = CliRunner().invoke(cli, ["send", CN, "--template", "t", "--config", str(config)])
    assert opened.exit_code in (0, 1), opened.output

    shown = CliRunner().invoke(cli, ["log", "--status", "unknown", "--config", str(config)])

    assert shown.exit_code == 0, shown.output
    assert "reached" in shown.output and "never" not in shown.output
    assert "m started" in shown.output and "recovery" in shown.output
    assert CN not in shown.output  # masked


def test_log_says_which_calls_may_have_reached_a_vendor_in_time_order() -> None:
    """``log`` on an ``unknown`` message: a call that ended in UnknownOutcome reads as
    "outcome unknown", never "failed"; a call with no recorded outcome as "started"; each
    after the status changes made before it began, a refused call not at all."""
    from notifykit.cli.callbacks import _history_lines
    from notifykit.models import StatusChange

    t0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    record = MessageRecord(
        message_id="m1",
        to=CN,
        template="t",
        status=DeliveryStatus.UNKNOWN,
        history=[
            StatusChange(status=DeliveryStatus.PENDING, at=t0, source="send"),
            StatusChange(
                status=DeliveryStatus.UNKNOWN, at=t0 + timedelta(seconds=9), source="send"
            ),
        ],
        attempts=[
            Attempt(
                provider="a",
                outcome="failed",
                error_type="ProviderUnavailable",
                started_at=t0 + timedelta(seconds=1),
            ),
            Attempt(
                provider="b",
                outcome="failed",
                error_type="UnknownOutcome",
                started_at=t0 + timedelta(seconds=2),
            ),
            Attempt(provider="c", outcome="started", started_at=t0 + timedelta(seconds=3)),
        ],
    )
    record.attempts.reverse()  # stored order is not time order: the lines are
    lines = [line.strip().split("  ", 1)[1] for line in _history_lines(record)]
    assert lines == [
        "pending      send",
        "attempt      b outcome unknown (UnknownOutcome): the vendor may have accepted it",
        "attempt      c started, no outcome recorded: it may have reached the vendor",
        "unknown      send",
    ], lines
