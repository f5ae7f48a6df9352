"""Shared pieces of the reliability suite: Veesing sandboxes on loopback."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from notifykit_veesing import VeesingSandbox

from notifykit.server import ServerThread

APP_ID = "reliability-app"
APP_KEY = "RELIABILITY-APP-KEY-5150"
CB_TOKEN = "RELIABILITY-CB-TOKEN-7734"

StartSandbox = Callable[..., tuple[VeesingSandbox, ServerThread]]


@pytest.fixture
def sandboxes(veesing_sandboxes: StartSandbox) -> StartSandbox:
    """``start(**settings)``: a Veesing sandbox (this suite's credentials, no per-number
    limits, credits enough) on 127.0.0.1; released and stopped after the test."""
    return functools.partial(
        veesing_sandboxes, app_id=APP_ID, app_key=APP_KEY, account_daily_cap=1_000_000
    )
