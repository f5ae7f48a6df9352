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
import functools
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, compile_path
from starlette.types import Message, Receive, Scope, Send

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
        # A vendor pushes to one URL again and again: what is made of it is kept (a pure
        # function of what it reads of the request), as is the answer it is given.
        self._addresses = functools.lru_cache(maxsize=256)(self._address)
        self._answers = functools.lru_cache(maxsize=64)(_answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.answer(scope, receive, send, scope["path_params"])

    def _address(
        self,
        scheme: str,
        server: tuple[str, int] | None,
        path: str,
        query: bytes,
        host: bytes | None,
    ) -> tuple[str, str]:
        """The URL called (as Starlette's ``Request.url`` reads it from these parts of the
        scope) and the path to store (:func:`_stored_path`)."""
        headers = [] if host is None else [(b"host", host)]
        scope = {"scheme": scheme, "server": server, "path": path, "query_string": query}
        url = URL(scope={**scope, "headers": headers})
        return str(url), _stored_path(url, self.receiver.token)

    def addresses(self, scope: Scope, host: bytes | None = None) -> tuple[str, str]:
        """The URL a request called and the path to store for it (``host``: the value of
        its first ``host`` header, when the caller has read it; else read here)."""
        server = scope.get("server")
        if host is None:
            for key, value in scope["headers"]:
                if key == b"host":
                    host = value
                    break
        return self._addresses(
            scope.get("scheme", "http"),
            None if server is None else tuple(server),
            scope["path"],
            scope.get("query_string", b""),
            host,
        )

    async def answer(
        self, scope: Scope, receive: Receive, send: Send, params: Mapping[str, str]
    ) -> None:
        """Answer one request for the route, whose path parameters are ``params``."""
        response = await self._respond(scope, receive, params)
        if response is not None:
            await response(scope, receive, send)

    async def _respond(
        self, scope: Scope, receive: Receive, params: Mapping[str, str]
    ) -> Response | None:
        receiver = self.receiver
        provider = params["provider"]
        if not receiver.token_ok(params.get("token", "")):
            return _text(404, "Not Found")
        instance = receiver.notifier.providers.get(provider)
        if instance is None or not receives_callbacks(instance):
            return _text(404, "Not Found")
        method: str = scope["method"]
        if method != "POST" and not answers_checks(instance, method):
            allow = ", ".join(allowed_methods(instance))
            return _text(405, "Method Not Allowed", {"allow": allow})
        # As Starlette's Headers: names as sent (lower-case from ASGI servers), Latin-1; the
        # first host and content-length kept on the way (one pass over the headers).
        headers: dict[str, str] = {}
        host: bytes | None = None
        declared: str | None = None
        for key, value in scope["headers"]:
            name = key.decode("latin-1")
            text = value.decode("latin-1")
            headers[name] = text
            if key == b"host":
                if host is None:
                    host = value
            elif key == b"content-length" and declared is None:
                declared = text
        limit = receiver.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > drain_bound(limit):
            return _too_large(cut_off=True)
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # disconnected: nobody is left to answer; nothing complete
            chunk = message.get("body", b"")
            body = body + chunk if body else chunk
            if len(body) > limit:
                return await _drain_then_refuse(receive, message, len(body), drain_bound(limit))
            if not message.get("more_body", False):
                break
        url, stored_path = self.addresses(scope, host)
        try:
            if method == "POST":
                # A URL check touches no store: it is answered even while the store is down.
                await receiver.start()
            status, response_headers, content = await receiver.notifier.callbacks.handle(
                provider,
                method,
                headers,
                body,
                url=url,
                path=stored_path,
            )
        except StoreError as exc:  # the store could not be opened: logged once per fault
            receiver.notifier.callbacks.store_health.failed(exc)
            return _text(503, "try again later")
        except Exception as exc:  # a bug: let them retry
            log.error("callback_failed", provider=provider, error=type(exc).__name__)
            return _text(503, "try again later")
        return self._answers(status, tuple(response_headers.items()), content)


def _answer(status: int, headers: tuple[tuple[str, str], ...], content: bytes) -> Response:
    """The response for a handled request (shared by every request given the same: a
    Response is only read when sent)."""
    return Response(content, status_code=status, headers=dict(headers))


def _route_path(scope: Scope) -> str:
    """The path below the application's mount point (``root_path``), as Starlette's
    router matches it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


class _ReceiverApp(Starlette):
    """The receiver's Starlette application. A request for the callback route goes
    straight to its endpoint, without the router and the middleware stack (which add
    nothing to it: the endpoint answers every outcome itself), unless middleware or
    exception handlers were added to the app; everything else goes through Starlette."""

    def __init__(self, endpoint: _CallbackEndpoint, callback_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._endpoint = endpoint
        self._callback_route = compile_path(callback_path)[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.user_middleware and not self.exception_handlers:
            matched = self._callback_route.match(_route_path(scope))
            if matched is not None:
                scope["app"] = self
                await self._endpoint.answer(scope, receive, send, matched.groupdict())
                return
        await super().__call__(scope, receive, send)


def _stored_path(url: URL, token: SecretStr | None) -> str:
    """The path and query as called, with the token replaced by ``***``."""
    path = url.path
    if token is not None:
        secret = token.get_secret_value()
        path = path[: -len(secret)] + MASK if path.endswith(secret) else path
    query = url.query
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
    receive: Receive, message: Message, received: int, bound: int
) -> Response | None:
    """Discard the rest of an oversized body, up to ``bound`` bytes in all, then 413
    (``message`` is the last one read, ``received`` the bytes read so far)."""
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            return None
        received += len(message.get("body", b""))
        if received > bound:
            return _too_large(cut_off=True)
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
    app = _ReceiverApp(
        endpoint,
        callback_path,
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
