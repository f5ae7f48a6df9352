"""Shared pieces of the verification tests: a fake clock and notifiers over fake providers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from notifykit import AsyncNotifier
from notifykit.testing import FakeProvider, Outbox, capture_sms, fake_notifier, fake_providers

SECRET = "verify-secret-canary-0042-never-shown"
PHONE = "+8615612341090"
OTHER = "+8613800138000"
T0 = 1_700_000_000.0


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def verify_settings(**overrides: Any) -> dict[str, Any]:
    return {"secret": SECRET, **overrides}


MakeNotifier = Callable[..., AsyncNotifier]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox() -> Any:
    with capture_sms() as captured:
        yield captured


@pytest.fixture
async def make(clock: FakeClock, outbox: Outbox) -> AsyncIterator[MakeNotifier]:
    """``make(**verify_overrides, store=..., names=...)``: an opened AsyncNotifier over fake
    providers with ``[verify]`` set, on the fake clock; closed after the test."""
    made: list[AsyncNotifier] = []

    def build(
        *names: str, store: str = "memory://", extra: dict[str, Any] | None = None, **verify: Any
    ) -> AsyncNotifier:
        notifier = fake_notifier(
            *names,
            extra={"verify": verify_settings(**verify), "store": {"url": store}, **(extra or {})},
        )
        notifier.verify.clock = clock
        made.append(notifier)
        return notifier

    yield build
    for notifier in made:
        await notifier.close()


def fake_of(notifier: AsyncNotifier, name: str = "fake") -> FakeProvider:
    return fake_providers(notifier)[name]
