"""``Outbox``: every SMS that went out during a test, the way Django's ``mail.outbox`` works.

:func:`capture_sms` collects what every ``memory`` (and ``fake``) provider instance built
while it is active sends, whoever built the notifier: the fixtures, or the code under test.
Nothing stays patched once it ends. A provider built before the capture began is added with
:meth:`Outbox.attach`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, SupportsIndex, overload

from notifykit.default_plugins.memory import MemoryProvider, SentMessage
from notifykit.notifier import AsyncNotifier, Notifier
from notifykit.phone import mask_phone, parse_phone
from notifykit.provider import SmsProvider
from notifykit.testing.fake import FakeProvider
from notifykit.verify import TAG as VERIFY_TAG

__all__ = ["Outbox", "capture_sms"]

Listener = Callable[[SentMessage], None]


class _ObservedList(list[SentMessage]):
    """A provider's ``outbox`` list that also tells its listeners about each new message."""

    def __init__(self, items: Iterable[SentMessage] = ()) -> None:
        super().__init__(items)
        self.listeners: list[Listener] = []

    def _tell(self, message: SentMessage) -> None:
        for listener in list(self.listeners):
            listener(message)

    def append(self, message: SentMessage) -> None:
        super().append(message)
        self._tell(message)

    def insert(self, index: SupportsIndex, message: SentMessage) -> None:
        super().insert(index, message)
        self._tell(message)

    def extend(self, messages: Iterable[SentMessage]) -> None:
        for message in messages:
            self.append(message)

    def __iadd__(self, messages: Iterable[SentMessage]) -> _ObservedList:  # type: ignore[override,misc]
        self.extend(messages)
        return self


class Outbox(Sequence[SentMessage]):
    """The messages sent through the providers it watches, in the order they went out.

    A sequence of :class:`~notifykit.default_plugins.memory.SentMessage` (``to``,
    ``template``, ``params``, ``provider``, ``provider_message_id``...), plus helpers to
    find messages. Safe to read while a :class:`~notifykit.Notifier`'s thread sends.
    """

    def __init__(self) -> None:
        self._messages: list[SentMessage] = []
        self._lock = threading.Lock()
        self._watched: list[_ObservedList] = []

    # -- watching --------------------------------------------------------------------------

    def attach(self, target: AsyncNotifier | Notifier | SmsProvider[Any]) -> Outbox:
        """Watch a notifier's memory and fake providers, or one provider, from now on.

        Messages they sent before this call are not added. Attaching twice is harmless.
        """
        if isinstance(target, Notifier):
            target = target.async_notifier
        providers = (
            list(target.providers.values()) if isinstance(target, AsyncNotifier) else [target]
        )
        for provider in providers:
            if isinstance(provider, MemoryProvider | FakeProvider):
                self._watch(provider)
        return self

    def _watch(self, provider: MemoryProvider | FakeProvider) -> None:
        observed = provider.outbox
        if not isinstance(observed, _ObservedList):
            observed = _ObservedList(observed)
            provider.outbox = observed
        with self._lock:
            if self._record not in observed.listeners:
                observed.listeners.append(self._record)
                self._watched.append(observed)

    def detach(self) -> None:
        """Stop watching every provider (what was captured stays)."""
        with self._lock:
            watched, self._watched = self._watched, []
        for observed in watched:
            if self._record in observed.listeners:
                observed.listeners.remove(self._record)

    def _record(self, message: SentMessage) -> None:
        with self._lock:
            self._messages.append(message)

    # -- reading ---------------------------------------------------------------------------

    def _snapshot(self) -> list[SentMessage]:
        with self._lock:
            return list(self._messages)

    @overload
    def __getitem__(self, index: int) -> SentMessage: ...
    @overload
    def __getitem__(self, index: slice) -> list[SentMessage]: ...
    def __getitem__(self, index: int | slice) -> SentMessage | list[SentMessage]:
        return self._snapshot()[index]

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def __iter__(self) -> Iterator[SentMessage]:
        return iter(self._snapshot())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Outbox):
            return self._snapshot() == other._snapshot()
        if isinstance(other, list):
            return self._snapshot() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{mask_phone(m.to)} {m.template}" for m in self._snapshot())
        return f"<Outbox {len(self)} message(s){': ' + shown if shown else ''}>"

    def clear(self) -> None:
        """Forget what was captured so far (the providers stay watched)."""
        with self._lock:
            self._messages.clear()

    @property
    def last(self) -> SentMessage:
        """The most recent message; AssertionError when nothing was sent."""
        messages = self._snapshot()
        if not messages:
            raise AssertionError("no SMS was sent")
        return messages[-1]

    def filter(
        self,
        *,
        to: str | None = None,
        template: str | None = None,
        provider: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> list[SentMessage]:
        """The messages matching every given criterion; ``params`` and ``tags`` match when
        the message holds at least those. ``to`` may be written in any E.164 form."""
        wanted_to = parse_phone(to) if to is not None else None
        return [
            m
            for m in self._snapshot()
            if (wanted_to is None or m.to == wanted_to)
            and (template is None or m.template == template)
            and (provider is None or m.provider == provider)
            and (params is None or all(m.params.get(k) == str(v) for k, v in params.items()))
            and (tags is None or set(tags) <= set(m.tags))
        ]

    def last_code(self, to: str, *, purpose: str | None = None, param: str = "code") -> str:
        """The code of the last verification SMS to ``to`` (any E.164 form), for ``purpose``
        when given: its parameter ``param`` (``[verify] code_param``, default ``code``).

        For driving a sign-up flow end to end in a test: ``notifier.verify.start(to)``, then
        ``notifier.verify.check(to, sms_outbox.last_code(to))``. AssertionError when no
        verification SMS went to that number (for that purpose), or it has no ``param``.
        """
        tags = [VERIFY_TAG] if purpose is None else [VERIFY_TAG, f"{VERIFY_TAG}:{purpose}"]
        found = self.filter(to=to, tags=tags)
        wanted = f"for purpose {purpose!r} " if purpose is not None else ""
        if not found:
            raise AssertionError(
                f"no verification SMS {wanted}was sent to {mask_phone(parse_phone(to))}; "
                f"sent: {self!r}"
            )
        code = found[-1].params.get(param)
        if code is None:
            raise AssertionError(
                f"the last verification SMS to {mask_phone(parse_phone(to))} has no parameter "
                f"{param!r} (parameters: {sorted(found[-1].params)})"
            )
        return code

    def assert_sent(
        self,
        *,
        to: str | None = None,
        template: str | None = None,
        provider: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Sequence[str] | None = None,
        count: int | None = 1,
    ) -> list[SentMessage]:
        """Assert that exactly ``count`` messages match (None: at least one); return them."""
        found = self.filter(to=to, template=template, provider=provider, params=params, tags=tags)
        if (count is None and not found) or (count is not None and len(found) != count):
            criteria = {
                "to": mask_phone(to) if to is not None else None,
                "template": template,
                "provider": provider,
                "params": dict(params) if params is not None else None,
                "tags": list(tags) if tags is not None else None,
            }
            shown = ", ".join(f"{k}={v!r}" for k, v in criteria.items() if v is not None)
            expected = "at least one" if count is None else str(count)
            raise AssertionError(
                f"expected {expected} SMS matching ({shown or 'anything'}), found {len(found)}; "
                f"sent: {self!r}"
            )
        return found


_active: list[Outbox] = []
_active_lock = threading.Lock()
_saved_init: tuple[bool, Any] | None = None


def _on_created(provider: SmsProvider[Any]) -> None:
    with _active_lock:
        outboxes = list(_active)
    for outbox in outboxes:
        outbox.attach(provider)


def _install() -> None:
    """Observe every new memory and fake provider (called with the lock held, once)."""
    global _saved_init
    FakeProvider.created.append(_on_created)
    # MemoryProvider has no observer hook of its own: wrap its constructor for the duration
    # of the capture only, and put the original back when the last capture ends.
    own = "__init__" in MemoryProvider.__dict__
    original = MemoryProvider.__dict__["__init__"] if own else MemoryProvider.__init__
    _saved_init = (own, original)

    def __init__(self: MemoryProvider, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _on_created(self)

    MemoryProvider.__init__ = __init__  # type: ignore[method-assign]


def _uninstall() -> None:
    global _saved_init
    if _on_created in FakeProvider.created:
        FakeProvider.created.remove(_on_created)
    if _saved_init is not None:
        own, original = _saved_init
        if own:
            MemoryProvider.__init__ = original  # type: ignore[method-assign]
        else:
            del MemoryProvider.__init__
        _saved_init = None


@contextmanager
def capture_sms() -> Iterator[Outbox]:
    """Collect every SMS sent by memory and fake providers built inside the block.

    Captures nest: each has its own :class:`Outbox`; the constructor is restored when the
    outermost ends.
    """
    outbox = Outbox()
    with _active_lock:
        if not _active:
            _install()
        _active.append(outbox)
    try:
        yield outbox
    finally:
        with _active_lock:
            # By identity: outboxes compare equal by their contents.
            _active[:] = [other for other in _active if other is not outbox]
            if not _active:
                _uninstall()
        outbox.detach()
