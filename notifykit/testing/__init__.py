"""notifykit's testing kit, also a pytest plugin (``pytest11`` entry point ``notifykit``).

Fixtures: ``sms_outbox``, ``notifier``, ``async_notifier``, and the two they are built from,
``notifykit_config`` and ``notifykit_plugin_manager`` (defined in :mod:`_notifykit_pytest`,
the module the ``pytest11`` entry point names, which imports nothing of notifykit until a
test uses them; re-exported here). Helpers: :class:`FakeProvider` with its scripted
outcomes, the ``fake`` provider's pushes and :func:`deliver`. Each vendor's push builders
ship with its plugin (``notifykit_veesing.testing``, ``notifykit_twilio.testing``). See
docs/testing.md.

Importing this module configures nothing and patches nothing; :func:`capture_sms` (behind
``sms_outbox``) observes new memory providers only while it is active.
"""

from __future__ import annotations

from notifykit.default_plugins.memory import SentMessage
from notifykit.testing.callbacks import (
    CallbackPush,
    Fields,
    callback_url,
    deliver,
    fake_receipt,
    fake_reply,
    form_fields,
    form_push,
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
    "Fields",
    "Outbox",
    "Outcome",
    "SentMessage",
    "Unknown",
    "accept",
    "async_notifier",
    "build_config",
    "callback_url",
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
    "form_fields",
    "form_push",
    "notifier",
    "notifykit_config",
    "notifykit_plugin_manager",
    "parse_outcome",
    "sms_outbox",
    "unknown",
]

_MOVED = {
    **dict.fromkeys(
        ("veesing_mobile", "veesing_receipt", "veesing_receivetime", "veesing_reply"),
        "notifykit_veesing.testing",
    ),
    **dict.fromkeys(
        (
            "twilio_callback_url",
            "twilio_inbound_message",
            "twilio_settings",
            "twilio_signature",
            "twilio_status_callback",
        ),
        "notifykit_twilio.testing",
    ),
}


def __getattr__(name: str) -> object:
    # The vendors' builders moved to their plugins (issue 17): say where, rather than
    # importing a plugin from the core kit.
    if name in _MOVED:
        raise AttributeError(
            f"notifykit.testing.{name} moved to {_MOVED[name]}: from {_MOVED[name]} import {name}"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
