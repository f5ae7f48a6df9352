"""Build the pushes Veesing sends, to test receipt and reply handling without the vendor.

Each builder returns a :class:`~notifykit.testing.CallbackPush` ``(headers, body)`` for
``notifier.handle_callback(instance, "POST", headers, body)`` or
:func:`notifykit.testing.deliver`. The shapes are those of Veesing's push document
(状态报告推送 / 上行回复推送): a UTF-8 form with ``mobile`` (national 11 digits),
``taskid``, ``status`` (``1`` delivered, ``0`` failed) or ``content``, and ``receivetime``
(``yyyy-MM-dd HH:mm:ss`` in the vendor's zone, no offset). See docs/testing.md.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from notifykit.errors import InvalidMessage
from notifykit.models import utcnow
from notifykit.phone import parse_phone
from notifykit.testing import CallbackPush, form_push
from notifykit_veesing.callbacks import RECEIVETIME_FORMAT
from notifykit_veesing.provider import FORM_CONTENT_TYPE

__all__ = [
    "VEESING_TIMEZONE",
    "veesing_mobile",
    "veesing_receipt",
    "veesing_receivetime",
    "veesing_reply",
]

VEESING_TIMEZONE = "Asia/Shanghai"
"""The zone Veesing writes ``receivetime`` in (the default ``callback_timezone``)."""


def veesing_mobile(phone: str) -> str:
    """The ``mobile`` field: a ``+86`` number in its national 11-digit form; anything not
    starting with ``+`` (a national number, the document's masked ``1508092****``) as is.

    Raises InvalidMessage for a number outside +86 (Veesing pushes carry only those)."""
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
    a string is used as given (to test bad values); None means now.
    """
    if isinstance(when, str):
        return when
    moment = utcnow() if when is None else when
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    return moment.strftime(RECEIVETIME_FORMAT)


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
    return form_push(
        [
            ("mobile", veesing_mobile(mobile)),
            ("taskid", str(task_id)),
            ("status", status if status is not None else ("1" if delivered else "0")),
            ("receivetime", veesing_receivetime(receivetime, timezone)),
        ],
        FORM_CONTENT_TYPE,
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
    return form_push(
        [
            ("mobile", veesing_mobile(mobile)),
            ("taskid", str(task_id)),
            ("content", content),
            ("receivetime", veesing_receivetime(receivetime, timezone)),
        ],
        FORM_CONTENT_TYPE,
    )
