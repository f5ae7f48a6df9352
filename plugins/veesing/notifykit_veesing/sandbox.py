"""``notifykit sandbox veesing``: a local stand-in for Veesing's API, faults on demand.

Answers as the vendor's document describes: the same paths, parameters from the query
string and/or a form body (the body wins), the document's JSON with its Chinese messages as
unescaped UTF-8, ``returnStatus`` ``"1"`` on success (so the vendor's own samples succeed).
``/_sandbox/admin`` reads the state (GET) and changes settings and faults while running
(POST a JSON object of settings fields).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from notifykit.config import format_validation_error
from notifykit.sandbox import Sandbox, SandboxSettings, hide_callback_token, toml_value
from notifykit_veesing.provider import BALANCE_PATH, SEND_PATH
from notifykit_veesing.sandbox_pushes import Pusher
from notifykit_veesing.sandbox_rules import (
    FAULT_FIELDS,
    SandboxState,
    VeesingSandboxSettings,
    balance_answer,
    check_send,
)

__all__ = ["ADMIN_PATH", "MAX_HANG", "VeesingSandbox"]

ADMIN_PATH = "/_sandbox/admin"
MAX_HANG = 60.0
"""A hung request is let go after this many seconds, or at once when the client leaves or
the sandbox closes, so that nothing waits for it forever."""
_HANG_POLL = 0.05
_FIXED = frozenset({"host", "port"})

ERROR_PAGE = (
    "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
GARBAGE = '{"returnStatus":"1","message":"成'.encode()[:-1]
"""A truncated answer: a prefix of a success, cut inside a UTF-8 character."""


class VeesingSandbox(Sandbox):
    """Veesing's verification-code API on a local port: rules, pushes and faults."""

    name: ClassVar[str] = "veesing"
    Settings: ClassVar[type[SandboxSettings]] = VeesingSandboxSettings

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        if not isinstance(settings, VeesingSandboxSettings):
            data = settings.model_dump(exclude_unset=True) if settings is not None else {}
            settings = VeesingSandboxSettings.model_validate(data)
        super().__init__(settings)
        self.settings: VeesingSandboxSettings = settings
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """The sandbox's idea of now (tests replace it to move through minutes and days)."""
        self._lock = threading.Lock()
        self._rng = random.Random(settings.seed)
        self.state = SandboxState.start(settings, self._rng)
        self._released = threading.Event()
        self.pusher = Pusher(lambda: self.settings, self.state, self._rng, self._lock, self._now)
        self._app: Starlette | None = None

    def _now(self) -> datetime:
        return self.clock()

    def provider_config(self, base_url: str, instance: str | None = None) -> str:
        """A ``[providers.<instance>]`` table pointing a Veesing provider at this sandbox."""
        name = instance or self.name
        s = self.settings
        template = s.templates[0] if s.templates else "540"
        pushes = (
            f"# receipts and replies are pushed to {hide_callback_token(s.callback_url)}"
            if s.callback_url
            else "# receipts and replies are not pushed: start with --callback-url\n"
            f"# http://127.0.0.1:8000/callbacks/{name}/<token> (notifykit serve's URL)"
        )
        return "\n".join(
            [
                f"[providers.{name}]",
                'type = "veesing"',
                f"base_url = {toml_value(base_url)}",
                f"app_id = {toml_value(s.app_id)}",
                f"app_key = {toml_value(s.app_key)}",
                "",
                f"[templates.verify_code.{name}]",
                f"template_id = {toml_value(template)}",
                pushes,
            ]
        )

    # -- the Python API ------------------------------------------------------------------

    def configure(self, **changes: Any) -> VeesingSandboxSettings:
        """Change settings while running (any field but host and port); validated as a
        whole. ``balance`` sets the credits left; ``balance_after`` caps them. Raises
        ValueError with every problem."""
        fixed = _FIXED.intersection(changes)
        if fixed:
            raise ValueError(f"{', '.join(sorted(fixed))}: cannot change while running")
        unknown = set(changes) - set(VeesingSandboxSettings.model_fields)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        try:
            new = VeesingSandboxSettings.model_validate({**self.settings.model_dump(), **changes})
        except ValidationError as exc:
            raise ValueError(format_validation_error(exc)) from None
        with self._lock:
            self.settings = new
            if "balance" in changes:
                self.state.balance = new.balance
            if "balance_after" in changes and new.balance_after is not None:
                self.state.balance = min(self.state.balance, new.balance_after)
            if "seed" in changes and new.seed is not None:
                self._rng.seed(new.seed)
        return new

    def set_faults(
        self,
        *,
        latency: float | None = None,
        error_rate: float | None = None,
        hang_rate: float | None = None,
        garbage_rate: float | None = None,
        balance_after: int | None = None,
    ) -> VeesingSandboxSettings:
        """Change the given faults (None leaves one as it is)."""
        given = {
            "latency": latency,
            "error_rate": error_rate,
            "hang_rate": hang_rate,
            "garbage_rate": garbage_rate,
            "balance_after": balance_after,
        }
        return self.configure(**{k: v for k, v in given.items() if v is not None})

    def clear_faults(self) -> VeesingSandboxSettings:
        """No latency, no failures, no balance cap."""
        return self.configure(
            latency=0.0, error_rate=0.0, hang_rate=0.0, garbage_rate=0.0, balance_after=None
        )

    def snapshot(self) -> dict[str, Any]:
        """The state as the admin endpoint shows it (no appKey; the callback URL's token hidden)."""
        with self._lock:
            settings = self.settings.model_dump(exclude={"app_key"})
            if settings.get("callback_url"):  # its token keeps strangers out of a receiver
                settings["callback_url"] = hide_callback_token(settings["callback_url"])
            return {
                "balance": self.state.balance,
                "accepted": self.state.accepted,
                "refused": self.state.refused,
                "requests": self.state.requests,
                "faults": {name: settings[name] for name in FAULT_FIELDS},
                "faults_injected": dict(self.state.faults_injected),
                "pushes_sent": self.state.pushes_sent,
                "pushes_failed": self.state.pushes_failed,
                "pushes_pending": self.pusher.pending,
                "settings": settings,
            }

    def release_hangs(self) -> None:
        """Let every hung request go now, and let no further one hang (thread-safe)."""
        self._released.set()

    async def aclose(self) -> None:
        """End hung requests and cancel pending pushes; call before stopping the server."""
        self.release_hangs()
        await self.pusher.aclose()

    # -- the ASGI application ------------------------------------------------------------

    def app(self) -> Starlette:
        if self._app is None:
            self._app = Starlette(
                routes=[
                    Route(SEND_PATH, self._send, methods=["POST"]),
                    Route(BALANCE_PATH, self._balance, methods=["POST"]),
                    Route(ADMIN_PATH, self._admin, methods=["GET", "POST"]),
                ]
            )
        return self._app

    async def _send(self, request: Request) -> Response:
        params = await _params(request)
        fault = await self._fault(request)
        if fault is not None:
            return fault
        with self._lock:
            answer, accepted = check_send(
                self.settings, self.state, params, self.clock(), _client_ip(request)
            )
        if accepted is not None:
            self.pusher.schedule(accepted)
        return _vendor_json(answer)

    async def _balance(self, request: Request) -> Response:
        params = await _params(request)
        fault = await self._fault(request)
        if fault is not None:
            return fault
        with self._lock:
            answer = balance_answer(self.settings, self.state, params, _client_ip(request))
        return _vendor_json(answer)

    async def _fault(self, request: Request) -> Response | None:
        """Latency, then at most one of hang / HTTP 500 / garbage, drawn once per request."""
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
            await self._hang(request)
            return HTMLResponse(
                ERROR_PAGE.replace("500 Internal Server Error", "504 Gateway Time-out"), 504
            )
        if kind == "error":
            return HTMLResponse(ERROR_PAGE, 500)
        return Response(GARBAGE, 200, media_type="application/json;charset=UTF-8")

    async def _hang(self, request: Request) -> None:
        deadline = time.monotonic() + MAX_HANG
        while not self._released.is_set() and time.monotonic() < deadline:
            if await request.is_disconnected():
                return
            await asyncio.sleep(_HANG_POLL)

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
        return _vendor_json(self.snapshot())


async def _params(request: Request) -> dict[str, str]:
    """Query string and form body merged; the body wins. Read whatever the Content-Type says
    (the vendor's Java sample misspells the header), except multipart."""
    params = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and not content_type.lower().startswith("multipart/"):
        charset = "utf-8"
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            text = body.decode(charset, errors="replace")
        except LookupError:
            charset = "utf-8"
            text = body.decode(charset, errors="replace")
        params.update(parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace"))
    return params


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def _vendor_json(data: dict[str, Any]) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False).encode("utf-8"),
        media_type="application/json;charset=UTF-8",
    )
