"""Shared test set-up for the core and every plugin: async tests run on asyncio (anyio)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
