"""notifykit: send SMS through any number of vendors behind one interface.

The public surface is what ``__all__`` lists; everything else is private.
"""

from __future__ import annotations

from notifykit.config import Config, load_config
from notifykit.events import DeliveryReceipt, Event, InboundMessage
from notifykit.hookspecs import hookimpl
from notifykit.models import (
    Attempt,
    Balance,
    DeliveryStatus,
    MessageRecord,
    SendReceipt,
    SendResult,
    SmsMessage,
    StatusChange,
    VerificationCheckStatus,
    VerificationStatus,
)
from notifykit.notifier import AsyncNotifier, Notifier
from notifykit.provider import (
    CallbackRequest,
    CallbackResult,
    ProviderContext,
    ProviderOptions,
    SmsProvider,
    TemplateOptions,
)
from notifykit.sandbox import Sandbox, SandboxSettings
from notifykit.verify import Verification, VerificationCheck

__all__ = [
    "AsyncNotifier",
    "Attempt",
    "Balance",
    "CallbackRequest",
    "CallbackResult",
    "Config",
    "DeliveryReceipt",
    "DeliveryStatus",
    "Event",
    "InboundMessage",
    "MessageRecord",
    "Notifier",
    "ProviderContext",
    "ProviderOptions",
    "Sandbox",
    "SandboxSettings",
    "SendReceipt",
    "SendResult",
    "SmsMessage",
    "SmsProvider",
    "StatusChange",
    "TemplateOptions",
    "Verification",
    "VerificationCheck",
    "VerificationCheckStatus",
    "VerificationStatus",
    "hookimpl",
    "load_config",
]

__version__ = "0.1.0"
