"""The inbox: handling of one vendor push, framework-free: parse, store, acknowledge, dispatch.

Core: every notifier owns a :class:`CallbackProcessor` (``notifier.callbacks``). Web
adapters (:mod:`notifykit.asgi`, or an application's own route calling
``AsyncNotifier.handle_callback``) feed it requests; this module imports no web framework.
Old path: ``notifykit.callbacks.processor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, NamedTuple

import pluggy

from notifykit.errors import CallbackError, InvalidSignature
from notifykit.log import get_logger
from notifykit.plugins import acall_each
from notifykit.provider import CallbackRequest, SmsProvider, answers_checks
from notifykit.store.base import DEFAULT_LEASE, AnyEvent, InboxEntry, QuarantineEntry, Store
from notifykit.store.health import StoreHealth

__all__ = [
    "REDACTED_HEADERS",
    "CallbackProcessor",
    "CallbackResponse",
    "Subscriber",
    "allowed_methods",
    "receives_callbacks",
]

log = get_logger("notifykit.callbacks")

Subscriber = Callable[[AnyEvent], Awaitable[None] | None]


REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Headers whose values the inbox keeps as ``***``: credentials for our own endpoint."""


def dispatcher_id() -> str:
    """A dispatch owner unique across hosts and processes: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def receives_callbacks(instance: SmsProvider[Any]) -> bool:
    """Whether the instance's provider type implements ``parse_callback`` at all."""
    return type(instance).parse_callback is not SmsProvider.parse_callback


def allowed_methods(instance: SmsProvider[Any]) -> list[str]:
    """The methods the instance's callback URL answers: POST (pushes), then the vendor's
    URL-check methods the provider type declares (``callback_check_methods``)."""
    checks = sorted(m for m in type(instance).callback_check_methods if answers_checks(instance, m))
    return ["POST", *checks]


class CallbackResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def _plain(status: int, text: str) -> CallbackResponse:
    return CallbackResponse(status, {"content-type": "text/plain; charset=utf-8"}, text.encode())


class CallbackProcessor:
    """Turns raw pushes into stored, dispatched events for one notifier."""

    def __init__(
        self,
        providers: Mapping[str, SmsProvider[Any]],
        store: Store,
        pm: pluggy.PluginManager,
        *,
        max_body_bytes: int = 65536,
        store_timeout: float = 5.0,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        self.providers = providers
        self.store = store
        self.pm = pm
        self.max_body_bytes = max_body_bytes
        self.store_timeout = store_timeout
        self.subscribers: list[Subscriber] = []
        self.owner = dispatcher_id()
        """Who this processor is when it claims events (see ``Store.claim_dispatch``)."""
        self.lease = lease
        """Seconds each claim holds its events (``[callbacks] dispatch_lease``)."""
        self.store_health = StoreHealth()
        """The store as the last request (or ``check_store``) found it; logs each fault once."""
        self._inflight: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._sweep_waiting = False
        # Set to wake a sweeper that sleeps for want of observers (observers_added).
        self._kick: asyncio.Event | None = None
        # Events handed to a dispatch task and not yet acknowledged: recovery leaves them
        # alone even when their lease has run out meanwhile.
        self._dispatching: set[str] = set()
        # Acknowledgements waiting for the one store call that carries them (see _ack).
        self._acks: list[str] = []
        self._ack_flush: asyncio.Future[None] | None = None

    async def handle(
        self,
        provider: str,
        method: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        url: str = "",
        path: str = "",
    ) -> CallbackResponse:
        """Handle one request for provider instance ``provider``; never raises."""
        instance = self.providers.get(provider)
        if instance is None or not receives_callbacks(instance):
            return _plain(404, "not found")
        verb = method.upper()
        if verb != "POST" and not answers_checks(instance, verb):
            return CallbackResponse(
                405,
                {
                    "allow": ", ".join(allowed_methods(instance)),
                    "content-type": "text/plain; charset=utf-8",
                },
                b"method not allowed",
            )
        if len(body) > self.max_body_bytes:
            return _plain(413, "request body too large")
        lowered = {k.lower(): v for k, v in headers.items()}
        request = CallbackRequest(method=verb, url=url, headers=lowered, body=body)
        if verb != "POST":
            return await self._answer_check(provider, instance, request)
        if not REDACTED_HEADERS.isdisjoint(lowered):
            lowered = {k: "***" if k in REDACTED_HEADERS else v for k, v in lowered.items()}
        entry = InboxEntry(  # validated: a copy of `lowered`, not the request's dict
            provider=provider,
            method=verb,
            path=path or f"/callbacks/{provider}",
            headers=lowered,
            body=body,
        )
        try:
            result = await instance.parse_callback(request)
        except InvalidSignature as exc:
            log.warning(
                "callback_refused", provider=provider, reason=exc.message, body_bytes=len(body)
            )
            return _plain(403, "forbidden")
        except Exception as exc:
            reason = instance.redactor.text(
                exc.message if isinstance(exc, CallbackError) else f"{type(exc).__name__}: {exc}"
            )
            try:
                async with asyncio.timeout(self.store_timeout):
                    await self.store.quarantine(
                        QuarantineEntry(**entry.model_dump(), reason=reason)
                    )
            except Exception as store_exc:
                self.store_health.failed(store_exc)
                return _plain(503, "try again later")
            self.store_health.succeeded()
            log.warning("callback_quarantined", provider=provider, reason=reason)
            return _plain(400, f"bad request: {reason}")
        # Only a processor with observers claims what it stores: one with none (a bare
        # ``notifykit serve``) leaves the events pending for the instances that have some.
        owner = self.claimant()
        store = self.store
        bound = store.call_timeout
        try:
            if bound is not None and bound <= self.store_timeout:
                # The store answers by its own deadline, no later than ours: a timer of
                # our own per push would only repeat it.
                new = await store.ingest(entry, result.events, owner=owner, lease=self.lease)
            else:
                # asyncio.timeout, not wait_for: no task of its own per push (and on 3.11
                # no cancellation swallowed when the store answers as the request is
                # cancelled).
                async with asyncio.timeout(self.store_timeout):
                    new = await store.ingest(entry, result.events, owner=owner, lease=self.lease)
        except Exception as exc:
            # Logged once per fault (with its reason), not once per request.
            self.store_health.failed(exc)
            return _plain(503, "try again later")
        self.store_health.succeeded()
        if log.isEnabledFor(logging.INFO):  # `notifykit serve -v`: one line per event pushed
            stored = {event.event_id: event for event in new}  # tied to their messages
            for parsed in result.events:
                event = stored.get(parsed.event_id, parsed)
                log.info(
                    "callback_event",
                    provider=provider,
                    kind=event.kind,
                    phone=event.phone,  # masked by the logger
                    status=getattr(event, "status", None),
                    message_id=event.message_id,
                    duplicate=parsed.event_id not in stored,
                )
        if new and owner is not None:
            self.dispatch(new)
        if result.quarantine_reason is not None:
            # Part of the push could not be read: what could be read is stored above, and
            # the request itself is kept with the reason, for a person to look at.
            try:
                async with asyncio.timeout(self.store_timeout):
                    await self.store.quarantine(
                        QuarantineEntry(**entry.model_dump(), reason=result.quarantine_reason)
                    )
            except Exception as store_exc:
                log.error("quarantine_failed", provider=provider, error=type(store_exc).__name__)
                return _plain(503, "try again later")
            log.warning(
                "callback_partly_quarantined",
                provider=provider,
                reason=result.quarantine_reason,
                stored=len(result.events),
            )
        return CallbackResponse(result.status_code, dict(result.headers), result.body)

    async def _answer_check(
        self, provider: str, instance: SmsProvider[Any], request: CallbackRequest
    ) -> CallbackResponse:
        """A vendor's check of the callback URL: answered by the plugin, never stored."""
        try:
            result = await instance.answer_check(request)
        except Exception as exc:
            log.error("callback_check_failed", provider=provider, error=type(exc).__name__)
            return _plain(500, "check failed")
        log.info("callback_check_answered", provider=provider, method=request.method)
        return CallbackResponse(result.status_code, dict(result.headers), result.body)

    async def check_store(self) -> bool:
        """Whether the store takes a write now (:meth:`Store.check`, within the store
        timeout); the answer also updates :attr:`store_health`."""
        try:
            async with asyncio.timeout(self.store_timeout):
                await self.store.check()
        except Exception as exc:
            self.store_health.failed(exc)
            return False
        self.store_health.succeeded()
        return True

    def has_observers(self) -> bool:
        """Whether this process has anything to hand events to: a subscriber, or a plugin
        implementing ``on_event``. Without, it claims no events (it stores them and leaves
        them pending for the processes that have observers)."""
        return bool(self.subscribers) or bool(self.pm.hook.on_event.get_hookimpls())

    def claimant(self) -> str | None:
        """The owner to store new events under: this processor's while it has observers
        (it then hands them over itself, :meth:`dispatch`), else None (they wait unclaimed
        for a process that has some)."""
        return self.owner if self.has_observers() else None

    def dispatch(self, events: list[AnyEvent]) -> None:
        """Hand stored events this processor holds (ingested with its ``owner``, or
        claimed by it) to observers in the background, then acknowledge them; ``drain()``
        waits for them."""
        self._dispatching.update(e.event_id for e in events)
        self._track(self._dispatch(events))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def recover(self) -> None:
        """Dispatch, in the background, events stored but never acknowledged that no live
        claim holds (a previous process was killed first, or its lease ran out). Delivery
        to observers is at least once: a process killed between an observer and
        ``ack_dispatch`` hands the event over again once its lease ends. Claims nothing
        while :meth:`has_observers` is false."""
        self._track(self._recover())

    def start_sweeping(self) -> None:
        """Keep claiming, in the background, what no live claim holds: events whose
        dispatcher died (after their lease ends) and events stored unclaimed. Wakes every
        half lease and, while :meth:`has_observers` is true, when the store says events
        arrived; a sweep claims nothing while it is false (so arrivals do not wake it
        then: a bare ``notifykit serve`` stores every push unclaimed, and would wake it
        for each turn of the loop). ``stop_sweeping`` ends it."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def observers_added(self) -> None:
        """An observer arrived (call on the sweeper's loop): a sweeper that sleeps for want
        of observers wakes now, claims what waits (events a bare ``notifykit serve``
        stored) and from then on waits for arrivals, rather than sleeping out its half
        lease first."""
        kick = self._kick
        if kick is not None:
            kick.set()

    def abandon_sweeper(self) -> None:
        """Forget a sweeper whose event loop ended without shutting down (nothing of that
        loop can be awaited any more); ``start_sweeping()`` makes a new one."""
        self._sweeper = None

    async def stop_sweeping(self) -> None:
        """End the sweeper; a sweep under way finishes first (its events acknowledged)."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is None or sweeper.done():
            return
        if self._sweep_waiting:
            # Only a waiting sweeper is cancelled: cancelling one inside a store call could
            # lose an acknowledgement.
            sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper

    async def _sweep(self) -> None:
        me = asyncio.current_task()
        while self._sweeper is me:
            self._sweep_waiting = True
            try:
                if self.has_observers():
                    await self.store.wait_for_events(self.lease / 2)
                else:
                    kick = self._kick = asyncio.Event()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.lease / 2):
                            await kick.wait()
            except Exception as exc:
                log.error("recovery_failed", error=type(exc).__name__)
                await asyncio.sleep(self.lease / 2)
            finally:
                self._sweep_waiting = False
            if self._sweeper is not me:
                return
            await self._recover()

    async def _recover(self, page: int = 100) -> None:
        while self.has_observers():
            try:
                async with asyncio.timeout(self.store_timeout):
                    claimed = await self.store.claim_dispatch(
                        self.owner, limit=page, lease=self.lease
                    )
            except Exception as exc:
                log.error("recovery_failed", error=type(exc).__name__)
                return
            fresh = [e for e in claimed if e.event_id not in self._dispatching]
            if not fresh:
                return
            log.info("recovering_events", count=len(fresh))
            self._dispatching.update(e.event_id for e in fresh)
            await self._dispatch(fresh)

    async def _dispatch(self, events: list[AnyEvent]) -> None:
        try:
            await self._deliver(events)
        finally:
            self._dispatching.difference_update(e.event_id for e in events)

    async def _deliver(self, events: list[AnyEvent]) -> None:
        for event in events:
            # Each implementation on its own (a failing plugin does not keep the event from
            # the others), async ones awaited; failures are logged by class by the helper.
            await acall_each(
                self.pm, "on_event", log_fields={"event_id": event.event_id}, event=event
            )
            for subscriber in list(self.subscribers):
                try:
                    outcome = subscriber(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception as exc:
                    # The class only, as for plugins: the message may hold a secret.
                    log.error(
                        "subscriber_failed", event_id=event.event_id, error_type=type(exc).__name__
                    )
        await self._ack([e.event_id for e in events])

    async def _ack(self, event_ids: list[str]) -> None:
        """Acknowledge ``event_ids`` in one store call with every other dispatch that
        reaches this point in the same turn of the loop: one write for a burst of pushes,
        not one each. Returns once that call has ended (a failure is logged: the events
        are handed out again after their lease, delivery being at least once)."""
        self._acks.extend(event_ids)
        joined = self._ack_flush
        if joined is not None:
            await asyncio.shield(joined)
            return
        flush = self._ack_flush = asyncio.get_running_loop().create_future()
        try:
            await asyncio.sleep(0)  # the dispatches finishing in this turn add theirs
        finally:
            ids, self._acks = self._acks, []
            self._ack_flush = None
        try:
            await self.store.ack_dispatch(self.owner, ids)
        except Exception as exc:
            log.error("ack_dispatch_failed", error=type(exc).__name__)
        finally:
            flush.set_result(None)

    async def drain(self) -> None:
        """Wait until every event handed to ``dispatch`` has reached its observers."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
