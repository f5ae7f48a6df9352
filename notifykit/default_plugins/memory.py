"""``memory``: keeps sent messages in-process, and fails on demand in any error class.

For tests: ``[providers.fake] type = "memory"`` with ``fail = "InsufficientBalance"``, or
script it at run time with :meth:`MemoryProvider.fail_next`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import deque
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from notifykit import errors
from notifykit.config import Duration, RegionCode
from notifykit.hookspecs import hookimpl
from notifykit.models import Balance, SendReceipt, SmsMessage
from notifykit.phone import region_of
from notifykit.provider import ProviderOptions, SmsProvider, TemplateOptions

__all__ = ["FAILURES", "AnyTemplateOptions", "MemoryOptions", "MemoryProvider", "SentMessage"]

FAILURES: dict[str, type[errors.ProviderError]] = {
    cls.__name__: cls
    for cls in (
        errors.ProviderError,
        errors.AuthenticationError,
        errors.InsufficientBalance,
        errors.QuotaExceeded,
        errors.RecipientRateLimited,
        errors.InvalidRecipient,
        errors.TemplateError,
        errors.ProviderUnavailable,
        errors.UnknownOutcome,
    )
}

FailureName = Literal[
    "ProviderError",
    "AuthenticationError",
    "InsufficientBalance",
    "QuotaExceeded",
    "RecipientRateLimited",
    "InvalidRecipient",
    "TemplateError",
    "ProviderUnavailable",
    "UnknownOutcome",
]


class MemoryOptions(ProviderOptions):
    fail: FailureName | None = None
    """Fail every send with this error class."""
    balance: int = Field(default=1000, ge=0)
    """Credits; each accepted send costs one."""
    delay: Duration = Field(default=0.0, ge=0.0, le=60.0)
    """Seconds each send takes (a duration: 0.5, "500ms")."""
    countries: list[RegionCode] | None = None
    """Decline numbers outside these regions (ISO 3166 codes); None accepts all."""


class AnyTemplateOptions(TemplateOptions):
    """Whatever ``[templates.<t>.<instance>]`` holds, kept as given.

    A built-in provider needs no template settings, but accepts them, so that a file written
    for a real vendor still loads when an instance's ``type`` is switched to it.
    """

    model_config = ConfigDict(extra="allow", frozen=True)


class SentMessage(SmsMessage):
    """A message the memory provider accepted."""

    provider: str
    provider_message_id: str


class MemoryProvider(SmsProvider[MemoryOptions]):
    """Accepts messages into ``outbox``; accepts any template."""

    name: ClassVar[str] = "memory"
    Options: ClassVar[type[ProviderOptions]] = MemoryOptions
    TemplateOptions: ClassVar[type[TemplateOptions]] = AnyTemplateOptions
    requires_templates: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox: list[SentMessage] = []
        self.calls = 0
        self.credits = self.options.balance
        self._script: deque[BaseException | None] = deque()
        self._ids = itertools.count(1)

    def fail_next(
        self, error: type[errors.ProviderError] | errors.ProviderError | None, times: int = 1
    ) -> None:
        """Make the next ``times`` sends raise ``error`` (None: succeed).

        ``error`` is an error class (raised with a message naming the instance) or an
        instance (each scripted send raises its own copy).
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        for _ in range(times):
            if isinstance(error, type):
                self._script.append(
                    error(f"{self.instance}: scripted {error.__name__}", provider=self.instance)
                )
            else:
                self._script.append(copy.copy(error))

    def decline(self, message: SmsMessage) -> str | None:
        countries = self.options.countries
        if countries is not None:
            region = region_of(message.to)
            if region not in countries:
                return (
                    f"destination {region or 'of unknown region'} not served "
                    f"(serves {', '.join(countries)})"
                )
        return None

    async def send(self, message: SmsMessage) -> SendReceipt:
        self.calls += 1
        if self.options.delay:
            await asyncio.sleep(self.options.delay)
        if self._script:
            scripted = self._script.popleft()
            if scripted is not None:
                raise scripted
        elif self.options.fail is not None:
            cls = FAILURES[self.options.fail]
            raise cls(
                f"{self.instance}: configured to fail with {cls.__name__}", provider=self.instance
            )
        if self.credits <= 0:
            raise errors.InsufficientBalance(
                f"{self.instance}: no credits left", provider=self.instance
            )
        self.credits -= 1
        provider_message_id = f"mem-{self.instance}-{next(self._ids)}"
        self.outbox.append(
            SentMessage(
                **message.model_dump(),
                provider=self.instance,
                provider_message_id=provider_message_id,
            )
        )
        return SendReceipt(provider_message_id=provider_message_id, remaining_credits=self.credits)

    async def balance(self) -> Balance:
        return Balance(provider=self.instance, remaining=Decimal(self.credits), unit="credits")


@hookimpl
def register_providers(register: Any) -> None:
    register(MemoryProvider)
