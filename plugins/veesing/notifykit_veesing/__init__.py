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
from notifykit_veesing.sandbox import VeesingSandbox
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
    register(VeesingSandbox)
