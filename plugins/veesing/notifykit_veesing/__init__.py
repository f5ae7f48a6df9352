"""notifykit-veesing: the Veesing (中昱维信) SMS verification-code API as a notifykit provider,
and a local sandbox of it.

Registers provider type ``veesing`` and sandbox ``veesing`` (``notifykit sandbox veesing``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifykit import hookimpl
from notifykit_veesing.options import VeesingOptions, VeesingTemplateOptions
from notifykit_veesing.provider import VeesingProvider
from notifykit_veesing.sandbox_rules import VeesingSandboxSettings

__all__ = [
    "VeesingOptions",
    "VeesingProvider",
    "VeesingSandbox",
    "VeesingSandboxSettings",
    "VeesingTemplateOptions",
    "register_providers",
    "register_sandboxes",
]


@hookimpl
def register_providers(register: Callable[[type[Any]], None]) -> None:
    register(VeesingProvider)


@hookimpl
def register_sandboxes(register: Callable[[type[Any]], None]) -> None:
    # Imported here: a sandbox is a Starlette app, loaded only when one is asked for.
    from notifykit_veesing.sandbox import VeesingSandbox

    register(VeesingSandbox)


_SANDBOX_NAMES = frozenset({"VeesingSandbox"})


def __getattr__(name: str) -> object:
    # The sandbox (a Starlette app) is imported on first use, so that a process that only
    # sends never loads a web framework (issue 17).
    if name in _SANDBOX_NAMES:
        import importlib

        return getattr(importlib.import_module("notifykit_veesing.sandbox"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
