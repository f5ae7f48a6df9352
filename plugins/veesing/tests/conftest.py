"""Fixtures shared by the Veesing plugin's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from notifykit_veesing import (
    VeesingOptions,
    VeesingProvider,
    VeesingSandbox,
    VeesingSandboxSettings,
    VeesingTemplateOptions,
)
from pydantic import SecretStr

from notifykit.provider import ProviderContext
from notifykit.server import ServerThread

APP_ID = "2RYN7CQHL1MABCDE"
APP_KEY = "WVNA4A0SECRETKEY"
MOBILE_E164 = "+8615612341090"
MOBILE = "15612341090"

ProviderFactory = Callable[..., VeesingProvider]


@pytest.fixture
def make_provider() -> Iterator[ProviderFactory]:
    """Build a VeesingProvider (instance ``vs``, template ``verify`` -> 540) on a transport."""

    def make(transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> VeesingProvider:
        opts = VeesingOptions(app_id=APP_ID, app_key=SecretStr(APP_KEY), **options)
        return VeesingProvider(
            opts,
            context=ProviderContext(instance="vs", transport=transport),
            templates={"verify": VeesingTemplateOptions(template_id="540")},
        )

    yield make


@pytest.fixture
async def sandbox_server() -> AsyncIterator[Callable[..., tuple[VeesingSandbox, ServerThread]]]:
    """Start Veesing sandboxes on loopback sockets; each is closed, then stopped, after."""
    started: list[tuple[VeesingSandbox, ServerThread]] = []

    def start(**settings: Any) -> tuple[VeesingSandbox, ServerThread]:
        sandbox = VeesingSandbox(VeesingSandboxSettings(port=0, **settings))
        server = ServerThread(sandbox.app()).start()
        started.append((sandbox, server))
        return sandbox, server

    yield start
    for sandbox, server in started:
        await sandbox.aclose()
        await asyncio.to_thread(server.stop)
