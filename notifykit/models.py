"""The data notifykit passes around: messages, results, attempts, balances, stored records."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)

from notifykit.errors import InvalidMessage
from notifykit.phone import mask_phone, parse_phone

__all__ = [
    "Attempt",
    "Balance",
    "DeliveryStatus",
    "MessageRecord",
    "SendReceipt",
    "SendResult",
    "SmsMessage",
    "StatusChange",
    "VerificationCheckStatus",
    "VerificationRecord",
    "VerificationStatus",
    "apply_status",
    "status_advances",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class DeliveryStatus(enum.StrEnum):
    """Where a message stands. Values are the lower-case names.

    Status only moves forward: ``pending`` < ``unknown`` < ``accepted`` < ``sent`` < the final
    ones (delivered, undelivered, failed, expired, rejected).
    """

    PENDING = "pending"
    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def rank(self) -> int:
        """Order for forward-only updates: a lower rank never overwrites a higher one."""
        return _RANK[self]

    @property
    def is_final(self) -> bool:
        return self.rank == _FINAL_RANK


_FINAL_RANK = 4
_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.UNKNOWN: 1,
    DeliveryStatus.ACCEPTED: 2,
    DeliveryStatus.SENT: 3,
    DeliveryStatus.DELIVERED: _FINAL_RANK,
    DeliveryStatus.UNDELIVERED: _FINAL_RANK,
    DeliveryStatus.FAILED: _FINAL_RANK,
    DeliveryStatus.EXPIRED: _FINAL_RANK,
    DeliveryStatus.REJECTED: _FINAL_RANK,
}


def masked_repr(model: BaseModel, *, numbers: tuple[str, ...] = ("to",)) -> str:
    """``model``'s repr as pydantic writes it, but with the phone numbers in fields
    ``numbers`` masked (:func:`~notifykit.phone.mask_phone`) and every value of a
    ``params`` field shown as ``***`` (a parameter may be a verification code), so that a
    repr that reaches a log is as safe as notifykit's own log lines. Fields declared with
    ``repr=False`` are left out, as pydantic does."""
    shown = []
    for name, field in type(model).model_fields.items():
        if not field.repr:
            continue
        value = getattr(model, name)
        if name in numbers and isinstance(value, str):
            value = mask_phone(value)
        elif name == "params" and isinstance(value, dict):
            value = dict.fromkeys(value, "***")
        shown.append(f"{name}={value!r}")
    return f"{type(model).__name__}({', '.join(shown)})"


class SmsMessage(BaseModel):
    """One SMS to send: a logical template with its parameters, to one E.164 number.

    Invalid input raises :class:`~notifykit.errors.InvalidMessage` (not pydantic's
    ``ValidationError``), naming each field and what is wrong; the number only masked.
    """

    # Numbers are personal data: validation errors never echo the input.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    to: str
    template: str = Field(min_length=1)
    params: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str | None = None
    tags: tuple[str, ...] = ()
    message_id: str | None = None
    """notifykit's id of this message (the store's ``message_id``), set by the router on the
    copy it hands to a provider's ``send`` so that a vendor reference field can carry it
    (Alibaba's ``OutId``); None on a message built by hand."""

    @model_validator(mode="wrap")
    @classmethod
    def _invalid_message(cls, data: Any, handler: ModelWrapValidatorHandler[SmsMessage]) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in error['loc']) or 'message'}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            ]
            raise InvalidMessage("; ".join(problems)) from None

    @field_validator("to", mode="before")
    @classmethod
    def _e164(cls, value: object) -> str:
        # ``before``: a non-string number gets parse_phone's clear message, not pydantic's.
        return parse_phone(value)

    def __repr__(self) -> str:
        return masked_repr(self)

    __str__ = __repr__


class Attempt(BaseModel):
    """One try of one provider instance; retries of the same provider are attempts too.

    ``started``: the vendor call began and has not ended (yet). The store holds such an
    attempt while the call is in flight, so that a process killed mid-call leaves evidence
    of which instance may have the message and since when (``started_at``, UTC); a live
    send replaces it with the try's outcome. ``started_at`` is None for ``skipped``.
    """

    provider: str
    outcome: Literal["started", "accepted", "failed", "skipped"]
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    started_at: datetime | None = None

    def summary(self) -> str:
        text = f"{self.provider}: {self.outcome}"
        if self.outcome == "started":
            at = self.started_at.isoformat() if self.started_at is not None else "?"
            return f"{text} at {at} (no outcome recorded)"
        if self.error_type:
            text += f" ({self.error_type}: {self.error_message})"
        elif self.error_message:
            text += f" ({self.error_message})"
        return f"{text} in {self.duration_ms:.0f} ms"


class SendReceipt(BaseModel):
    """What a provider returns when the vendor accepted a message."""

    provider_message_id: str | None = None
    remaining_credits: int | None = None
    status: DeliveryStatus = DeliveryStatus.ACCEPTED
    raw: dict[str, Any] = Field(default_factory=dict)


class SendResult(BaseModel):
    """The outcome of a successful ``send``.

    ``replayed`` is True when the send had an idempotency key already used by an earlier
    send that an instance accepted: nothing was sent this time, and the other fields are
    the first send's, rebuilt from the store (docs/routing.md, "Idempotency")."""

    message_id: str
    provider: str
    provider_message_id: str | None = None
    remaining_credits: int | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    replayed: bool = False


class Balance(BaseModel):
    """What is left on a vendor account: credits, or money in an ISO 4217 currency.

    ``unit`` is required: ``"credits"``, or a currency code such as ``"USD"``, so that money
    is never read as a message count.
    """

    provider: str
    remaining: Decimal
    unit: str

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if value != "credits" and not (len(value) == 3 and value.isascii() and value.isupper()):
            raise ValueError('unit must be "credits" or an ISO 4217 currency code such as "USD"')
        return value


class StatusChange(BaseModel):
    """One step of a message's status history."""

    status: DeliveryStatus
    at: datetime
    source: str = "send"


class MessageRecord(BaseModel):
    """A message as the store keeps it. The parameters (the code itself) are not kept."""

    message_id: str
    to: str
    template: str
    tags: tuple[str, ...] = ()
    idempotency_key: str | None = None
    status: DeliveryStatus = DeliveryStatus.PENDING
    history: list[StatusChange] = Field(default_factory=list)
    provider: str | None = None
    provider_message_id: str | None = None
    remaining_credits: int | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    """When the sending process must have settled this record (UTC): the send's deadline
    plus the store timeout. A record still ``pending`` after it was left by a process that
    died; the recovery sweep (:mod:`notifykit.recovery`) resolves it. None: never swept."""

    def may_have_reached_vendor(self) -> bool:
        """Whether any attempt may have reached a vendor: one that started and has no
        outcome (a crash mid-call), or one that ended in ``UnknownOutcome``, or was accepted."""
        return any(
            a.outcome in ("started", "accepted") or a.error_type == "UnknownOutcome"
            for a in self.attempts
        )

    def __repr__(self) -> str:
        return masked_repr(self)

    __str__ = __repr__


def status_advances(current: DeliveryStatus, new: DeliveryStatus) -> bool:
    """Whether a message at ``current`` moves to ``new``: the one forward-only rule.

    True only when ``new`` ranks above ``current`` and ``current`` is not final (so the
    first final status wins, and the same status twice is no change). Every store backend
    calls this (through :func:`apply_status` or directly, looked up on this module at call
    time): the contract suite swaps it out and checks that every backend follows.
    """
    # The ranks read directly (not through the properties): every status write asks this.
    rank = _RANK[current]
    return _RANK[new] > rank and rank != _FINAL_RANK


def apply_status(record: MessageRecord, status: DeliveryStatus, at: datetime, source: str) -> bool:
    """Move ``record`` forward to ``status`` (never back, by :func:`status_advances`); True
    when it changed. Every accepted change is appended to the history.
    """
    if not status_advances(record.status, status):
        return False
    record.status = status
    record.history.append(StatusChange(status=status, at=at, source=source))
    record.updated_at = utcnow()
    return True


class VerificationStatus(enum.StrEnum):
    """Where a verification stands (docs/verify.md has the transitions).

    ``pending``: a code is out and may be checked. ``approved``: the right code was checked
    (the verification is consumed). ``canceled``: ``cancel`` ended it. ``expired``: its
    ``expires_at`` passed before a right code came. ``max_attempts``: the wrong guesses used up
    ``max_attempts``. ``failed``: no vendor accepted its first SMS. Every status but
    ``pending`` is final.
    """

    PENDING = "pending"
    APPROVED = "approved"
    CANCELED = "canceled"
    EXPIRED = "expired"
    MAX_ATTEMPTS = "max_attempts"
    FAILED = "failed"


class VerificationCheckStatus(enum.StrEnum):
    """The answer to one ``check``: ``approved`` (right code, verification consumed),
    ``incorrect`` (wrong code, one attempt used), ``expired``, ``max_attempts`` (no attempt
    left, whatever the code), ``not_found`` (no pending verification for that number and
    purpose: none started, or approved, canceled or failed)."""

    APPROVED = "approved"
    INCORRECT = "incorrect"
    EXPIRED = "expired"
    MAX_ATTEMPTS = "max_attempts"
    NOT_FOUND = "not_found"


class VerificationRecord(BaseModel):
    """A verification as the store keeps it. Times are seconds since the epoch (floats).

    The code itself is never stored: ``seed`` is the random value the code is derived from
    with ``[verify] secret`` (so that a resend repeats it), and ``code_hash`` a keyed hash
    of the code (hex) to check against; neither reveals the code without the secret, and
    neither is shown in the repr. ``attempts`` counts wrong guesses; ``sends`` the SMS
    counted as sent (an :class:`~notifykit.errors.UnknownOutcome` counts).
    """

    model_config = ConfigDict(frozen=True)

    verification_id: str
    to: str
    purpose: str
    status: VerificationStatus = VerificationStatus.PENDING
    code_hash: str = Field(repr=False)
    seed: str = Field(repr=False)
    attempts: int = 0
    sends: int = 0
    created_at: float
    expires_at: float
    updated_at: float

    def __repr__(self) -> str:
        return masked_repr(self)

    __str__ = __repr__
