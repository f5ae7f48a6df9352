"""The one exception tree of notifykit.

Every error the library raises is a :class:`NotifyKitError`. Nothing from httpx, a vendor
SDK or a plugin's internals escapes: foreign exceptions are translated at the boundary and
chained (``raise ProviderUnavailable(...) from exc``).

::

    NotifyKitError
    ├── ConfigError               bad configuration file, key or value
    ├── UsageError                used as it cannot work: closed, or on two running loops
    ├── InvalidMessage            bad number, template or parameter; raised before any request
    ├── ProviderError             a vendor refused or failed (provider, vendor_code, vendor_message)
    │   ├── AuthenticationError   wrong credentials, locked account, IP not allowed
    │   ├── InsufficientBalance   no credit left
    │   ├── QuotaExceeded         an account-level cap (daily volume)
    │   ├── RecipientRateLimited  a per-number cap (once a minute, N a day)
    │   ├── InvalidRecipient      the vendor says the number cannot receive this
    │   ├── TemplateError         template unknown, unapproved or malformed
    │   ├── ProviderUnavailable   the vendor did not accept: refused, HTTP 5xx, unreadable body
    │   └── UnknownOutcome        the vendor may have accepted (e.g. read timeout after sending)
    ├── NotSupported              the vendor lacks this capability
    ├── CallbackError             a vendor push that cannot be understood
    │   └── InvalidSignature      a push that fails the vendor's own authentication
    ├── StoreError                the message store failed
    ├── VerificationRateLimited   a verification start refused by the resend rules (retry_after)
    └── AllProvidersFailed        every provider on the route failed

Every error raised by ``send`` carries ``.attempts``: one :class:`~notifykit.models.Attempt`
per try, skipped providers included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifykit.models import Attempt

__all__ = [
    "AllProvidersFailed",
    "AuthenticationError",
    "CallbackError",
    "ConfigError",
    "InsufficientBalance",
    "InvalidMessage",
    "InvalidRecipient",
    "InvalidSignature",
    "NotSupported",
    "NotifyKitError",
    "ProviderError",
    "ProviderUnavailable",
    "QuotaExceeded",
    "RecipientRateLimited",
    "StoreError",
    "TemplateError",
    "UnknownOutcome",
    "UsageError",
    "VerificationRateLimited",
]


class NotifyKitError(Exception):
    """Root of every notifykit error."""

    def __init__(self, message: str = "", *, attempts: Sequence[Attempt] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.attempts: list[Attempt] = list(attempts)

    def __str__(self) -> str:
        if not self.attempts:
            return self.message
        lines = [self.message, "attempts:"]
        lines.extend(f"  {attempt.summary()}" for attempt in self.attempts)
        return "\n".join(lines)


class ConfigError(NotifyKitError):
    """The configuration is invalid: the message names the key and what is wrong."""


class UsageError(NotifyKitError):
    """The library was used in a way that cannot work: a notifier used after ``close()``,
    one ``AsyncNotifier`` used from two event loops running at the same time, a
    ``Notifier`` called from its own loop. Never a vendor's failure: it is raised before
    any provider is tried and never counts towards a breaker."""


class InvalidMessage(NotifyKitError):
    """The message cannot be sent as given; raised before any network call."""


class ProviderError(NotifyKitError):
    """A vendor refused or failed to take a message or answer a query.

    ``provider`` is the configured instance name, ``vendor_code`` and ``vendor_message``
    what the vendor said (either may be None).
    """

    def __init__(
        self,
        message: str = "",
        *,
        provider: str | None = None,
        vendor_code: str | None = None,
        vendor_message: str | None = None,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.provider = provider
        self.vendor_code = vendor_code
        self.vendor_message = vendor_message


class AuthenticationError(ProviderError):
    """The vendor refused the credentials (wrong key, locked account, IP not allowed)."""


class InsufficientBalance(ProviderError):
    """The vendor account has no credit left."""


class QuotaExceeded(ProviderError):
    """An account-level cap was reached (e.g. the daily volume)."""


class RecipientRateLimited(ProviderError):
    """A per-recipient cap was reached (once a minute, N a day)."""


class InvalidRecipient(ProviderError):
    """The vendor says this recipient cannot be sent to (bad number, opted out)."""


class TemplateError(ProviderError):
    """The vendor does not know or has not approved the template."""


class ProviderUnavailable(ProviderError):
    """The vendor did not accept the message: refused connection, HTTP 5xx, unreadable body.

    ``retryable`` is True only where the request provably never reached the vendor, or the
    vendor said to come back later (refused connection, connect timeout, HTTP 429/502/503/504).
    """

    def __init__(
        self,
        message: str = "",
        *,
        provider: str | None = None,
        vendor_code: str | None = None,
        vendor_message: str | None = None,
        retryable: bool = False,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            vendor_code=vendor_code,
            vendor_message=vendor_message,
            attempts=attempts,
        )
        self.retryable = retryable


class UnknownOutcome(ProviderError):
    """The request may have reached the vendor, but no usable answer came back."""


class NotSupported(NotifyKitError):
    """The vendor lacks this capability (e.g. no balance query)."""


class CallbackError(NotifyKitError):
    """A vendor push that cannot be understood; the message says what is wrong."""


class InvalidSignature(CallbackError):
    """A push that fails the vendor's own authentication (bad or missing signature)."""


class StoreError(NotifyKitError):
    """The message store failed to read or write."""


class VerificationRateLimited(NotifyKitError):
    """A verification ``start`` refused by the resend rules (``[verify] resend_interval``,
    ``max_sends``) before any vendor request; ``retry_after`` is the seconds to wait (float)."""

    def __init__(self, message: str = "", *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AllProvidersFailed(NotifyKitError):
    """Every provider on the route failed; ``attempts`` says how each one did."""
