"""``console``: prints the SMS it would send. The default with no configuration."""

from __future__ import annotations

import itertools
import sys
from decimal import Decimal
from typing import Any, ClassVar, TextIO

from pydantic import Field

from notifykit.hookspecs import hookimpl
from notifykit.models import Balance, SendReceipt, SmsMessage
from notifykit.phone import mask_phone
from notifykit.provider import ProviderOptions, SmsProvider

__all__ = ["ConsoleOptions", "ConsoleProvider"]


class ConsoleOptions(ProviderOptions):
    stream: str = Field(default="stdout", pattern="^(stdout|stderr)$")
    """Where to print: ``stdout`` or ``stderr``."""


class ConsoleProvider(SmsProvider[ConsoleOptions]):
    """Prints each message (number masked) instead of sending it; accepts any template."""

    name: ClassVar[str] = "console"
    Options: ClassVar[type[ProviderOptions]] = ConsoleOptions
    requires_templates: ClassVar[bool] = False

    _ids = itertools.count(1)

    def _stream(self) -> TextIO:
        return sys.stderr if self.options.stream == "stderr" else sys.stdout

    async def send(self, message: SmsMessage) -> SendReceipt:
        params = " ".join(f"{k}={v}" for k, v in sorted(message.params.items()))
        print(
            f"[{self.instance}] SMS to {mask_phone(message.to)}: {message.template} {params}".rstrip(),
            file=self._stream(),
            flush=True,
        )
        return SendReceipt(provider_message_id=f"console-{next(self._ids)}")

    async def balance(self) -> Balance:
        return Balance(provider=self.instance, remaining=Decimal("Infinity"), unit="credits")


@hookimpl
def register_providers(register: Any) -> None:
    register(ConsoleProvider)
