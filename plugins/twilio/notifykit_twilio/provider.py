"""The ``twilio`` provider type: Twilio's Programmable Messaging REST API over httpx."""

from __future__ import annotations

import json
import re
import string
from datetime import UTC
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from notifykit.config import Duration
from notifykit.errors import InvalidMessage, ProviderUnavailable, UnknownOutcome
from notifykit.events import DeliveryReceipt, make_event_id
from notifykit.http import Answer, create_client, request, send_body
from notifykit.models import (
    Balance,
    DeliveryStatus,
    MessageRecord,
    SendReceipt,
    SmsMessage,
    utcnow,
)
from notifykit.provider import (
    CallbackRequest,
    CallbackResult,
    ProviderOptions,
    SmsProvider,
    TemplateOptions,
)
from notifykit_twilio.callbacks import STATUS_MAP, parse_push
from notifykit_twilio.errors import error_for_response

__all__ = ["MAX_BODY_CHARS", "TwilioOptions", "TwilioProvider", "TwilioTemplate"]

MAX_BODY_CHARS = 1600
API_VERSION = "2010-04-01"

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_API_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_HTTP_URL = re.compile(r"^https?://[^/\s?#]+(/[^\s?#]*)?$")

# The status a freshly created Message reports, as notifykit sees it.
# What httpx sends with a ``data=`` form: the send encodes its form itself (send_body).
_FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}

_CREATED_STATUS = {
    "queued": DeliveryStatus.ACCEPTED,
    "accepted": DeliveryStatus.ACCEPTED,
    "scheduled": DeliveryStatus.ACCEPTED,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
}


def _check_url(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not _HTTP_URL.match(value):
        raise ValueError(f"{what} must be an http(s) URL without query string or fragment")
    return value.rstrip("/")


class TwilioOptions(ProviderOptions):
    """``[providers.<instance>]`` settings of a ``type = "twilio"`` instance."""

    account_sid: str = Field(description="The account SID (AC + 32 hex).")
    auth_token: SecretStr | None = Field(
        default=None,
        description="The auth token: authenticates sends unless an API key is set, and is the "
        "only key that verifies Twilio's callback signatures.",
    )
    api_key_sid: str | None = Field(default=None, description="An API key SID (SK + 32 hex).")
    api_key_secret: SecretStr | None = Field(default=None, description="The API key's secret.")
    from_number: str | None = Field(
        default=None, description="Sender: a Twilio number (E.164), short code or sender ID."
    )
    messaging_service_sid: str | None = Field(
        default=None, description="Sender: a Messaging Service SID (MG + 32 hex)."
    )
    base_url: str = Field(default="https://api.twilio.com", description="Twilio's API root.")
    timeout: Duration = Field(
        default=10.0,
        gt=0,
        le=300,
        description='Seconds per request (a duration: 10, "10s", "500ms").',
    )
    public_url: str | None = Field(
        default=None,
        description="The externally visible base URL of the callback receiver; the receiver "
        "URL of this instance is public_url + /callbacks/<instance>[/<token>] (default: [callbacks] public_url).",
    )

    @field_validator("account_sid")
    @classmethod
    def _account_sid(cls, value: str) -> str:
        if not _ACCOUNT_SID.match(value):
            raise ValueError("must be a Twilio account SID: AC followed by 32 hex digits")
        return value

    @field_validator("api_key_sid")
    @classmethod
    def _api_key_sid(cls, value: str | None) -> str | None:
        if value is not None and not _API_KEY_SID.match(value):
            raise ValueError("must be a Twilio API key SID: SK followed by 32 hex digits")
        return value

    @field_validator("messaging_service_sid")
    @classmethod
    def _service_sid(cls, value: str | None) -> str | None:
        if value is not None and not _SERVICE_SID.match(value):
            raise ValueError("must be a Messaging Service SID: MG followed by 32 hex digits")
        return value

    @field_validator("from_number")
    @classmethod
    def _from_number(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return None if value is None else value.strip()

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        checked = _check_url(value, "base_url")
        assert checked is not None
        return checked

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return _check_url(value, "public_url")

    @model_validator(mode="after")
    def _credentials_and_sender(self) -> TwilioOptions:
        if (self.api_key_sid is None) != (self.api_key_secret is None):
            raise ValueError("api_key_sid and api_key_secret must be given together")
        if self.auth_token is None and self.api_key_sid is None:
            raise ValueError(
                "credentials missing: set auth_token, or api_key_sid with api_key_secret"
            )
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from_number and messaging_service_sid")
        return self


class TwilioTemplate(TemplateOptions):
    """``[templates.<template>.<instance>]`` of a Twilio instance: the text to send."""

    body: str = Field(min_length=1, description='The text, e.g. "Your code is {code}".')

    @field_validator("body")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            parsed = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        for _, name, _spec, _conversion in parsed:
            if name is not None and not name.isidentifier():
                raise ValueError(
                    "placeholders must be plain names such as {code} "
                    "(use {{ and }} for literal braces)"
                )
        return value

    def render(self, params: dict[str, str]) -> str:
        """The body with ``params`` filled in; raises KeyError naming a missing parameter."""
        return self.body.format_map(params)


class TwilioProvider(SmsProvider[TwilioOptions]):
    """Sends through Twilio's Messages resource; reads the Balance resource; verifies and
    normalises status callbacks and inbound messages."""

    name: ClassVar[str] = "twilio"
    Options: ClassVar[type[ProviderOptions]] = TwilioOptions
    TemplateOptions: ClassVar[type[TemplateOptions]] = TwilioTemplate
    signs_callbacks: ClassVar[bool] = True  # X-Twilio-Signature, checked with auth_token

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: httpx.AsyncClient | None = None

    # -- configuration -------------------------------------------------------------------

    @property
    def account_url(self) -> str:
        return f"{self.options.base_url}/{API_VERSION}/Accounts/{self.options.account_sid}"

    @property
    def receiver_url(self) -> str | None:
        """This instance's public callback URL (a secret: it may hold the callbacks token):
        its own ``public_url`` if set, else the core's ``[callbacks] public_url``."""
        if self.options.public_url is not None:
            return self.options.public_url + self.context.callback_path.get_secret_value()
        if self.context.callback_url is not None:
            return self.context.callback_url.get_secret_value()
        return None

    def config_warnings(self) -> list[str]:
        warnings = []
        if self.options.auth_token is None:
            warnings.append(
                f"providers.{self.instance}: no auth_token: callbacks cannot be verified "
                "(an API key cannot check X-Twilio-Signature), so every callback is refused"
            )
        if self.receiver_url is None:
            warnings.append(
                f"providers.{self.instance}: no public_url (here or in [callbacks]): "
                "no StatusCallback is sent with "
                "messages and callback signatures cannot be checked, so every callback is refused"
            )
        return warnings

    def describe(self) -> dict[str, Any]:
        return {
            "account_sid": self.options.account_sid,
            "sender": self.options.from_number or self.options.messaging_service_sid,
            "auth": "api_key" if self.options.api_key_sid else "auth_token",
            "base_url": self.options.base_url,
            "status_callbacks": self.receiver_url is not None,
            "callbacks_verifiable": self.options.auth_token is not None
            and self.receiver_url is not None,
        }

    # -- templates -----------------------------------------------------------------------

    def _render(self, message: SmsMessage) -> str:
        """The text to send, or InvalidMessage saying why there is none."""
        template = self.template_for(message)
        if not isinstance(template, TwilioTemplate):
            raise InvalidMessage(f"no [templates.{message.template}.{self.instance}] entry")
        try:
            body = template.render(message.params)
        except KeyError as exc:
            raise InvalidMessage(
                f"template {message.template!r} for {self.instance} needs parameter {exc.args[0]!r}"
            ) from None
        except (ValueError, IndexError) as exc:
            raise InvalidMessage(
                f"template {message.template!r} for {self.instance} cannot be rendered: {exc}"
            ) from None
        if not body.strip():
            raise InvalidMessage(f"template {message.template!r} renders to an empty text")
        if len(body) > MAX_BODY_CHARS:
            raise InvalidMessage(
                f"template {message.template!r} renders to {len(body)} characters; "
                f"Twilio takes at most {MAX_BODY_CHARS}"
            )
        return body

    def decline(self, message: SmsMessage) -> str | None:
        # Twilio serves every country: only the text can make it decline.
        try:
            self._render(message)
        except InvalidMessage as exc:
            return exc.message
        return None

    # -- HTTP ----------------------------------------------------------------------------

    def _auth(self) -> httpx.BasicAuth:
        options = self.options
        if options.api_key_sid is not None and options.api_key_secret is not None:
            return httpx.BasicAuth(options.api_key_sid, options.api_key_secret.get_secret_value())
        assert options.auth_token is not None  # the options validator guarantees one of them
        return httpx.BasicAuth(options.account_sid, options.auth_token.get_secret_value())

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = create_client(
                self.context,
                timeout=self.options.timeout,
                auth=self._auth(),
                headers={"accept": "application/json"},
            )
        return self._client

    def _json(self, response: httpx.Response | Answer) -> dict[str, Any] | None:
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    # -- the interface -------------------------------------------------------------------

    async def send(self, message: SmsMessage) -> SendReceipt:
        form = {"To": message.to, "Body": self._render(message)}
        if self.options.messaging_service_sid is not None:
            form["MessagingServiceSid"] = self.options.messaging_service_sid
        else:
            assert self.options.from_number is not None
            form["From"] = self.options.from_number
        if self.receiver_url is not None:
            form["StatusCallback"] = self.receiver_url
        # The form encoded here, as httpx encodes ``data=``: send_body sends it straight to
        # aiohttp on the default transport (notifykit.http.send_body).
        response = await send_body(
            self.client,
            "POST",
            f"{self.account_url}/Messages.json",
            provider=self.instance,
            content=urlencode(form).encode(),
            headers=_FORM_HEADERS,
        )
        if not response.is_success:
            raise error_for_response(response, self.instance)
        data = self._json(response)
        sid = data.get("sid") if data is not None else None
        if data is None or not isinstance(sid, str) or not sid:
            # Twilio said yes but the answer names no message: it may well be on its way, so
            # another provider must not send it again.
            raise UnknownOutcome(
                f"{self.instance}: HTTP {response.status_code} from Twilio without a message SID; "
                "the message may have been accepted",
                provider=self.instance,
            )
        status = _CREATED_STATUS.get(str(data.get("status")), DeliveryStatus.ACCEPTED)
        raw: dict[str, Any] = {
            k: data[k]
            for k in ("sid", "status", "num_segments", "price", "price_unit")
            if k in data
        }
        return SendReceipt(provider_message_id=sid, status=status, raw=raw)

    async def balance(self) -> Balance:
        response = await request(
            self.client, "GET", f"{self.account_url}/Balance.json", provider=self.instance
        )
        if not response.is_success:
            raise error_for_response(response, self.instance)
        data = self._json(response) or {}
        amount, currency = data.get("balance"), data.get("currency")
        try:
            remaining = Decimal(str(amount)) if isinstance(amount, str | int | float) else None
        except InvalidOperation:
            remaining = None
        if (
            remaining is None
            or not remaining.is_finite()
            or not isinstance(currency, str)
            or not currency
        ):
            raise ProviderUnavailable(
                f"{self.instance}: Twilio's Balance answer has no readable balance and currency",
                provider=self.instance,
            )
        return Balance(provider=self.instance, remaining=remaining, unit=currency.upper())

    async def fetch_status(self, record: MessageRecord) -> list[DeliveryReceipt]:
        """GET the Message resource (``/Messages/{sid}.json``) and report its ``status`` as
        the receipt a status callback with the same ``MessageStatus`` and ``ErrorCode``
        would give (same ``event_id``). Raises the mapped ProviderError when Twilio refuses
        (20404 for an unknown SID), ProviderUnavailable for an unreadable answer."""
        sid = record.provider_message_id
        if not sid:
            return []
        response = await request(
            self.client, "GET", f"{self.account_url}/Messages/{sid}.json", provider=self.instance
        )
        if not response.is_success:
            raise error_for_response(response, self.instance)
        data = self._json(response)
        vendor_status = data.get("status") if data is not None else None
        status = STATUS_MAP.get(vendor_status) if isinstance(vendor_status, str) else None
        if data is None or status is None or not isinstance(vendor_status, str):
            raise ProviderUnavailable(
                f"{self.instance}: Twilio's Message answer has no known status",
                provider=self.instance,
            )
        code = data.get("error_code")
        error_code = str(code) if isinstance(code, int | str) and str(code).isdigit() else None
        raw: dict[str, Any] = {
            "MessageSid": sid,
            "MessageStatus": vendor_status,
            "source": "GET Message",
        }
        if error_code is not None:
            raw["ErrorCode"] = error_code
        return [
            DeliveryReceipt(
                event_id=make_event_id(self.instance, sid, vendor_status, error_code),
                provider=self.instance,
                provider_message_id=sid,
                phone=record.to,
                occurred_at=_rfc2822(data.get("date_updated")),
                raw=raw,
                status=status,
                vendor_status=vendor_status,
                error_code=error_code,
            )
        ]

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        token = self.options.auth_token
        return parse_push(
            request,
            instance=self.instance,
            account_sid=self.options.account_sid,
            auth_token=token.get_secret_value() if token is not None else None,
            receiver_url=self.receiver_url,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def _rfc2822(value: object) -> Any:
    """Twilio's ``date_updated`` (RFC 2822, UTC) as an aware datetime; now when unreadable."""
    if isinstance(value, str):
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return utcnow()
