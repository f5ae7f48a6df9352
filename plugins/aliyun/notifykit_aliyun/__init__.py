"""notifykit's Alibaba Cloud SMS plugin: the ``aliyun`` provider type and sandbox."""

from __future__ import annotations

from collections.abc import Callable

from notifykit import hookimpl
from notifykit.sandbox import Sandbox
from notifykit_aliyun.options import AliyunOptions, AliyunTemplate
from notifykit_aliyun.provider import AliyunProvider
from notifykit_aliyun.sandbox import AliyunSandbox, AliyunSandboxSettings

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
    register(AliyunSandbox)
