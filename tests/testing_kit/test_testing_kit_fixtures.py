"""The notifier / async_notifier fixtures, their defaults, and overriding them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy
import pytest

from notifykit import (
    AsyncNotifier,
    Config,
    DeliveryStatus,
    Event,
    InboundMessage,
    Notifier,
    errors,
)
from notifykit.testing import (
    Outbox,
    build_config,
    deliver,
    fake_plugin_manager,
    fake_providers,
    fake_receipt,
    fake_reply,
    unknown,
)

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"


def test_notifier_defaults_to_one_memory_instance_over_a_memory_store(
    notifier: Notifier, sms_outbox: Outbox
) -> None:
    assert list(notifier.async_notifier.providers) == ["memory"]
    assert notifier.config.store.url == "memory://"
    result = notifier.send(PHONE, template="verify_code", params={"code": "1234"})
    assert result.provider == "memory"
    record = notifier.get_message(result.message_id)
    assert record is not None and record.status is DeliveryStatus.ACCEPTED
    assert sms_outbox.last.params == {"code": "1234"}


async def test_async_notifier_is_open_on_the_tests_loop(
    async_notifier: AsyncNotifier, sms_outbox: Outbox
) -> None:
    result = await async_notifier.send(PHONE, template="verify_code", params={"code": "42"})
    assert await async_notifier.get_message(result.message_id) is not None
    assert [m.params for m in sms_outbox] == [{"code": "42"}]


async def test_both_fixtures_in_one_test_share_the_outbox(
    notifier: Notifier, async_notifier: AsyncNotifier, sms_outbox: Outbox
) -> None:
    notifier.send(PHONE, template="sync")
    await async_notifier.send(PHONE, template="async")
    assert [m.template for m in sms_outbox] == ["sync", "async"]


class TestOverriddenWithADict:
    @pytest.fixture
    def notifykit_config(self) -> Mapping[str, Any]:
        return {
            "providers": {
                "primary": {"type": "fake", "script": ["unknown"]},
                "backup": {"type": "memory"},
            },
            "routing": {"providers": ["primary", "backup"], "on_unknown_outcome": "failover"},
        }

    async def test_the_fake_type_is_available_and_the_policy_applies(
        self, async_notifier: AsyncNotifier, sms_outbox: Outbox
    ) -> None:
        result = await async_notifier.send(PHONE, template="verify_code")
        assert result.provider == "backup"
        # The unknown outcome went out too: the user really got two codes.
        assert [m.provider for m in sms_outbox] == ["primary", "backup"]


class TestFakePushes:
    @pytest.fixture
    def notifykit_config(self) -> Mapping[str, Any]:
        return {"providers": {"fake": {"type": "fake", "script": ["accept:vid-1"]}}}

    async def test_events_reach_subscribers_and_the_message(
        self, async_notifier: AsyncNotifier
    ) -> None:
        seen: list[Event] = []
        async_notifier.subscribe(seen.append)
        result = await async_notifier.send(PHONE, template="verify_code")
        assert result.provider_message_id == "vid-1"
        status, _, _ = await deliver(async_notifier, "fake", fake_receipt("vid-1", phone=PHONE))
        assert status == 200
        await deliver(async_notifier, "fake", fake_reply("vid-1", "收到 👍", phone=PHONE))
        assert [(e.kind, e.phone, e.message_id) for e in seen] == [
            ("receipt", PHONE, result.message_id),
            ("reply", PHONE, result.message_id),
        ]
        assert isinstance(seen[1], InboundMessage) and seen[1].text == "收到 👍"
        record = await async_notifier.get_message(result.message_id)
        assert record is not None and record.status is DeliveryStatus.DELIVERED

    def test_sync_deliver_waits_for_subscribers(self, notifier: Notifier) -> None:
        seen: list[Event] = []
        notifier.subscribe(seen.append)
        response = deliver(notifier, "fake", fake_receipt("vid-9", "undelivered"))
        assert response[0] == 200
        assert [(e.kind, e.provider_message_id) for e in seen] == [("receipt", "vid-9")]

    def test_a_push_it_cannot_read_is_quarantined(self, notifier: Notifier) -> None:
        status, _, body = deliver(notifier, "fake", fake_receipt("vid-1", "teleported"))
        assert status == 400 and b"teleported" in body


class TestOverriddenWithAConfigAndPluginManager:
    @pytest.fixture
    def notifykit_config(self) -> Config:
        return Config.from_dict({"providers": {"only": {"type": "fake"}}})

    @pytest.fixture
    def notifykit_plugin_manager(self) -> pluggy.PluginManager:
        return fake_plugin_manager(load_entrypoints=False)

    def test_sync(self, notifier: Notifier, sms_outbox: Outbox) -> None:
        fake_providers(notifier)["only"].script(unknown(went_out=False))
        with pytest.raises(errors.UnknownOutcome):
            notifier.send(PHONE, template="t")
        assert sms_outbox == []


class TestOverriddenWithAPath:
    @pytest.fixture
    def notifykit_config(self, tmp_path: Any) -> str:
        path = tmp_path / "notifykit.toml"
        path.write_text('[providers.file]\ntype = "memory"\nfail = "InvalidRecipient"\n')
        return str(path)

    def test_the_file_is_read(self, notifier: Notifier) -> None:
        assert notifier.config.source is not None and notifier.config.source.endswith(".toml")
        with pytest.raises(errors.InvalidRecipient):
            notifier.send(PHONE, template="t")


def test_build_config_reports_a_bad_dict_by_key() -> None:
    with pytest.raises(errors.ConfigError, match=r"notifykit_config fixture: routing\.providers"):
        build_config({"routing": {"providers": ["nowhere"]}})
    config = Config.default()
    assert build_config(config) is config
