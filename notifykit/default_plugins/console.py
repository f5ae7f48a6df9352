"""``console``: prints the SMS it would send. The default with no configuration."""

from __future__ import annotations

import sys
import uuid
from typing import Any, ClassVar, Literal, TextIO

from notifykit.default_plugins.memory import AnyTemplateOptions
from notifykit.hookspecs import hookimpl
from notifykit.models import SendReceipt, SmsMessage
from notifykit.phone import mask_phone
from notifykit.provider import ProviderOptions, SmsProvider, TemplateOptions

__all__ = ["ConsoleOptions", "ConsoleProvider"]


class ConsoleOptions(ProviderOptions):
    stream: Literal["stdout", "stderr"] = "stdout"
    """Where to print: ``stdout`` or ``stderr``."""
    show_params: bool = False
    """Print the parameters' values (a verification code is a secret): off, each value
    shows as ``****``."""


class ConsoleProvider(SmsProvider[ConsoleOptions]):
    """Prints each message (number masked) instead of sending it; accepts any template.

    It has no account, hence no balance query (``balance`` raises NotSupported).
    """

    name: ClassVar[str] = "console"
    Options: ClassVar[type[ProviderOptions]] = ConsoleOptions
    TemplateOptions: ClassVar[type[TemplateOptions]] = AnyTemplateOptions
    requires_templates: ClassVar[bool] = False

    def _stream(self) -> TextIO:
        return sys.stderr if self.options.stream == "stderr" else sys.stdout

    async def send(self, message: SmsMessage) -> SendReceipt:
        shown = self.options.show_params
        params = " ".join(
            f"{k}={v if shown else '****'}" for k, v in sorted(message.params.items())
        )
        print(
            f"[{self.instance}] SMS to {mask_phone(message.to)}: {message.template} {params}".rstrip(),
            file=self._stream(),
            flush=True,
        )
        # Unique across runs, since a persistent store keys messages by this id too.
        return SendReceipt(provider_message_id=f"console-{uuid.uuid4().hex[:16]}")


@hookimpl
def register_providers(register: Any) -> None:
    register(ConsoleProvider)
