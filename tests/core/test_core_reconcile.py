"""The reconciler: which messages it asks about, that it stores answers through the push
path (a later push of the same receipt is a duplicate), that several runs at once store
each event once, that providers without a status query are skipped and said so."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from notifykit import hookimpl
from notifykit.cli import cli
from notifykit.config import Config
from notifykit.errors import ProviderUnavailable
from notifykit.events import DeliveryReceipt, make_event_id
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    SendReceipt,
    SmsMessage,
    utcnow,
)
from notifykit.notifier import AsyncNotifier
from notifykit.plugins import get_plugin_manager
from notifykit.provider import CallbackRequest, CallbackResult, ProviderOptions, SmsProvider
from notifykit.store import MemoryStore, SQLiteStore, Store

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
ASKED: list[str] = []


class PollOptions(ProviderOptions):
    pass


def receipt_for(instance: str, vendor_id: str, status: str) -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=make_event_id(instance, vendor_id, status),
        provider=instance,
        provider_message_id=vendor_id,
        occurred_at=utcnow(),
        status=DeliveryStatus(status),
        vendor_status=status,
        raw={"id": vendor_id, "status": status},
    )


class PollProvider(SmsProvider[PollOptions]):
    """Vendor ids ``wait-*`` are still waiting, ``fail-*`` make the query fail, others
    are delivered. Pushes: body ``<id>:<status>``, built like the polled receipt."""

    name: ClassVar[str] = "polly"
    Options: ClassVar[type[ProviderOptions]] = PollOptions
    requires_templates: ClassVar[bool] = False

    async def send(self, message: SmsMessage) -> SendReceipt:
        return SendReceipt(provider_message_id=f"v-{message.message_id}")

    async def fetch_status(self, record: MessageRecord) -> list[DeliveryReceipt]:
        vendor_id = record.provider_message_id or ""
        ASKED.append(vendor_id)
        await asyncio.sleep(0)  # let concurrent runs interleave
        if vendor_id.startswith("wait-"):
            return []
        if vendor_id.startswith("fail-"):
            raise ProviderUnavailable("vendor down, key=SECRET-abc", provider=self.instance)
        return [receipt_for(self.instance, vendor_id, "delivered")]

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        vendor_id, _, status = request.body.decode().partition(":")
        return CallbackResult(events=[receipt_for(self.instance, vendor_id, status)])


class NoPoll(PollProvider):
    name: ClassVar[str] = "nopoll"
    fetch_status = SmsProvider.fetch_status  # type: ignore[assignment]


class Plugin:
    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(PollProvider)
        register(NoPoll)


@pytest.fixture(autouse=True)
def _reset() -> None:
    ASKED.clear()


def notifier(store: Store) -> AsyncNotifier:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin())
    config = Config.from_dict(
        {"providers": {"poll": {"type": "polly"}, "push": {"type": "nopoll"}}}
    )
    return AsyncNotifier(config, plugin_manager=pm, store=store)


async def accepted(
    store: Store, message_id: str, vendor_id: str, *, age: float = 600, provider: str = "poll"
) -> None:
    await store.create_message(
        MessageRecord(
            message_id=message_id,
            to=PHONE,
            template="t",
            created_at=utcnow() - timedelta(seconds=age),
        )
    )
    await store.update_message(
        message_id,
        attempts=[Attempt(provider=provider, outcome="accepted")],
        status=DeliveryStatus.ACCEPTED,
        provider=provider,
        provider_message_id=vendor_id,
    )


async def test_asks_about_old_unsettled_messages_and_stores_like_a_push() -> None:
    store = MemoryStore()
    async with notifier(store) as n:
        seen: list[str] = []
        n.subscribe(lambda e: seen.append(e.event_id))
        await accepted(store, "m-old", "done-1")
        await accepted(store, "m-young", "done-2", age=5)
        await accepted(store, "m-wait", "wait-3")
        await accepted(store, "m-skip", "x-4", provider="push")
        report = await n.reconcile(60)
        await n.callbacks.drain()
        assert sorted(ASKED) == ["done-1", "wait-3"]
        assert (report.checked, report.events, report.failed) == (2, 1, 0)
        assert report.providers["push"].skipped == 1
        assert "no status query" in (report.providers["push"].reason or "")
        record = await n.get_message("m-old")
        assert record is not None and record.status is DeliveryStatus.DELIVERED
        assert record.history[-1].source.startswith("receipt:")
        assert len(seen) == 1
        (inbox,) = await store.list_inbox()
        assert inbox.method == "POLL" and inbox.event_ids == [seen[0]]
        # The same receipt pushed later is a duplicate, not a second event.
        status, _h, _b = await n.handle_callback("poll", "POST", {}, b"done-1:delivered")
        assert status == 200
        assert len(await store.list_events()) == 1
        # A final message is not asked about again.
        ASKED.clear()
        await n.reconcile(timedelta(minutes=1))
        assert ASKED == ["wait-3"]


async def test_a_push_first_makes_the_polled_receipt_a_duplicate() -> None:
    store = MemoryStore()
    async with notifier(store) as n:
        await accepted(store, "m1", "done-1")
        await n.handle_callback("poll", "POST", {}, b"done-1:sent")
        report = await n.reconcile(0)
        assert report.events == 1  # delivered is news; the pushed "sent" was already there
        await n.handle_callback("poll", "POST", {}, b"done-1:delivered")
        assert len(await store.list_events()) == 2


async def test_failed_query_is_counted_with_its_class_only_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    async with notifier(store) as n:
        await accepted(store, "m1", "fail-1")
        await accepted(store, "m2", "done-2")
        report = await n.reconcile(0)
    assert (report.failed, report.events) == (1, 1)
    assert report.providers["poll"].reason == "ProviderUnavailable"
    assert "SECRET-abc" not in caplog.text


async def test_concurrent_runs_store_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "nk.sqlite3"
    first, second = SQLiteStore(path, timeout=5), SQLiteStore(path, timeout=5)
    async with notifier(first) as a, notifier(second) as b:
        for i in range(12):
            await accepted(first, f"m{i}", f"done-{i}")
        reports = await asyncio.gather(a.reconcile(0), b.reconcile(0), a.reconcile(0))
        assert sum(r.events for r in reports) == 12
        assert len(await first.list_events()) == 12
        for i in range(12):
            record = await first.get_message(f"m{i}")
            assert record is not None and record.status is DeliveryStatus.DELIVERED


async def test_limit_and_paging_reach_every_message_once() -> None:
    store = MemoryStore()
    async with notifier(store) as n:
        for i in range(130):
            await accepted(store, f"m{i:03d}", f"wait-{i:03d}", age=1000 - i)
        await n.reconcile(0, limit=120)
        assert [f"wait-{i:03d}" for i in range(120)] == ASKED  # oldest first, no repeats


async def test_bad_arguments_are_named() -> None:
    async with notifier(MemoryStore()) as n:
        with pytest.raises(ValueError, match="older_than"):
            await n.reconcile(-1)
        with pytest.raises(ValueError, match="limit"):
            await n.reconcile(0, limit=0)


def test_cli_reconcile_reports_and_exits_by_outcome(tmp_path: Path) -> None:
    db = tmp_path / "nk.sqlite3"
    toml = tmp_path / "notifykit.toml"
    toml.write_text(
        f'[providers.primary]\ntype = "console"\n\n[store]\nurl = "sqlite:///{db}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["reconcile", "--older-than", "90s", "--config", str(toml)])
    assert result.exit_code == 0, result.output
    assert "0 asked" in result.output and "older than 90 s" in result.output
    bad = runner.invoke(cli, ["reconcile", "--older-than", "soon", "--config", str(toml)])
    assert bad.exit_code == 2 and "not a duration" in bad.output
    as_json = runner.invoke(
        cli, ["reconcile", "--older-than", "2h", "--json", "--config", str(toml)]
    )
    assert as_json.exit_code == 0 and '"older_than": 7200.0' in as_json.output


def test_sync_notifier_reconciles_too() -> None:
    from notifykit.notifier import Notifier

    store = MemoryStore()
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin())
    config = Config.from_dict({"providers": {"poll": {"type": "polly"}}})
    with Notifier(config, plugin_manager=pm, store=store) as n:
        result = n.send(PHONE, template="t")
        report = n.reconcile(0)
        record = n.get_message(result.message_id)
    assert (report.checked, report.events) == (1, 1)
    assert record is not None and record.status is DeliveryStatus.DELIVERED
