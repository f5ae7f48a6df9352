"""``notifykit sandbox twilio``: a local stand-in for the parts of Twilio notifykit uses.

Serves the Messages resource (send, and GET of one Message, as ``client.messages(sid).fetch()``
of Twilio's SDK asks) and the Balance resource over HTTP Basic auth, answers
with Twilio's documented JSON and error codes, and posts signed status callbacks (``sent``,
then ``delivered`` or ``undelivered`` with ``ErrorCode=30003``) to each message's
``StatusCallback`` URL from background tasks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx
import phonenumbers
from pydantic import Field, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from notifykit.compare import constant_time_equal
from notifykit.models import utcnow
from notifykit.phone import mask_phone
from notifykit.sandbox import Sandbox, SandboxSettings, toml_value
from notifykit_twilio.provider import API_VERSION, MAX_BODY_CHARS
from notifykit_twilio.signature import SIGNATURE_HEADER, compute_signature

__all__ = ["CallbackDelivery", "TwilioSandbox", "TwilioSandboxSettings"]

log = logging.getLogger("notifykit.sandbox.twilio")

_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


class TwilioSandboxSettings(SandboxSettings):
    """Options of ``notifykit sandbox twilio``."""

    port: int = Field(default=8556, description="Port to listen on (0: any free port).")
    account_sid: str = Field(
        default="AC" + "5a4d0b0c" * 4, description="The account SID clients must use."
    )
    auth_token: str = Field(
        default="sandbox-token",
        description="The auth token clients must use; also signs status callbacks.",
    )
    balance: Decimal = Field(default=Decimal("20.00"), description="Starting account balance.")
    currency: str = Field(default="USD", description="Currency of the balance and prices.")
    price: Decimal = Field(default=Decimal("0.0075"), description="Price of one SMS segment.")
    status_delay: float = Field(
        default=0.2, ge=0, le=60, description="Seconds before each status callback."
    )
    undelivered_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of messages reported undelivered (30003)."
    )
    opted_out: list[str] = Field(
        default_factory=list, description="Numbers that replied STOP: sends fail with 21610."
    )
    seed: int | None = Field(default=None, description="Random seed, for repeatable runs.")

    @field_validator("account_sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", value):
            raise ValueError("must be AC followed by 32 hex digits")
        return value


@dataclass(frozen=True)
class CallbackDelivery:
    """One status callback the sandbox posted, and how the receiver answered."""

    message_sid: str
    status: str
    url: str
    status_code: int | None
    error: str | None = None


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _segments(body: str) -> int:
    single, multi = (160, 153) if set(body) <= _GSM else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


class TwilioSandbox(Sandbox):
    """Twilio's Messages and Balance resources, plus signed status callbacks."""

    name: ClassVar[str] = "twilio"
    Settings: ClassVar[type[SandboxSettings]] = TwilioSandboxSettings

    def __init__(self, settings: SandboxSettings) -> None:
        super().__init__(settings)
        assert isinstance(settings, TwilioSandboxSettings)
        self.config: TwilioSandboxSettings = settings
        self.balance = settings.balance
        self.messages: dict[str, dict[str, Any]] = {}
        self.deliveries: list[CallbackDelivery] = []
        self._opted_out = {self._e164(n) or n for n in settings.opted_out}
        self._random = random.Random(settings.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    def provider_config(self, base_url: str, instance: str | None = None) -> str:
        """A ``[providers.<instance>]`` table pointing a Twilio provider at this sandbox."""
        name = instance or self.name
        c = self.config
        return "\n".join(
            [
                f"[providers.{name}]",
                'type = "twilio"',
                f"base_url = {toml_value(base_url)}",
                f"account_sid = {toml_value(c.account_sid)}",
                f"auth_token = {toml_value(c.auth_token)}",
                'from_number = "+15005550006"',
                "# status callbacks go to public_url + /callbacks/" + name + " (notifykit serve):",
                '# public_url = "http://127.0.0.1:8000"',
                "",
                f"[templates.verify_code.{name}]",
                'body = "Your code is {code}"',
            ]
        )

    @staticmethod
    def _e164(number: str) -> str | None:
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    def app(self) -> Any:
        base = f"/{API_VERSION}/Accounts/{{account_sid}}"
        return Starlette(
            routes=[
                Route(f"{base}/Messages.json", self._messages, methods=["POST"]),
                Route(f"{base}/Balance.json", self._balance, methods=["GET"]),
                Route(f"{base}/Messages/{{sid}}.json", self._message, methods=["GET"]),
            ]
        )

    # -- requests ------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            constant_time_equal(user, self.config.account_sid)
            and constant_time_equal(password, self.config.auth_token)
            and request.path_params["account_sid"] == self.config.account_sid
        )

    def _denied(self) -> JSONResponse:
        return _error(401, 20003, "Authenticate")

    async def _balance(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._denied()
        return JSONResponse(
            {
                "account_sid": self.config.account_sid,
                "balance": f"{self.balance:.2f}",
                "currency": self.config.currency,
            }
        )

    async def _message(self, request: Request) -> Response:
        """GET a Message resource: what ``client.messages(sid).fetch()`` asks, and the
        ``uri`` the create answer links to."""
        if not self._authorized(request):
            return self._denied()
        message = self.messages.get(request.path_params["sid"])
        if message is None:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        return JSONResponse(message)

    async def _messages(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._denied()
        try:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return _error(400, 21602, "The request body is not valid UTF-8.")
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        e164 = self._e164(to)
        if e164 is None:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if e164 in self._opted_out:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY_CHARS:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        return JSONResponse(self._create(form, e164), status_code=201)

    def _create(self, form: dict[str, str], to: str) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        body = form["Body"]
        segments = _segments(body)
        self.balance -= self.config.price * segments
        now = format_datetime(utcnow())
        service = form.get("MessagingServiceSid")
        message = {
            "account_sid": self.config.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(segments),
            "price": None,
            "price_unit": self.config.currency,
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.config.account_sid}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": f"/{API_VERSION}/Accounts/{self.config.account_sid}/Messages/{sid}.json",
        }
        self.messages[sid] = message
        # The status moves on whether or not anyone is told (GET Message shows it).
        self._schedule(self._report(message, form.get("StatusCallback") or None))
        return dict(message)

    # -- status callbacks ----------------------------------------------------------------

    def _schedule(self, coro: Any) -> None:
        self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, message: dict[str, Any], url: str | None) -> None:
        final = (
            "undelivered" if self._random.random() < self.config.undelivered_rate else "delivered"
        )
        for status in ("sent", final):
            await asyncio.sleep(self.config.status_delay)
            message["status"] = status
            message["date_updated"] = format_datetime(utcnow())
            if status == "undelivered":
                message["error_code"] = 30003
                message["error_message"] = "Unknown destination handset"
            if url is not None:
                await self._post(message, url)

    async def _post(self, message: dict[str, Any], url: str) -> None:
        status = message["status"]
        params = [
            ("AccountSid", self.config.account_sid),
            ("ApiVersion", API_VERSION),
            ("From", message["from"] or ""),
            ("MessageSid", message["sid"]),
            ("MessageStatus", status),
            ("SmsSid", message["sid"]),
            ("SmsStatus", status),
            ("To", message["to"]),
        ]
        if message["messaging_service_sid"]:
            params.append(("MessagingServiceSid", message["messaging_service_sid"]))
        if status == "undelivered":
            params.append(("ErrorCode", "30003"))
        signature = compute_signature(self.config.auth_token, url, params)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=15.0, follow_redirects=False)
        try:
            response = await self._client.post(
                url, data=dict(params), headers={SIGNATURE_HEADER: signature}
            )
        except httpx.HTTPError as exc:
            self.deliveries.append(
                CallbackDelivery(message["sid"], status, url, None, type(exc).__name__)
            )
            log.warning(
                "status callback %s for %s failed: %s",
                status,
                mask_phone(message["to"]),
                type(exc).__name__,
            )
            return
        self.deliveries.append(CallbackDelivery(message["sid"], status, url, response.status_code))

    async def _shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def aclose(self) -> None:
        """Cancel pending callbacks and close the callback client, on the loop they run on."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._tasks.clear()
            return
        if loop is asyncio.get_running_loop():
            await self._shutdown()
        elif loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wrap_future(future)
        else:
            self._tasks.clear()
