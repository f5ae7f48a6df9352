"""A cancellation is never swallowed by a bounded wait.

On Python 3.11 ``asyncio.wait_for`` returns the result of an operation that finished in
the same loop iteration as the caller was cancelled, and the cancellation is lost (a
Ctrl-C, a send's deadline, a shutdown then hangs or runs on). notifykit bounds its waits
with ``asyncio.timeout`` instead, which runs the operation in the caller's own task.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest

from notifykit.inbox import CallbackProcessor
from notifykit.plugins import get_plugin_manager
from notifykit.store import MemoryStore

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
GUARD = 10  # seconds: a hang fails the test, it never bounds what is measured


class GatedStore(MemoryStore):
    """A store whose ``check`` and ``claim_dispatch`` finish when the test opens a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.entered = asyncio.Event()

    async def check(self) -> None:
        self.entered.set()
        await self.gate

    async def claim_dispatch(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.entered.set()
        await self.gate
        return []


async def _cancelled_as_it_finishes(store: GatedStore, work: Any) -> asyncio.Task[Any]:
    task = asyncio.ensure_future(work)
    async with asyncio.timeout(GUARD):
        await store.entered.wait()
    store.gate.set_result(None)  # the store call finishes...
    task.cancel()  # ...in the same loop iteration as its caller is cancelled
    async with asyncio.timeout(GUARD):
        await asyncio.gather(task, return_exceptions=True)
    return task


async def test_a_store_check_cancelled_as_it_finishes_stays_cancelled() -> None:
    store = GatedStore()
    processor = CallbackProcessor({}, store, get_plugin_manager(), store_timeout=30)
    task = await _cancelled_as_it_finishes(store, processor.check_store())
    assert task.cancelled()


async def test_a_dispatch_claim_cancelled_as_it_finishes_stays_cancelled() -> None:
    store = GatedStore()
    processor = CallbackProcessor({}, store, get_plugin_manager(), store_timeout=30)
    processor.subscribers.append(lambda event: None)  # an observer: the processor claims
    task = await _cancelled_as_it_finishes(store, processor._recover())
    assert task.cancelled()


def _wait_for_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "wait_for"
        and isinstance(node.value, ast.Name)
        and node.value.id == "asyncio"
    ]


def test_no_library_code_bounds_a_wait_with_asyncio_wait_for() -> None:
    sources = [
        *ROOT.joinpath("notifykit").rglob("*.py"),
        *ROOT.glob("plugins/*/notifykit_*/**/*.py"),
    ]
    assert len(sources) > 50
    found = {str(p.relative_to(ROOT)): lines for p in sources if (lines := _wait_for_calls(p))}
    assert found == {}
