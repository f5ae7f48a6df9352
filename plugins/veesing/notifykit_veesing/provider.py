"""The Veesing provider: send a verification code, read the balance, parse pushes."""

from __future__ import annotations

import functools
import json
import logging
import re
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import phonenumbers

from notifykit.errors import InvalidMessage, ProviderError, ProviderUnavailable
from notifykit.http import Answer, create_client, send_body, status_error
from notifykit.log import get_logger
from notifykit.models import Balance, SendReceipt, SmsMessage
from notifykit.phone import mask_phone, number_type_of, parsed_number
from notifykit.provider import (
    CallbackRequest,
    CallbackResult,
    ProviderOptions,
    SmsProvider,
    TemplateOptions,
)
from notifykit_veesing.callbacks import parse_callback
from notifykit_veesing.errors import error_for
from notifykit_veesing.options import VeesingOptions, VeesingTemplateOptions

__all__ = ["BALANCE_PATH", "SEND_PATH", "VeesingProvider", "national_mobile"]

log = get_logger("notifykit.veesing")
_std_log = logging.getLogger("notifykit.veesing")

SEND_PATH = "/smsApi/verifyCode"
BALANCE_PATH = "/smsApi/verifyCode/getBalance"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"
_HEADERS = {"content-type": FORM_CONTENT_TYPE, "accept": "application/json"}
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)

_VARIABLES = re.compile(r"[0-9]{2,8}", re.ASCII)
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@functools.lru_cache(maxsize=4096)
def national_mobile(e164: str) -> str | None:
    """The 11-digit national form of a Chinese mobile number, or None when it is not one.

    Cached: a send asks twice (the router's ``decline`` and ``send``). The parsed form and
    the line type come from :mod:`notifykit.phone`'s cache, which ``parse_phone`` filled
    when the message was built: a send parses and classifies its number once.
    """
    parsed = parsed_number(e164)
    if parsed is None or parsed.country_code != 86:
        return None
    if phonenumbers.region_code_for_number(parsed) != "CN":
        return None
    # A mobile type implies a valid number (UNKNOWN is what an invalid one gets).
    if number_type_of(e164) not in _MOBILE_TYPES:
        return None
    national = str(parsed.national_number)
    return national if len(national) == 11 else None


class VeesingProvider(SmsProvider[VeesingOptions]):
    """Veesing (中昱维信) verification codes: one Chinese mobile number, a 2-8 digit code."""

    name: ClassVar[str] = "veesing"
    Options: ClassVar[type[ProviderOptions]] = VeesingOptions
    TemplateOptions: ClassVar[type[TemplateOptions]] = VeesingTemplateOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: httpx.AsyncClient | None = None
        self._credentials: str | None = None

    # -- checks made before any request ------------------------------------------------

    def decline(self, message: SmsMessage) -> str | None:
        return self._refusal(message, national_mobile(message.to))

    def _refusal(self, message: SmsMessage, phone: str | None) -> str | None:
        """:meth:`decline`, given the number's national form (``national_mobile``)."""
        if phone is None:
            return f"{mask_phone(message.to)} is not a Chinese mobile number (Veesing serves +86 mobiles only)"
        param = self.options.variables_param
        value = message.params.get(param)
        if value is None:
            return f"parameter {param!r} is missing (sent as Veesing's `variables`)"
        if not _VARIABLES.fullmatch(value):
            return f"parameter {param!r} must be 2 to 8 ASCII digits for Veesing"
        return super().decline(message)

    # -- send and balance ----------------------------------------------------------------

    async def send(self, message: SmsMessage) -> SendReceipt:
        phone = national_mobile(message.to)
        reason = self._refusal(message, phone)
        if reason is not None:
            raise InvalidMessage(f"{self.instance}: {reason}")
        template = self.templates[message.template]
        assert isinstance(template, VeesingTemplateOptions)
        # appId, appKey, phone, templateId, variables: the credentials and the template id
        # are encoded once; the phone and the code are ASCII digits (decline checked both),
        # which form-encode as themselves.
        form = (
            f"{self._credentials_form()}&phone={phone}"
            f"&templateId={_form_value(template.template_id)}"
            f"&variables={message.params[self.options.variables_param]}"
        )
        if _std_log.isEnabledFor(logging.DEBUG):  # nothing built when DEBUG is off
            log.debug(
                "veesing_send", provider=self.instance, phone=message.to, template=message.template
            )
        body = await self._post(SEND_PATH, form, action="send")
        task_id = _text(body.get("taskId"))
        if task_id is None:
            # Accepted all the same (credits were spent): failing over would send twice.
            log.warning("veesing_send_without_task_id", provider=self.instance)
        return SendReceipt(
            provider_message_id=task_id,
            remaining_credits=_int(body.get("remainPoint")),
            raw=body,
        )

    async def balance(self) -> Balance:
        body = await self._post(BALANCE_PATH, self._credentials_form(), action="balance query")
        remaining = _int(body.get("remainPoint"))
        if remaining is None:
            raise ProviderError(
                f"{self.instance}: Veesing's balance answer has no usable remainPoint",
                provider=self.instance,
                vendor_code=_text(body.get("returnStatus")),
                vendor_message=self._vendor_text(body),
            )
        return Balance(provider=self.instance, remaining=Decimal(remaining), unit="credits")

    def _credentials_form(self) -> str:
        """``appId=...&appKey=...``, form-encoded once (the key stays out of any repr)."""
        if self._credentials is None:
            self._credentials = urlencode(
                {"appId": self.options.app_id, "appKey": self.options.app_key.get_secret_value()}
            )
        return self._credentials

    async def _post(self, path: str, form: str, *, action: str) -> dict[str, Any]:
        """POST ``form`` (form-encoded, ASCII) as the body; the documented JSON of a
        success, or raise."""
        client = self._get_client()
        response = await send_body(
            client,
            "POST",
            self.options.base_url + path,
            provider=self.instance,
            content=form.encode("ascii"),
            headers=_HEADERS,
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise status_error(response, self.instance)
        body = self._json(response)
        status = _text(body.get("returnStatus"))
        if status == "1" and response.is_success:
            return body
        if status == "0":
            raise error_for(self._vendor_text(body), provider=self.instance, action=action)
        if not response.is_success:
            raise status_error(response, self.instance)
        shown = "absent" if status is None else repr(status[:20])
        raise ProviderError(
            f"{self.instance}: Veesing answered the {action} with returnStatus {shown}",
            provider=self.instance,
            vendor_code=status,
            vendor_message=self._vendor_text(body),
        )

    def _vendor_text(self, body: dict[str, Any]) -> str | None:
        """The vendor's ``message``, kept for the error, through the core's redactor should
        the vendor echo the request back (the key in any encoding, the number masked)."""
        return self.redactor.optional(_text(body.get("message")))

    def _json(self, response: Answer) -> dict[str, Any]:
        """The answer as a JSON object, or ProviderUnavailable (an HTML page, garbage)."""
        content_type = response.headers.get("content-type", "<none>")
        try:
            text = _decode(response, content_type)
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            # No body excerpt: an error page may echo the request, appKey included.
            raise ProviderUnavailable(
                f"{self.instance}: Veesing's answer is not the documented JSON "
                f"(HTTP {response.status_code}, {content_type}, {len(response.content)} bytes)",
                provider=self.instance,
                vendor_code=str(response.status_code),
            )
        return data

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = create_client(self.context, timeout=self.options.timeout)
        return self._client

    # -- callbacks and the rest of the interface -----------------------------------------

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        return parse_callback(request, instance=self.instance, zone=self.options.zone)

    def describe(self) -> dict[str, Any]:
        return {
            "base_url": self.options.base_url,
            "app_id": self.options.app_id,
            "timeout": self.options.timeout,
            "callback_timezone": self.options.callback_timezone,
            "variables_param": self.options.variables_param,
            "templates": {
                name: t.template_id
                for name, t in self.templates.items()
                if isinstance(t, VeesingTemplateOptions)
            },
        }

    def config_warnings(self) -> list[str]:
        warnings = []
        parts = urlsplit(self.options.base_url)
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            warnings.append(
                f"providers.{self.instance}.base_url: plain http to a remote host sends appKey in clear text"
            )
        return warnings

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


@functools.lru_cache(maxsize=256)
def _form_value(value: str) -> str:
    """``value`` form-encoded (a template id: one of a few, encoded once each)."""
    return quote_plus(value)


def _decode(response: Answer, content_type: str) -> str:
    """The body as text: the declared charset, else UTF-8, else GB18030 (a Chinese vendor's
    other usual encoding)."""
    for encoding in _encodings(content_type):
        try:
            return response.content.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    raise ValueError("undecodable body")


@functools.lru_cache(maxsize=64)
def _encodings(content_type: str) -> tuple[str, ...]:
    """The encodings to try, in order, for a body of ``content_type`` (a vendor sends one
    or two content types: read once each)."""
    # The charset parameter of content-type, read directly (httpx's charset_encoding goes
    # through the email package, which costs as much as the JSON parse).
    found = _CHARSET.search(content_type)
    declared = found.group(1) if found else None
    return tuple(dict.fromkeys([declared or "utf-8", "utf-8", "gb18030"]))


# Built once: an ``int | float | str`` written in the call builds the union on every call.
_SCALARS = (int, float, str)


def _text(value: object) -> str | None:
    """A JSON field as stripped text (numbers accepted, as the vendor may send either)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, _SCALARS):
        text = str(value).strip()
        return text or None
    return None


def _int(value: object) -> int | None:
    text = _text(value)
    if text is None or not text.isascii() or not text.isdigit():
        return None
    return int(text)
