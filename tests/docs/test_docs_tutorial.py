"""docs/plugins.md: the tutorial's provider is real.

Each fenced block whose first line is ``# <path>`` is a file of the tutorial. The package is
written to a temporary directory, registered on a fresh plugin manager, and used to send a
message through its own sandbox served on 127.0.0.1; the signed receipt the sandbox pushes
comes back through ``handle_callback``. The tutorial's own test file runs through pytester.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from notifykit import AsyncNotifier, Config, DeliveryReceipt, DeliveryStatus
from notifykit.plugins import get_plugin_manager, provider_types, sandbox_types
from notifykit.server import ServerThread

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BLOCK = re.compile(r"^```(python|toml)\n(.*?)^```$", re.S | re.M)
FILENAME = re.compile(r"\A# ([\w/]+\.(?:py|toml))\n")
PACKAGE = "acme_sms"


def tutorial_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for _lang, block in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        match = FILENAME.match(block)
        if match:
            assert match.group(1) not in files, f"{match.group(1)} appears twice"
            files[match.group(1)] = block
    return files


FILES = tutorial_files()


def write_files(root: Path) -> None:
    for name, source in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")


def _forget_package() -> None:
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[ModuleType]:
    """The tutorial's package, imported from a temporary directory, forgotten afterwards."""
    write_files(tmp_path)
    _forget_package()
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        _forget_package()


def test_the_tutorial_has_every_part() -> None:
    assert {
        f"{PACKAGE}/__init__.py",
        f"{PACKAGE}/provider.py",
        f"{PACKAGE}/sandbox.py",
        "pyproject.toml",
        "test_acme.py",
    } <= set(FILES)


def test_the_entry_point_names_the_plugin_module() -> None:
    project = tomllib.loads(FILES["pyproject.toml"])
    assert project["project"]["entry-points"]["notifykit"] == {"acme": PACKAGE}
    assert f"{PACKAGE}/__init__.py" in FILES


def test_the_plugin_registers_its_provider_and_sandbox(acme: ModuleType) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(acme)
    assert provider_types(pm)["acme"].cls is acme.AcmeProvider
    assert sandbox_types(pm)["acme"].cls is acme.AcmeSandbox
    # Acme signs its pushes (parse_callback checks X-Acme-Signature), and says so: config
    # check does not warn that anyone could post receipts to a receiver without a token.
    assert acme.AcmeProvider.signs_callbacks is True


def test_the_tutorial_tests_pass(pytester: pytest.Pytester) -> None:
    write_files(pytester.path)
    pytester.syspathinsert()
    expected = len(re.findall(r"^async def test_|^def test_", FILES["test_acme.py"], re.M))
    assert expected >= 3
    try:
        result = pytester.runpytest("-p", "no:cacheprovider", "test_acme.py")
    finally:
        _forget_package()
    result.assert_outcomes(passed=expected)


class Receiver:
    """A loopback receiver that hands each push to ``notifier.handle_callback`` on the
    test's event loop (the way a WSGI view would call ``Notifier.handle_callback``)."""

    def __init__(self, notifier: AsyncNotifier, instance: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.notifier = notifier
        self.instance = instance
        self.answers: list[int] = []
        app = Starlette(routes=[Route("/callbacks/{instance}", self._receive, methods=["POST"])])
        self.server = ServerThread(app)

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        future = asyncio.run_coroutine_threadsafe(
            self.notifier.handle_callback(
                self.instance, "POST", dict(request.headers), body, url=str(request.url)
            ),
            self.loop,
        )
        status, headers, content = await asyncio.wrap_future(future)
        self.answers.append(status)
        return Response(content, status, headers=headers)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_send_through_the_sandbox_and_receive_the_receipt(acme: ModuleType) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(acme)
    sandbox = acme.AcmeSandbox(acme.AcmeSandboxSettings(port=0, receipt_delay=0.05))
    server = ServerThread(sandbox.app(), host="127.0.0.1").start()
    try:
        config = Config.from_dict(
            {
                "providers": {
                    "us": {
                        "type": "acme",
                        "api_key": "sandbox-key",
                        "base_url": server.url,
                        "timeout": 5,
                    }
                },
                "templates": {"verify_code": {"us": {"text": "Your code is {code}"}}},
            }
        )
        seen: list[Any] = []
        async with AsyncNotifier(config, plugin_manager=pm) as notifier:
            notifier.subscribe(seen.append)
            receiver = Receiver(notifier, "us")
            receiver.server.start()
            try:
                sandbox.config = sandbox.config.model_copy(
                    update={"callback_url": f"{receiver.server.url}/callbacks/us"}
                )
                result = await notifier.send(
                    "+14155550100", template="verify_code", params={"code": "4821"}
                )
                balance = await notifier.balance("us")
                await wait_for(lambda: len(seen) == 1)
                record = await notifier.get_message(result.message_id)
            finally:
                await asyncio.to_thread(receiver.server.stop)
    finally:
        await sandbox.aclose()
        await asyncio.to_thread(server.stop)

    assert sandbox.sent == [
        {"id": result.provider_message_id, "to": "+14155550100", "text": "Your code is 4821"}
    ]
    assert (result.provider, result.remaining_credits) == ("us", 99)
    assert balance.remaining == 99
    assert receiver.answers == [200]
    (receipt,) = seen
    assert isinstance(receipt, DeliveryReceipt)
    assert receipt.message_id == result.message_id
    assert receipt.status is DeliveryStatus.DELIVERED
    assert record is not None and record.status is DeliveryStatus.DELIVERED


@pytest.mark.anyio
async def test_a_forged_receipt_is_refused_and_not_stored(acme: ModuleType) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(acme)
    config = Config.from_dict({"providers": {"us": {"type": "acme", "api_key": "k"}}})
    body = b'{"id": "acme-1", "to": "+14155550100", "status": "delivered", "at": "2025-01-01T00:00:00+00:00"}'
    async with AsyncNotifier(config, plugin_manager=pm) as notifier:
        forged = await notifier.handle_callback("us", "POST", {"x-acme-signature": "0" * 64}, body)
        events = await notifier.store.list_events()
    assert forged[0] == 403
    assert events == []
