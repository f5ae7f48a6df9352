"""Vendors that echo the request back in their error text, one per plugin, on a real
loopback socket: no configured secret, in any encoding the request carried it in, and no
full phone number reaches an exception, the stored record, a log line or the CLI's output.
The redaction is the core's (notifykit.redact), applied to whatever a provider hands back."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from notifykit import AsyncNotifier
from notifykit.cli import cli
from notifykit.errors import NotifyKitError
from notifykit.server import ServerThread
from notifykit.store import SQLiteStore

pytestmark = pytest.mark.anyio

KEY = "CANARY+K/EY=7"
"""A secret whose encodings all differ: quote, quote_plus and JSON spell it differently."""
TOKEN = "CANARY-cb/TOKEN+99"
CN = "+8615612341090"
US = "+12025550143"

Answer = Callable[[str], tuple[int, dict[str, Any]]]


def echoed(request_text: str) -> str:
    """What an echoing vendor puts in its message: the request, and again JSON-escaped."""
    return f"参数错误 {request_text} {json.dumps(request_text)}"


class Echo:
    """A vendor that answers every request with its own error format, quoting the request
    line, the Authorization header and the body."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.seen: list[str] = []

    async def handle(self, request: Request) -> JSONResponse:
        body = (await request.body()).decode("utf-8", "replace")
        text = f"{request.method} {request.url} auth={request.headers.get('authorization')} {body}"
        self.seen.append(text)
        status, payload = self.answer(echoed(text))
        return JSONResponse(payload, status_code=status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])


@pytest.fixture
def echo_server() -> Iterator[Callable[[Answer], tuple[Echo, ServerThread]]]:
    started: list[ServerThread] = []

    def start(answer: Answer) -> tuple[Echo, ServerThread]:
        echo = Echo(answer)
        server = ServerThread(echo.app()).start()
        started.append(server)
        return echo, server

    yield start
    for server in started:
        server.stop(5.0)


def forms(secret: str, user: str) -> list[str]:
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(f"{user}:{secret}".encode()).decode(),
    ]


PLUGINS: dict[str, dict[str, Any]] = {
    "veesing": {
        "options": {"app_id": "echo-app", "app_key": KEY},
        "url_key": "base_url",
        "template": {"template_id": "540"},
        "to": CN,
        "user": "echo-app",
        "answer": lambda text: (200, {"returnStatus": "0", "message": text}),
    },
    "twilio": {
        "options": {
            "account_sid": "AC" + "0" * 32,
            "auth_token": KEY,
            "from_number": "+15005550006",
            "public_url": "https://hooks.example.com",
        },
        "url_key": "base_url",
        "template": {"body": "Your code is {code}"},
        "to": US,
        "user": "AC" + "0" * 32,
        "answer": lambda text: (400, {"code": 21211, "message": text, "status": 400}),
    },
    "aliyun": {
        "options": {"access_key_id": "echo-id", "access_key_secret": KEY, "sign_name": "签名"},
        "url_key": "endpoint",
        "template": {"template_code": "SMS_1"},
        "to": CN,
        "user": "echo-id",
        "answer": lambda text: (200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": text}),
    },
}


def write_config(tmp_path: Path, plugin: str, url: str) -> Path:
    spec = PLUGINS[plugin]
    options = {**spec["options"], spec["url_key"]: url}
    if plugin == "aliyun":
        options["balance_endpoint"] = url
    lines = [f'[providers.p]\ntype = "{plugin}"']
    lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in options.items()]
    lines.append("\n[templates.verify_code.p]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in spec["template"].items()]
    lines.append(f'\n[store]\nurl = "sqlite:///{tmp_path / "echo.sqlite3"}"')
    lines.append(f'\n[callbacks]\ntoken = "{TOKEN}"\npublic_url = "https://hooks.example.com"')
    path = tmp_path / "notifykit.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def leaks(text: str, spec: dict[str, Any]) -> list[str]:
    found = [f for f in forms(KEY, spec["user"]) + forms(TOKEN, spec["user"]) if f in text]
    national = spec["to"][3:] if spec["to"].startswith("+86") else spec["to"][2:]
    found += [n for n in (spec["to"], national) if n in text]
    return found


@pytest.mark.parametrize("plugin", sorted(PLUGINS))
async def test_an_echoing_vendor_leaks_nothing_anywhere(
    plugin: str,
    tmp_path: Path,
    echo_server: Callable[[Answer], tuple[Echo, ServerThread]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = PLUGINS[plugin]
    echo, server = echo_server(spec["answer"])
    config = write_config(tmp_path, plugin, server.url)
    monkeypatch.setenv("NOTIFYKIT_LOAD_PLUGINS", plugin)
    caplog.set_level(logging.DEBUG)

    async with AsyncNotifier(config) as notifier:
        with pytest.raises(NotifyKitError) as sent:
            await notifier.send(spec["to"], template="verify_code", params={"code": "4821"})
        balance_error: NotifyKitError | None = None
        try:
            await notifier.balance("p")
        except NotifyKitError as exc:
            balance_error = exc
    # The vendor did get the request with the secret in it, and echoed it back.
    assert any(leaks(seen, spec) for seen in echo.seen), echo.seen

    texts = [str(sent.value), repr(sent.value), getattr(sent.value, "vendor_message", "") or ""]
    if balance_error is not None:
        texts += [str(balance_error), getattr(balance_error, "vendor_message", "") or ""]
    store = SQLiteStore(tmp_path / "echo.sqlite3")
    await store.open()
    try:
        # The record keeps its own number (`to`) by design; what came from the vendor is in
        # the attempts.
        records = await store.list_messages()
        assert records and all(r.attempts for r in records)
        texts += [json.dumps([a.model_dump(mode="json") for a in r.attempts]) for r in records]
    finally:
        await store.close()
    texts += [r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records]
    cli_env = {"NOTIFYKIT_LOAD_PLUGINS": plugin}
    for args in (
        ["send", spec["to"], "--template", "verify_code", "--param", "code=4821"],
        ["balance", "p"],
        ["log"],
    ):
        # The CLI runs its own event loop (asyncio.run): on a thread, not inside this test's.
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, [*args, "--config", str(config)], env=cli_env
        )
        output = result.output + (result.stderr if result.stderr_bytes else "")
        assert result.exit_code in ((0,) if args[0] == "log" else (0, 1)), output
        assert "event loop" not in output, output
        assert not isinstance(result.exception, RuntimeError), result.exception
        texts.append(output)
    assert "***" in str(sent.value) or "****" in str(sent.value)  # the echo was kept, masked
    for text in texts:
        assert leaks(text, spec) == [], text


def test_every_plugin_is_covered() -> None:
    installed = {"veesing", "twilio", "aliyun"}
    assert set(PLUGINS) == installed, "a new plugin needs an echoing vendor here"
    assert os.environ.get("NOTIFYKIT_LOAD_PLUGINS", "") != "none"
