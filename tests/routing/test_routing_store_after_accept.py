"""A store that fails after a vendor accepted: the caller gets the SendResult, never an error.

Raising would tell the caller the send failed, and the caller would naturally send again:
the second code the router exists to prevent. The failed write is logged and retried in the
background (docs/routing.md, "When the store fails after a vendor accepted").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from notifykit import AsyncNotifier
from notifykit.config import Config
from notifykit.errors import StoreError
from notifykit.models import Attempt, DeliveryStatus, SmsMessage
from notifykit.store.base import AnyEvent
from notifykit.store.memory import MemoryStore

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"


class AcceptedWritesFail(MemoryStore):
    """A memory store whose write recording an accepted send (the one that names the
    provider) fails ``failures`` times (None: always) with ``error``."""

    def __init__(self, failures: int | None, error: type[Exception] = StoreError) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.refused = 0

    async def update_message(
        self,
        message_id: str,
        *,
        attempts: Sequence[Attempt],
        status: DeliveryStatus | None = None,
        provider: str | None = None,
        **fields: Any,
    ) -> list[AnyEvent]:
        if provider is not None and (self.failures is None or self.refused < self.failures):
            self.refused += 1
            raise self.error("disk I/O error")
        return await super().update_message(
            message_id, attempts=attempts, status=status, provider=provider, **fields
        )


def message(key: str | None = None) -> SmsMessage:
    return SmsMessage(
        to=PHONE, template="verify_code", params={"code": "4821"}, idempotency_key=key
    )


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "notifykit.routing" and event in r.getMessage()]


@pytest.mark.parametrize("error", [StoreError, RuntimeError], ids=["StoreError", "a store bug"])
async def test_the_caller_gets_the_result_and_the_write_lands_later(
    make_router: Any, caplog: pytest.LogCaptureFixture, error: type[Exception]
) -> None:
    store = AcceptedWritesFail(failures=2, error=error)
    h = make_router(store=store)
    h.router.record_retry_delays = (0.0, 0.0, 0.0)
    result = await h.router.send(message())  # no exception: the vendor has the message
    assert result.provider == "primary" and result.provider_message_id
    assert (h["primary"].calls, h["backup"].calls) == (1, 0)  # the backup is never tried
    assert [a.outcome for a in result.attempts] == ["accepted"]
    (failed,) = records(caplog, "store_update_failed")
    assert failed.levelno == logging.ERROR
    await h.router.drain()
    assert store.refused == 2
    record = await store.get_message(result.message_id)
    assert record is not None and record.status is DeliveryStatus.ACCEPTED
    assert (record.provider, record.provider_message_id) == ("primary", result.provider_message_id)
    assert records(caplog, "store_update_recovered")
    assert not records(caplog, "store_update_lost")


async def test_a_store_that_stays_down_loses_the_record_not_the_answer(
    make_router: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = AcceptedWritesFail(failures=None)
    h = make_router(store=store)
    h.router.record_retry_delays = (0.0, 0.0)
    result = await h.router.send(message())
    assert result.provider == "primary"
    assert (h["primary"].calls, h["backup"].calls) == (1, 0)
    await h.router.drain()
    assert store.refused == 3  # the first write and each retry
    (lost,) = records(caplog, "store_update_lost")
    assert lost.levelno == logging.ERROR
    text = lost.getMessage() + repr(lost.__dict__)
    assert result.message_id in text and str(result.provider_message_id) in text
    assert PHONE not in text
    record = await store.get_message(result.message_id)
    assert record is not None and record.status is DeliveryStatus.PENDING


async def test_a_repeat_with_the_key_sends_nothing_once_the_write_landed(
    make_router: Any,
) -> None:
    store = AcceptedWritesFail(failures=1)
    h = make_router(store=store)
    h.router.record_retry_delays = (0.0,)
    first = await h.router.send(message("order-1"))
    await h.router.drain()
    again = await h.router.send(message("order-1"))
    assert again.message_id == first.message_id
    assert again.provider_message_id == first.provider_message_id
    assert (h["primary"].calls, h["backup"].calls) == (1, 0)


async def test_a_send_cancelled_during_the_write_still_records_the_acceptance(
    make_router: Any,
) -> None:
    class Stalls(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.entered = asyncio.Event()
            self.stalled = False

        async def update_message(self, message_id: str, **fields: Any) -> list[AnyEvent]:
            if fields.get("provider") is not None and not self.stalled:
                self.stalled = True
                self.entered.set()
                await asyncio.Event().wait()  # until cancelled
            return await super().update_message(message_id, **fields)

    store = Stalls()
    h = make_router(store=store)
    h.router.record_retry_delays = (0.0,)
    send = asyncio.create_task(h.router.send(message()))
    await store.entered.wait()
    send.cancel()
    with pytest.raises(asyncio.CancelledError):
        await send
    await h.router.drain()
    (record,) = await store.list_messages()
    assert record.provider == "primary" and record.provider_message_id is not None
    assert record.status is DeliveryStatus.ACCEPTED
    assert h["backup"].calls == 0


async def test_closing_the_notifier_waits_for_the_retried_write() -> None:
    config = Config.from_dict(
        {"providers": {"primary": {"type": "memory"}, "backup": {"type": "memory"}}}
    )
    store = AcceptedWritesFail(failures=1)
    notifier = AsyncNotifier(config, store=store)
    notifier.router.record_retry_delays = (0.0,)
    result = await notifier.send(PHONE, template="verify_code", params={"code": "4821"})
    await notifier.close()
    record = await store.get_message(result.message_id)
    assert record is not None and record.provider == "primary"
