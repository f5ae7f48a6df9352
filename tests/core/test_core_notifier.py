"""AsyncNotifier and its synchronous twin Notifier."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from notifykit import AsyncNotifier, Config, Notifier
from notifykit.default_plugins.memory import MemoryProvider
from notifykit.errors import (
    AllProvidersFailed,
    ConfigError,
    InsufficientBalance,
    InvalidMessage,
    NotifyKitError,
    NotSupported,
    ProviderError,
)
from notifykit.plugins import get_plugin_manager

NUMBER = "+8615612341090"


def memory_config(**options: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "primary": {"type": "memory", **options},
                "backup": {"type": "memory"},
                "console": {"type": "console", "stream": "stderr"},
            },
            "routing": {"providers": ["primary", "backup"]},
        }
    )


def memory(notifier: AsyncNotifier, name: str) -> MemoryProvider:
    provider = notifier.providers[name]
    assert isinstance(provider, MemoryProvider)
    return provider


@pytest.fixture
def pm() -> Any:
    return get_plugin_manager(load_entrypoints=False)


class TestAsync:
    pytestmark = pytest.mark.anyio

    async def test_send_returns_the_result_with_attempts(self, pm: Any) -> None:
        async with AsyncNotifier(memory_config(), plugin_manager=pm) as notifier:
            result = await notifier.send(
                "+86 156 1234 1090", template="verify_code", params={"code": 1234}, tags=["otp"]
            )
            sent = memory(notifier, "primary").outbox
        assert result.provider == "primary"
        assert result.provider_message_id == sent[0].provider_message_id
        assert result.remaining_credits == 999
        assert [a.outcome for a in result.attempts] == ["accepted"]
        assert sent[0].to == NUMBER and sent[0].params == {"code": "1234"}
        assert sent[0].tags == ("otp",)

    async def test_failover_is_recorded_in_attempts(self, pm: Any) -> None:
        config = memory_config(fail="InsufficientBalance")
        async with AsyncNotifier(config, plugin_manager=pm) as notifier:
            result = await notifier.send(NUMBER, template="t")
        assert result.provider == "backup"
        assert [(a.provider, a.outcome, a.error_type) for a in result.attempts] == [
            ("primary", "failed", "InsufficientBalance"),
            ("backup", "accepted", None),
        ]

    async def test_a_failed_send_raises_with_attempts(self, pm: Any) -> None:
        async with AsyncNotifier(memory_config(), plugin_manager=pm) as notifier:
            memory(notifier, "primary").fail_next(InsufficientBalance)
            memory(notifier, "backup").fail_next(InsufficientBalance)
            with pytest.raises(AllProvidersFailed) as info:
                await notifier.send(NUMBER, template="t")
        assert [a.error_type for a in info.value.attempts] == ["InsufficientBalance"] * 2

    async def test_bad_input_fails_before_any_provider_is_called(self, pm: Any) -> None:
        async with AsyncNotifier(memory_config(), plugin_manager=pm) as notifier:
            with pytest.raises(
                InvalidMessage, match=r"\+86156\*\*\*\*9099 is not a valid number for CN"
            ):
                await notifier.send("+861561234109099", template="t")
            with pytest.raises(InvalidMessage):
                await notifier.send(NUMBER, template="")
            assert memory(notifier, "primary").calls == 0

    async def test_balance(self, pm: Any) -> None:
        async with AsyncNotifier(memory_config(balance=7), plugin_manager=pm) as notifier:
            assert (await notifier.balance()).remaining == Decimal(7)  # first on the route
            assert (await notifier.balance("backup")).remaining == Decimal(1000)
            with pytest.raises(NotSupported):
                await notifier.balance("console")
            with pytest.raises(ConfigError, match="unknown provider 'ghost'"):
                await notifier.balance("ghost")

    async def test_a_plugin_bug_in_balance_is_translated(
        self, pm: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(self: MemoryProvider) -> Any:
            raise KeyError("secret-ish detail")

        monkeypatch.setattr(MemoryProvider, "balance", broken)
        async with AsyncNotifier(memory_config(), plugin_manager=pm) as notifier:
            with pytest.raises(ProviderError) as info:
                await notifier.balance("primary")
        assert "KeyError" in str(info.value) and "secret-ish" not in str(info.value)
        assert isinstance(info.value.__cause__, KeyError)

    async def test_a_closed_notifier_refuses_work(self, pm: Any) -> None:
        notifier = AsyncNotifier(memory_config(), plugin_manager=pm)
        await notifier.close()
        await notifier.close()  # idempotent
        with pytest.raises(NotifyKitError, match="closed"):
            await notifier.send(NUMBER, template="t")

    async def test_no_providers_is_a_config_error(self, pm: Any) -> None:
        async with AsyncNotifier(Config.from_dict({}), plugin_manager=pm) as notifier:
            with pytest.raises(ConfigError, match="no providers configured"):
                await notifier.send(NUMBER, template="t")

    async def test_memory_provider_can_fail_in_each_error_class(self, pm: Any) -> None:
        from notifykit.default_plugins.memory import FAILURES

        for name, cls in FAILURES.items():
            config = Config.from_dict({"providers": {"only": {"type": "memory", "fail": name}}})
            async with AsyncNotifier(config, plugin_manager=pm) as notifier:
                with pytest.raises(NotifyKitError) as info:
                    await notifier.send(NUMBER, template="t")
            assert info.value.attempts[0].error_type == cls.__name__

    async def test_memory_provider_countries_and_delay(self, pm: Any) -> None:
        config = memory_config(countries=["us"], delay=0.01)
        async with AsyncNotifier(config, plugin_manager=pm) as notifier:
            result = await notifier.send(NUMBER, template="t")
        assert result.provider == "backup"
        assert result.attempts[0].outcome == "skipped"
        assert "destination CN not served (serves US)" in (result.attempts[0].error_message or "")

    async def test_subscribe_and_close_are_available(self, pm: Any) -> None:
        seen: list[Any] = []
        async with AsyncNotifier(memory_config(), plugin_manager=pm) as notifier:
            notifier.subscribe(seen.append)
            assert "primary" in await notifier.health()
        assert seen == []


@pytest.fixture
def sync_notifier(pm: Any) -> Iterator[Notifier]:
    with Notifier(memory_config(), plugin_manager=pm) as notifier:
        yield notifier


def test_sync_send_and_balance(sync_notifier: Notifier) -> None:
    result = sync_notifier.send(NUMBER, template="verify_code", params={"code": "1"})
    assert result.provider == "primary"
    assert sync_notifier.balance("primary").remaining == Decimal(999)
    record = sync_notifier.get_message(result.message_id)
    assert record is not None and record.provider == "primary"


def test_sync_errors_are_the_same_classes(sync_notifier: Notifier) -> None:
    with pytest.raises(InvalidMessage):
        sync_notifier.send("nonsense", template="t")
    with pytest.raises(ConfigError):
        sync_notifier.balance("ghost")


def test_many_threads_share_one_loop(sync_notifier: Notifier) -> None:
    loops: set[int] = set()
    threads: set[int] = set()
    original = MemoryProvider.send

    async def spy(self: MemoryProvider, message: Any) -> Any:
        loops.add(id(asyncio.get_running_loop()))
        threads.add(threading.get_ident())
        return await original(self, message)

    MemoryProvider.send = spy  # type: ignore[method-assign]
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(
                pool.map(
                    lambda i: sync_notifier.send(NUMBER, template="t", params={"i": i}), range(40)
                )
            )
    finally:
        MemoryProvider.send = original  # type: ignore[method-assign]
    assert len({r.message_id for r in results}) == 40
    assert len(loops) == 1 and len(threads) == 1
    assert loops == {id(sync_notifier._loop)}
    provider = sync_notifier.async_notifier.providers["primary"]
    assert isinstance(provider, MemoryProvider) and len(provider.outbox) == 40


def test_sync_notifier_in_a_thread_with_its_own_running_loop(pm: Any) -> None:
    async def inside_a_loop() -> str:
        with Notifier(memory_config(), plugin_manager=pm) as notifier:
            return notifier.send(NUMBER, template="t").provider

    assert asyncio.run(inside_a_loop()) == "primary"


def test_calling_the_sync_notifier_from_its_own_loop_is_refused(pm: Any) -> None:
    errors: list[BaseException] = []
    with Notifier(memory_config(), plugin_manager=pm) as notifier:

        async def subscriber_like() -> None:
            try:
                notifier.balance("primary")
            except NotifyKitError as exc:
                errors.append(exc)

        asyncio.run_coroutine_threadsafe(subscriber_like(), notifier._loop).result(timeout=5)
    assert len(errors) == 1 and "own event loop" in str(errors[0])


def test_close_is_idempotent_and_final(pm: Any) -> None:
    notifier = Notifier(memory_config(), plugin_manager=pm)
    thread = notifier._thread
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: notifier.close(), range(4)))
    assert not thread.is_alive()
    with pytest.raises(NotifyKitError, match="closed"):
        notifier.send(NUMBER, template="t")


def test_a_bad_config_does_not_leave_a_thread_behind(pm: Any) -> None:
    before = {t.name for t in threading.enumerate() if t.name == "notifykit-loop"}
    bad = Config.from_dict({"providers": {"x": {"type": "nosuch"}}})
    with pytest.raises(ConfigError):
        Notifier(bad, plugin_manager=pm)
    after = [t for t in threading.enumerate() if t.name == "notifykit-loop"]
    assert len(after) == len(before)


def test_reprs_name_instances_only(pm: Any) -> None:
    with Notifier(memory_config(), plugin_manager=pm) as notifier:
        assert repr(notifier).startswith("<Notifier providers=['primary', 'backup', 'console']")
        assert repr(notifier.async_notifier).startswith("<AsyncNotifier")
        assert repr(notifier.async_notifier.providers["primary"]) == "<MemoryProvider 'primary'>"
