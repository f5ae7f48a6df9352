"""notifykit's testing kit, also a pytest plugin (``pytest11`` entry point ``notifykit``).

Fixtures: ``sms_outbox``, ``notifier``, ``async_notifier``, and the two they are built from,
``notifykit_config`` and ``notifykit_plugin_manager``. Helpers: :class:`FakeProvider` with
its scripted outcomes, and builders of each vendor's callback pushes. See docs/testing.md.

Importing this module configures nothing and patches nothing; :func:`capture_sms` (behind
``sms_outbox``) observes new memory providers only while it is active.
"""

from __future__ import annotations

from notifykit.default_plugins.memory import SentMessage
from notifykit.testing.callbacks import (
    CallbackPush,
    deliver,
    fake_receipt,
    fake_reply,
    twilio_callback_url,
    twilio_inbound_message,
    twilio_settings,
    twilio_signature,
    twilio_status_callback,
    veesing_mobile,
    veesing_receipt,
    veesing_receivetime,
    veesing_reply,
)
from notifykit.testing.fake import (
    Accept,
    Delay,
    Fail,
    FakeCall,
    FakeOptions,
    FakeProvider,
    Outcome,
    Unknown,
    accept,
    delay,
    fail,
    fake_config,
    fake_notifier,
    fake_plugin_manager,
    fake_providers,
    fake_sync_notifier,
    parse_outcome,
    unknown,
)
from notifykit.testing.fixtures import (
    async_notifier,
    build_config,
    notifier,
    notifykit_config,
    notifykit_plugin_manager,
    sms_outbox,
)
from notifykit.testing.outbox import Outbox, capture_sms

__all__ = [
    "Accept",
    "CallbackPush",
    "Delay",
    "Fail",
    "FakeCall",
    "FakeOptions",
    "FakeProvider",
    "Outbox",
    "Outcome",
    "SentMessage",
    "Unknown",
    "accept",
    "async_notifier",
    "build_config",
    "capture_sms",
    "delay",
    "deliver",
    "fail",
    "fake_config",
    "fake_notifier",
    "fake_plugin_manager",
    "fake_providers",
    "fake_receipt",
    "fake_reply",
    "fake_sync_notifier",
    "notifier",
    "notifykit_config",
    "notifykit_plugin_manager",
    "parse_outcome",
    "sms_outbox",
    "twilio_callback_url",
    "twilio_inbound_message",
    "twilio_settings",
    "twilio_signature",
    "twilio_status_callback",
    "unknown",
    "veesing_mobile",
    "veesing_receipt",
    "veesing_receivetime",
    "veesing_reply",
]
