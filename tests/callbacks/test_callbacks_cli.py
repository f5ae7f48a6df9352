"""``notifykit log`` and ``notifykit events`` over a SQLite store the receiver filled."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from notifykit.cli import cli
from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import Attempt, DeliveryStatus, MessageRecord
from notifykit.store import InboxEntry, QuarantineEntry, SQLiteStore

PHONE = "+8615080921234"
AT = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "cli.sqlite3"
    path = tmp_path / "notifykit.toml"
    path.write_text(
        f'[providers.fake]\ntype = "memory"\n\n[store]\nurl = "sqlite:///{db}"\n\n'
        '[callbacks]\ntoken = "cli-secret-token"\n',
        encoding="utf-8",
    )

    async def fill() -> None:
        store = SQLiteStore(db)
        await store.open()
        for n, (to, vendor_id) in enumerate([(PHONE, "t1"), ("+8613800138000", "t2")]):
            await store.create_message(
                MessageRecord(message_id=f"m{n + 1}", to=to, template="verify_code")
            )
            await store.update_message(
                f"m{n + 1}",
                attempts=[Attempt(provider="fake", outcome="accepted")],
                status=DeliveryStatus.ACCEPTED,
                provider="fake",
                provider_message_id=vendor_id,
            )
        entry = InboxEntry(provider="fake", method="POST", path="/callbacks/fake/***")
        await store.ingest(
            entry,
            [
                DeliveryReceipt(
                    event_id="e-receipt",
                    provider="fake",
                    provider_message_id="t1",
                    phone=PHONE,
                    occurred_at=AT,
                    received_at=AT,
                    status=DeliveryStatus.DELIVERED,
                    vendor_status="1",
                ),
                InboundMessage(
                    event_id="e-reply",
                    provider="fake",
                    provider_message_id="t1",
                    phone=PHONE,
                    occurred_at=AT.replace(minute=5),
                    received_at=AT.replace(minute=5),
                    text="收到",
                ),
                DeliveryReceipt(
                    event_id="e-orphan",
                    provider="fake",
                    provider_message_id="t-unknown",
                    phone=None,
                    occurred_at=AT,
                    received_at=AT.replace(minute=1),
                    status=DeliveryStatus.UNDELIVERED,
                    vendor_status="0",
                ),
            ],
        )
        for reason in ("first", "second"):
            await store.quarantine(
                QuarantineEntry(
                    provider="fake",
                    method="POST",
                    path="/callbacks/fake/***",
                    body=b"mobile=15080921234&x=\xff",
                    reason=reason,
                )
            )
        await store.close()

    asyncio.run(fill())
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_events_json_shape_newest_first(config: Path) -> None:
    code, out = run("events", "--json", "--config", str(config))
    assert code == 0
    events = json.loads(out)
    assert [e["event_id"] for e in events] == ["e-reply", "e-orphan", "e-receipt"]
    reply, orphan, receipt = events
    for event in events:
        for key in (
            "event_id",
            "kind",
            "provider",
            "provider_message_id",
            "phone",
            "occurred_at",
            "received_at",
            "message_id",
        ):
            assert key in event
    assert (reply["kind"], reply["text"], reply["message_id"]) == ("reply", "收到", "m1")
    assert (receipt["kind"], receipt["status"], receipt["phone"]) == ("receipt", "delivered", PHONE)
    assert orphan["message_id"] is None and orphan["status"] == "undelivered"
    assert receipt["received_at"] == "2024-05-01T09:00:00Z"
    code, out = run("events", "--json", "--limit", "1", "--config", str(config))
    assert [e["event_id"] for e in json.loads(out)] == ["e-reply"]


def test_quarantine_json_has_the_raw_body(config: Path) -> None:
    code, out = run("events", "--quarantine", "--json", "--config", str(config))
    assert code == 0
    entries = json.loads(out)
    assert [e["reason"] for e in entries] == ["second", "first"]
    assert entries[0]["body"] == "mobile=15080921234&x=\ufffd"
    assert entries[0]["provider"] == "fake" and entries[0]["received_at"]


def test_human_output_masks_numbers(config: Path) -> None:
    code, out = run("events", "--config", str(config))
    assert code == 0 and "+86150****1234" in out and PHONE not in out
    code, out = run("events", "--quarantine", "--config", str(config))
    assert code == 0 and "second" in out and "15080921234" not in out
    code, out = run("log", "--config", str(config))
    assert code == 0 and "+86150****1234" in out and PHONE not in out
    assert "收到" in out and "delivered" in out
    assert "cli-secret-token" not in out


def test_log_json_with_history_replies_and_filters(config: Path) -> None:
    code, out = run("log", "--json", "--config", str(config))
    assert code == 0
    messages = json.loads(out)
    assert [m["message_id"] for m in messages] == ["m2", "m1"]
    m1 = messages[1]
    assert m1["status"] == "delivered" and m1["to"] == PHONE
    assert [h["status"] for h in m1["history"]] == ["accepted", "delivered"]
    assert [r["text"] for r in m1["replies"]] == ["收到"]
    assert m1["attempts"][0]["provider"] == "fake"
    for phone in (PHONE, "+86 150 8092 1234", "0086 150 8092 1234"):
        code, out = run("log", "--json", "--phone", phone, "--config", str(config))
        assert code == 0 and [m["message_id"] for m in json.loads(out)] == ["m1"], phone
    code, out = run("log", "--json", "--status", "accepted", "--config", str(config))
    assert [m["message_id"] for m in json.loads(out)] == ["m2"]
    code, out = run("log", "--json", "--limit", "1", "--config", str(config))
    assert [m["message_id"] for m in json.loads(out)] == ["m2"]


def test_bad_phone_and_status_are_usage_errors(config: Path) -> None:
    code, out = run("log", "--phone", "not-a-number", "--config", str(config))
    assert code == 2 and "--phone" in out
    code, _ = run("log", "--status", "bogus", "--config", str(config))
    assert code == 2


def test_pending_shows_what_no_subscriber_has_seen_and_who_holds_it(config: Path) -> None:
    db = config.parent / "cli.sqlite3"

    async def dispatch_some() -> None:
        store = SQLiteStore(db)
        await store.open()
        try:
            (first,) = await store.claim_dispatch("host-a:101:abc", limit=1, lease=3600)
            assert first.event_id == "e-receipt"  # stored first
            assert await store.ack_dispatch("host-a:101:abc", ["e-receipt"]) == 1
            (held,) = await store.claim_dispatch("host-b:202:def", limit=1, lease=3600)
            assert held.event_id == "e-reply"
        finally:
            await store.close()

    asyncio.run(dispatch_some())
    code, out = run("events", "--pending", "--json", "--config", str(config))
    assert code == 0, out
    pending = json.loads(out)
    assert [(p["event_id"], p["claimed_by"]) for p in pending] == [
        ("e-reply", "host-b:202:def"),
        ("e-orphan", None),
    ]
    assert pending[0]["claimed_until"] is not None and pending[1]["claimed_until"] is None
    assert pending[0]["text"] == "收到" and pending[1]["status"] == "undelivered"
    code, out = run("events", "--pending", "--config", str(config))
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 2
    assert "e-reply" not in out and "claimed by host-b:202:def until" in lines[0]
    assert "+86150****1234" in lines[0] and PHONE not in out
    assert lines[1].endswith("unclaimed")
    code, out = run("events", "--pending", "--limit", "1", "--json", "--config", str(config))
    assert [p["event_id"] for p in json.loads(out)] == ["e-reply"]
    code, out = run("events", "--pending", "--quarantine", "--config", str(config))
    assert code == 2 and "cannot be used together" in out
