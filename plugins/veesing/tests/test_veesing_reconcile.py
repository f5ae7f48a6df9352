"""Veesing has no status query: the reconciler skips its messages and says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import notifykit_veesing
import pytest

from notifykit import AsyncNotifier, Config
from notifykit.errors import NotSupported
from notifykit.models import MessageRecord
from notifykit.plugins import get_plugin_manager
from notifykit.provider import fetches_status

pytestmark = pytest.mark.anyio

MOBILE_E164 = "+8615612341090"


async def test_reconcile_skips_veesing_saying_it_has_no_status_query(
    sandbox_server: Callable[..., Any],
) -> None:
    sandbox, server = sandbox_server()
    config = Config.from_dict(
        {
            "providers": {
                "cn": {
                    "type": "veesing",
                    "app_id": sandbox.settings.app_id,
                    "app_key": sandbox.settings.app_key,
                    "base_url": server.url,
                }
            },
            "templates": {"verify_code": {"cn": {"template_id": "540"}}},
        }
    )
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(notifykit_veesing, name="veesing")
    async with AsyncNotifier(config, plugin_manager=pm) as notifier:
        result = await notifier.send(MOBILE_E164, template="verify_code", params={"code": "4821"})
        provider = notifier.providers["cn"]
        assert not fetches_status(provider)
        record = await notifier.get_message(result.message_id)
        assert isinstance(record, MessageRecord)
        with pytest.raises(NotSupported, match="no status query"):
            await provider.fetch_status(record)
        report = await notifier.reconcile(0)
    assert (report.checked, report.events, report.failed) == (0, 0, 0)
    row = report.providers["cn"]
    assert row.skipped == 1 and row.reason == "veesing: the vendor has no status query"
