"""Build the pushes a vendor would send, so event handling is testable without the vendor.

Each builder returns a :class:`CallbackPush` ``(headers, body)`` for
``notifier.handle_callback(instance, "POST", headers, body)``; :func:`deliver` does that
and waits until subscribers have seen the events. Here: the ``fake`` provider's pushes and
what every vendor's builders share (:func:`form_push`, :func:`callback_url`). Each vendor's
own builders ship with its plugin: ``notifykit_veesing.testing``,
``notifykit_twilio.testing`` (docs/testing.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import NamedTuple, overload
from urllib.parse import urlencode

from notifykit.config import Config
from notifykit.errors import ConfigError
from notifykit.instances import callback_path
from notifykit.notifier import AsyncNotifier, Notifier

__all__ = [
    "CallbackPush",
    "Fields",
    "callback_url",
    "deliver",
    "fake_receipt",
    "fake_reply",
    "form_fields",
    "form_push",
]

FORM = "application/x-www-form-urlencoded"

Fields = Mapping[str, str] | Sequence[tuple[str, str]]
"""Form fields: a mapping, or ``(name, value)`` pairs (a name may repeat)."""


class CallbackPush(NamedTuple):
    """A vendor's push: lower-case ``headers`` and the raw ``body``."""

    headers: dict[str, str]
    body: bytes


def form_push(fields: Fields, content_type: str = FORM, **headers: str) -> CallbackPush:
    """A form-encoded push (UTF-8) of ``fields`` in their order, with ``content-type``
    ``content_type`` and the given extra ``headers`` (names lower-case)."""
    return CallbackPush(
        {"content-type": content_type, **headers},
        urlencode(form_fields(fields), encoding="utf-8").encode("ascii"),
    )


def form_fields(fields: Fields | None) -> list[tuple[str, str]]:
    """``fields`` as ``(name, value)`` string pairs, in their order (None: none)."""
    if fields is None:
        return []
    items = fields.items() if isinstance(fields, Mapping) else fields
    return [(str(k), str(v)) for k, v in items]


def _config_of(target: Config | AsyncNotifier | Notifier) -> Config:
    return target if isinstance(target, Config) else target.config


def callback_url(target: Config | AsyncNotifier | Notifier, instance: str) -> str:
    """The URL a vendor calls for ``instance`` (of a Config or a notifier's): the instance's
    own ``public_url`` option if it has one, else ``[callbacks] public_url``, plus the
    receiver's path ``/callbacks/<instance>[/<token>]``. Signing vendors (Twilio) sign
    this URL.

    Raises ConfigError for an unknown instance or when no public URL is configured.
    """
    config = _config_of(target)
    section = config.providers.get(instance)
    if section is None:
        raise ConfigError(
            f"unknown provider {instance!r} (configured: {', '.join(config.providers) or 'none'})"
        )
    own = section.options.get("public_url")
    public_url = own if isinstance(own, str) and own else config.callbacks.public_url
    if not public_url:
        raise ConfigError(f"providers.{instance}.public_url: not set (nor [callbacks] public_url)")
    return public_url.rstrip("/") + callback_path(config, instance).get_secret_value()


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
    return form_push(fields)


def fake_reply(provider_message_id: str, text: str, *, phone: str | None = None) -> CallbackPush:
    """A reply for :class:`~notifykit.testing.FakeProvider`."""
    fields = [("kind", "reply"), ("provider_message_id", provider_message_id), ("text", text)]
    if phone is not None:
        fields.append(("phone", phone))
    return form_push(fields)


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
    public URL plus its receiver path (:func:`callback_url`) when it has one, else empty.
    """
    if url is None:
        try:
            url = callback_url(notifier.config, provider)
        except ConfigError:
            url = ""
    if isinstance(notifier, Notifier):
        return notifier._call(_adeliver(notifier.async_notifier, provider, push, url))
    return _adeliver(notifier, provider, push, url)
