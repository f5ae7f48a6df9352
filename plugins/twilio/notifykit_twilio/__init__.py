"""notifykit's Twilio plugin: the ``twilio`` provider type and the ``twilio`` sandbox."""

from __future__ import annotations

from collections.abc import Callable

from notifykit import hookimpl
from notifykit.sandbox import Sandbox
from notifykit_twilio.provider import TwilioOptions, TwilioProvider, TwilioTemplate
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
    # Imported here: a sandbox is a Starlette app, loaded only when one is asked for.
    from notifykit_twilio.sandbox import TwilioSandbox

    register(TwilioSandbox)


_SANDBOX_NAMES = frozenset({"TwilioSandbox", "TwilioSandboxSettings"})


def __getattr__(name: str) -> object:
    # The sandbox (a Starlette app) is imported on first use, so that a process that only
    # sends never loads a web framework (issue 17).
    if name in _SANDBOX_NAMES:
        import importlib

        return getattr(importlib.import_module("notifykit_twilio.sandbox"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
