"""The failover policy: what an error from one provider means for the rest of the route.

==========================================  ==============================================
error                                       routing
==========================================  ==============================================
``InvalidMessage``, ``InvalidRecipient``    stop at once: no other provider is tried
``RecipientRateLimited``                    ``routing.on_recipient_rate_limited`` (stop)
``UnknownOutcome``                          ``routing.on_unknown_outcome`` (stop), so that
                                            nobody receives two codes
``AuthenticationError``,                    try the next provider
``InsufficientBalance``, ``QuotaExceeded``,
``TemplateError``, ``ProviderUnavailable``,
any other ``ProviderError``
``NotSupported`` and other notifykit        try the next provider
errors a provider raises
==========================================  ==============================================

The same error also tells the circuit breaker what it learnt about the vendor
(:func:`breaker_effect`) and whether the same provider may be tried again (:func:`is_retryable`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from notifykit.config import RoutingConfig
from notifykit.errors import (
    AuthenticationError,
    InsufficientBalance,
    InvalidMessage,
    InvalidRecipient,
    NotifyKitError,
    NotSupported,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RecipientRateLimited,
    TemplateError,
    UnknownOutcome,
)

__all__ = [
    "BreakerEffect",
    "Decision",
    "FailoverPolicy",
    "breaker_effect",
    "is_retryable",
    "may_have_been_accepted",
]


class Decision(enum.Enum):
    """What the router does after a provider failed."""

    STOP = "stop"
    FAILOVER = "failover"


class BreakerEffect(enum.Enum):
    """What a provider's answer says about the vendor's health."""

    VENDOR_FAILURE = "vendor_failure"
    """The vendor is failing: counts towards opening the breaker."""
    ACCOUNT_FAILURE = "account_failure"
    """The account cannot send (credentials, balance, quota): out of rotation for a while."""
    HEALTHY = "healthy"
    """The vendor answered sensibly (accepted, or refused for a reason of the message's own)."""


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    """The configurable part of the policy; everything else is fixed by error class."""

    on_unknown_outcome: Literal["stop", "failover"] = "stop"
    on_recipient_rate_limited: Literal["stop", "failover"] = "stop"

    @classmethod
    def from_config(cls, routing: RoutingConfig) -> FailoverPolicy:
        return cls(
            on_unknown_outcome=routing.on_unknown_outcome,
            on_recipient_rate_limited=routing.on_recipient_rate_limited,
        )

    def decide(self, exc: NotifyKitError) -> Decision:
        """Stop the send, or go on to the next provider on the route."""
        if isinstance(exc, InvalidMessage | InvalidRecipient):
            return Decision.STOP
        if isinstance(exc, RecipientRateLimited):
            return Decision(self.on_recipient_rate_limited)
        if isinstance(exc, UnknownOutcome):
            return Decision(self.on_unknown_outcome)
        return Decision.FAILOVER


def breaker_effect(exc: NotifyKitError | None) -> BreakerEffect:
    """How an attempt's outcome (None: accepted) counts for the provider's circuit breaker.

    Only vendor-side failures (unavailable, unknown outcome, an unclassified
    ``ProviderError``) count towards opening it; errors caused by the message or recipient
    prove the vendor is answering.
    """
    if exc is None:
        return BreakerEffect.HEALTHY
    if isinstance(exc, AuthenticationError | InsufficientBalance | QuotaExceeded):
        return BreakerEffect.ACCOUNT_FAILURE
    if isinstance(
        exc,
        InvalidRecipient | RecipientRateLimited | TemplateError | InvalidMessage | NotSupported,
    ):
        return BreakerEffect.HEALTHY
    if isinstance(exc, ProviderError):
        return BreakerEffect.VENDOR_FAILURE
    return BreakerEffect.HEALTHY


def is_retryable(exc: BaseException) -> bool:
    """True only where the request provably never reached the vendor (or it said "later")."""
    return isinstance(exc, ProviderUnavailable) and exc.retryable


def may_have_been_accepted(exc: BaseException) -> bool:
    """True when the vendor may have taken the message despite the error."""
    return isinstance(exc, UnknownOutcome)
