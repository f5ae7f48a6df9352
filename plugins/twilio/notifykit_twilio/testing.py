"""Build the webhooks Twilio sends, signed, to test receipt and reply handling without Twilio.

Each builder returns a :class:`~notifykit.testing.CallbackPush` ``(headers, body)`` for
``notifier.handle_callback(instance, "POST", headers, body)`` or
:func:`notifykit.testing.deliver`: a form POST with Twilio's fields, signed with
``X-Twilio-Signature`` over the URL Twilio called (:mod:`notifykit_twilio.signature`, the
code the receiver verifies with). Twilio documents the fields under "Messaging webhooks"
(status callbacks, incoming messages) and the signature under "Webhooks security". See
docs/testing.md.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import SecretStr

from notifykit import AsyncNotifier, Config, Notifier
from notifykit.errors import ConfigError
from notifykit.testing import CallbackPush, Fields, callback_url, form_fields, form_push
from notifykit_twilio.provider import API_VERSION
from notifykit_twilio.signature import SIGNATURE_HEADER, compute_signature

__all__ = [
    "twilio_callback_url",
    "twilio_inbound_message",
    "twilio_settings",
    "twilio_signature",
    "twilio_status_callback",
]

_FORM = "application/x-www-form-urlencoded"


def twilio_signature(auth_token: str | SecretStr, url: str, fields: Fields) -> str:
    """``X-Twilio-Signature`` of a form POST of ``fields`` to ``url``, computed by
    :func:`notifykit_twilio.signature.compute_signature` (base64 HMAC-SHA1 keyed by the auth
    token over the URL and every name and value, sorted by name)."""
    token = auth_token.get_secret_value() if isinstance(auth_token, SecretStr) else auth_token
    return compute_signature(token, url, form_fields(fields))


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _signed(
    fields: list[tuple[str, str]], url: str, auth_token: str | SecretStr | None
) -> CallbackPush:
    if auth_token is None:
        return form_push(fields, _FORM)
    signature = twilio_signature(auth_token, url, fields)
    return form_push(fields, _FORM, **{SIGNATURE_HEADER.lower(): signature})


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
    signature header, to test refusal); ``extra`` fields are appended."""
    fields = [
        ("AccountSid", account_sid or _sid("AC")),
        ("ApiVersion", API_VERSION),
        ("From", from_),
        ("MessageSid", message_sid),
        ("MessageStatus", status),
        ("SmsSid", message_sid),
        ("SmsStatus", status),
        ("To", to),
    ]
    if error_code is not None:
        fields.append(("ErrorCode", str(error_code)))
    fields.extend(form_fields(extra))
    return _signed(fields, url, auth_token)


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
        ("ApiVersion", API_VERSION),
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
    fields.extend(form_fields(extra))
    return _signed(fields, url, auth_token)


def twilio_callback_url(target: Config | AsyncNotifier | Notifier, instance: str) -> str:
    """The URL Twilio calls for ``instance``, the one signatures are computed over: the
    instance's ``public_url`` (else ``[callbacks] public_url``) plus the receiver's path
    ``/callbacks/<instance>[/<token>]``. Raises ConfigError when there is none."""
    return callback_url(target, instance)


def twilio_settings(target: Config | AsyncNotifier | Notifier, instance: str) -> dict[str, Any]:
    """``url``, ``auth_token`` and ``account_sid`` of a configured Twilio instance, to pass
    as ``**twilio_settings(notifier, "intl")`` to the builders. Raises ConfigError when the
    instance has no auth token or no public URL."""
    config = target if isinstance(target, Config) else target.config
    options = config.providers[instance].options
    token = options.get("auth_token")
    if not isinstance(token, str) or not token:
        raise ConfigError(f"providers.{instance}.auth_token: not set")
    settings: dict[str, Any] = {
        "url": twilio_callback_url(config, instance),
        "auth_token": SecretStr(token),
    }
    if isinstance(options.get("account_sid"), str):
        settings["account_sid"] = options["account_sid"]
    return settings
