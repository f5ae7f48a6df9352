"""``FakeProvider``: a provider type (``type = "fake"``) whose outcome is scripted per call.

Script it at run time with :meth:`FakeProvider.script` and the outcome builders below, or in
the configuration with ``script = ["InsufficientBalance", "unknown", "accept:vid-1"]``.
Every call is recorded in ``calls``; every message that went out (accepted, or lost to an
unknown outcome after the vendor took it) is in ``outbox``, which ``sms_outbox`` collects.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias

import pluggy
from pydantic import ConfigDict, Field, field_validator

from notifykit import errors
from notifykit.config import Config
from notifykit.default_plugins.memory import SentMessage
from notifykit.events import DeliveryReceipt, InboundMessage, make_event_id
from notifykit.hookspecs import hookimpl
from notifykit.models import Balance, DeliveryStatus, SendReceipt, SmsMessage, utcnow
from notifykit.notifier import AsyncNotifier, Notifier
from notifykit.phone import parse_phone
from notifykit.plugins import get_plugin_manager
from notifykit.provider import (
    CallbackRequest,
    CallbackResult,
    ProviderContext,
    ProviderOptions,
    SmsProvider,
    TemplateOptions,
)

__all__ = [
    "Accept",
    "Delay",
    "Fail",
    "FakeCall",
    "FakeOptions",
    "FakeProvider",
    "FakeTemplateOptions",
    "Outcome",
    "Unknown",
    "accept",
    "delay",
    "fail",
    "fake_config",
    "fake_notifier",
    "fake_plugin_manager",
    "fake_providers",
    "fake_sync_notifier",
    "parse_outcome",
    "unknown",
]


@dataclass(frozen=True)
class Accept:
    """The vendor accepts the message (``provider_message_id`` None: one is made up)."""

    provider_message_id: str | None = None
    remaining_credits: int | None = None
    status: DeliveryStatus = DeliveryStatus.ACCEPTED


@dataclass(frozen=True)
class Fail:
    """The send raises ``error``: a class (built with this instance as ``provider``) or an
    exception object, raised as given."""

    error: type[BaseException] | BaseException
    message: str | None = None
    vendor_code: str | None = None
    vendor_message: str | None = None
    retryable: bool = False
    """For :class:`~notifykit.errors.ProviderUnavailable`: the request never reached the vendor."""


@dataclass(frozen=True)
class Unknown:
    """The send raises :class:`~notifykit.errors.UnknownOutcome`; with ``went_out`` the vendor
    did take the message (it lands in ``outbox``), as after a read timeout past acceptance."""

    went_out: bool = True


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (cancellable, as a deadline would), then resolve ``then``."""

    seconds: float
    then: Outcome = field(default_factory=Accept)


Outcome: TypeAlias = Accept | Fail | Unknown | Delay
ScriptStep: TypeAlias = "Outcome | Callable[[SmsMessage], Outcome]"
"""An outcome, or a function of the message that returns one (e.g. fail for one number)."""


def accept(
    provider_message_id: str | None = None,
    *,
    remaining_credits: int | None = None,
    status: DeliveryStatus = DeliveryStatus.ACCEPTED,
) -> Accept:
    """Success, with this vendor id (or a generated one)."""
    return Accept(provider_message_id, remaining_credits, status)


def fail(
    error: type[BaseException] | BaseException,
    message: str | None = None,
    *,
    vendor_code: str | None = None,
    vendor_message: str | None = None,
    retryable: bool = False,
) -> Fail:
    """Failure with ``error`` (any class of :mod:`notifykit.errors`, or any exception)."""
    return Fail(error, message, vendor_code, vendor_message, retryable)


def unknown(*, went_out: bool = True) -> Unknown:
    """An :class:`~notifykit.errors.UnknownOutcome`; by default the message did go out."""
    return Unknown(went_out)


def delay(seconds: float, then: Outcome | None = None) -> Delay:
    """Take ``seconds``, then ``then`` (default: accept)."""
    if seconds < 0:
        raise ValueError("a delay cannot be negative")
    return Delay(seconds, then if then is not None else Accept())


_ERRORS: dict[str, type[errors.NotifyKitError]] = {
    name: getattr(errors, name) for name in errors.__all__
}


def parse_outcome(text: str) -> Outcome:
    """An outcome from its configuration spelling.

    ``accept``, ``accept:<provider_message_id>``, ``unknown`` (the message went out),
    ``unknown:lost`` (it did not), ``<ErrorClass>`` from :mod:`notifykit.errors`,
    ``ProviderUnavailable:retryable``, and ``delay:<seconds>:<outcome>``. Raises ValueError
    that says what is wrong.
    """
    if not isinstance(text, str):
        raise ValueError(f"an outcome is a string, got {type(text).__name__}")
    head, _, rest = text.strip().partition(":")
    if head == "accept":
        return Accept(rest or None)
    if head == "unknown" and rest in ("", "lost"):
        return Unknown(went_out=rest != "lost")
    if head == "delay":
        seconds_text, _, then_text = rest.partition(":")
        try:
            seconds = float(seconds_text)
        except ValueError:
            raise ValueError(f"{text!r}: expected delay:<seconds>[:<outcome>]") from None
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"{text!r}: the delay must be a finite number of seconds >= 0")
        return Delay(seconds, parse_outcome(then_text) if then_text else Accept())
    if head in _ERRORS:
        if rest == "retryable" and head == "ProviderUnavailable":
            return Fail(errors.ProviderUnavailable, retryable=True)
        if rest == "":
            return Fail(_ERRORS[head])
    raise ValueError(
        f"{text!r} is not an outcome (accept[:ID], unknown[:lost], delay:<s>[:<outcome>], "
        f"ProviderUnavailable[:retryable], or an error class of notifykit.errors)"
    )


class FakeTemplateOptions(TemplateOptions):
    """Whatever ``[templates.<t>.<instance>]`` holds, kept as given, so that a file written
    for a real vendor still loads with an instance switched to ``fake``."""

    model_config = ConfigDict(extra="allow", frozen=True)


class FakeOptions(ProviderOptions):
    script: list[str] = Field(default_factory=list)
    """Outcomes of the first calls, in order (see :func:`parse_outcome`)."""
    then: str = "accept"
    """The outcome of every call once the script has run out."""
    delay: float = Field(default=0.0, ge=0)
    """Seconds every call takes before its outcome."""
    balance: Decimal = Decimal(1000)
    unit: str = "credits"
    countries: list[str] | None = None
    """Decline numbers outside these regions (ISO 3166 codes); None accepts all."""

    @field_validator("script")
    @classmethod
    def _outcomes(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value):
            try:
                parse_outcome(text)
            except ValueError as exc:
                raise ValueError(f"script[{i}]: {exc}") from None
        return value

    @field_validator("then")
    @classmethod
    def _then(cls, value: str) -> str:
        parse_outcome(value)
        return value


@dataclass
class FakeCall:
    """One call of ``send``: the message, the outcome it got, and what came of it."""

    message: SmsMessage
    outcome: Outcome
    receipt: SendReceipt | None = None
    error: BaseException | None = None
    duration: float = 0.0


class FakeProvider(SmsProvider[FakeOptions]):
    """A provider whose every call does what the test scripted; accepts any template."""

    name: ClassVar[str] = "fake"
    Options: ClassVar[type[ProviderOptions]] = FakeOptions
    TemplateOptions: ClassVar[type[TemplateOptions]] = FakeTemplateOptions
    requires_templates: ClassVar[bool] = False

    created: ClassVar[list[Callable[[FakeProvider], None]]] = []
    """Observers called with each new instance (how ``sms_outbox`` finds them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[FakeCall] = []
        self.outbox: list[SentMessage] = []
        self._script: deque[ScriptStep] = deque()
        self._then: ScriptStep = parse_outcome(self.options.then)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        for text in self.options.script:
            self._script.append(parse_outcome(text))
        for observer in list(type(self).created):
            observer(self)

    @classmethod
    def build(cls, instance: str = "fake", **options: Any) -> FakeProvider:
        """A free-standing instance, for driving it without a notifier."""
        return cls(FakeOptions(**options), context=ProviderContext(instance=instance))

    def script(self, *steps: ScriptStep) -> FakeProvider:
        """Queue the outcomes of the next calls, after any already queued."""
        with self._lock:
            self._script.extend(steps)
        return self

    def then(self, step: ScriptStep) -> FakeProvider:
        """The outcome of every call once the script has run out."""
        self._then = step
        return self

    @property
    def pending(self) -> int:
        """Scripted outcomes not used yet."""
        return len(self._script)

    @property
    def attempted(self) -> list[SmsMessage]:
        """The messages ``send`` was called with, in order, whatever became of them."""
        return [call.message for call in self.calls]

    def decline(self, message: SmsMessage) -> str | None:
        countries = self.options.countries
        if countries is not None:
            from notifykit.phone import region_of

            region = region_of(message.to)
            if region not in countries:
                return f"destination {region} not served (serves {', '.join(countries)})"
        return None

    def _next(self, message: SmsMessage) -> Outcome:
        with self._lock:
            step = self._script.popleft() if self._script else self._then
        return step(message) if callable(step) else step

    async def send(self, message: SmsMessage) -> SendReceipt:
        call = FakeCall(message=message, outcome=self._next(message))
        self.calls.append(call)
        started = time.perf_counter()
        try:
            if self.options.delay:
                await asyncio.sleep(self.options.delay)
            call.receipt = await self._resolve(message, call.outcome)
            return call.receipt
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            call.duration = time.perf_counter() - started

    async def _resolve(self, message: SmsMessage, outcome: Outcome) -> SendReceipt:
        if isinstance(outcome, Delay):
            await asyncio.sleep(outcome.seconds)
            return await self._resolve(message, outcome.then)
        if isinstance(outcome, Accept):
            vendor_id = outcome.provider_message_id or f"fake-{self.instance}-{next(self._ids)}"
            self._went_out(message, vendor_id)
            return SendReceipt(
                provider_message_id=vendor_id,
                remaining_credits=outcome.remaining_credits,
                status=outcome.status,
            )
        if isinstance(outcome, Unknown):
            if outcome.went_out:
                self._went_out(message, f"fake-{self.instance}-{next(self._ids)}")
            raise errors.UnknownOutcome(
                f"{self.instance}: scripted unknown outcome; the vendor may have accepted it",
                provider=self.instance,
            )
        raise self._error(outcome)

    def _error(self, outcome: Fail) -> BaseException:
        if isinstance(outcome.error, BaseException):
            # A copy per call: the router attaches ``attempts`` to what it catches.
            return copy.copy(outcome.error)
        cls = outcome.error
        text = outcome.message or f"{self.instance}: scripted {cls.__name__}"
        if issubclass(cls, errors.ProviderUnavailable):
            return cls(
                text,
                provider=self.instance,
                vendor_code=outcome.vendor_code,
                vendor_message=outcome.vendor_message,
                retryable=outcome.retryable,
            )
        if issubclass(cls, errors.ProviderError):
            return cls(
                text,
                provider=self.instance,
                vendor_code=outcome.vendor_code,
                vendor_message=outcome.vendor_message,
            )
        return cls(text)

    def _went_out(self, message: SmsMessage, vendor_id: str) -> None:
        self.outbox.append(
            SentMessage(
                **message.model_dump(), provider=self.instance, provider_message_id=vendor_id
            )
        )

    async def balance(self) -> Balance:
        return Balance(
            provider=self.instance, remaining=self.options.balance, unit=self.options.unit
        )

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        """A form push built by :func:`notifykit.testing.fake_receipt` / ``fake_reply``."""
        fields = dict(request.form())
        kind = fields.get("kind")
        vendor_id = fields.get("provider_message_id") or None
        phone_text = fields.get("phone") or None
        phone = None
        if phone_text is not None:
            try:
                phone = parse_phone(phone_text)
            except errors.InvalidMessage:
                phone = None
        common: dict[str, Any] = {
            "provider": self.instance,
            "provider_message_id": vendor_id,
            "phone": phone,
            "occurred_at": utcnow(),
            "raw": fields,
        }
        event: DeliveryReceipt | InboundMessage
        if kind == "receipt":
            status_text = fields.get("status", "")
            try:
                status = DeliveryStatus(status_text)
            except ValueError:
                raise errors.CallbackError(f"status: unknown status {status_text!r}") from None
            event = DeliveryReceipt(
                event_id=make_event_id(self.instance, "receipt", vendor_id, status_text),
                status=status,
                vendor_status=status_text,
                **common,
            )
        elif kind == "reply":
            text = fields.get("text", "")
            event = InboundMessage(
                event_id=make_event_id(self.instance, "reply", vendor_id, phone_text, text),
                text=text,
                **common,
            )
        else:
            raise errors.CallbackError(f"kind: expected 'receipt' or 'reply', got {kind!r}")
        return CallbackResult(events=[event])


class _FakePlugin:
    """Registers :class:`FakeProvider` on a plugin manager."""

    @hookimpl
    def register_providers(self, register: Callable[[type[SmsProvider[Any]]], None]) -> None:
        register(FakeProvider)


def fake_plugin_manager(*, load_entrypoints: bool = False) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-in providers and ``fake``."""
    pm = get_plugin_manager(load_entrypoints=load_entrypoints)
    pm.register(_FakePlugin(), name="notifykit.testing.fake")
    return pm


def fake_config(
    *names: str,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    route: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Config:
    """A configuration of fake instances (default one, ``fake``) on a ``memory://`` store.

    ``options`` holds each instance's settings (``{"primary": {"script": [...]}}``),
    ``route`` the default order, ``extra`` further top-level sections (``routing`` is merged).
    """
    instances = list(names) or ["fake"]
    per_instance = dict(options or {})
    unknown_names = sorted(set(per_instance) - set(instances))
    if unknown_names:
        raise errors.ConfigError(f"options for unknown fake instances: {', '.join(unknown_names)}")
    data: dict[str, Any] = dict(extra or {})
    data["providers"] = {
        name: {"type": "fake", **dict(per_instance.get(name, {}))} for name in instances
    }
    routing = dict(data.get("routing", {}))
    routing.setdefault("providers", list(route) if route is not None else instances)
    data["routing"] = routing
    data.setdefault("store", {"url": "memory://"})
    return Config.from_dict(data, source="notifykit.testing.fake_config")


def fake_notifier(
    *names: str,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    route: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> AsyncNotifier:
    """An :class:`AsyncNotifier` over :func:`fake_config` (arguments as there); ``kwargs``
    go to the notifier. Its fakes: :func:`fake_providers`."""
    kwargs.setdefault("plugin_manager", fake_plugin_manager())
    return AsyncNotifier(fake_config(*names, options=options, route=route, extra=extra), **kwargs)


def fake_sync_notifier(
    *names: str,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    route: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Notifier:
    """The synchronous twin of :func:`fake_notifier`."""
    kwargs.setdefault("plugin_manager", fake_plugin_manager())
    return Notifier(fake_config(*names, options=options, route=route, extra=extra), **kwargs)


def fake_providers(notifier: AsyncNotifier | Notifier) -> dict[str, FakeProvider]:
    """The fake instances of a notifier, by instance name."""
    target = notifier.async_notifier if isinstance(notifier, Notifier) else notifier
    return {
        name: provider
        for name, provider in target.providers.items()
        if isinstance(provider, FakeProvider)
    }
