"""Shared pieces of the reliability suite: Veesing sandboxes on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from notifykit_veesing import VeesingSandbox, VeesingSandboxSettings

from notifykit.server import ServerThread

APP_ID = "reliability-app"
APP_KEY = "RELIABILITY-APP-KEY-5150"
CB_TOKEN = "RELIABILITY-CB-TOKEN-7734"

StartSandbox = Callable[..., tuple[VeesingSandbox, ServerThread]]


@pytest.fixture
async def sandboxes() -> AsyncIterator[StartSandbox]:
    """``start(**settings)``: a Veesing sandbox (this suite's credentials, no per-number
    limits, credits enough) on 127.0.0.1; released and stopped after the test."""
    started: list[tuple[VeesingSandbox, ServerThread]] = []

    def start(**settings: Any) -> tuple[VeesingSandbox, ServerThread]:
        defaults: dict[str, Any] = {
            "app_id": APP_ID,
            "app_key": APP_KEY,
            "balance": 1_000_000,
            "per_number_interval": 0.0,
            "per_number_daily_cap": 1_000_000,
            "account_daily_cap": 1_000_000,
        }
        sandbox = VeesingSandbox(VeesingSandboxSettings(port=0, **{**defaults, **settings}))
        server = ServerThread(sandbox.app()).start()
        started.append((sandbox, server))
        return sandbox, server

    yield start
    for sandbox, server in started:
        await sandbox.aclose()
        await asyncio.to_thread(server.stop, 5.0)
