"""One rule for calling hook implementations (``call_each``/``acall_each``): pluggy's order,
awaitables awaited, a failure logged by class only and not stopping the others; and which
distribution registered a plugin kept per plugin manager, by plugin name."""

from __future__ import annotations

import asyncio
import logging
import types
from datetime import UTC, datetime
from typing import Any, ClassVar

import pluggy
import pytest

from notifykit import SendReceipt, SmsProvider, hookimpl
from notifykit.config import Config
from notifykit.default_plugins.memory import MemoryOptions
from notifykit.errors import ConfigError
from notifykit.events import DeliveryReceipt
from notifykit.models import DeliveryStatus
from notifykit.notifier import AsyncNotifier
from notifykit.plugins import (
    NotifykitPluginManager,
    acall_each,
    call_each,
    get_plugin_manager,
    provider_types,
)
from notifykit.store import InboxEntry, MemoryStore

SECRET = "sk-live-0123456789abcdef"


def receipt(event_id: str) -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        provider="vs",
        provider_message_id=event_id,
        occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
        status=DeliveryStatus.DELIVERED,
        vendor_status="1",
    )


class AsyncObserver:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl
    async def on_event(self, event: Any) -> None:
        await asyncio.sleep(0)  # a real suspension: only an awaited coroutine gets past it
        self.seen.append(f"async:{event.event_id}")


class RaisingObserver:
    @hookimpl
    def on_event(self, event: Any) -> None:
        raise RuntimeError(f"vendor said no to key {SECRET}")


class RaisingAsyncObserver:
    @hookimpl
    async def on_event(self, event: Any) -> None:
        await asyncio.sleep(0)
        raise LookupError(SECRET)


class SyncObserver:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl
    def on_event(self, event: Any) -> None:
        self.seen.append(f"sync:{event.event_id}")


@pytest.mark.anyio
async def test_an_async_on_event_runs_and_a_raising_one_is_logged_by_class_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(SyncObserver(seen), name="sync-observer")
    pm.register(RaisingAsyncObserver(), name="raising-async")
    pm.register(RaisingObserver(), name="raising", distribution="nk-raising")
    pm.register(AsyncObserver(seen), name="async-observer")
    store = MemoryStore()
    notifier = AsyncNotifier(Config.from_dict({}), plugin_manager=pm, store=store)
    notifier.subscribe(lambda event: seen.append(f"subscriber:{event.event_id}"))
    await notifier.open()
    try:
        await store.ingest(InboxEntry(provider="vs", method="POST", path="/x"), [receipt("e1")])
        with caplog.at_level(logging.ERROR, logger="notifykit"):
            notifier.callbacks.recover()
            await notifier.callbacks.drain()
    finally:
        await notifier.close()
    # pluggy's order (last registered first); the raising ones kept nobody from the event.
    assert seen == ["async:e1", "sync:e1", "subscriber:e1"]
    failed = [r for r in caplog.records if getattr(r, "event", None) == "plugin_hook_failed"]
    assert {(r.plugin, r.distribution, r.error_type) for r in failed} == {  # type: ignore[attr-defined]
        ("raising", "nk-raising", "RuntimeError"),
        ("raising-async", "raising-async", "LookupError"),
    }
    assert all(r.event_id == "e1" and r.hook == "on_event" for r in failed)  # type: ignore[attr-defined]
    assert SECRET not in caplog.text
    assert "RuntimeError" in caplog.text and "nk-raising" in caplog.text


@pytest.mark.anyio
async def test_the_call_order_is_pluggys_own() -> None:
    order: list[str] = []

    def observer(label: str, **opts: bool) -> object:
        class Observer:
            @hookimpl(**opts)
            def on_event(self, event: Any) -> None:
                order.append(label)

        return Observer()

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(observer("first"), name="first")
    pm.register(observer("early", tryfirst=True), name="early")
    pm.register(observer("second"), name="second")
    pm.register(observer("late", trylast=True), name="late")
    pm.hook.on_event(event=receipt("x"))
    by_pluggy, order[:] = list(order), []
    assert await acall_each(pm, "on_event", event=receipt("x")) == []
    assert order == by_pluggy == ["early", "second", "first", "late"]


def test_an_implementation_taking_fewer_arguments_is_called_as_pluggy_would() -> None:
    called: list[str] = []

    class NoArguments:
        @hookimpl
        def register_commands(self) -> None:
            called.append("yes")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(NoArguments(), name="no-arguments")
    assert call_each(pm, "register_commands", cli=object()) == []
    assert called == ["yes"]


def test_a_sync_hook_implementation_returning_an_awaitable_is_a_failure_not_a_lost_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def later() -> None:
        raise AssertionError("never run")

    class ReturnsCoroutine:
        @hookimpl
        def register_commands(self, cli: Any) -> Any:
            return later()

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(ReturnsCoroutine(), name="returns-coroutine")
    with caplog.at_level(logging.ERROR, logger="notifykit"):
        (failure,) = call_each(pm, "register_commands", cli=object())
    assert (failure.plugin, failure.error_type) == ("returns-coroutine", "TypeError")
    assert "plugin_hook_failed" in caplog.text


def test_a_failure_repr_and_str_hold_the_class_not_the_message() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(RaisingObserver(), name="raising", distribution="nk-raising")
    (failure,) = call_each(pm, "on_event", event=receipt("x"))
    assert str(failure) == "plugin 'nk-raising' failed in on_event: RuntimeError"
    assert SECRET not in repr(failure) and SECRET not in str(failure)
    assert isinstance(failure.error, RuntimeError)  # kept for chaining


def test_hook_wrappers_and_async_registration_hooks_are_refused_at_registration() -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_event(self, event: Any) -> Any:
            return (yield)

    class AsyncRegistration:
        @hookimpl
        async def register_providers(self, register: Any) -> None:
            raise AssertionError("never called")

    pm = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(pluggy.PluginValidationError, match="wrapper"):
        pm.register(Wrapper(), name="wrapper")
    with pytest.raises(pluggy.PluginValidationError, match=r"register_providers.*not async"):
        pm.register(AsyncRegistration(), name="async-registration")
    assert pm.get_plugin("wrapper") is None and pm.get_plugin("async-registration") is None
    assert "wrapper" not in pm.distributions


def test_a_plain_pluggy_manager_still_works_and_its_wrappers_are_reported() -> None:
    seen: list[str] = []

    class Wrapper:
        @hookimpl(hookwrapper=True)
        def on_event(self, event: Any) -> Any:
            yield

    pm = pluggy.PluginManager("notifykit")
    from notifykit import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(SyncObserver(seen), name="sync")
    pm.register(Wrapper(), name="wrapper")
    failures = call_each(pm, "on_event", event=receipt("x"))
    assert [(f.plugin, f.distribution, f.error_type) for f in failures] == [
        ("wrapper", "wrapper", "TypeError")
    ]
    assert seen == ["sync:x"]


class _Vault(SmsProvider[MemoryOptions]):
    name: ClassVar[str] = "vault"
    Options: ClassVar[Any] = MemoryOptions

    async def send(self, message: Any) -> SendReceipt:
        return SendReceipt()


def _plugin_module() -> types.ModuleType:
    module = types.ModuleType("nk_vault_plugin")

    @hookimpl
    def register_providers(register: Any) -> None:
        register(_Vault)

    module.register_providers = register_providers  # type: ignore[attr-defined]
    return module


def test_two_plugin_managers_do_not_share_distribution_records() -> None:
    plugin = _plugin_module()  # one object, as one imported module is, in two managers
    first = get_plugin_manager(load_entrypoints=False)
    second = get_plugin_manager(load_entrypoints=False)
    first.register(plugin, name="vault", distribution="nk-vault-a")
    second.register(plugin, name="vault", distribution="nk-vault-b")
    assert provider_types(first)["vault"].distribution == "nk-vault-a"
    assert provider_types(second)["vault"].distribution == "nk-vault-b"
    assert first.distributions["vault"] == "nk-vault-a"
    second.unregister(plugin)
    assert "vault" not in second.distributions
    assert provider_types(first)["vault"].distribution == "nk-vault-a"


def test_a_registration_failure_names_the_distribution_and_class_only() -> None:
    class Exploding:
        @hookimpl
        def register_providers(self, register: Any) -> None:
            raise KeyError(SECRET)

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Exploding(), name="exploding", distribution="nk-exploding")
    with pytest.raises(ConfigError) as info:
        provider_types(pm)
    assert str(info.value) == "plugin 'nk-exploding' failed in register_providers: KeyError"
    assert isinstance(info.value.__cause__, KeyError)


def test_get_plugin_manager_makes_a_notifykit_plugin_manager() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    assert isinstance(pm, NotifykitPluginManager)
    assert pm.distributions == {
        "notifykit.default_plugins.console": "notifykit",
        "notifykit.default_plugins.memory": "notifykit",
    }
