"""Framework-agnostic handling of one vendor push: parse, store, acknowledge, dispatch."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import pluggy

from notifykit.errors import CallbackError, InvalidSignature
from notifykit.log import get_logger
from notifykit.provider import CallbackRequest, SmsProvider
from notifykit.store.base import AnyEvent, InboxEntry, QuarantineEntry, Store

__all__ = ["CallbackProcessor", "CallbackResponse", "Subscriber"]

log = get_logger("notifykit.callbacks")

Subscriber = Callable[[AnyEvent], Awaitable[None] | None]


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
    ) -> None:
        self.providers = providers
        self.store = store
        self.pm = pm
        self.max_body_bytes = max_body_bytes
        self.store_timeout = store_timeout
        self.subscribers: list[Subscriber] = []
        self._inflight: set[asyncio.Task[None]] = set()

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
        if instance is None:
            return _plain(404, "not found")
        if method.upper() != "POST":
            return CallbackResponse(
                405,
                {"allow": "POST", "content-type": "text/plain; charset=utf-8"},
                b"method not allowed",
            )
        if len(body) > self.max_body_bytes:
            return _plain(413, "request body too large")
        lowered = {k.lower(): v for k, v in headers.items()}
        request = CallbackRequest(method=method.upper(), url=url, headers=lowered, body=body)
        entry = InboxEntry(
            provider=provider,
            method=request.method,
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
            reason = (
                exc.message if isinstance(exc, CallbackError) else f"{type(exc).__name__}: {exc}"
            )
            try:
                await asyncio.wait_for(
                    self.store.quarantine(QuarantineEntry(**entry.model_dump(), reason=reason)),
                    self.store_timeout,
                )
            except Exception as store_exc:
                log.error("quarantine_failed", provider=provider, error=type(store_exc).__name__)
                return _plain(503, "try again later")
            log.warning("callback_quarantined", provider=provider, reason=reason)
            return _plain(400, f"bad request: {reason}")
        try:
            new = await asyncio.wait_for(
                self.store.ingest(entry, result.events), self.store_timeout
            )
        except Exception as exc:
            log.error("callback_store_failed", provider=provider, error=type(exc).__name__)
            return _plain(503, "try again later")
        if new:
            self.dispatch(new)
        return CallbackResponse(result.status_code, dict(result.headers), result.body)

    def dispatch(self, events: list[AnyEvent]) -> None:
        """Hand stored events to observers in the background; ``drain()`` waits for them."""
        task = asyncio.get_running_loop().create_task(self._dispatch(events))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _dispatch(self, events: list[AnyEvent]) -> None:
        for event in events:
            try:
                self.pm.hook.on_event(event=event)
            except Exception as exc:
                log.error(
                    "on_event_failed", event_id=event.event_id, error=f"{type(exc).__name__}: {exc}"
                )
            for subscriber in list(self.subscribers):
                try:
                    outcome = subscriber(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception as exc:
                    log.error(
                        "subscriber_failed",
                        event_id=event.event_id,
                        error=f"{type(exc).__name__}: {exc}",
                    )
        try:
            await self.store.mark_dispatched([e.event_id for e in events])
        except Exception as exc:
            log.error("mark_dispatched_failed", error=type(exc).__name__)

    async def drain(self) -> None:
        """Wait until every event handed to ``dispatch`` has reached its observers."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
