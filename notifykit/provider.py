"""The interface every provider type implements, and the objects it exchanges with the core."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import parse_qsl

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from notifykit.errors import CallbackError, NotSupported
from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import Balance, MessageRecord, SendReceipt, SmsMessage
from notifykit.redact import Redactor

__all__ = [
    "CallbackRequest",
    "CallbackResult",
    "ProviderContext",
    "ProviderOptions",
    "SmsProvider",
    "TemplateOptions",
    "answers_checks",
    "fetches_status",
]


class ProviderOptions(BaseModel):
    """Base of a provider type's settings (``[providers.<instance>]`` less ``type``).

    Unknown keys are refused so that a misspelt setting fails loudly.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class TemplateOptions(BaseModel):
    """Base of what one provider instance needs for one logical template
    (``[templates.<template>.<instance>]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ProviderContext:
    """What the core tells a provider instance about its surroundings.

    ``callback_path`` is the path of this instance's receiver (``/callbacks/<instance>``,
    plus ``/<token>`` when a callbacks token is configured): a secret, since it may hold the
    token. ``transport`` replaces the default HTTP transport (tests inject respx or
    ``httpx.MockTransport`` here); ``None`` means notifykit's default.
    """

    instance: str
    callback_path: SecretStr = field(default_factory=lambda: SecretStr(""))
    transport: httpx.AsyncBaseTransport | None = None
    callback_url: SecretStr | None = None
    """``[callbacks] public_url`` + ``callback_path``: the URL vendors call for this instance,
    or None when no public URL is configured. A secret, like the path."""
    secrets: tuple[SecretStr, ...] = ()
    """The configuration's own secrets (the callbacks token, the ``[verify]`` secret): a
    vendor that echoes a request may echo them too, so the instance's redactor masks them."""


@dataclass(frozen=True)
class CallbackRequest:
    """A vendor's push as it reached the receiver.

    ``url`` is the URL the vendor called, as the receiver saw it; ``headers`` keys are
    lower-case; ``body`` is the raw bytes.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form(self, encoding: str = "utf-8") -> list[tuple[str, str]]:
        """The body as form fields, in order. Raises CallbackError when it is not decodable."""
        try:
            text = self.body.decode(encoding)
        except UnicodeDecodeError as exc:
            raise CallbackError(
                f"body is not valid {encoding}: {exc.reason} at byte {exc.start}"
            ) from None
        try:
            return parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=False,
                encoding=encoding,
                errors="strict",
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise CallbackError(f"body is not form-encoded: {exc}") from None


@dataclass
class CallbackResult:
    """What a provider made of a push: its events, and the acknowledgement the vendor expects.

    ``quarantine_reason`` is set when part of the push could not be understood (an item of
    a batch, say): the core then stores ``events`` (the items that could be read) *and*
    quarantines the whole request with that reason, and answers with ``status_code`` /
    ``body`` as given, so a plugin whose vendor would retry forever what can never parse
    acknowledges it (docs/callbacks.md, "Batch pushes").
    """

    events: list[DeliveryReceipt | InboundMessage]
    status_code: int = 200
    headers: dict[str, str] = field(
        default_factory=lambda: {"content-type": "text/plain; charset=utf-8"}
    )
    body: bytes = b"ok"
    quarantine_reason: str | None = None


OptionsT = TypeVar("OptionsT", bound=ProviderOptions)
_TemplateOptions = TemplateOptions  # the class body below shadows the name


class SmsProvider(ABC, Generic[OptionsT]):
    """A provider type: one vendor's API behind notifykit's interface.

    Subclasses set ``name`` (the unique type name used as ``type = "..."`` in the
    configuration), ``Options`` (a :class:`ProviderOptions` subclass) and, if the vendor needs
    per-template settings, ``TemplateOptions``. One object is made per configured instance.

    A capability the vendor lacks raises :class:`~notifykit.errors.NotSupported`. Errors are
    always from :mod:`notifykit.errors`; nothing from httpx escapes.
    """

    name: ClassVar[str]
    Options: ClassVar[type[ProviderOptions]]
    TemplateOptions: ClassVar[type[TemplateOptions]] = TemplateOptions
    requires_templates: ClassVar[bool] = True
    """Whether a message needs a ``[templates.<name>.<instance>]`` entry to be sent here
    (``config check`` warns about each template an instance has no entry for)."""
    signs_callbacks: ClassVar[bool] = False
    """Whether the vendor authenticates its pushes itself (a signature ``parse_callback``
    checks). When False, only a ``[callbacks] token`` in the receiver URL keeps strangers
    from posting receipts, and ``config check`` warns about an instance without one."""
    callback_check_methods: ClassVar[frozenset[str]] = frozenset()
    """HTTP methods other than POST the vendor uses on the callback URL to check that it
    answers (Alibaba Cloud's GET). The receiver hands such a request, still behind the
    callbacks token, to :meth:`answer_check` and never stores it as a push."""

    def __init__(
        self,
        options: OptionsT,
        *,
        context: ProviderContext,
        templates: Mapping[str, _TemplateOptions] | None = None,
    ) -> None:
        self.options = options
        self.context = context
        self.instance = context.instance
        self.templates: dict[str, _TemplateOptions] = dict(templates or {})
        self.redactor = Redactor.for_options(options, context.secrets)
        """Masks this instance's secrets (every encoding) and phone numbers in vendor text
        (:mod:`notifykit.redact`); the core applies it to whatever the instance hands back."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance!r}>"

    def template_for(self, message: SmsMessage) -> _TemplateOptions | None:
        """This instance's settings for the message's template, or None."""
        return self.templates.get(message.template)

    def decline(self, message: SmsMessage) -> str | None:
        """Why this instance cannot carry ``message``, or None when it can.

        Called by the router before ``send``, with no I/O: a destination the vendor does
        not serve, a parameter format it cannot send, a template it has no mapping for.
        The default declines a template with no mapping when ``requires_templates``.
        """
        if self.requires_templates and message.template not in self.templates:
            return f"no [templates.{message.template}.{self.instance}] entry"
        return None

    @abstractmethod
    async def send(self, message: SmsMessage) -> SendReceipt:
        """Send one message; return the vendor's receipt or raise a ProviderError."""

    async def balance(self) -> Balance:
        """What is left on the account."""
        raise NotSupported(f"provider {self.instance!r} ({self.name}) has no balance query")

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        """Turn a vendor push into events plus the acknowledgement the vendor expects.

        Raises :class:`~notifykit.errors.InvalidSignature` for a push that fails the
        vendor's authentication, :class:`~notifykit.errors.CallbackError` for one that
        cannot be understood.
        """
        raise NotSupported(f"provider {self.instance!r} ({self.name}) receives no callbacks")

    async def answer_check(self, request: CallbackRequest) -> CallbackResult:
        """The answer to a vendor's check of the callback URL (a request whose method is in
        ``callback_check_methods``). ``events`` of the result are ignored: a check is never
        stored. Called only for the methods the class declares."""
        raise NotSupported(f"provider {self.instance!r} ({self.name}) declares no URL check")

    async def fetch_status(self, record: MessageRecord) -> list[DeliveryReceipt]:
        """Ask the vendor where a sent message stands (the optional status capability).

        ``record`` is a stored message this instance accepted (``provider_message_id`` set,
        status not final). Returns the receipts the vendor's answer amounts to, built
        exactly as the same news would be built from a push (same ``event_id``), so that
        the reconciler and a later push de-duplicate each other; an empty list when the
        vendor has nothing new (still waiting). Raises a ProviderError when the query
        failed; the default raises NotSupported (the vendor has no status query).
        """
        raise NotSupported(f"provider {self.instance!r} ({self.name}) has no status query")

    def config_warnings(self) -> list[str]:
        """Problems ``notifykit config check`` should report that validation cannot see."""
        return []

    def describe(self) -> dict[str, Any]:
        """Non-secret facts about this instance for ``notifykit providers``."""
        return {}

    async def aclose(self) -> None:
        """Release connections. Called once when the notifier closes."""


def fetches_status(instance: SmsProvider[Any]) -> bool:
    """Whether the instance's provider type implements ``fetch_status``."""
    return type(instance).fetch_status is not SmsProvider.fetch_status


def answers_checks(instance: SmsProvider[Any], method: str) -> bool:
    """Whether the instance answers a vendor URL check made with ``method`` (upper case)."""
    return method in type(instance).callback_check_methods and (
        type(instance).answer_check is not SmsProvider.answer_check
    )
