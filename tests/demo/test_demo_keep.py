"""``notifykit demo --keep DIR``: a relative DIR is used as given (not DIR/DIR), a second run
into the same DIR gets fresh vendor ids and settles every message, and the exit status says
whether every message is accounted for."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import notifykit.demo
from notifykit import AsyncNotifier
from notifykit.cli import cli
from notifykit.demo import DemoOutcome, DemoSettings, Row, run_demo
from notifykit.events import DeliveryReceipt


def _vendor_ids(store: Path, message_ids: list[str]) -> set[tuple[str, str]]:
    conn = sqlite3.connect(store)
    try:
        rows = conn.execute(
            "SELECT message_id, provider, provider_message_id FROM messages"
        ).fetchall()
    finally:
        conn.close()
    return {(provider, vendor_id) for mid, provider, vendor_id in rows if mid in message_ids}


def test_keep_a_relative_dir_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    kept = Path("kept")
    outcomes = []
    for _ in range(2):
        outcomes.append(
            run_demo(
                DemoSettings(count=6, keep=kept, echo=lambda _: None, progress=False, pace=0.0)
            )
        )
    # One folder: the configuration's store path is relative to the configuration's folder.
    assert not (tmp_path / "kept" / "kept").exists()
    assert 'url = "sqlite:///notifykit.sqlite3"' in (kept / "notifykit.toml").read_text()
    first, second = outcomes
    for outcome in outcomes:
        assert outcome.accounted, [(r.index, r.status) for r in outcome.rows]
        assert outcome.verification is not None and outcome.verification.as_expected
    # Every message of the second run was settled by its own receipt: its vendor ids are new.
    ids = [
        _vendor_ids(
            tmp_path / "kept" / "notifykit.sqlite3",
            [r.message_id for r in outcome.rows if r.message_id],
        )
        for outcome in outcomes
    ]
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert len(second.rows) == len(first.rows)
    # The second run's summary counts its own receipts, not the first run's as well.
    for outcome in outcomes:
        mine = {r.message_id for r in outcome.rows if r.message_id}
        assert outcome.receipts == asyncio.run(_receipts_of(kept / "notifykit.toml", mine))


async def _receipts_of(config: Path, message_ids: set[str | None]) -> int:
    async with AsyncNotifier(config) as notifier:
        events = await notifier.store.list_events()
    return sum(1 for e in events if isinstance(e, DeliveryReceipt) and e.message_id in message_ids)


def test_exit_status_is_1_when_a_message_is_not_accounted_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcome = DemoOutcome(
        rows=[
            Row(
                index=1, phone="+8615612341090", message_id="a", status="delivered", accounted=True
            ),
            Row(index=2, phone="+8615612341091", message_id="b", status="sent"),
        ]
    )
    monkeypatch.setattr(notifykit.demo, "run_demo", lambda settings: outcome)
    result = CliRunner().invoke(cli, ["demo", "--count", "2"])
    assert result.exit_code == 1, result.output
    assert "1 of 2 messages are not accounted for" in result.output
    assert "#2 (sent)" in result.output
