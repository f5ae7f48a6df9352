from __future__ import annotations

import pytest

from notifykit import AsyncNotifier, Config, DeliveryStatus

pytestmark = pytest.mark.anyio


async def test_send_through_memory_provider() -> None:
    config = Config.from_dict({"providers": {"fake": {"type": "memory"}}})
    async with AsyncNotifier(config) as notifier:
        result = await notifier.send(
            "+8615612341090", template="verify_code", params={"code": "1234"}
        )
        assert result.provider == "fake"
        record = await notifier.get_message(result.message_id)
        assert record is not None and record.status is DeliveryStatus.ACCEPTED
        assert notifier.providers["fake"].outbox[0].params == {"code": "1234"}  # type: ignore[attr-defined]
