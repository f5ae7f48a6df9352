"""sms_outbox / capture_sms: what is captured, from whom, and that nothing stays patched."""

from __future__ import annotations

import threading

import pluggy
import pytest

from notifykit import AsyncNotifier, Config, Notifier, errors
from notifykit.default_plugins.memory import MemoryProvider
from notifykit.plugins import get_plugin_manager
from notifykit.testing import (
    FakeProvider,
    Outbox,
    capture_sms,
    fail,
    fake_notifier,
    fake_providers,
    unknown,
)

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
OTHER = "+14155550100"
MEMORY = {"providers": {"primary": {"type": "memory"}, "backup": {"type": "memory"}}}


def _plain_pm() -> pluggy.PluginManager:
    return get_plugin_manager(load_entrypoints=False)


async def test_sends_of_a_notifier_the_code_under_test_builds_are_captured(
    sms_outbox: Outbox,
) -> None:
    # Built the way application code would, with no reference to the outbox.
    async with AsyncNotifier(Config.from_dict(MEMORY), plugin_manager=_plain_pm()) as app:
        await app.send(PHONE, template="verify_code", params={"code": "1234"})
        await app.send(OTHER, template="welcome", tags=["signup"])
    assert [(m.to, m.template, m.provider) for m in sms_outbox] == [
        (PHONE, "verify_code", "primary"),
        (OTHER, "welcome", "primary"),
    ]
    assert sms_outbox[0].params == {"code": "1234"}
    assert sms_outbox.last.tags == ("signup",)


async def test_failed_sends_are_not_captured_and_failover_is_in_order(sms_outbox: Outbox) -> None:
    async with AsyncNotifier(Config.from_dict(MEMORY), plugin_manager=_plain_pm()) as app:
        primary = app.providers["primary"]
        assert isinstance(primary, MemoryProvider)
        primary.fail_next(errors.ProviderError)
        result = await app.send(PHONE, template="verify_code", params={"code": "1"})
        await app.send(PHONE, template="verify_code", params={"code": "2"})
    assert result.provider == "backup"
    assert [(m.provider, m.params["code"]) for m in sms_outbox] == [
        ("backup", "1"),
        ("primary", "2"),
    ]


async def test_fake_providers_are_captured_including_unknown_outcomes(sms_outbox: Outbox) -> None:
    async with fake_notifier() as notifier:
        fake = fake_providers(notifier)["fake"]
        fake.script(fail(errors.InvalidRecipient), unknown())
        for _ in range(2):
            with pytest.raises(errors.NotifyKitError):
                await notifier.send(PHONE, template="verify_code")
    # The invalid recipient never went out; the unknown outcome did.
    assert len(sms_outbox) == 1 and sms_outbox[0].provider == "fake"


def test_sync_notifier_sends_from_several_threads_are_all_captured(sms_outbox: Outbox) -> None:
    with Notifier(Config.from_dict(MEMORY), plugin_manager=_plain_pm()) as app:

        def worker(n: int) -> None:
            for i in range(10):
                app.send(PHONE, template="verify_code", params={"code": f"{n}{i}"})

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    assert len(sms_outbox) == 40
    assert sorted(m.params["code"] for m in sms_outbox) == sorted(
        f"{n}{i}" for n in range(4) for i in range(10)
    )


async def test_a_provider_built_before_the_capture_needs_attach() -> None:
    async with AsyncNotifier(Config.from_dict(MEMORY), plugin_manager=_plain_pm()) as app:
        await app.send(PHONE, template="before")
        with capture_sms() as outbox:
            await app.send(PHONE, template="unseen")
            assert len(outbox) == 0
            outbox.attach(app).attach(app)  # twice is harmless
            await app.send(PHONE, template="seen")
        await app.send(PHONE, template="after")
    assert [m.template for m in outbox] == ["seen"]
    # The provider's own outbox still holds everything, as a plain list would.
    primary = app.providers["primary"]
    assert isinstance(primary, MemoryProvider)
    assert [m.template for m in primary.outbox] == ["before", "unseen", "seen", "after"]


def test_the_constructor_is_restored_and_observers_removed_after_capture() -> None:
    original = MemoryProvider.__dict__.get("__init__")
    with capture_sms():
        assert MemoryProvider.__dict__.get("__init__") is not original
        with capture_sms():
            pass
        assert MemoryProvider.__dict__.get("__init__") is not original, "outer still active"
    assert MemoryProvider.__dict__.get("__init__") is original
    assert FakeProvider.created == []


def test_the_constructor_is_restored_when_the_block_raises() -> None:
    original = MemoryProvider.__dict__.get("__init__")
    with pytest.raises(RuntimeError), capture_sms():
        raise RuntimeError("boom")
    assert MemoryProvider.__dict__.get("__init__") is original


async def test_nested_captures_each_see_what_was_built_inside_them() -> None:
    with capture_sms() as outer:
        async with fake_notifier("a") as first:
            with capture_sms() as inner:
                async with fake_notifier("b") as second:
                    await second.send(PHONE, template="t")
            await first.send(PHONE, template="t")
    assert [m.provider for m in outer] == ["b", "a"]
    assert [m.provider for m in inner] == ["b"]


async def test_sends_after_the_capture_ended_are_not_added() -> None:
    with capture_sms() as outbox:
        notifier = fake_notifier()
    async with notifier:
        await notifier.send(PHONE, template="late")
    assert len(outbox) == 0


async def test_filter_assert_sent_clear_and_repr(sms_outbox: Outbox) -> None:
    async with AsyncNotifier(Config.from_dict(MEMORY), plugin_manager=_plain_pm()) as app:
        await app.send(PHONE, template="verify_code", params={"code": "1234"}, tags=["login"])
        await app.send(OTHER, template="verify_code", params={"code": 99})
        await app.send(PHONE, template="welcome")
    assert len(sms_outbox.filter(to="+86 156 1234 1090")) == 2
    assert [m.to for m in sms_outbox.filter(params={"code": "99"})] == [OTHER]
    assert sms_outbox.filter(tags=["login"])[0].params == {"code": "1234"}
    assert sms_outbox.filter(provider="backup") == []
    assert sms_outbox.assert_sent(to=PHONE, template="welcome")[0].template == "welcome"
    sms_outbox.assert_sent(template="verify_code", count=2)
    sms_outbox.assert_sent(template="verify_code", count=None)
    with pytest.raises(AssertionError, match=r"expected 1 SMS matching.*found 2") as caught:
        sms_outbox.assert_sent(template="verify_code")
    assert PHONE not in str(caught.value) and "+86156****1090" in str(caught.value)
    assert PHONE not in repr(sms_outbox) and "3 message(s)" in repr(sms_outbox)
    assert sms_outbox[1:] == list(sms_outbox)[1:]
    sms_outbox.clear()
    assert sms_outbox == [] and len(sms_outbox) == 0
    with pytest.raises(AssertionError, match="no SMS was sent"):
        _ = sms_outbox.last
    with pytest.raises(AssertionError, match="found 0"):
        sms_outbox.assert_sent(count=None)


def test_an_outbox_is_a_sequence_not_hashable() -> None:
    outbox = Outbox()
    assert outbox == Outbox() and outbox != object()
    with pytest.raises(TypeError):
        hash(outbox)
