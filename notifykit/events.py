"""Unified callback events: every vendor's receipts and replies become one of these.

``Event`` is a discriminated union on ``kind``, so a stored payload validates back into the
right class: ``EventAdapter.validate_json(payload)``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from notifykit.models import DeliveryStatus, masked_repr, utcnow

__all__ = ["DeliveryReceipt", "Event", "EventAdapter", "InboundMessage", "make_event_id"]


_ID_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)
"""What ``json.dumps(..., ensure_ascii=False, sort_keys=True, default=str)`` uses, made
once (``dumps`` makes one per call when given options)."""


def make_event_id(provider: str, *parts: object) -> str:
    """A deterministic de-duplication key: the same vendor push gives the same id (in every
    version: stored ids are compared with new ones)."""
    values = (provider, *parts)
    if all(type(value) is str for value in values):
        # The usual parts, all text: the encoder's own output for a list of strings (its
        # string function and its ", " separator), without its general machinery.
        blob = "[" + ", ".join(map(encode_basestring, cast("tuple[str, ...]", values))) + "]"
    else:
        blob = _ID_ENCODER.encode(list(values))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class _BaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    provider: str
    """The configured provider instance that received the push."""
    provider_message_id: str | None = None
    phone: str | None = None
    """E.164, or None when the vendor sent a masked or unreadable number (kept in ``raw``)."""
    occurred_at: datetime
    """When the vendor says it happened, timezone-aware UTC."""
    received_at: datetime = Field(default_factory=utcnow)
    raw: dict[str, Any] = Field(default_factory=dict)
    message_id: str | None = None
    """notifykit's own message id, once the event is tied to its message."""

    @field_validator("occurred_at", "received_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # A naive time is ambiguous (the vendor's zone or ours?): the plugin must say.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (convert the vendor's local time)")
        return value.astimezone(UTC)

    def __repr__(self) -> str:
        return masked_repr(self, numbers=("phone",))

    __str__ = __repr__


class DeliveryReceipt(_BaseEvent):
    """An operator's report on a message: delivered, undelivered, or on its way."""

    kind: Literal["receipt"] = "receipt"
    status: DeliveryStatus
    vendor_status: str
    """The vendor's own status value, untouched."""
    error_code: str | None = None


class InboundMessage(_BaseEvent):
    """A reply from the recipient."""

    kind: Literal["reply"] = "reply"
    text: str


Event = Annotated[DeliveryReceipt | InboundMessage, Field(discriminator="kind")]
EventAdapter: TypeAdapter[DeliveryReceipt | InboundMessage] = TypeAdapter(Event)
