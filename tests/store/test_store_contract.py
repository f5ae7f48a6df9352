"""The Store contract, run against every backend in ``STORE_BACKENDS`` (conftest.py)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifykit import models
from notifykit.config import Config
from notifykit.default_plugins.memory import MemoryOptions, MemoryProvider
from notifykit.errors import InvalidMessage, StoreError
from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import (
    Attempt,
    DeliveryStatus,
    MessageRecord,
    SmsMessage,
    VerificationCheckStatus,
    VerificationRecord,
    VerificationStatus,
)
from notifykit.provider import ProviderContext
from notifykit.routing import Router
from notifykit.store import InboxEntry, QuarantineEntry, Store
from notifykit.store.base import IdempotencyHolder, VerificationCheckStep, VerificationClaim

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PHONE = "+8615612341090"
OTHER = "+8613800138000"


def receipt(
    event_id: str,
    status: DeliveryStatus,
    *,
    vendor_id: str = "task-1",
    phone: str | None = PHONE,
    minutes: int = 1,
    provider: str = "vs",
) -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        provider=provider,
        provider_message_id=vendor_id,
        phone=phone,
        occurred_at=T0 + timedelta(minutes=minutes),
        received_at=T0 + timedelta(minutes=minutes, seconds=1),
        status=status,
        vendor_status=status.value,
        raw={"taskid": vendor_id},
    )


def reply(
    event_id: str, text: str, *, vendor_id: str = "task-1", minutes: int = 2
) -> InboundMessage:
    return InboundMessage(
        event_id=event_id,
        provider="vs",
        provider_message_id=vendor_id,
        phone=PHONE,
        occurred_at=T0 + timedelta(minutes=minutes),
        received_at=T0 + timedelta(minutes=minutes, seconds=1),
        text=text,
    )


def entry(body: bytes = b"mobile=1&taskid=task-1") -> InboxEntry:
    return InboxEntry(provider="vs", method="POST", path="/callbacks/vs/***", body=body)


async def sent(
    store: Store, message_id: str = "m1", *, to: str = PHONE, vendor_id: str = "task-1"
) -> None:
    await store.create_message(MessageRecord(message_id=message_id, to=to, template="verify_code"))
    await store.update_message(
        message_id,
        attempts=[Attempt(provider="vs", outcome="accepted")],
        status=DeliveryStatus.ACCEPTED,
        provider="vs",
        provider_message_id=vendor_id,
    )


async def test_message_recorded_then_updated_with_attempts_and_history(store: Store) -> None:
    await store.create_message(MessageRecord(message_id="m1", to=PHONE, template="verify_code"))
    pending = await store.get_message("m1")
    assert pending is not None and pending.status is DeliveryStatus.PENDING
    failed = Attempt(provider="a", outcome="failed", error_type="ProviderUnavailable")
    await store.update_message("m1", attempts=[failed])
    await store.update_message(
        "m1",
        attempts=[failed, Attempt(provider="vs", outcome="accepted")],
        status=DeliveryStatus.ACCEPTED,
        provider="vs",
        provider_message_id="task-1",
        remaining_credits=41,
    )
    record = await store.get_message("m1")
    assert record is not None
    assert [a.provider for a in record.attempts] == ["a", "vs"]
    assert (record.provider, record.provider_message_id, record.remaining_credits) == (
        "vs",
        "task-1",
        41,
    )
    assert [(h.status, h.source) for h in record.history] == [(DeliveryStatus.ACCEPTED, "send")]
    assert await store.get_message("nope") is None


async def test_update_of_unknown_message_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown message"):
        await store.update_message("ghost", attempts=[])


async def test_list_messages_newest_first_with_filters(store: Store) -> None:
    await sent(store, "m1", vendor_id="t1")
    await store.create_message(MessageRecord(message_id="m2", to=OTHER, template="t"))
    await sent(store, "m3", vendor_id="t3")
    assert [r.message_id for r in await store.list_messages()] == ["m3", "m2", "m1"]
    assert [r.message_id for r in await store.list_messages(limit=2)] == ["m3", "m2"]
    assert [r.message_id for r in await store.list_messages(phone=OTHER)] == ["m2"]
    pending = await store.list_messages(status=DeliveryStatus.PENDING)
    assert [r.message_id for r in pending] == ["m2"]
    both = await store.list_messages(phone=PHONE, status=DeliveryStatus.ACCEPTED, limit=1)
    assert [r.message_id for r in both] == ["m3"]


async def _accepted_at(store: Store, message_id: str, created: datetime, vendor: str) -> None:
    await store.create_message(
        MessageRecord(message_id=message_id, to=PHONE, template="t", created_at=created)
    )
    await store.update_message(
        message_id,
        attempts=[Attempt(provider="vs", outcome="accepted")],
        status=DeliveryStatus.ACCEPTED,
        provider="vs",
        provider_message_id=vendor,
    )


async def test_list_unsettled_oldest_first_within_bounds(store: Store) -> None:
    # Created out of order, with and without fractional seconds: ordered by the instant.
    await _accepted_at(store, "m-late", T0 + timedelta(minutes=3), "t3")
    await _accepted_at(store, "m-early", T0 + timedelta(seconds=59, microseconds=500), "t1")
    await _accepted_at(store, "m-mid", T0 + timedelta(minutes=1), "t2")
    await store.create_message(
        MessageRecord(message_id="m-pending", to=PHONE, template="t", created_at=T0)
    )
    found = await store.list_unsettled(created_before=T0 + timedelta(minutes=5))
    assert [r.message_id for r in found] == ["m-early", "m-mid", "m-late"]
    assert found[0].provider_message_id == "t1"
    before = await store.list_unsettled(created_before=T0 + timedelta(minutes=1))
    assert [r.message_id for r in before] == ["m-early", "m-mid"]  # the bound is inclusive
    page = await store.list_unsettled(
        created_before=T0 + timedelta(minutes=5), created_after=found[0].created_at, limit=1
    )
    assert [r.message_id for r in page] == ["m-mid"]
    assert await store.list_unsettled(created_before=T0 + timedelta(seconds=30)) == []


async def test_list_unsettled_leaves_out_final_messages(store: Store) -> None:
    await _accepted_at(store, "m1", T0, "t1")
    await _accepted_at(store, "m2", T0 + timedelta(seconds=1), "t2")
    await store.ingest(entry(), [receipt("e1", DeliveryStatus.DELIVERED, vendor_id="t1")])
    await store.ingest(entry(), [receipt("e2", DeliveryStatus.SENT, vendor_id="t2")])
    found = await store.list_unsettled(created_before=T0 + timedelta(hours=1))
    assert [(r.message_id, r.status) for r in found] == [("m2", DeliveryStatus.SENT)]


async def test_receipt_correlates_and_moves_status_forward_only(store: Store) -> None:
    await sent(store)
    delivered = receipt("e-delivered", DeliveryStatus.DELIVERED, minutes=3)
    late_sent = receipt("e-sent", DeliveryStatus.SENT, minutes=2)
    new = await store.ingest(entry(), [delivered])
    assert [e.message_id for e in new] == ["m1"]
    assert [e.message_id for e in await store.ingest(entry(), [late_sent])] == ["m1"]
    record = await store.get_message("m1")
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert [h.status for h in record.history] == [DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED]
    assert record.history[-1].at == delivered.occurred_at
    assert record.history[-1].source == "receipt:e-delivered"


async def test_repeated_event_is_stored_once_but_every_request_is_in_the_inbox(
    store: Store,
) -> None:
    await sent(store)
    first = receipt("e1", DeliveryStatus.DELIVERED)
    assert len(await store.ingest(entry(), [first])) == 1
    assert await store.ingest(entry(), [first]) == []
    assert await store.ingest(entry(), [first, first]) == []
    assert len(await store.list_events()) == 1
    assert await store.count_inbox() == 3
    inbox = await store.list_inbox()
    assert [e.event_ids for e in inbox] == [["e1", "e1"], ["e1"], ["e1"]]
    assert inbox[0].path == "/callbacks/vs/***" and inbox[0].body == b"mobile=1&taskid=task-1"
    assert len(await store.list_inbox(limit=1)) == 1


async def test_orphan_is_kept_and_linked_when_the_send_lands(store: Store) -> None:
    early = receipt("e-early", DeliveryStatus.DELIVERED, vendor_id="task-9")
    answer = reply("e-reply", "收到 👍", vendor_id="task-9")
    new = await store.ingest(entry(), [early, answer])
    assert [e.message_id for e in new] == [None, None]
    await store.create_message(MessageRecord(message_id="m9", to=PHONE, template="t"))
    linked = await store.update_message(
        "m9",
        attempts=[Attempt(provider="vs", outcome="accepted")],
        status=DeliveryStatus.ACCEPTED,
        provider="vs",
        provider_message_id="task-9",
    )
    assert sorted(e.event_id for e in linked) == ["e-early", "e-reply"]
    assert all(e.message_id == "m9" for e in linked)
    record = await store.get_message("m9")
    assert record is not None and record.status is DeliveryStatus.DELIVERED
    assert [h.status for h in record.history] == [DeliveryStatus.ACCEPTED, DeliveryStatus.DELIVERED]
    stored = await store.list_events(message_id="m9")
    assert {e.event_id for e in stored} == {"e-early", "e-reply"}
    texts = [e.text for e in stored if isinstance(e, InboundMessage)]
    assert texts == ["收到 👍"]


async def test_orphan_of_another_provider_instance_is_not_linked(store: Store) -> None:
    await store.ingest(entry(), [receipt("e-x", DeliveryStatus.DELIVERED, provider="other")])
    await sent(store)
    events = await store.list_events()
    assert events[0].message_id is None
    record = await store.get_message("m1")
    assert record is not None and record.status is DeliveryStatus.ACCEPTED


async def test_batch_vendor_id_is_split_by_number(store: Store) -> None:
    await sent(store, "m1", to=PHONE, vendor_id="batch")
    await sent(store, "m2", to=OTHER, vendor_id="batch")
    new = await store.ingest(
        entry(),
        [
            receipt("e1", DeliveryStatus.DELIVERED, vendor_id="batch", phone=OTHER),
            receipt("e2", DeliveryStatus.UNDELIVERED, vendor_id="batch", phone=PHONE),
            receipt("e3", DeliveryStatus.DELIVERED, vendor_id="batch", phone=None),
        ],
    )
    assert [e.message_id for e in new] == ["m2", "m1", None]
    one, two = await store.get_message("m1"), await store.get_message("m2")
    assert one is not None and one.status is DeliveryStatus.UNDELIVERED
    assert two is not None and two.status is DeliveryStatus.DELIVERED


async def test_event_with_a_different_number_is_not_tied_to_the_message(store: Store) -> None:
    await sent(store)
    new = await store.ingest(entry(), [receipt("e1", DeliveryStatus.DELIVERED, phone=OTHER)])
    assert new[0].message_id is None
    no_number = await store.ingest(entry(), [receipt("e2", DeliveryStatus.DELIVERED, phone=None)])
    assert no_number[0].message_id == "m1"


async def test_events_newest_first_and_validated_back_into_their_class(store: Store) -> None:
    await sent(store)
    await store.ingest(entry(), [receipt("old", DeliveryStatus.SENT, minutes=1)])
    await store.ingest(entry(), [reply("newest", "好的", minutes=5)])
    await store.ingest(entry(), [receipt("middle", DeliveryStatus.DELIVERED, minutes=3)])
    events = await store.list_events()
    assert [e.event_id for e in events] == ["newest", "middle", "old"]
    assert isinstance(events[0], InboundMessage) and events[0].text == "好的"
    assert isinstance(events[1], DeliveryReceipt) and events[1].raw == {"taskid": "task-1"}
    assert events[1].occurred_at == T0 + timedelta(minutes=3)
    assert [e.event_id for e in await store.list_events(limit=2)] == ["newest", "middle"]


async def test_quarantine_keeps_raw_body_and_reason_newest_first(store: Store) -> None:
    for i in range(3):
        await store.quarantine(
            QuarantineEntry(
                provider="vs",
                method="POST",
                path="/callbacks/vs",
                headers={"content-type": "application/x-www-form-urlencoded"},
                body=b"\xff\xfe" + str(i).encode(),
                reason=f"bad {i}",
            )
        )
    found = await store.list_quarantine()
    assert [q.reason for q in found] == ["bad 2", "bad 1", "bad 0"]
    assert found[0].body == b"\xff\xfe2"
    assert found[0].headers == {"content-type": "application/x-www-form-urlencoded"}
    assert [q.reason for q in await store.list_quarantine(limit=1)] == ["bad 2"]
    assert await store.count_inbox() == 0


def ids(events: list[DeliveryReceipt | InboundMessage]) -> list[str]:
    return [e.event_id for e in events]


async def test_dispatch_claims_oldest_first_and_acknowledged_events_never_return(
    store: Store,
) -> None:
    await store.ingest(entry(), [receipt(f"e{i}", DeliveryStatus.SENT) for i in range(5)])
    assert ids(await store.claim_dispatch("a", limit=3)) == ["e0", "e1", "e2"]
    assert await store.ack_dispatch("a", ["e0", "e2", "unknown"]) == 2
    # e1 is still held by "a" (default lease); e3 and e4 are free, and come in order.
    assert ids(await store.claim_dispatch("b", lease=0)) == ["e3", "e4"]
    assert await store.ack_dispatch("a", ["e1"]) == 1
    assert await store.ack_dispatch("b", ["e3", "e4", "e3"]) == 2
    assert await store.ack_dispatch("b", ["e3"]) == 0  # already acknowledged
    assert await store.claim_dispatch("c", lease=0) == []
    assert sorted(ids(await store.list_events())) == ["e0", "e1", "e2", "e3", "e4"]


async def test_a_live_claim_is_never_handed_to_another_owner(store: Store) -> None:
    await store.ingest(entry(), [receipt(f"e{i}", DeliveryStatus.SENT) for i in range(3)])
    assert ids(await store.claim_dispatch("a", limit=2, lease=60)) == ["e0", "e1"]
    assert ids(await store.claim_dispatch("b", lease=60)) == ["e2"]
    assert await store.claim_dispatch("c", lease=60) == []
    assert await store.claim_dispatch("a", lease=60) == []  # the holder does not get it twice
    assert await store.ack_dispatch("b", ["e0", "e1"]) == 0  # not b's to acknowledge
    assert await store.ack_dispatch("a", ["e0", "e1"]) == 2


async def test_an_expired_claim_is_taken_over_and_the_old_owner_cannot_acknowledge(
    store: Store,
) -> None:
    await store.ingest(entry(), [receipt("e0", DeliveryStatus.SENT)])
    assert ids(await store.claim_dispatch("dead", lease=0)) == ["e0"]  # a lease of 0 ends at once
    assert ids(await store.claim_dispatch("alive", lease=60)) == ["e0"]
    assert await store.ack_dispatch("dead", ["e0"]) == 0
    assert await store.claim_dispatch("third", lease=60) == []
    assert await store.ack_dispatch("alive", ["e0"]) == 1


async def test_an_owner_whose_lease_ran_out_still_acknowledges_what_nobody_took(
    store: Store,
) -> None:
    await store.ingest(entry(), [receipt("e0", DeliveryStatus.SENT)])
    await store.claim_dispatch("slow", lease=0)
    assert await store.ack_dispatch("slow", ["e0"]) == 1
    assert await store.claim_dispatch("other", lease=0) == []


async def test_undispatched_events_are_listed_oldest_first_with_who_holds_them(
    store: Store,
) -> None:
    before = datetime.now(UTC)
    await store.ingest(entry(), [receipt(f"e{i}", DeliveryStatus.SENT) for i in range(2)])
    await store.ingest(entry(), [receipt("e2", DeliveryStatus.SENT)], owner="rx", lease=600)
    await store.ingest(entry(), [receipt("e3", DeliveryStatus.SENT)], owner="gone", lease=0)
    pending = await store.list_undispatched()
    assert [p.event.event_id for p in pending] == ["e0", "e1", "e2", "e3"]
    assert [p.claimed_by for p in pending] == [None, None, "rx", "gone"]
    assert pending[0].claimed_until is None
    held, ran_out = pending[2].claimed_until, pending[3].claimed_until
    assert held is not None and held >= before + timedelta(seconds=300), held
    assert ran_out is not None and ran_out <= datetime.now(UTC)
    assert [p.event.event_id for p in await store.list_undispatched(limit=1)] == ["e0"]
    # Listing claims nothing: what was free is still free.
    assert ids(await store.claim_dispatch("d", limit=1)) == ["e0"]
    assert await store.ack_dispatch("d", ["e0"]) == 1
    pending = await store.list_undispatched()
    assert [p.event.event_id for p in pending] == ["e1", "e2", "e3"]  # acknowledged: gone
    assert [p.claimed_by for p in pending] == [None, "rx", "gone"]


async def test_ingest_with_an_owner_stores_its_new_events_already_claimed(store: Store) -> None:
    new = await store.ingest(
        entry(),
        [receipt("e0", DeliveryStatus.SENT), receipt("e1", DeliveryStatus.SENT)],
        owner="receiver",
        lease=60,
    )
    assert ids(new) == ["e0", "e1"]
    assert await store.claim_dispatch("other") == []
    # A duplicate push is not stored again, and does not change who holds the event.
    assert await store.ingest(entry(), [receipt("e0", DeliveryStatus.SENT)], owner="x") == []
    assert await store.ack_dispatch("x", ["e0"]) == 0
    assert await store.ack_dispatch("receiver", ["e0", "e1"]) == 2
    await store.ingest(entry(), [receipt("e2", DeliveryStatus.SENT)], owner="gone", lease=0)
    assert ids(await store.claim_dispatch("other")) == ["e2"]


async def test_storing_unclaimed_events_wakes_a_waiting_dispatcher(store: Store) -> None:
    await store.wait_for_events(0)  # forget earlier hints (PostgreSQL: its connection's)
    waiting = asyncio.ensure_future(store.wait_for_events(3600))
    await asyncio.sleep(0)  # let it start waiting
    await store.ingest(entry(), [receipt("e0", DeliveryStatus.SENT)])
    # Woken, long before its hour: a wake-up that never came would time the test out.
    assert await asyncio.wait_for(waiting, 10) is True


async def test_two_store_objects_racing_for_claims_never_share_an_event(
    store_pair: tuple[Store, Store],
) -> None:
    first, second = store_pair
    await first.ingest(entry(), [receipt(f"e{i}", DeliveryStatus.SENT) for i in range(40)])
    batches = await asyncio.gather(
        *(
            (first if i % 2 else second).claim_dispatch(f"owner-{i}", limit=3, lease=60)
            for i in range(20)
        )
    )
    claimed = [event_id for batch in batches for event_id in ids(batch)]
    assert sorted(claimed) == sorted(f"e{i}" for i in range(40))  # each exactly once
    assert await second.ack_dispatch("owner-0", ids(batches[0])) == len(batches[0])


@pytest.mark.parametrize("rule", ["never", "always"])
async def test_every_backend_follows_the_one_status_rule(
    store: Store, rule: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend with its own copy of "status only moves forward" would ignore the swap."""
    await sent(store)
    monkeypatch.setattr(models, "status_advances", lambda current, new: rule == "always")
    await store.ingest(entry(), [receipt("e1", DeliveryStatus.DELIVERED, minutes=1)])
    await store.ingest(entry(), [receipt("e2", DeliveryStatus.SENT, minutes=2)])
    record = await store.get_message("m1")
    assert record is not None
    if rule == "always":  # backwards, past a final status: only the swapped rule allows it
        assert record.status is DeliveryStatus.SENT
        assert [h.status for h in record.history][-2:] == [
            DeliveryStatus.DELIVERED,
            DeliveryStatus.SENT,
        ]
    else:
        assert record.status is DeliveryStatus.ACCEPTED
        assert [h.status for h in record.history] == [DeliveryStatus.ACCEPTED]


async def test_idempotency_keys(store: Store) -> None:
    assert await store.claim_idempotency_key("k", "m1", 60) is None
    assert await store.claim_idempotency_key("k", "m2", 60) == IdempotencyHolder("m1")
    await store.release_idempotency_key("k", "m2")  # not the holder: no effect
    assert await store.claim_idempotency_key("k", "m2", 60) == IdempotencyHolder("m1")
    await store.release_idempotency_key("k", "m1")
    assert await store.claim_idempotency_key("k", "m2", 60) is None
    assert await store.claim_idempotency_key("short", "m3", 0) is None
    assert await store.claim_idempotency_key("short", "m4", 60) is None  # expired claim


async def test_idempotency_keys_keep_the_fingerprint_of_their_claim(store: Store) -> None:
    assert await store.claim_idempotency_key("k", "m1", 60, fingerprint="id1:aaaa") is None
    # The holder and its fingerprint, whatever the repeat's own fingerprint.
    assert await store.claim_idempotency_key(
        "k", "m2", 60, fingerprint="id1:bbbb"
    ) == IdempotencyHolder("m1", "id1:aaaa")
    assert await store.claim_idempotency_key("k", "m3", 60) == IdempotencyHolder("m1", "id1:aaaa")
    await store.release_idempotency_key("k", "m1")
    assert await store.claim_idempotency_key("k", "m2", 60, fingerprint="id1:bbbb") is None
    assert await store.claim_idempotency_key("k", "m4", 60) == IdempotencyHolder("m2", "id1:bbbb")
    # An expired claim taken over: the new claim's fingerprint replaces the old one.
    assert await store.claim_idempotency_key("short", "m5", 0, fingerprint="id1:cccc") is None
    assert await store.claim_idempotency_key("short", "m6", 60, fingerprint="id1:dddd") is None
    assert await store.claim_idempotency_key("short", "m7", 60) == IdempotencyHolder(
        "m6", "id1:dddd"
    )


async def test_a_key_reused_for_a_different_message_is_refused_in_every_store(
    store: Store,
) -> None:
    """Through the router, against each backend: code 77 then code 78 under one key."""
    config = Config.from_dict(
        {"providers": {"primary": {"type": "memory"}}, "routing": {"providers": ["primary"]}}
    )
    provider = MemoryProvider(MemoryOptions(), context=ProviderContext(instance="primary"))
    router = Router(config, {"primary": provider}, store)

    def msg(**changes: Any) -> SmsMessage:
        fields: dict[str, Any] = {
            "to": PHONE,
            "template": "verify_code",
            "params": {"code": "xq-077"},
            "idempotency_key": "signup-1",
            "tags": ("signup",),
        }
        return SmsMessage(**{**fields, **changes})

    first = await router.send(msg())
    assert (await router.send(msg(tags=("signup",)))).message_id == first.message_id  # a repeat
    for different in (
        msg(params={"code": "xq-078"}),
        msg(params={"code": "xq-077", "name": "x"}),
        msg(tags=("login",)),
        msg(template="welcome"),
        msg(to=OTHER),
    ):
        with pytest.raises(InvalidMessage, match="idempotency key already used") as caught:
            await router.send(different)
        assert "xq-" not in str(caught.value)  # never the parameters in the error
    assert provider.calls == 1
    # Never the parameters in the store: the claim holds a keyed hash.
    held = await store.claim_idempotency_key("signup-1", "probe", 60)
    assert held is not None and held.fingerprint is not None
    assert re.fullmatch(r"[0-9a-f]{8}:[0-9a-f]{64}", held.fingerprint)


async def test_recipient_guard(store: Store) -> None:
    assert await store.check_recipient(PHONE, 60) is None
    wait = await store.check_recipient(PHONE, 60)
    assert wait is not None and 59 < wait <= 60
    assert await store.check_recipient(OTHER, 60) is None
    assert await store.check_recipient(PHONE, 0) is None


async def test_start_send_stores_the_record_with_its_attempts_and_claims_the_number(
    store: Store,
) -> None:
    started = Attempt(provider="a", outcome="started", started_at=T0)
    skipped = Attempt(provider="b", outcome="skipped", error_message="breaker open")
    first = MessageRecord(message_id="s1", to=PHONE, template="t", attempts=[skipped, started])
    assert await store.start_send(first, recipient_interval=60) is None
    stored = await store.get_message("s1")
    assert stored is not None and stored.status is DeliveryStatus.PENDING
    assert [(a.provider, a.outcome) for a in stored.attempts] == [
        ("b", "skipped"),
        ("a", "started"),
    ]
    # The number is claimed for s1: a second send inside the interval is refused, its
    # record stored without attempts (no call will be made), nothing claimed for it.
    second = MessageRecord(message_id="s2", to=PHONE, template="t", attempts=[started])
    wait = await store.start_send(second, recipient_interval=60)
    assert wait is not None and 59 < wait <= 60
    refused = await store.get_message("s2")
    assert refused is not None and refused.attempts == []
    assert await store.check_recipient(PHONE, 60) is not None
    # Without an interval no claim is looked at or made.
    assert await store.start_send(second.model_copy(update={"message_id": "s3"})) is None
    assert await store.check_recipient(OTHER, 60) is None


async def test_start_send_refuses_a_message_id_stored_before(store: Store) -> None:
    record = MessageRecord(message_id="dup", to=PHONE, template="t")
    await store.create_message(record)
    with pytest.raises(StoreError):
        await store.start_send(record, recipient_interval=60)
    # The failed write claimed nothing.
    assert await store.check_recipient(PHONE, 60) is None


# -- recovery after a crash (notifykit.recovery) -----------------------------------------------

LEASE = T0 + timedelta(seconds=40)
LATER = T0 + timedelta(minutes=5)


async def left_pending(
    store: Store,
    message_id: str,
    *,
    started: bool,
    to: str = PHONE,
    key: str | None = None,
    lease: datetime = LEASE,
) -> None:
    """A record as a process killed mid-send leaves it: pending, with or without a started
    vendor call."""
    await store.create_message(
        MessageRecord(
            message_id=message_id,
            to=to,
            template="verify_code",
            idempotency_key=key,
            created_at=T0,
            lease_until=lease,
        )
    )
    if started:
        await store.update_message(
            message_id,
            attempts=[
                Attempt(provider="vs", outcome="started", started_at=T0 + timedelta(seconds=1))
            ],
        )


async def test_recovery_resolves_expired_pending_records_by_their_attempts(store: Store) -> None:
    await left_pending(store, "reached", started=True)
    await left_pending(store, "never", started=False)
    await left_pending(store, "alive", started=True, lease=LATER + timedelta(minutes=1))
    await sent(store, "done", vendor_id="task-9")

    resolved = await store.recover_expired(now=LATER)

    assert {r.message_id: r.status for r in resolved} == {
        "reached": DeliveryStatus.UNKNOWN,
        "never": DeliveryStatus.FAILED,
    }
    reached = await store.get_message("reached")
    assert reached is not None and reached.status is DeliveryStatus.UNKNOWN
    assert reached.history[-1].source == "recovery"
    assert reached.attempts[0].outcome == "started"
    alive = await store.get_message("alive")
    assert alive is not None and alive.status is DeliveryStatus.PENDING
    done = await store.get_message("done")
    assert done is not None and done.status is DeliveryStatus.ACCEPTED
    assert await store.recover_expired(now=LATER) == []
    unknown = await store.list_messages(status=DeliveryStatus.UNKNOWN)
    assert [r.message_id for r in unknown] == ["reached"]


async def test_recovery_pages_by_limit(store: Store) -> None:
    for i in range(5):
        await left_pending(store, f"m{i}", started=False, to=f"+86156123410{i:02d}")
    first = await store.recover_expired(now=LATER, limit=3)
    second = await store.recover_expired(now=LATER, limit=3)
    assert len(first) == 3 and len(second) == 2
    assert {r.message_id for r in first + second} == {f"m{i}" for i in range(5)}


async def test_recovery_gives_back_the_claims_of_a_send_that_reached_no_vendor(
    store: Store,
) -> None:
    assert await store.claim_idempotency_key("k-never", "never", ttl=600) is None
    assert await store.check_recipient(PHONE, 600, message_id="never") is None
    await left_pending(store, "never", started=False, key="k-never")
    assert await store.claim_idempotency_key("k-reached", "reached", ttl=600) is None
    assert await store.check_recipient(OTHER, 600, message_id="reached") is None
    await left_pending(store, "reached", started=True, to=OTHER, key="k-reached")

    await store.recover_expired(now=LATER)

    # Released: another send may use the key and the number now.
    assert await store.claim_idempotency_key("k-never", "next", ttl=600) is None
    assert await store.check_recipient(PHONE, 600, message_id="next") is None
    # Kept: the vendor may have the first message.
    assert await store.claim_idempotency_key("k-reached", "next2", ttl=600) == IdempotencyHolder(
        "reached"
    )
    assert await store.check_recipient(OTHER, 600, message_id="next2") is not None


async def test_recovery_leaves_a_guard_claim_another_message_holds(store: Store) -> None:
    await left_pending(store, "never", started=False)
    assert await store.check_recipient(PHONE, 0, message_id="never") is None
    assert await store.check_recipient(PHONE, 0, message_id="newer") is None  # interval over

    await store.recover_expired(now=LATER)

    assert await store.check_recipient(PHONE, 600, message_id="third") is not None


def late_receipt(event_id: str, vendor_id: str, *, phone: str = PHONE) -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        provider="vs",
        provider_message_id=vendor_id,
        phone=phone,
        occurred_at=T0 + timedelta(minutes=6),
        received_at=T0 + timedelta(minutes=6, seconds=1),
        status=DeliveryStatus.DELIVERED,
        vendor_status="1",
    )


async def test_receipt_with_unknown_vendor_id_is_tied_to_the_one_unknown_record(
    store: Store,
) -> None:
    await left_pending(store, "reached", started=True)
    await left_pending(store, "elsewhere", started=True, to=OTHER)
    await store.recover_expired(now=LATER)

    new = await store.ingest(entry(), [late_receipt("r1", "task-77")])

    assert [e.message_id for e in new] == ["reached"]
    record = await store.get_message("reached")
    assert record is not None
    assert record.status is DeliveryStatus.DELIVERED
    assert (record.provider, record.provider_message_id) == ("vs", "task-77")
    # Later events with that vendor id now follow the ordinary path.
    again = await store.ingest(entry(), [reply("r2", "thanks", vendor_id="task-77", minutes=7)])
    assert [e.message_id for e in again] == ["reached"]


async def test_receipt_matching_several_unknown_records_stays_an_orphan(store: Store) -> None:
    await left_pending(store, "a", started=True)
    await left_pending(store, "b", started=True)
    await store.recover_expired(now=LATER)

    new = await store.ingest(entry(), [late_receipt("r1", "task-77")])

    assert [e.message_id for e in new] == [None]
    for message_id in ("a", "b"):
        record = await store.get_message(message_id)
        assert record is not None and record.status is DeliveryStatus.UNKNOWN


async def test_receipt_from_an_instance_never_tried_or_out_of_window_stays_an_orphan(
    store: Store,
) -> None:
    await left_pending(store, "reached", started=True)
    await store.recover_expired(now=LATER)
    other_vendor = late_receipt("r1", "task-77").model_copy(update={"provider": "tw"})
    too_late = late_receipt("r2", "task-78").model_copy(
        update={"received_at": T0 + timedelta(days=4)}
    )

    new = await store.ingest(entry(), [other_vendor, too_late])

    assert [e.message_id for e in new] == [None, None]
    record = await store.get_message("reached")
    assert record is not None and record.status is DeliveryStatus.UNKNOWN


async def test_receipts_stored_while_pending_are_tied_by_the_sweep(store: Store) -> None:
    await left_pending(store, "reached", started=True)
    await left_pending(store, "twin-a", started=True, to=OTHER)
    await left_pending(store, "twin-b", started=True, to=OTHER)
    await store.ingest(entry(), [late_receipt("r1", "task-77")])
    await store.ingest(entry(), [late_receipt("r2", "task-78", phone=OTHER)])

    resolved = await store.recover_expired(now=LATER)

    by_id = {r.message_id: r for r in resolved}
    assert by_id["reached"].status is DeliveryStatus.DELIVERED
    assert by_id["reached"].provider_message_id == "task-77"
    assert by_id["twin-a"].status is DeliveryStatus.UNKNOWN
    assert by_id["twin-b"].status is DeliveryStatus.UNKNOWN
    events = {e.event_id: e.message_id for e in await store.list_events()}
    assert events == {"r1": "reached", "r2": None}


# -- verifications (notifykit.verify keeps its rules here; docs in Store's docstrings) -------

V0 = 1_700_000_000.0  # seconds since the epoch: the stores take the time from the caller
TTL = 600.0
INTERVAL = 60.0


def verification(
    verification_id: str = "v1", *, now: float = V0, to: str = PHONE, purpose: str = "login"
) -> VerificationRecord:
    return VerificationRecord(
        verification_id=verification_id,
        to=to,
        purpose=purpose,
        code_hash=f"hash-of-{verification_id}",
        seed=f"seed-of-{verification_id}",
        created_at=now,
        expires_at=now + TTL,
        updated_at=now,
    )


async def claim(
    store: Store, verification_id: str, now: float, *, max_sends: int = 5, purpose: str = "login"
) -> VerificationClaim:
    return await store.claim_verification_send(
        verification(verification_id, now=now, purpose=purpose),
        now=now,
        resend_interval=INTERVAL,
        max_sends=max_sends,
    )


async def started(store: Store, verification_id: str = "v1", now: float = V0) -> VerificationRecord:
    """A verification whose first SMS went out at ``now``."""
    made = await claim(store, verification_id, now)
    assert made.outcome == "new" and made.claim_id is not None
    done = await store.finish_verification_send(
        verification_id, made.claim_id, sent=True, now=now, expires_at=now + TTL
    )
    assert done is not None
    return done


async def check(
    store: Store, code_hash: str, now: float, *, max_attempts: int = 3, purpose: str = "login"
) -> VerificationCheckStep:
    return await store.check_verification(
        PHONE, purpose, code_hash, now=now, max_attempts=max_attempts
    )


async def test_verification_first_claim_stores_the_new_one(store: Store) -> None:
    made = await claim(store, "v1", V0)
    assert made.outcome == "new" and made.record == verification("v1")
    assert made.claim_id and made.retry_after is None
    assert await store.get_verification("v1") == verification("v1")
    assert await store.get_verification("ghost") is None
    assert await store.current_verification(PHONE, "login") == verification("v1")
    assert await store.current_verification(PHONE, "other") is None
    assert await store.current_verification(OTHER, "login") is None
    done = await store.finish_verification_send(
        "v1", made.claim_id, sent=True, now=V0 + 1, expires_at=V0 + 1 + TTL
    )
    assert done is not None and (done.sends, done.expires_at, done.updated_at) == (
        1,
        V0 + 1 + TTL,
        V0 + 1,
    )
    assert done.status is VerificationStatus.PENDING and done.code_hash == "hash-of-v1"


async def test_verification_claim_inside_the_interval_is_limited_and_changes_nothing(
    store: Store,
) -> None:
    await started(store)
    limited = await claim(store, "v2", V0 + 20)
    assert limited == VerificationClaim("limited", retry_after=INTERVAL - 20)
    assert await store.get_verification("v2") is None
    # Another purpose, or another number, has an interval of its own.
    assert (await claim(store, "v3", V0 + 20, purpose="reset")).outcome == "new"


async def test_verification_resend_keeps_code_and_attempts_and_counts_sends(store: Store) -> None:
    first = await started(store)
    assert (await check(store, "wrong", V0 + 5)).status is VerificationCheckStatus.INCORRECT
    again = await claim(store, "v2", V0 + INTERVAL)
    assert again.outcome == "resend" and again.claim_id is not None
    assert again.record is not None and again.record.verification_id == "v1"
    assert again.record.seed == first.seed and again.record.attempts == 1
    assert await store.get_verification("v2") is None
    done = await store.finish_verification_send(
        "v1", again.claim_id, sent=True, now=V0 + INTERVAL, expires_at=V0 + INTERVAL + TTL
    )
    assert done is not None and (done.sends, done.attempts, done.expires_at) == (
        2,
        1,
        V0 + INTERVAL + TTL,
    )
    # The interval counts from the resend now.
    assert (await claim(store, "v3", V0 + INTERVAL + 59)).retry_after == pytest.approx(1.0)


async def test_verification_max_sends_limits_until_it_expires(store: Store) -> None:
    await started(store)
    now = V0
    for _ in range(2):
        now += INTERVAL
        resend = await claim(store, "vx", now, max_sends=3)
        assert resend.outcome == "resend" and resend.claim_id is not None
        await store.finish_verification_send(
            "v1", resend.claim_id, sent=True, now=now, expires_at=now + TTL
        )
    now += INTERVAL
    limited = await claim(store, "vx", now, max_sends=3)
    assert limited.outcome == "limited" and limited.retry_after == pytest.approx(TTL - INTERVAL)
    after = await claim(store, "v-next", now + TTL, max_sends=3)
    assert after.outcome == "new"
    old = await store.get_verification("v1")
    assert old is not None and old.status is VerificationStatus.EXPIRED


async def test_verification_failed_first_send_fails_it_and_charges_no_interval(
    store: Store,
) -> None:
    made = await claim(store, "v1", V0)
    assert made.claim_id is not None
    failed = await store.finish_verification_send(
        "v1", made.claim_id, sent=False, now=V0 + 1, expires_at=V0 + 1 + TTL
    )
    assert failed is not None and (failed.status, failed.sends) == (VerificationStatus.FAILED, 0)
    assert (await check(store, "hash-of-v1", V0 + 2)).status is VerificationCheckStatus.NOT_FOUND
    assert (await claim(store, "v2", V0 + 2)).outcome == "new"


async def test_verification_failed_resend_leaves_it_and_gives_the_interval_back(
    store: Store,
) -> None:
    await started(store)
    resend = await claim(store, "vx", V0 + 100)
    assert resend.outcome == "resend" and resend.claim_id is not None
    after = await store.finish_verification_send(
        "v1", resend.claim_id, sent=False, now=V0 + 101, expires_at=V0 + 101 + TTL
    )
    assert after == await store.get_verification("v1")
    assert after is not None and (after.status, after.sends, after.expires_at) == (
        VerificationStatus.PENDING,
        1,
        V0 + TTL,
    )
    # The last SMS is the first one again (V0): another try may go at once.
    assert (await claim(store, "vx", V0 + 102)).outcome == "resend"
    step = await check(store, "hash-of-v1", V0 + 103)
    assert step.status is VerificationCheckStatus.APPROVED


async def test_verification_a_stale_claim_never_undoes_a_later_one(store: Store) -> None:
    made = await claim(store, "v1", V0)
    assert made.claim_id is not None
    # The first send outlived the interval; a second start claimed it again meanwhile.
    second = await claim(store, "vx", V0 + INTERVAL)
    assert second.outcome == "resend"
    await store.finish_verification_send(
        "v1", made.claim_id, sent=False, now=V0 + INTERVAL + 1, expires_at=V0 + TTL
    )
    assert (await claim(store, "vy", V0 + INTERVAL + 2)).outcome == "limited"


async def test_verification_checks_use_up_attempts_then_lock(store: Store) -> None:
    await started(store)
    first = await check(store, "wrong", V0 + 1)
    assert first.status is VerificationCheckStatus.INCORRECT
    assert first.record is not None and first.record.attempts == 1
    assert (await check(store, "wrong", V0 + 2)).status is VerificationCheckStatus.INCORRECT
    last = await check(store, "wrong", V0 + 3)
    assert last.status is VerificationCheckStatus.MAX_ATTEMPTS
    assert last.record is not None and last.record.status is VerificationStatus.MAX_ATTEMPTS
    assert last.record.attempts == 3
    right = await check(store, "hash-of-v1", V0 + 4)
    assert right.status is VerificationCheckStatus.MAX_ATTEMPTS
    assert right.record is not None and right.record.attempts == 3


async def test_verification_right_code_approves_once(store: Store) -> None:
    await started(store)
    approved = await check(store, "hash-of-v1", V0 + 1)
    assert approved.status is VerificationCheckStatus.APPROVED
    assert approved.record is not None and approved.record.status is VerificationStatus.APPROVED
    again = await check(store, "hash-of-v1", V0 + 2)
    assert again.status is VerificationCheckStatus.NOT_FOUND
    # The next start makes a new verification (after the interval).
    assert (await claim(store, "v2", V0 + INTERVAL)).outcome == "new"


async def test_verification_expiry_is_checked_first(store: Store) -> None:
    await started(store)
    expired = await check(store, "hash-of-v1", V0 + TTL)
    assert expired.status is VerificationCheckStatus.EXPIRED
    assert expired.record is not None and expired.record.status is VerificationStatus.EXPIRED
    assert (await check(store, "wrong", V0 + TTL + 1)).status is VerificationCheckStatus.EXPIRED
    stored = await store.get_verification("v1")
    assert stored is not None and stored.attempts == 0


async def test_verification_no_verification_is_not_found(store: Store) -> None:
    step = await check(store, "anything", V0)
    assert step == VerificationCheckStep(VerificationCheckStatus.NOT_FOUND, None)


async def test_verification_cancel(store: Store) -> None:
    assert await store.cancel_verification(PHONE, "login", now=V0) is None
    await started(store)
    canceled = await store.cancel_verification(PHONE, "login", now=V0 + 1)
    assert canceled is not None and canceled.status is VerificationStatus.CANCELED
    assert await store.cancel_verification(PHONE, "login", now=V0 + 2) is None
    assert (await check(store, "hash-of-v1", V0 + 3)).status is VerificationCheckStatus.NOT_FOUND
    # Canceling touches no interval: a start inside it is still limited.
    assert (await claim(store, "v2", V0 + 4)).outcome == "limited"
    await started(store, "v3", V0 + INTERVAL)
    assert await store.cancel_verification(PHONE, "login", now=V0 + INTERVAL + TTL) is None
    gone = await store.get_verification("v3")
    assert gone is not None and gone.status is VerificationStatus.EXPIRED


async def test_verification_the_current_one_is_the_last_stored(store: Store) -> None:
    await started(store, "v1", V0)
    for _ in range(3):
        await check(store, "wrong", V0 + 1)
    # Locked out: the next start (after the interval) makes a new one, which checks count on.
    await started(store, "v2", V0 + INTERVAL)
    current = await store.current_verification(PHONE, "login")
    assert current is not None and current.verification_id == "v2"
    step = await check(store, "hash-of-v2", V0 + INTERVAL + 1)
    assert step.status is VerificationCheckStatus.APPROVED
    assert step.record is not None and step.record.verification_id == "v2"
    old = await store.get_verification("v1")
    assert old is not None and old.status is VerificationStatus.MAX_ATTEMPTS


async def test_verification_wait_never_exceeds_the_interval_when_another_clock_ran_ahead(
    store: Store,
) -> None:
    # Two processes read their clocks before their transactions: the one that commits second
    # may hold an earlier `now` than the sent_at the first one stored. The wait it reports is
    # the configured interval, never more (seen: 60.0019 s for a 60 s interval).
    await started(store, now=V0 + 0.5)
    limited = await claim(store, "v2", V0)
    assert limited == VerificationClaim("limited", retry_after=INTERVAL)
