"""The API applications use: ``AsyncNotifier`` and its synchronous twin ``Notifier``."""

from __future__ import annotations

import asyncio
import functools
import math
import os
import threading
from collections.abc import Coroutine, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pluggy

from notifykit.config import Config, console_fallback_refusal, load_config
from notifykit.errors import ConfigError, InvalidMessage, NotifyKitError, ProviderError, UsageError
from notifykit.inbox import CallbackProcessor, Subscriber
from notifykit.instances import TransportFactory, build_providers
from notifykit.log import get_logger
from notifykit.loop_thread import LoopThread
from notifykit.loops import ShutdownHook
from notifykit.models import Balance, MessageRecord, SendResult, SmsMessage
from notifykit.phone import parse_phone
from notifykit.plugins import get_plugin_manager, provider_types
from notifykit.provider import SmsProvider
from notifykit.reconcile import DEFAULT_OLDER_THAN, Reconciler, ReconcileReport
from notifykit.recovery import RecoveryTimer, sweep
from notifykit.routing import Router
from notifykit.routing.router import new_message_id
from notifykit.shared import open_shared_state
from notifykit.store import Store, open_store
from notifykit.verify import SyncVerifier, Verifier

__all__ = ["AsyncNotifier", "Notifier"]

_log = get_logger("notifykit")

T = TypeVar("T")

# Built once: a union written in the call (``bytes | dict | ...``) is built on every call.
_NOT_A_PARAMETER = (bytes, dict, list, tuple, set)


def build_message(
    to: str,
    *,
    template: str,
    params: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    tags: Sequence[str] = (),
    message_id: str | None = None,
) -> SmsMessage:
    """Validate a send's arguments into an :class:`SmsMessage`, or raise InvalidMessage.

    ``message_id`` is notifykit's id for the message (the caller makes a fresh one)."""
    e164 = parse_phone(to)
    name = template.strip() if isinstance(template, str) else ""
    if not name:
        raise InvalidMessage("template: a logical template name is required")
    if params is not None and not isinstance(params, Mapping):
        raise InvalidMessage(f"params: expected a mapping, got {type(params).__name__}")
    if isinstance(tags, str):
        raise InvalidMessage("tags: expected a list of tags, got a single string")
    if tags and not all(isinstance(tag, str) and tag for tag in tags):
        raise InvalidMessage("tags: every tag must be a non-empty string")
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key
    ):
        raise InvalidMessage("idempotency_key: expected a non-empty string")
    clean: dict[str, str] = {}
    for key, value in (params or {}).items():
        if not isinstance(key, str) or not key:
            raise InvalidMessage(f"params: parameter names must be non-empty strings, got {key!r}")
        if type(value) is not str:
            if value is None or isinstance(value, _NOT_A_PARAMETER):
                raise InvalidMessage(
                    f"params.{key}: expected a string or a number, got {type(value).__name__}"
                )
            if (
                isinstance(value, bool)
                or (isinstance(value, float) and not math.isfinite(value))
                or (isinstance(value, Decimal) and not value.is_finite())
            ):
                # str() would send "True" or "nan" in the SMS: a caller's mistake, not text.
                raise InvalidMessage(
                    f"params.{key}: expected a string or a finite number, got {value!r}"
                )
        clean[key] = str(value)
    # Validated like any other SmsMessage, so that the model stays the one definition of a
    # valid message: parse_phone caches validated numbers, so this costs less than skipping
    # validation did (ledger: docs/benchmarks.md, "Issue 17").
    return SmsMessage(
        to=e164,
        template=name,
        params=clean,
        idempotency_key=idempotency_key,
        tags=tuple(tags),
        message_id=message_id,
    )


class AsyncNotifier:
    """Send SMS and receive vendor callbacks, on the caller's event loop.

    Use as an async context manager, or call ``close()``. ``config`` is a :class:`Config`,
    a path to a TOML file, or None (``$NOTIFYKIT_CONFIG``, ``./notifykit.toml``, the
    built-in default). ``transport`` replaces every provider's HTTP transport (tests).

    A notifier follows the running event loop: used from one loop after another
    (``asyncio.run(a())`` then ``asyncio.run(b())``), it releases what it held on a loop
    (connection pools, the store's connections, its background tasks) while that loop
    shuts down, and opens them again on the next. Used from a second loop while the first
    still runs (another thread), it raises :class:`UsageError` (docs/routing.md, "Event
    loops").
    """

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        transport: httpx.AsyncBaseTransport | TransportFactory | None = None,
        store: Store | None = None,
    ) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        if store is not None and self.config.is_console_fallback:
            # A store wired in by hand is a production set-up that lost its configuration.
            raise console_fallback_refusal("a store was given")
        self.pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
        self.provider_types = provider_types(self.pm)
        self.providers: dict[str, SmsProvider[Any]] = build_providers(
            self.config, self.provider_types, transport=transport
        )
        try:
            self.store = store if store is not None else open_store(self.config.store)
            self.router = Router(
                self.config,
                self.providers,
                self.store,
                shared_state=functools.partial(open_shared_state, self.config, self.store),
            )
        except ConfigError as exc:
            source = self.config.source
            if source is None or exc.message.startswith(f"{source}: "):
                raise
            raise ConfigError(f"{source}: {exc.message}") from None
        self.callbacks = CallbackProcessor(
            self.providers,
            self.store,
            self.pm,
            max_body_bytes=self.config.callbacks.max_body_bytes,
            store_timeout=self.config.store.timeout,
            lease=self.config.callbacks.dispatch_lease,
        )
        self.reconciler = Reconciler(
            self.providers,
            self.store,
            self.callbacks.dispatch,
            store_timeout=self.config.store.timeout,
            claimant=self.callbacks.claimant,
            lease=self.callbacks.lease,
        )
        self.recovery = RecoveryTimer(
            self.store, self.config.store.recovery_interval, shared=self.router.shared
        )
        self.verify = Verifier(self)
        """Verification codes: ``start``, ``check``, ``cancel`` (docs/verify.md)."""
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_hook: ShutdownHook | None = None

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | Config | None = None, **kwargs: Any
    ) -> AsyncNotifier:
        return cls(path, **kwargs)

    def __repr__(self) -> str:
        return f"<AsyncNotifier providers={list(self.providers)} source={self.config.source!r}>"

    async def open(self) -> AsyncNotifier:
        """Open the store and run the recovery sweep (:mod:`notifykit.recovery`), then keep
        sweeping every ``[store] recovery_interval`` seconds until ``close()``; while there
        are subscribers or ``on_event`` plugins, also claim and hand them the stored events
        no live dispatcher holds. Called by ``async with`` and, lazily, by the first
        operation. Raises :class:`UsageError` on a second event loop while the first still
        runs."""
        if asyncio.get_running_loop() is not self._loop:
            await self._follow_loop()
        if not self._opened:
            async with self._open_lock:
                if not self._opened:
                    await self.store.open()
                    self._opened = True
                    try:
                        await sweep(self.store, shared=self.router.shared)
                    except Exception as exc:  # the timer tries again; a send must not fail
                        _log.warning("recovery_sweep_failed", error_type=type(exc).__name__)
                    self.recovery.start()
                    # Events stored by processes with no observers (a bare ``notifykit
                    # serve``) wait for one that has some: claimed here once a subscriber or
                    # an ``on_event`` plugin is there (the sweep asks each time).
                    self.callbacks.recover()
                    self.callbacks.start_sweeping()
        return self

    async def _follow_loop(self) -> None:
        """Bind to the running loop, releasing what the previous loop held."""
        loop = asyncio.get_running_loop()
        old = self._loop
        if old is not None and old.is_running() and not old.is_closed():
            raise UsageError(
                "this AsyncNotifier is in use on another event loop that is still running "
                "(another thread); use one AsyncNotifier per running event loop, or the "
                "thread-safe Notifier"
            )
        if old is not None:
            # That loop ended without shutting down (loop.close() alone): release from here.
            await self._release_loop(old)
        self._loop = loop
        self._open_lock = asyncio.Lock()
        hook = self._loop_hook = ShutdownHook(functools.partial(self._release_loop, loop))
        await hook.arm()

    async def _release_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Release what this notifier holds on ``loop``: on ``loop`` itself while it shuts
        down (its tasks already cancelled), or from the next loop when it ended without
        shutting down (then nothing of the old loop is awaited). The next operation opens
        everything again."""
        if self._loop is not loop:
            return
        self._loop = None
        if self._loop_hook is not None:
            self._loop_hook.disarm()
            self._loop_hook = None
        on_loop = asyncio.get_running_loop() is loop
        if on_loop:
            await self.recovery.stop()
            await self.callbacks.stop_sweeping()
        else:
            self.recovery.abandon()
            self.callbacks.abandon_sweeper()
        opened, self._opened = self._opened, False
        try:
            async with asyncio.timeout(self.config.store.timeout):
                await self.router.close()
                if opened:
                    await self.store.close()
        except Exception as exc:  # the loop is gone: nothing more can be done with it
            _log.warning("loop_release_failed", error_type=type(exc).__name__)

    async def __aenter__(self) -> AsyncNotifier:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(
        self,
        to: str,
        *,
        template: str,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        tags: Sequence[str] = (),
    ) -> SendResult:
        """Send ``template`` with ``params`` to ``to`` (E.164) through the configured route.

        Raises :class:`InvalidMessage` before any request when the input is bad; any other
        failure raises a :class:`NotifyKitError` with ``.attempts``.
        """
        message = build_message(
            to,
            template=template,
            params=params,
            idempotency_key=idempotency_key,
            tags=tags,
            message_id=new_message_id(),
        )
        self._check_open()
        if not self.providers:
            raise ConfigError(f"{self.config.source or 'configuration'}: no providers configured")
        if self.config.is_console_fallback and message.template != self.config.verify.template:
            raise console_fallback_refusal(f"template {message.template!r} was asked for")
        if not self._opened or asyncio.get_running_loop() is not self._loop:
            await self.open()  # otherwise open on this loop already: nothing to await
        return await self.router.send(message)

    async def balance(self, provider: str | None = None) -> Balance:
        """What is left on ``provider``'s account (default: the first on the default route).

        Raises ConfigError for an unknown instance, NotSupported when the vendor has no
        balance query, a ProviderError when the query failed.
        """
        self._check_open()
        if asyncio.get_running_loop() is not self._loop:
            await self._follow_loop()
        name = provider or next(iter(self.config.default_route()), None)
        if name is None or name not in self.providers:
            raise ConfigError(
                f"unknown provider {name!r} (configured: {', '.join(self.providers) or 'none'})"
            )
        try:
            return await self.providers[name].balance()
        except NotifyKitError as exc:
            raise self.providers[name].redactor.error(exc) from exc.__cause__
        except Exception as exc:  # a plugin bug: translate, never leak a foreign exception
            raise ProviderError(
                f"{name}: balance query failed ({type(exc).__name__})", provider=name
            ) from exc

    async def reconcile(
        self, older_than: float | timedelta = DEFAULT_OLDER_THAN, *, limit: int = 1000
    ) -> ReconcileReport:
        """Ask each provider that can (``fetch_status``) about messages it accepted that
        still have no final status and were created ``older_than`` seconds ago or earlier
        (at most ``limit``, oldest first); store what it learns like a push (a later push
        of the same receipt is a duplicate) and dispatch the new events.

        Safe to run from cron on several hosts at once. Instances without a status query
        (Veesing) are skipped and named in the report; a failed query is counted, not
        raised. Raises StoreError when the store fails. See docs/routing.md, "Reconcile".
        """
        self._check_open()
        await self.open()
        return await self.reconciler.run(older_than, limit=limit)

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("the notifier is closed")

    async def get_message(self, message_id: str) -> MessageRecord | None:
        """The stored record of a message: status, history, provider, attempts."""
        await self.open()
        return await self.store.get_message(message_id)

    async def handle_callback(
        self, provider: str, method: str, headers: Mapping[str, str], body: bytes, *, url: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        """Handle one vendor push for instance ``provider``: ``(status, headers, body)``.

        The raw request is stored before this returns an acknowledgement.
        """
        self._check_open()
        await self.open()
        status, out_headers, out_body = await self.callbacks.handle(
            provider, method, headers, body, url=url
        )
        return status, out_headers, out_body

    def subscribe(self, fn: Subscriber) -> None:
        """Call ``fn(event)`` (sync or async) for each new stored event. Events stored
        earlier that no instance has dispatched (a bare ``notifykit serve`` stores them
        unclaimed) are claimed at once when the notifier is open, else when it opens. May
        be called from any thread (the sync :class:`Notifier` does)."""
        self.callbacks.subscribers.append(fn)
        loop = self._loop
        if loop is None or loop.is_closed() or not self._opened:
            return  # open() claims what waits
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            self.callbacks.observers_added()
        elif loop.is_running():
            loop.call_soon_threadsafe(self.callbacks.observers_added)

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each provider instance's breaker: ``{instance: {"state", "consecutive_failures",
        "reason", "retry_in"}}`` (``retry_in`` in seconds), plus ``"shared_state"`` when
        ``[shared_state]`` is set (``"redis"``, or ``"local (redis unreachable since …)"``
        during an outage). A coroutine, as every method of the async twin that answers a
        question is (docs/routing.md)."""
        self._check_open()
        return self.router.health()

    async def close(self) -> None:
        """Wait until every stored event has been dispatched, then release everything."""
        if self._closed:
            return
        if asyncio.get_running_loop() is not self._loop and self._loop is not None:
            await self._follow_loop()
        self._closed = True
        if self._loop_hook is not None:
            self._loop_hook.disarm()
            self._loop_hook = None
        await self.recovery.stop()
        await self.callbacks.stop_sweeping()
        await self.callbacks.drain()
        errors: list[BaseException] = []
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception as exc:  # one failing plugin must not keep the rest open
                errors.append(exc)
        # Retries of a write recording an accepted send (the store had failed it).
        await self.router.drain()
        await self.router.close()
        if self._opened:
            await self.store.close()
        if errors:
            # Only the class: a plugin's message might hold an option value.
            raise NotifyKitError(
                f"closing providers failed: {', '.join(type(e).__name__ for e in errors)}"
            ) from errors[0]


class Notifier:
    """The synchronous twin of :class:`AsyncNotifier`, for code with no event loop.

    One background thread runs one event loop for the notifier's whole life, so that
    connection pools are reused and no call starts a loop of its own. Safe to call from
    several threads at once; a call that ``close()`` (from another thread) finds still
    running is cancelled and raises :class:`UsageError`.
    """

    def __init__(
        self, config: Config | str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> None:
        self._close_lock = threading.Lock()
        self._runner = LoopThread("notifykit-loop")
        self._loop = self._runner.loop
        self._thread = self._runner.thread
        try:
            self._async = self._call(self._make(config, kwargs))
        except BaseException:
            self._stop_loop()
            raise
        self.verify = SyncVerifier(self)
        """Verification codes: ``start``, ``check``, ``cancel`` (docs/verify.md)."""

    @staticmethod
    async def _make(
        config: Config | str | os.PathLike[str] | None, kwargs: dict[str, Any]
    ) -> AsyncNotifier:
        return AsyncNotifier(config, **kwargs)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | Config | None = None, **kwargs: Any
    ) -> Notifier:
        return cls(path, **kwargs)

    def __repr__(self) -> str:
        return f"<Notifier providers={list(self._async.providers)} source={self.config.source!r}>"

    @property
    def config(self) -> Config:
        return self._async.config

    @property
    def async_notifier(self) -> AsyncNotifier:
        return self._async

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            self._check_thread()  # raises
        return self._runner.run(coro)  # UsageError once closed

    def _check_thread(self) -> None:
        if threading.current_thread() is self._thread:
            # Waiting on our own loop from inside it (e.g. a subscriber calling send) would
            # hang forever; the async notifier is the way in from there.
            raise UsageError(
                "Notifier methods cannot be called from its own event loop "
                "(in a subscriber, use notifier.async_notifier)"
            )

    def send(
        self,
        to: str,
        *,
        template: str,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        tags: Sequence[str] = (),
    ) -> SendResult:
        """See :meth:`AsyncNotifier.send`."""
        return self._call(
            self._async.send(
                to, template=template, params=params, idempotency_key=idempotency_key, tags=tags
            )
        )

    def balance(self, provider: str | None = None) -> Balance:
        return self._call(self._async.balance(provider))

    def get_message(self, message_id: str) -> MessageRecord | None:
        return self._call(self._async.get_message(message_id))

    def reconcile(
        self, older_than: float | timedelta = DEFAULT_OLDER_THAN, *, limit: int = 1000
    ) -> ReconcileReport:
        """See :meth:`AsyncNotifier.reconcile`."""
        return self._call(self._async.reconcile(older_than, limit=limit))

    def handle_callback(
        self, provider: str, method: str, headers: Mapping[str, str], body: bytes, *, url: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        return self._call(self._async.handle_callback(provider, method, headers, body, url=url))

    def subscribe(self, fn: Subscriber) -> None:
        self._async.subscribe(fn)

    def health(self) -> dict[str, dict[str, Any]]:
        """Each provider instance's breaker (see :meth:`AsyncNotifier.health`)."""
        return self._call(self._async.health())

    def close(self) -> None:
        """Wait for every stored event to be dispatched, release everything, stop the loop."""
        self._check_thread()
        with self._close_lock:
            if self._runner.closed:
                return
            try:
                self._call(self._async.close())
            finally:
                self._stop_loop()

    def _stop_loop(self) -> None:
        # Calls from other threads still running are cancelled (each raises UsageError).
        self._runner.stop()

    def __enter__(self) -> Notifier:
        self._call(self._async.open())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
