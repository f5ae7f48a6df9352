"""notifykit's Twilio plugin: the ``twilio`` provider type and the ``twilio`` sandbox."""

from __future__ import annotations

from collections.abc import Callable

from notifykit import hookimpl
from notifykit.sandbox import Sandbox
from notifykit_twilio.provider import TwilioOptions, TwilioProvider, TwilioTemplate
from notifykit_twilio.sandbox import TwilioSandbox, TwilioSandboxSettings
from notifykit_twilio.signature import compute_signature, verify_signature

__all__ = [
    "TwilioOptions",
    "TwilioProvider",
    "TwilioSandbox",
    "TwilioSandboxSettings",
    "TwilioTemplate",
    "compute_signature",
    "register_providers",
    "register_sandboxes",
    "verify_signature",
]


@hookimpl
def register_providers(register: Callable[[type[TwilioProvider]], None]) -> None:
    register(TwilioProvider)


@hookimpl
def register_sandboxes(register: Callable[[type[Sandbox]], None]) -> None:
    register(TwilioSandbox)
