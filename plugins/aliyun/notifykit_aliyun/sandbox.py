"""``notifykit sandbox aliyun``: a local stand-in for Alibaba Cloud SMS, faults on demand.

Serves the RPC API at ``/`` by GET and POST (parameters from the query string and/or a form
body) and verifies both signatures Alibaba's own clients use: RPC HMAC-SHA1 (the classic
``aliyun-python-sdk-core``) and V3 ACS3-HMAC-SHA256 (``alibabacloud-dysmsapi20170525``).
Actions: ``SendSms``, ``QuerySendDetails`` (status 1 -> 3 or 2 after ``receipt_delay``) and
BssOpenApi's ``QueryAccountBalance``. Receipts (``SmsReport``) and replies (``SmsUp``) are
POSTed as JSON arrays to ``callback_url``, after a GET check of that URL, and retried after
``push_retry_delays`` while not acknowledged (HTTP 200 and a numeric ``code``).
``/_sandbox/admin`` reads the state (GET) and changes settings while running (POST JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from notifykit.config import format_validation_error
from notifykit.sandbox import (
    Sandbox,
    SandboxSettings,
    hide_callback_token,
    toml_value,
    unique_number,
)
from notifykit_aliyun.sandbox_rules import (
    API_VERSION,
    BSS_VERSION,
    FAULT_FIELDS,
    VENDOR_ZONE,
    AliyunSandboxSettings,
    Answer,
    SandboxState,
    SentSms,
    authenticate,
    check_send,
    gateway_error,
    query_balance,
    query_details,
)

__all__ = ["ADMIN_PATH", "PRICE", "AliyunSandbox", "AliyunSandboxSettings"]

ADMIN_PATH = "/_sandbox/admin"
PRICE = Decimal("0.045")
"""CNY charged per accepted message."""
MAX_HANG = 60.0
_HANG_POLL = 0.05
_BATCH_WINDOW = 0.05
_PUSH_TIMEOUT = 5.0
_FIXED = frozenset({"host", "port"})
REPLIES = ("收到", "好的，谢谢", "TD")


def _vendor_time(at: datetime) -> str:
    return at.astimezone(VENDOR_ZONE).strftime("%Y-%m-%d %H:%M:%S")


def _mask(phone: str) -> str:
    return phone[:7] + "****"


def _acknowledged(response: httpx.Response) -> bool:
    """HTTP 200 with a JSON object whose ``code`` is a number (§9.3)."""
    if response.status_code != 200:
        return False
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return False
    code = data.get("code") if isinstance(data, dict) else None
    return isinstance(code, int | float) and not isinstance(code, bool)


class AliyunSandbox(Sandbox):
    """Alibaba Cloud SMS (Dysmsapi 2017-05-25) on a local port: both signatures, rules,
    batch pushes and faults."""

    name: ClassVar[str] = "aliyun"
    Settings: ClassVar[type[SandboxSettings]] = AliyunSandboxSettings

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        if not isinstance(settings, AliyunSandboxSettings):
            data = settings.model_dump(exclude_unset=True) if settings is not None else {}
            settings = AliyunSandboxSettings.model_validate(data)
        super().__init__(settings)
        self.settings: AliyunSandboxSettings = settings
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """The sandbox's idea of now (tests replace it to move through minutes and days)."""
        self._lock = threading.Lock()
        self._rng = random.Random(settings.seed)
        self.state = SandboxState(balance=settings.balance)
        self._released = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._checked: set[str] = set()
        self._closed = False
        self._app: Starlette | None = None

    # -- the Python API ------------------------------------------------------------------

    def configure(self, **changes: Any) -> AliyunSandboxSettings:
        """Change settings while running (any but host and port); raises ValueError."""
        fixed = _FIXED.intersection(changes)
        if fixed:
            raise ValueError(f"{', '.join(sorted(fixed))}: cannot change while running")
        unknown = set(changes) - set(AliyunSandboxSettings.model_fields)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        try:
            new = AliyunSandboxSettings.model_validate({**self.settings.model_dump(), **changes})
        except ValidationError as exc:
            raise ValueError(format_validation_error(exc)) from None
        with self._lock:
            self.settings = new
            if "balance" in changes:
                self.state.balance = new.balance
            if "seed" in changes and new.seed is not None:
                self._rng.seed(new.seed)
        return new

    def snapshot(self) -> dict[str, Any]:
        """The state as the admin endpoint shows it (no secret; the callback URL's token hidden)."""
        with self._lock:
            settings = self.settings.model_dump(mode="json", exclude={"access_key_secret"})
            if settings.get("callback_url"):  # its token keeps strangers out of a receiver
                settings["callback_url"] = hide_callback_token(settings["callback_url"])
            return {
                "balance": f"{self.state.balance:.3f}",
                "accepted": self.state.accepted,
                "refused": self.state.refused,
                "refusals": dict(self.state.refusals),
                "requests": self.state.requests,
                "signatures": dict(self.state.signatures),
                "faults": {name: settings[name] for name in FAULT_FIELDS},
                "faults_injected": dict(self.state.faults_injected),
                "pushes_sent": self.state.pushes_sent,
                "reports_pushed": sum(
                    1 for batch in self.state.pushes for item in batch if "biz_id" in item
                ),
                "pushes_failed": self.state.pushes_failed,
                "push_attempts": self.state.push_attempts,
                "url_checks": list(self.state.url_checks),
                "settings": settings,
            }

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def release_hangs(self) -> None:
        self._released.set()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (on the server's loop) until every scheduled receipt and push is done."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(list(self._tasks), timeout=max(0.0, deadline - time.monotonic()))

    async def aclose(self) -> None:
        """End hung requests and cancel pending receipts and pushes, from any loop."""
        self.release_hangs()
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if loop is asyncio.get_running_loop():
            await self._cancel()
        elif loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._cancel(), loop)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await asyncio.wrap_future(future)

    async def _cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the ASGI application ------------------------------------------------------------

    def provider_config(self, base_url: str, instance: str | None = None) -> str:
        """A ``[providers.<instance>]`` table pointing an Alibaba provider at this sandbox."""
        name = instance or self.name
        s = self.settings
        code, _, variables = (s.template_code[0] if s.template_code else "SMS_15305001").partition(
            ":"
        )
        lines = [
            f"[providers.{name}]",
            'type = "aliyun"',
            f"endpoint = {toml_value(base_url)}",
            f"balance_endpoint = {toml_value(base_url)}",
            f"access_key_id = {toml_value(s.access_key_id)}",
            f"access_key_secret = {toml_value(s.access_key_secret)}",
            f"sign_name = {toml_value(s.sign_name[0] if s.sign_name else 'notifykit')}",
            "",
            f"[templates.verify_code.{name}]",
            f"template_code = {toml_value(code)}",
        ]
        first = variables.split("+")[0]
        if first and first != "code":  # the template's variable for notifykit's `code`
            lines.append(f"param_names = {{ code = {toml_value(first)} }}")
        lines.append(
            f"# receipts and replies are pushed to {hide_callback_token(s.callback_url)}"
            if s.callback_url
            else "# receipts and replies are not pushed: start with --callback-url\n"
            f"# http://127.0.0.1:8000/callbacks/{name}/<token> (notifykit serve's URL)"
        )
        return "\n".join(lines)

    def app(self) -> Starlette:
        if self._app is None:
            self._app = Starlette(
                routes=[
                    Route("/", self._rpc, methods=["GET", "POST"]),
                    Route(ADMIN_PATH, self._admin, methods=["GET", "POST"]),
                ]
            )
        return self._app

    async def _rpc(self, request: Request) -> Response:
        body = await request.body()
        query = list(parse_qsl(request.url.query, keep_blank_values=True))
        form: list[tuple[str, str]] = []
        content_type = request.headers.get("content-type", "")
        if body and content_type.lower().startswith("application/x-www-form-urlencoded"):
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        fault = await self._fault(request)
        if fault is not None:
            return fault
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            now = self.clock()
            params, refusal = authenticate(
                self.settings,
                self.state,
                request.method,
                query,
                form,
                headers,
                body,
                now,
                self._rng,
            )
            answer, accepted = refusal, list[SentSms]()
            if answer is None:
                answer, accepted = self._dispatch(params, now)
            if answer.body.get("Code") not in ("OK", "200"):
                self.state.refused += 1
                code = str(answer.body.get("Code"))
                self.state.refusals[code] = self.state.refusals.get(code, 0) + 1
        for sms in accepted:
            self._schedule(self._settle(sms))
        return _json(answer, params.get("Format", "JSON"))

    def _dispatch(self, params: dict[str, str], now: datetime) -> tuple[Answer, list[SentSms]]:
        action, version = params.get("Action", ""), params.get("Version", "")
        if action == "QueryAccountBalance":
            if version != BSS_VERSION:
                return gateway_error("InvalidVersion", self._rng), []
            return query_balance(self.settings, self.state, self._rng), []
        if version != API_VERSION:
            return gateway_error("InvalidVersion", self._rng), []
        if action == "SendSms":
            answer, accepted = check_send(self.settings, self.state, params, now, self._rng)
            if accepted:
                self.state.accepted += len(accepted)
                self.state.balance -= PRICE * len(accepted)
            return answer, accepted
        if action == "QuerySendDetails":
            return query_details(self.state, params, now, self._rng), []
        return gateway_error("InvalidAction.NotFound", self._rng), []

    async def _fault(self, request: Request) -> Response | None:
        settings = self.settings
        with self._lock:
            self.state.requests += 1
            draw = self._rng.random()
        if settings.latency:
            await asyncio.sleep(settings.latency)
        kind = None
        if draw < settings.hang_rate:
            kind = "hang"
        elif draw < settings.hang_rate + settings.error_rate:
            kind = "error"
        elif draw < settings.hang_rate + settings.error_rate + settings.garbage_rate:
            kind = "garbage"
        if kind is None:
            return None
        with self._lock:
            self.state.faults_injected[kind] += 1
        if kind == "hang":
            deadline = time.monotonic() + MAX_HANG
            while not self._released.is_set() and time.monotonic() < deadline:
                if await request.is_disconnected():
                    break
                await asyncio.sleep(_HANG_POLL)
            return HTMLResponse("<html><body>504 Gateway Time-out</body></html>", 504)
        if kind == "error":
            return HTMLResponse("<html><body>500 Internal Server Error</body></html>", 500)
        return Response(b'{"Code":"OK","Message":"O', 200, media_type="application/json")

    async def _admin(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body())
            except ValueError:
                return JSONResponse({"error": "body is not JSON"}, 400)
            if not isinstance(changes, dict):
                return JSONResponse({"error": "body must be a JSON object of settings"}, 400)
            try:
                self.configure(**changes)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(self.snapshot())

    # -- receipts and pushes -------------------------------------------------------------

    def _schedule(self, coro: Any) -> asyncio.Task[None] | None:
        if self._closed:
            coro.close()
            return None
        self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _settle(self, sms: SentSms) -> None:
        """After ``receipt_delay``: status 3 (delivered) or 2 (failed), then the pushes."""
        await asyncio.sleep(self.settings.receipt_delay)
        with self._lock:
            failed = self._rng.random() < self.settings.undelivered_rate
            replies = self._rng.random() < self.settings.reply_rate
            numeric = self._rng.random() < 0.5
            text = self._rng.choice(REPLIES)
            now = self.clock()
            sms.status = 2 if failed else 3
            sms.err_code = "UNDELIV" if failed else "DELIVERED"
            sms.received_at = now
            url = self.settings.callback_url
            masked = self.settings.mask_numbers
        if url is None:
            return
        phone = _mask(sms.phone) if masked else sms.phone
        self._queue(
            url,
            {
                "phone_number": phone,
                "send_time": _vendor_time(sms.sent_at),
                "report_time": _vendor_time(now),
                "success": not failed,
                "err_code": sms.err_code,
                "err_msg": "用户接收失败" if failed else "用户接收成功",
                "sms_size": "1",
                "biz_id": sms.biz_id,
                "out_id": sms.out_id,
            },
        )
        if replies and not failed:
            sequence = unique_number()  # never one of an earlier run's, whatever the seed
            self._queue(
                url,
                {
                    "phone_number": phone,
                    "content": text,
                    "send_time": _vendor_time(now),
                    "dest_code": "1234",
                    "sequence_id": sequence if numeric else str(sequence),
                    "sign_name": sms.sign_name,
                },
            )

    def _queue(self, url: str, item: dict[str, Any]) -> None:
        self._pending.append({"url": url, "item": item})
        if self._flusher is None or self._flusher.done():
            self._flusher = self._schedule(self._flush())

    async def _flush(self) -> None:
        """Gather what is queued for a moment, then push it in arrays of ``push_batch``."""
        await asyncio.sleep(_BATCH_WINDOW)
        async with httpx.AsyncClient(timeout=_PUSH_TIMEOUT, trust_env=False) as client:
            while self._pending:
                url = self._pending[0]["url"]
                same = [p for p in self._pending if p["url"] == url][: self.settings.push_batch]
                self._pending = [p for p in self._pending if not any(p is q for q in same)]
                await self._check_url(client, url)
                self._schedule(self._push(url, [p["item"] for p in same]))

    async def _check_url(self, client: httpx.AsyncClient, url: str) -> None:
        """Alibaba's GET check of a receiver URL, once per URL (it wants 200 in 700 ms)."""
        if url in self._checked:
            return
        self._checked.add(url)
        try:
            response = await client.get(url, timeout=0.7)
            status: int | None = response.status_code
        except httpx.HTTPError:
            status = None
        with self._lock:
            self.state.url_checks.append(status)

    async def _push(self, url: str, batch: list[dict[str, Any]]) -> None:
        body = json.dumps(batch, ensure_ascii=False).encode()
        delays = [0.0, *self.settings.push_retry_delays]
        async with httpx.AsyncClient(timeout=_PUSH_TIMEOUT, trust_env=False) as client:
            for delay in delays:
                if delay:
                    await asyncio.sleep(delay)
                with self._lock:
                    self.state.push_attempts += 1
                try:
                    response = await client.post(
                        url, content=body, headers={"content-type": "application/json"}
                    )
                    ok = _acknowledged(response)
                except httpx.HTTPError:
                    ok = False
                if ok:
                    with self._lock:
                        self.state.pushes_sent += 1
                        self.state.pushes.append(batch)
                    return
        with self._lock:
            self.state.pushes_failed += 1


def _json(answer: Answer, fmt: str) -> Response:
    if fmt.upper() == "XML":
        return Response(_xml(answer.body), answer.status, media_type="text/xml;charset=UTF-8")
    return Response(
        json.dumps(answer.body, ensure_ascii=False).encode(),
        answer.status,
        media_type="application/json;charset=UTF-8",
    )


def _xml(body: dict[str, Any]) -> bytes:
    from xml.sax.saxutils import escape

    inner = "".join(
        f"<{k}>{escape(str(v))}</{k}>" for k, v in body.items() if not isinstance(v, dict | list)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'.encode()
