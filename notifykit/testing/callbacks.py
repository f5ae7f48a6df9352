"""Build the pushes a vendor would send, so event handling is testable without the vendor.

Each builder returns a :class:`CallbackPush` ``(headers, body)`` for
``notifier.handle_callback(instance, "POST", headers, body)``; :func:`deliver` does that
and waits until subscribers have seen the events. Nothing here imports a vendor plugin: the
shapes follow the vendors' documents (Veesing's receipt/reply push, Twilio's status
callback, inbound message and ``X-Twilio-Signature``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, overload
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from notifykit.config import Config
from notifykit.errors import ConfigError, InvalidMessage
from notifykit.instances import callback_path
from notifykit.models import utcnow
from notifykit.notifier import AsyncNotifier, Notifier
from notifykit.phone import parse_phone

__all__ = [
    "TWILIO_API_VERSION",
    "VEESING_TIME_FORMAT",
    "CallbackPush",
    "deliver",
    "fake_receipt",
    "fake_reply",
    "twilio_callback_url",
    "twilio_inbound_message",
    "twilio_settings",
    "twilio_signature",
    "twilio_status_callback",
    "veesing_mobile",
    "veesing_receipt",
    "veesing_receivetime",
    "veesing_reply",
]

VEESING_FORM = "application/x-www-form-urlencoded;charset=utf-8"
VEESING_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
VEESING_TIMEZONE = "Asia/Shanghai"
TWILIO_FORM = "application/x-www-form-urlencoded"
TWILIO_API_VERSION = "2010-04-01"

Fields = Mapping[str, str] | Sequence[tuple[str, str]]


class CallbackPush(NamedTuple):
    """A vendor's push: lower-case ``headers`` and the raw ``body``."""

    headers: dict[str, str]
    body: bytes


def _form(fields: Sequence[tuple[str, str]], content_type: str, **headers: str) -> CallbackPush:
    return CallbackPush(
        {"content-type": content_type, **headers},
        urlencode(list(fields), encoding="utf-8").encode("ascii"),
    )


def _pairs(fields: Fields | None) -> list[tuple[str, str]]:
    if fields is None:
        return []
    items = fields.items() if isinstance(fields, Mapping) else fields
    return [(str(k), str(v)) for k, v in items]


# -- Veesing ------------------------------------------------------------------------------


def veesing_mobile(phone: str) -> str:
    """The ``mobile`` field: a ``+86`` number in its national 11-digit form; anything not
    starting with ``+`` (a national number, the document's masked ``1508092****``) as is."""
    text = phone.strip()
    if not text.startswith("+"):
        return text
    e164 = parse_phone(text)
    if not e164.startswith("+86"):
        raise InvalidMessage("veesing pushes carry Chinese (+86) numbers only")
    return e164.removeprefix("+86")


def veesing_receivetime(when: datetime | str | None, timezone: str = VEESING_TIMEZONE) -> str:
    """The ``receivetime`` field, ``yyyy-MM-dd HH:mm:ss`` in the vendor's zone.

    An aware datetime is converted to ``timezone``; a naive one is taken as already local;
    a string is used as given; None means now.
    """
    if isinstance(when, str):
        return when
    moment = utcnow() if when is None else when
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    return moment.strftime(VEESING_TIME_FORMAT)


def veesing_receipt(
    task_id: str,
    mobile: str,
    *,
    delivered: bool = True,
    status: str | None = None,
    receivetime: datetime | str | None = None,
    timezone: str = VEESING_TIMEZONE,
) -> CallbackPush:
    """A Veesing delivery receipt: ``mobile``, ``taskid``, ``status`` (``1`` delivered,
    ``0`` failed; ``status`` overrides), ``receivetime``."""
    return _form(
        [
            ("mobile", veesing_mobile(mobile)),
            ("taskid", str(task_id)),
            ("status", status if status is not None else ("1" if delivered else "0")),
            ("receivetime", veesing_receivetime(receivetime, timezone)),
        ],
        VEESING_FORM,
    )


def veesing_reply(
    task_id: str,
    mobile: str,
    content: str,
    *,
    receivetime: datetime | str | None = None,
    timezone: str = VEESING_TIMEZONE,
) -> CallbackPush:
    """A Veesing reply: ``mobile``, ``taskid``, ``content`` (UTF-8), ``receivetime``."""
    return _form(
        [
            ("mobile", veesing_mobile(mobile)),
            ("taskid", str(task_id)),
            ("content", content),
            ("receivetime", veesing_receivetime(receivetime, timezone)),
        ],
        VEESING_FORM,
    )


# -- Twilio -------------------------------------------------------------------------------


def twilio_signature(auth_token: str | SecretStr, url: str, fields: Fields) -> str:
    """``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, url + each name and value,
    sorted by name; a repeated name's values in their order))."""
    token = auth_token.get_secret_value() if isinstance(auth_token, SecretStr) else auth_token
    pairs = sorted(_pairs(fields), key=lambda pair: pair[0])
    data = url + "".join(name + value for name, value in pairs)
    digest = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _twilio(
    fields: list[tuple[str, str]], url: str, auth_token: str | SecretStr | None
) -> CallbackPush:
    if auth_token is None:
        return _form(fields, TWILIO_FORM)
    return _form(
        fields, TWILIO_FORM, **{"x-twilio-signature": twilio_signature(auth_token, url, fields)}
    )


def twilio_status_callback(
    message_sid: str,
    status: str,
    *,
    url: str,
    auth_token: str | SecretStr | None,
    to: str,
    from_: str = "+15005550006",
    account_sid: str | None = None,
    error_code: str | int | None = None,
    extra: Fields | None = None,
) -> CallbackPush:
    """A Twilio status callback for ``message_sid`` now in ``status`` (``sent``,
    ``delivered``, ``undelivered``...), signed for ``url`` with ``auth_token`` (None: no
    signature header, to test refusal)."""
    fields = [
        ("AccountSid", account_sid or _sid("AC")),
        ("ApiVersion", TWILIO_API_VERSION),
        ("From", from_),
        ("MessageSid", message_sid),
        ("MessageStatus", status),
        ("SmsSid", message_sid),
        ("SmsStatus", status),
        ("To", to),
    ]
    if error_code is not None:
        fields.append(("ErrorCode", str(error_code)))
    fields.extend(_pairs(extra))
    return _twilio(fields, url, auth_token)


def twilio_inbound_message(
    body: str,
    *,
    url: str,
    auth_token: str | SecretStr | None,
    from_: str,
    to: str = "+15005550006",
    message_sid: str | None = None,
    account_sid: str | None = None,
    extra: Fields | None = None,
) -> CallbackPush:
    """An inbound SMS (a reply) from ``from_`` to your Twilio number ``to``, signed as
    :func:`twilio_status_callback` is."""
    sid = message_sid or _sid("SM")
    fields = [
        ("AccountSid", account_sid or _sid("AC")),
        ("ApiVersion", TWILIO_API_VERSION),
        ("Body", body),
        ("From", from_),
        ("MessageSid", sid),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", sid),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("To", to),
    ]
    fields.extend(_pairs(extra))
    return _twilio(fields, url, auth_token)


def _config_of(target: Config | AsyncNotifier | Notifier) -> Config:
    return target if isinstance(target, Config) else target.config


def twilio_callback_url(target: Config | AsyncNotifier | Notifier, instance: str) -> str:
    """The URL Twilio calls for ``instance``: its ``public_url`` plus the receiver's path
    (``/callbacks/<instance>[/<token>]``), the URL signatures are computed over."""
    config = _config_of(target)
    section = config.providers.get(instance)
    if section is None:
        raise ConfigError(
            f"unknown provider {instance!r} (configured: {', '.join(config.providers) or 'none'})"
        )
    public_url = section.options.get("public_url")
    if not isinstance(public_url, str) or not public_url:
        raise ConfigError(f"providers.{instance}.public_url: not set")
    return public_url.rstrip("/") + callback_path(config, instance).get_secret_value()


def twilio_settings(target: Config | AsyncNotifier | Notifier, instance: str) -> dict[str, Any]:
    """``url``, ``auth_token`` and ``account_sid`` of a configured Twilio instance, to pass
    as ``**twilio_settings(notifier, "intl")`` to the Twilio builders."""
    options = _config_of(target).providers[instance].options
    token = options.get("auth_token")
    if not isinstance(token, str) or not token:
        raise ConfigError(f"providers.{instance}.auth_token: not set")
    settings: dict[str, Any] = {
        "url": twilio_callback_url(target, instance),
        "auth_token": SecretStr(token),
    }
    if isinstance(options.get("account_sid"), str):
        settings["account_sid"] = options["account_sid"]
    return settings


# -- the fake provider --------------------------------------------------------------------


def fake_receipt(
    provider_message_id: str, status: str = "delivered", *, phone: str | None = None
) -> CallbackPush:
    """A receipt for :class:`~notifykit.testing.FakeProvider` (``status``: a DeliveryStatus
    value)."""
    fields = [("kind", "receipt"), ("provider_message_id", provider_message_id)]
    fields.append(("status", status))
    if phone is not None:
        fields.append(("phone", phone))
    return _form(fields, TWILIO_FORM)


def fake_reply(provider_message_id: str, text: str, *, phone: str | None = None) -> CallbackPush:
    """A reply for :class:`~notifykit.testing.FakeProvider`."""
    fields = [("kind", "reply"), ("provider_message_id", provider_message_id), ("text", text)]
    if phone is not None:
        fields.append(("phone", phone))
    return _form(fields, TWILIO_FORM)


# -- delivering ---------------------------------------------------------------------------

Response = tuple[int, dict[str, str], bytes]


async def _adeliver(
    notifier: AsyncNotifier, provider: str, push: CallbackPush, url: str
) -> Response:
    response = await notifier.handle_callback(provider, "POST", push.headers, push.body, url=url)
    # Subscribers run in the background; wait so that a test sees their effects next line.
    await notifier.callbacks.drain()
    return response


@overload
def deliver(
    notifier: Notifier, provider: str, push: CallbackPush, *, url: str | None = None
) -> Response: ...
@overload
def deliver(
    notifier: AsyncNotifier, provider: str, push: CallbackPush, *, url: str | None = None
) -> Awaitable[Response]: ...
def deliver(
    notifier: Notifier | AsyncNotifier,
    provider: str,
    push: CallbackPush,
    *,
    url: str | None = None,
) -> Response | Awaitable[Response]:
    """Hand ``push`` to ``notifier.handle_callback`` for instance ``provider`` and wait until
    every new event has reached the subscribers; returns ``(status, headers, body)``.

    With a :class:`Notifier` it returns the response; with an :class:`AsyncNotifier`, an
    awaitable of it. ``url`` is the URL the vendor called; by default the instance's
    ``public_url`` plus its receiver path when it has one, else empty.
    """
    if url is None:
        try:
            url = twilio_callback_url(notifier.config, provider)
        except ConfigError:
            url = ""
    if isinstance(notifier, Notifier):
        return notifier._call(_adeliver(notifier.async_notifier, provider, push, url))
    return _adeliver(notifier, provider, push, url)
