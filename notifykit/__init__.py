"""notifykit: send SMS through any number of vendors behind one interface.

The public surface comes in tiers. Tier 1, the application API, is what ``__all__`` lists
here: the notifiers, configuration, models, events, the provider interface and the whole
error tree (``from notifykit import ProviderUnavailable``). Tier 2, what plugin authors may
rely on besides, is the module list in docs/plugins.md ("What plugin authors may rely
on"). Everything else is private and may change in any release. Tests hold each tier's
names (tests/core/test_core_public_surface.py).
"""

from __future__ import annotations

from notifykit.config import Config, load_config
from notifykit.errors import (
    AllProvidersFailed,
    AuthenticationError,
    CallbackError,
    ConfigError,
    InsufficientBalance,
    InvalidMessage,
    InvalidRecipient,
    InvalidSignature,
    NotifyKitError,
    NotSupported,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RecipientRateLimited,
    StoreError,
    TemplateError,
    UnknownOutcome,
    UsageError,
    VerificationRateLimited,
)
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
    "AllProvidersFailed",
    "AsyncNotifier",
    "Attempt",
    "AuthenticationError",
    "Balance",
    "CallbackError",
    "CallbackRequest",
    "CallbackResult",
    "Config",
    "ConfigError",
    "DeliveryReceipt",
    "DeliveryStatus",
    "Event",
    "InboundMessage",
    "InsufficientBalance",
    "InvalidMessage",
    "InvalidRecipient",
    "InvalidSignature",
    "MessageRecord",
    "NotSupported",
    "Notifier",
    "NotifyKitError",
    "ProviderContext",
    "ProviderError",
    "ProviderOptions",
    "ProviderUnavailable",
    "QuotaExceeded",
    "RecipientRateLimited",
    "Sandbox",
    "SandboxSettings",
    "SendReceipt",
    "SendResult",
    "SmsMessage",
    "SmsProvider",
    "StatusChange",
    "StoreError",
    "TemplateError",
    "TemplateOptions",
    "UnknownOutcome",
    "UsageError",
    "Verification",
    "VerificationCheck",
    "VerificationCheckStatus",
    "VerificationRateLimited",
    "VerificationStatus",
    "hookimpl",
    "load_config",
]

__version__ = "0.1.0"
