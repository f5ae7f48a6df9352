"""The callback receiver over ASGI: ``create_app(config)`` -> a Starlette application.

An adapter: it exposes the notifier's :class:`~notifykit.inbox.CallbackProcessor` (the
framework-free inbox) over HTTP, and nothing in notifykit's core imports it, so that a
process that only sends never loads Starlette. Old path: ``notifykit.callbacks``.

Routes: ``POST /callbacks/{provider}`` (``/callbacks/{provider}/{token}`` when
``[callbacks] token`` is set) and ``GET /healthz``. Checks, in order: a wrong or missing token
answers 404 (compared in constant time; no redirects, so no path reveals another), then an
unknown provider 404, then a method other than POST 405 (unless the provider type declares
it as the vendor's URL check, ``callback_check_methods``: such a request is answered by the
plugin and never stored), then a body over
``[callbacks] max_body_bytes`` 413. The rest of an oversized body is read and discarded,
up to :data:`DRAIN_FACTOR` times the limit, before the 413, so that a client sending its
whole body before reading can read the answer; a longer body is cut off (answered at once,
connection closed). What passes goes to the
notifier's :class:`~notifykit.inbox.CallbackProcessor`: parsed, stored, then
acknowledged.

The app owns the notifier it creates: opened by the lifespan (or by the first request when
mounted in a parent that does not run sub-application lifespans), closed on shutdown after
every stored event has been dispatched. A notifier passed in stays the caller's to close.
At start the receiver dispatches events a killed predecessor stored but never dispatched.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from notifykit.compare import constant_time_equal
from notifykit.config import Config
from notifykit.errors import ConfigError, StoreError
from notifykit.inbox import allowed_methods, receives_callbacks
from notifykit.log import get_logger
from notifykit.notifier import AsyncNotifier
from notifykit.provider import answers_checks

__all__ = ["CallbackReceiver", "TokenLogFilter", "create_app", "hide_token"]

log = get_logger("notifykit.callbacks")

MASK = "***"


class CallbackReceiver:
    """The state behind one receiver app: its notifier, token and limits."""

    def __init__(self, notifier: AsyncNotifier, *, owned: bool) -> None:
        self.notifier = notifier
        self.owned = owned
        self.token: SecretStr | None = notifier.config.callbacks.token
        self.max_body_bytes = notifier.config.callbacks.max_body_bytes
        self._started = False

    async def start(self) -> None:
        """Open the notifier and, once, start dispatching what a killed process left (now,
        and whenever a dead dispatcher's lease runs out)."""
        await self.notifier.open()
        if not self._started:
            self._started = True
            self.notifier.callbacks.recover()
            self.notifier.callbacks.start_sweeping()

    async def stop(self) -> None:
        """Wait for dispatch; close the notifier when this receiver made it."""
        await self.notifier.callbacks.stop_sweeping()
        if self.owned:
            await self.notifier.close()
        else:
            await self.notifier.callbacks.drain()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def healthz(self, _request: Request) -> Response:
        """``GET /healthz``: 200 ``ok`` while the store takes writes, 503 ``store failing``
        while it does not (a load balancer then routes around this instance)."""
        try:
            await self.start()
        except StoreError as exc:
            self.notifier.callbacks.store_health.failed(exc)
            return _text(503, "store failing")
        if not await self.notifier.callbacks.check_store():
            return _text(503, "store failing")
        return _text(200, "ok")

    def token_ok(self, given: str) -> bool:
        """Whether the path's token is the configured one (always, when none is configured);
        every token given, empty included, goes through :func:`constant_time_equal`."""
        if self.token is None:
            return True
        return constant_time_equal(given, self.token.get_secret_value())


class _CallbackEndpoint:
    """``/callbacks/{provider}[/{token}]``, as a raw ASGI app to control the body read."""

    def __init__(self, receiver: CallbackReceiver) -> None:
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._respond(Request(scope, receive))
        if response is not None:
            await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response | None:
        receiver = self.receiver
        params = request.path_params
        provider: str = params["provider"]
        if not receiver.token_ok(params.get("token", "")):
            return _text(404, "Not Found")
        instance = receiver.notifier.providers.get(provider)
        if instance is None or not receives_callbacks(instance):
            return _text(404, "Not Found")
        if request.method != "POST" and not answers_checks(instance, request.method):
            allow = ", ".join(allowed_methods(instance))
            return _text(405, "Method Not Allowed", {"allow": allow})
        limit = receiver.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > drain_bound(limit):
            return _too_large(cut_off=True)
        body = bytearray()
        chunks = request.stream()
        try:
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    return await _drain_then_refuse(chunks, len(body), drain_bound(limit))
        except ClientDisconnect:
            return None  # nobody is left to answer; nothing complete was received
        try:
            if request.method == "POST":
                # A URL check touches no store: it is answered even while the store is down.
                await receiver.start()
            status, headers, content = await receiver.notifier.callbacks.handle(
                provider,
                request.method,
                dict(request.headers.items()),
                bytes(body),
                url=str(request.url),
                path=_stored_path(request, receiver.token),
            )
        except StoreError as exc:  # the store could not be opened: logged once per fault
            receiver.notifier.callbacks.store_health.failed(exc)
            return _text(503, "try again later")
        except Exception as exc:  # a bug: let them retry
            log.error("callback_failed", provider=provider, error=type(exc).__name__)
            return _text(503, "try again later")
        return Response(content, status_code=status, headers=headers)


def _stored_path(request: Request, token: SecretStr | None) -> str:
    """The path and query as called, with the token replaced by ``***``."""
    path = request.url.path
    if token is not None:
        secret = token.get_secret_value()
        path = path[: -len(secret)] + MASK if path.endswith(secret) else path
    query = request.url.query
    return f"{path}?{query}" if query else path


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(text, status_code=status, headers=headers)


DRAIN_FACTOR = 16
"""An oversized body is read and discarded up to this many times ``max_body_bytes``."""


def drain_bound(limit: int) -> int:
    """How many bytes of an oversized body are read (and discarded) before the 413.

    A server that answers and closes while the client's body is still arriving makes the
    kernel reset the connection, and the client (a vendor still sending) never reads the
    answer. So a body up to this bound is read to its end first; a longer one is cut off.
    """
    return DRAIN_FACTOR * limit


async def _drain_then_refuse(
    chunks: AsyncIterator[bytes], received: int, bound: int
) -> Response | None:
    """Discard the rest of an oversized body, up to ``bound`` bytes in all, then 413."""
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > bound:
                return _too_large(cut_off=True)
    except ClientDisconnect:
        return None
    return _too_large(cut_off=False)


def _too_large(*, cut_off: bool) -> Response:
    # When the rest of the body was not read, the connection cannot be reused.
    return _text(413, "request body too large", {"connection": "close"} if cut_off else None)


def create_app(
    config: Config | str | os.PathLike[str] | None = None,
    *,
    notifier: AsyncNotifier | None = None,
) -> Starlette:
    """The callback receiver for ``config`` (a Config, a path, or None: the usual lookup),
    or for an existing ``notifier`` (then ``config`` must be None: the notifier's is used).

    Mount it anywhere (``Mount("/hooks", app=create_app(...))``); a parent that does not
    run sub-application lifespans should run ``app.router.lifespan_context(app)`` in its
    own, so that shutdown waits for dispatch. ``app.state.receiver.notifier`` is the
    notifier, for ``subscribe``.
    """
    if notifier is not None and config is not None and config is not notifier.config:
        raise ConfigError("create_app: pass a configuration or a notifier, not both")
    receiver = CallbackReceiver(
        notifier if notifier is not None else AsyncNotifier(config), owned=notifier is None
    )
    endpoint = _CallbackEndpoint(receiver)
    callback_path = (
        "/callbacks/{provider}/{token:path}"
        if receiver.token is not None
        else "/callbacks/{provider}"
    )
    app = Starlette(
        routes=[
            Route("/healthz", receiver.healthz, methods=["GET"]),
            Route(callback_path, endpoint, name="callbacks"),
        ],
        lifespan=receiver.lifespan,
    )
    app.router.redirect_slashes = False
    app.state.receiver = receiver
    app.state.notifier = receiver.notifier
    return app


class TokenLogFilter(logging.Filter):
    """A logging filter that replaces a callbacks token by ``***`` in every record it sees:
    in the message and in its arguments (a tuple, as uvicorn logs, or a mapping, as
    gunicorn's access log does), raw or percent-encoded as servers write paths.

    The push URL must hold the token (a vendor can only be given a URL, never a header), and
    the host's server logs each request line: uvicorn's ``uvicorn.access`` logger writes
    ``"POST /hooks/callbacks/primary/<token> HTTP/1.1" 200``. Add this filter to that logger
    (:func:`hide_token` builds it from the app). ``notifykit serve`` needs none: it runs
    uvicorn with the access log off.
    """

    def __init__(self, token: str) -> None:
        super().__init__()
        forms = {token, quote(token), quote(token, safe="")} if token else set()
        self._forms = sorted(forms, key=len, reverse=True)

    def _mask(self, value: object) -> object:
        if not isinstance(value, str):
            return value
        for form in self._forms:
            value = value.replace(form, MASK)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the token in place; never drops a record."""
        if not self._forms:
            return True
        record.msg = self._mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._mask(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: self._mask(arg) for key, arg in record.args.items()}
        return True


def hide_token(app: Starlette) -> TokenLogFilter:
    """The :class:`TokenLogFilter` for the token of a receiver made by :func:`create_app`
    (one that masks nothing when no ``[callbacks] token`` is set). Add it to the access
    logger of the server that runs the app, before the server starts::

        logging.getLogger("uvicorn.access").addFilter(hide_token(receiver))

    (``hypercorn.access`` for Hypercorn, ``gunicorn.access`` for Gunicorn's.) Raises
    ``ConfigError`` for an app :func:`create_app` did not make.
    """
    receiver = getattr(app.state, "receiver", None)
    if not isinstance(receiver, CallbackReceiver):
        raise ConfigError("hide_token: expected the app notifykit.asgi.create_app returned")
    token = receiver.token
    return TokenLogFilter(token.get_secret_value() if token is not None else "")
