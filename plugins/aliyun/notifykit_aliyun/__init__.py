"""notifykit's Alibaba Cloud SMS plugin: the ``aliyun`` provider type and sandbox."""

from __future__ import annotations

from collections.abc import Callable

from notifykit import hookimpl
from notifykit.sandbox import Sandbox
from notifykit_aliyun.options import AliyunOptions, AliyunTemplate
from notifykit_aliyun.provider import AliyunProvider

__all__ = [
    "AliyunOptions",
    "AliyunProvider",
    "AliyunSandbox",
    "AliyunSandboxSettings",
    "AliyunTemplate",
    "register_providers",
    "register_sandboxes",
]


@hookimpl
def register_providers(register: Callable[[type[AliyunProvider]], None]) -> None:
    register(AliyunProvider)


@hookimpl
def register_sandboxes(register: Callable[[type[Sandbox]], None]) -> None:
    # Imported here: a sandbox is a Starlette app, loaded only when one is asked for.
    from notifykit_aliyun.sandbox import AliyunSandbox

    register(AliyunSandbox)


_SANDBOX_NAMES = frozenset({"AliyunSandbox", "AliyunSandboxSettings"})


def __getattr__(name: str) -> object:
    # The sandbox (a Starlette app) is imported on first use, so that a process that only
    # sends never loads a web framework (issue 17).
    if name in _SANDBOX_NAMES:
        import importlib

        return getattr(importlib.import_module("notifykit_aliyun.sandbox"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
