"""The HTTP edge shared by provider plugins: client construction and fault classification.

The default transport is notifykit's own :class:`AiohttpTransport`: aiohttp's connection
pool behind the httpx transport API. httpx's own connection pool spends quadratic time
assigning requests to connections at concurrency 50 and above, and the generic
``httpx-aiohttp`` bridge costs more than aiohttp itself (see docs/benchmarks.md). Plugins
and tests keep the httpx API: tests inject any ``httpx.AsyncBaseTransport``
(``httpx.MockTransport``, a respx router, or ``httpx.AsyncHTTPTransport()`` under
``respx.mock``) through :class:`ProviderContext`.

:func:`request` sends a request from a client made by :func:`create_client` straight to its
transport (one ``httpx.Request``, the client's default headers, timeout and basic auth
applied), without ``AsyncClient``'s per-request machinery (cookie jar, event hooks,
redirect loop), which cost more than the transport itself. Anything that needs that
machinery (other ``AsyncClient``\\ s, query params, cookies, other auth schemes, event
hooks) goes through ``client.request`` as before.

Transport faults are classified by whether the request may have reached the vendor:
no connection made (refused, DNS failure, connect timeout, pool timeout) is
:class:`ProviderUnavailable` with ``retryable=True``; anything after the request bytes may
have left (read or write timeout, reset, server closed without answering) is
:class:`UnknownOutcome`.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import functools
import ssl
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import httpx
import yarl

from notifykit.errors import ProviderError, ProviderUnavailable, UnknownOutcome
from notifykit.loops import ShutdownHook
from notifykit.provider import ProviderContext
from notifykit.transport_errors import describe_transport_error

__all__ = [
    "RETRYABLE_STATUS",
    "AiohttpTransport",
    "Answer",
    "HttpxPoolTransport",
    "classify_transport_error",
    "create_client",
    "default_transport",
    "request",
    "send_body",
    "status_error",
    "take_pool_wait_interrupted",
]

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})

# What a transport may let through unmapped: an aiohttp error (another transport built on
# aiohttp), OS errors and bare timeouts.
_UNMAPPED: tuple[type[Exception], ...] = (OSError, TimeoutError, aiohttp.ClientError)

# aiohttp's errors as httpx's, most specific first; the original stays the ``__cause__``,
# which classify_transport_error reads.
_AIOHTTP_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientError, httpx.ReadError),
)

_URL_CACHE_SIZE = 256


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's verifying context (certifi's CAs), made once per process: loading the CA
    bundle takes about 17 ms, which would stall every send in flight on the loop."""
    return httpx.create_ssl_context(trust_env=False)


class Answer:
    """A vendor's answer, read whole (:func:`send_body`): ``status_code``, ``headers`` (a
    case-insensitive mapping of text) and ``content`` (bytes, any content-encoding
    decoded)."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def __repr__(self) -> str:
        return f"<Answer [{self.status_code}]>"

    @property
    def is_success(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status_code < 300


class _Pool:
    """One event loop's share of a transport: its pool (``inner``), the slots that bound
    the requests in flight on it, and the hook that releases it when the loop shuts down."""

    __slots__ = ("hook", "inner", "loop", "slots")

    def __init__(self, loop: asyncio.AbstractEventLoop, inner: Any, slots: int) -> None:
        self.loop = loop
        self.inner = inner
        self.slots = asyncio.Semaphore(slots)
        self.hook: ShutdownHook | None = None


# Set in a task whose request was stopped (cancelled) while it waited for a free pooled
# connection: that request never left. Read once by the router (take_pool_wait_interrupted).
_pool_wait_interrupted: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "notifykit_pool_wait_interrupted", default=False
)


def take_pool_wait_interrupted() -> bool:
    """True (once) when the current task's last request through a notifykit transport was
    cancelled while waiting for a free pooled connection, so it never left this process.
    The router asks this when a send's deadline ends an attempt: such an attempt is not the
    vendor's failure and does not count towards its breaker."""
    if _pool_wait_interrupted.get():
        _pool_wait_interrupted.set(False)
        return True
    return False


class _LoopLocalTransport(httpx.AsyncBaseTransport, abc.ABC):
    """A transport whose connection pool follows the running event loop (one pool per
    loop, released when that loop shuts down, see :mod:`notifykit.loops`), and whose
    requests wait for a free connection without a time limit of their own.

    At most ``max_connections`` requests are in flight per loop; the others queue here.
    Waiting for a free connection is not a connection failure: it is bounded by the send's
    deadline (``routing.deadline``), which cancels it, and never by the per-request
    ``timeout``, which bounds connecting and reading.
    """

    def __init__(self, *, max_connections: int) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections: expected at least 1, got {max_connections}")
        self._max_connections = max_connections
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
            weakref.WeakKeyDictionary()
        )
        self._last: _Pool | None = None

    @abc.abstractmethod
    def _open_inner(self) -> Any:
        """The client library's connection pool for the running loop."""

    @abc.abstractmethod
    async def _close_inner(self, inner: Any) -> None:
        """Close a pool made by :meth:`_open_inner`."""

    @abc.abstractmethod
    async def _send(self, inner: Any, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through ``inner`` (a connection is free by then)."""

    async def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self._last
        if pool is not None and pool.loop is loop:
            return pool
        for other, stale in list(self._pools.items()):
            if other.is_closed():  # closed without shutting down: dropped here, no I/O
                del self._pools[other]
                await self._release(stale)
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(loop, self._open_inner(), self._max_connections)
            pool.hook = ShutdownHook(functools.partial(self._release, pool))
            await pool.hook.arm()
        self._last = pool
        return pool

    async def _release(self, pool: _Pool) -> None:
        if self._pools.get(pool.loop) is pool:
            del self._pools[pool.loop]
        if self._last is pool:
            self._last = None
        if pool.hook is not None:
            pool.hook.disarm()
        await self._close_inner(pool.inner)

    async def _slot(self) -> _Pool:
        """The running loop's pool, with one of its slots taken: the caller gives it back
        (``pool.slots.release()``) once its request has ended."""
        pool = self._last
        if pool is None or pool.loop is not asyncio.get_running_loop():
            pool = await self._pool()
        try:
            # A free slot is taken at once (no suspension, so no cancellation either).
            await pool.slots.acquire()
        except asyncio.CancelledError:
            _pool_wait_interrupted.set(True)
            raise
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = await self._slot()
        try:
            return await self._send(pool.inner, request)
        finally:
            pool.slots.release()

    async def aclose(self) -> None:
        """Close the pool of the running loop, and drop those of closed loops. A pool on
        a loop still running elsewhere is closed by that loop's shutdown."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for other, pool in list(self._pools.items()):
            if other is loop or other.is_closed():
                await self._release(pool)


class AiohttpTransport(_LoopLocalTransport):
    """An httpx transport on aiohttp's connection pool: one ``aiohttp.ClientSession`` per
    event loop that uses it (made on first use, closed when that loop shuts down).

    The answer is read whole before it is returned (vendor answers are small), so the
    connection goes back to the pool at once. ``content-encoding`` is left to httpx to
    decode. No cookie jar, no proxy from the environment, no redirects: a vendor API is
    called as configured. aiohttp errors are raised as their httpx equivalents, the
    original as ``__cause__``. At most ``max_connections`` requests per loop are in flight;
    the rest wait for a free connection within the send's deadline.
    """

    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 30.0) -> None:
        super().__init__(max_connections=max_connections)
        self._ssl = _ssl_context()  # now, not inside the first request on the event loop
        self._keepalive_expiry = keepalive_expiry
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}

    def _open_inner(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
        )

    async def _close_inner(self, inner: Any) -> None:
        await inner.close()

    def _timeout(self, timeout: Any) -> aiohttp.ClientTimeout:
        """httpx's timeout extension as aiohttp's: connect and read. The wait for a free
        connection is bounded by the send's deadline, not here (the slots let through
        only as many requests as the connector has connections)."""
        if not isinstance(timeout, dict):
            timeout = {}
        key = (timeout.get("connect"), timeout.get("read"))
        found = self._timeouts.get(key)
        if found is None:
            if len(self._timeouts) >= _URL_CACHE_SIZE:
                self._timeouts.clear()
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, sock_connect=key[0], sock_read=key[1], connect=key[0]
            )
        return found

    def _url(self, url: httpx.URL) -> yarl.URL:
        text = str(url)
        found = self._urls.get(text)
        if found is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            found = self._urls[text] = yarl.URL(text)
        return found

    async def _send(self, inner: Any, request: httpx.Request) -> httpx.Response:
        body: bytes | None
        if type(request.stream) is httpx.ByteStream:  # a bytes body: in memory already
            body = b"".join(request.stream)
        else:
            try:
                body = request.content
            except httpx.RequestNotRead:
                body = await request.aread()
        try:
            answer, content = await _exchange(
                inner,
                request.method,
                self._url(request.url),
                _headers(request.headers),
                body,
                self._timeout(request.extensions.get("timeout")),
                request.extensions.get("sni_hostname"),
            )
        except aiohttp.ClientError as exc:
            raise _as_httpx_error(exc, request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode("latin-1", "replace")
        # The headers as received; httpx decodes any content-encoding as the body is read.
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(content),
            request=request,
            extensions=extensions,
        )

    async def exchange(
        self,
        method: str,
        url: yarl.URL,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout: Any,
    ) -> Answer:
        """Send one request straight through aiohttp, without httpx's request and response
        objects (:func:`send_body`'s bare path): the same pool, slots and timeouts as
        :meth:`handle_async_request`, the same errors (aiohttp's raised as httpx's, the
        original as ``__cause__``), the answer read whole and decoded as httpx would."""
        pool = await self._slot()
        try:
            answer, content = await _exchange(
                pool.inner, method, url, headers, body, self._timeout(timeout), None
            )
        except aiohttp.ClientError as exc:
            raise _as_httpx_error(exc, None) from exc
        finally:
            pool.slots.release()
        if "Content-Encoding" in answer.headers:
            # Decoded by httpx's own decoders, exactly as on the httpx path (raises
            # httpx.DecodingError for a body that does not decode).
            decoded = httpx.Response(
                answer.status, headers=answer.raw_headers, stream=httpx.ByteStream(content)
            )
            content = decoded.read()
        return Answer(answer.status, answer.headers, content)


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: yarl.URL,
    headers: list[tuple[str, str]],
    body: bytes | None,
    timeout: aiohttp.ClientTimeout,
    server_hostname: str | None,
) -> tuple[aiohttp.ClientResponse, bytes]:
    """One aiohttp request, its answer read whole and its connection given back."""
    answer = await session.request(
        method,
        url,
        headers=headers,
        data=body or None,
        allow_redirects=False,
        timeout=timeout,
        server_hostname=server_hostname,
    )
    try:
        content = await answer.read()
    finally:
        answer.release()
    return answer, content


def _as_httpx_error(exc: aiohttp.ClientError, request: httpx.Request | None) -> Exception:
    """aiohttp's error as its httpx equivalent (raised ``from`` the original)."""
    # The first that matches (the last entry matches every ClientError).
    httpx_error = next(h for a, h in _AIOHTTP_ERRORS if isinstance(exc, a))
    return httpx_error(str(exc), request=request)


class HttpxPoolTransport(_LoopLocalTransport):
    """httpx's own connection pool (``httpx.AsyncHTTPTransport``), one per event loop that
    uses it, with the same queueing as :class:`AiohttpTransport` (``[http] transport =
    "httpx"``)."""

    def __init__(self, *, max_connections: int = 100) -> None:
        super().__init__(max_connections=max_connections)

    def _open_inner(self) -> httpx.AsyncHTTPTransport:
        limits = httpx.Limits(
            max_connections=self._max_connections,
            max_keepalive_connections=self._max_connections,
        )
        return httpx.AsyncHTTPTransport(limits=limits)

    async def _close_inner(self, inner: Any) -> None:
        await inner.aclose()

    async def _send(self, inner: Any, request: httpx.Request) -> httpx.Response:
        transport: httpx.AsyncHTTPTransport = inner
        response = await transport.handle_async_request(request)
        try:
            # Read here, while this request holds its slot: the connection is free after.
            # Raw: httpx decodes any content-encoding when the caller reads the body.
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return httpx.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=httpx.ByteStream(content),
            request=request,
            extensions=response.extensions,
        )


def _headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """The headers as aiohttp takes them: text that it encodes back to the same bytes
    (UTF-8, of which ASCII is a part)."""
    try:
        return [(name.decode(), value.decode()) for name, value in headers.raw]
    except UnicodeDecodeError:
        return headers.multi_items()


def default_transport() -> httpx.AsyncBaseTransport:
    """notifykit's default transport: aiohttp's connection pool behind the httpx API."""
    return AiohttpTransport(max_connections=100, keepalive_expiry=30)


class _Client(httpx.AsyncClient):
    """The ``AsyncClient`` :func:`create_client` makes; :func:`request` sends its plain
    requests straight to ``transport``."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport,
        default_encoding: str | Callable[[bytes], str] = "utf-8",
        **kwargs: Any,
    ) -> None:
        super().__init__(transport=transport, default_encoding=default_encoding, **kwargs)
        self.direct_transport = transport
        self.direct_encoding = default_encoding
        self._prototypes: dict[tuple[Any, ...], tuple[httpx.URL, httpx.Headers] | None] = {}
        self._bare: dict[tuple[Any, ...], tuple[yarl.URL, list[tuple[str, str]]] | None] = {}

    def can_send_directly(self, kwargs: dict[str, Any]) -> bool:
        """True when ``AsyncClient.request`` would do nothing more than :func:`request`'s
        direct path: no cookies, hooks, redirects or auth flow beyond basic auth."""
        auth = self.auth
        return (
            _DIRECT_KWARGS.issuperset(kwargs)
            and (auth is None or type(auth) is httpx.BasicAuth)
            and not self.follow_redirects
            and not self.cookies
            and not self.event_hooks["request"]
            and not self.event_hooks["response"]
        )

    def build_direct(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Request:
        """The request ``AsyncClient.build_request`` would build, plus basic auth.

        Public httpx API only. For a bytes body (a provider's form or JSON, encoded by
        itself) everything but the body and its length is the same from one call to the
        next, so the URL and headers are built once per (method, URL, headers) and each
        call makes one ``httpx.Request`` from them.
        """
        content = kwargs.get("content")
        extra = kwargs.get("headers")
        if (
            len(kwargs) == (2 if extra is not None else 1)
            and type(content) is bytes
            and content
            and (extra is None or type(extra) is dict)
        ):
            prototype = self.prototype(method, url, extra)
            if prototype is not None:
                target, headers = prototype
                # The body as a stream with its length set here: httpx's own encoding of
                # a bytes body would normalise the headers and read the body once more.
                built = httpx.Request(
                    method,
                    target,
                    headers=headers,
                    stream=httpx.ByteStream(content),
                    extensions={"timeout": self.timeout.as_dict()},
                )
                built.headers["Content-Length"] = str(len(content))
                return built
        built = self.build_request(method, url, **kwargs)
        if self.auth is not None:
            built = next(self.auth.auth_flow(built))  # basic auth: sets the header, no more
        return built

    def _key(self, method: str, url: str, extra: dict[str, Any] | None) -> tuple[Any, ...]:
        """What a prototype depends on: the call's method, URL and headers, and the
        client's headers and auth as they are now."""
        return (
            method,
            url,
            tuple(extra.items()) if extra else (),
            tuple(self.headers.raw),
            self.auth,
        )

    def prototype(
        self, method: str, url: str, extra: dict[str, Any] | None
    ) -> tuple[httpx.URL, httpx.Headers] | None:
        """The URL and headers of httpx's own request for a bytes body sent with these
        arguments, without the body's length (set per body); None when the caller set the
        length or encoding itself (then every call takes ``build_request``). Built once
        per (method, URL, headers, the client's headers and auth)."""
        key = self._key(method, url, extra)
        try:
            return self._prototypes[key]
        except KeyError:
            pass
        found: tuple[httpx.URL, httpx.Headers] | None = None
        if not (extra and any(k.lower() in ("content-length", "transfer-encoding") for k in extra)):
            sample = self.build_request(method, url, headers=extra, content=b"-")
            if self.auth is not None:
                sample = next(self.auth.auth_flow(sample))
            headers = httpx.Headers(sample.headers)
            del headers["content-length"]
            found = (sample.url, headers)
        if len(self._prototypes) >= _URL_CACHE_SIZE:
            self._prototypes.clear()
        self._prototypes[key] = found
        return found

    def bare(
        self, method: str, url: str, extra: dict[str, Any] | None
    ) -> tuple[yarl.URL, list[tuple[str, str]]] | None:
        """The prototype (:meth:`prototype`) as aiohttp takes it: the URL and the header
        list :class:`AiohttpTransport` makes of it, the body's length not included (the
        transport is handed the same list, the length appended, for a request built by
        :meth:`build_direct`). None where there is no prototype."""
        key = self._key(method, url, extra)
        try:
            return self._bare[key]
        except KeyError:
            pass
        found: tuple[yarl.URL, list[tuple[str, str]]] | None = None
        prototype = self.prototype(method, url, extra)
        if prototype is not None:
            target, headers = prototype
            found = (yarl.URL(str(target)), _headers(headers))
        if len(self._bare) >= _URL_CACHE_SIZE:
            self._bare.clear()
        self._bare[key] = found
        return found


_DIRECT_KWARGS = frozenset({"content", "data", "json", "headers"})
# The arguments of a send_body request as can_send_directly reads them (only the keys).
_CONTENT_ONLY: dict[str, Any] = {"content": b""}

_DIRECT_PATH = True
"""Whether :func:`request` takes the direct path at all; set False to send every request
through ``AsyncClient.request`` (the public path the direct one must equal: a
differential test compares the two on generated requests, tests/core/test_core_http_direct.py;
ledger: docs/benchmarks.md)."""


def create_client(
    context: ProviderContext, *, timeout: float, base_url: str = "", **kwargs: Any
) -> httpx.AsyncClient:
    """One pooled client for one provider instance; ``timeout`` (seconds) bounds connect and
    read alike. The wait for a free pooled connection has no limit of its own: the send's
    deadline (``routing.deadline``) bounds it, and it is never reported as a connection
    failure."""
    transport = context.transport if context.transport is not None else default_transport()
    return _Client(
        transport=transport,
        # No pool timeout: waiting for a free connection is bounded by the send's deadline.
        timeout=httpx.Timeout(timeout, pool=None),
        base_url=base_url,
        follow_redirects=False,
        **kwargs,
    )


def _never_connected(exc: BaseException) -> bool:
    """True when the fault provably happened before any request byte left."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        # Read the original: httpx-aiohttp, for one, maps every aiohttp connection error to
        # ConnectTimeout, including a server that closed without answering.
        # A URL aiohttp refuses (not http, unparsable) was never sent either.
        return isinstance(
            cause,
            aiohttp.ClientConnectorError
            | aiohttp.ConnectionTimeoutError
            | aiohttp.InvalidURL
            | aiohttp.NonHttpUrlClientError,
        )
    return isinstance(
        exc,
        httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol,
    )


def classify_transport_error(exc: httpx.HTTPError, provider: str) -> ProviderError:
    """Translate an httpx transport exception into the notifykit error it means."""
    # "connection refused: nothing listens at that address (ClientConnectorError)".
    kind = describe_transport_error(exc.__cause__ if exc.__cause__ is not None else exc)
    if _never_connected(exc):
        return ProviderUnavailable(
            f"{provider}: could not connect: {kind}", provider=provider, retryable=True
        )
    return UnknownOutcome(
        f"{provider}: no answer after the request was sent: {kind}; the vendor may have accepted it",
        provider=provider,
    )


def status_error(response: httpx.Response | Answer, provider: str) -> ProviderUnavailable:
    """The error for an HTTP answer that is not a usable one (5xx, 429, an HTML page)."""
    status = response.status_code
    return ProviderUnavailable(
        f"{provider}: HTTP {status} from the vendor",
        provider=provider,
        vendor_code=str(status),
        retryable=status in RETRYABLE_STATUS,
    )


async def _send_directly(
    client: _Client, method: str, url: str, kwargs: dict[str, Any]
) -> httpx.Response:
    """What ``client.request`` does for a plain request, in one step: the request built
    with the client's headers, timeout and basic auth, sent to the transport, read."""
    built = client.build_direct(method, url, kwargs)
    response = await client.direct_transport.handle_async_request(built)
    response.request = built
    response.default_encoding = client.direct_encoding
    if type(response.stream) is httpx.ByteStream:
        # The body is in memory already (notifykit's transports read it whole): read
        # (decoded) without the async iteration, which would do the same work in more
        # steps; reading closes the response, and a ByteStream holds nothing to release.
        response.read()
        return response
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


async def request(
    client: httpx.AsyncClient, method: str, url: str, *, provider: str, **kwargs: Any
) -> httpx.Response:
    """Send one request, translating every transport fault; the response body is read.

    Nothing foreign escapes: besides httpx's errors, a bad URL (never sent) is
    :class:`ProviderUnavailable`, and anything a transport lets through unmapped (an
    aiohttp error, an OS error, a bare timeout) is :class:`UnknownOutcome`, since the
    request may have left.
    """
    try:
        if _DIRECT_PATH and isinstance(client, _Client) and client.can_send_directly(kwargs):
            return await _send_directly(client, method, url, kwargs)
        return await client.request(method, url, **kwargs)
    except _FOREIGN as exc:
        raise _translated(exc, provider) from exc


async def send_body(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    content: bytes,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Send ``content`` (bytes the caller encoded: a form, JSON) and return the
    :class:`Answer`, read whole; every transport fault translated as by :func:`request`.

    What :func:`request` sends and answers, for less: on a :func:`create_client` client
    whose transport is notifykit's :class:`AiohttpTransport` (the default), a plain
    request goes straight to aiohttp, built from the prototype :func:`request` would use,
    and the answer is aiohttp's, without httpx's request and response objects (half the
    cost of the HTTP edge). Anything else (another transport, such as a test's
    ``httpx.MockTransport``, or a client with cookies or hooks) takes :func:`request`.
    """
    if (
        _BARE_PATH
        and _DIRECT_PATH
        and content
        and isinstance(client, _Client)
        and type(client.direct_transport) is AiohttpTransport
        and (headers is None or type(headers) is dict)
        and client.can_send_directly(_CONTENT_ONLY)
    ):
        bare = client.bare(method, url, headers)
        if bare is not None:
            target, listed = bare
            try:
                return await client.direct_transport.exchange(
                    method,
                    target,
                    [*listed, ("Content-Length", str(len(content)))],
                    content,
                    client.timeout.as_dict(),
                )
            except _FOREIGN as exc:
                raise _translated(exc, provider) from exc
    kwargs: dict[str, Any] = {"content": content}
    if headers is not None:
        kwargs["headers"] = headers
    response = await request(client, method, url, provider=provider, **kwargs)
    return Answer(response.status_code, response.headers, response.content)


_BARE_PATH = True
"""Whether :func:`send_body` sends plain requests straight to aiohttp (when the client's
transport is :class:`AiohttpTransport`); set False (or ``_DIRECT_PATH``) to send them all
through :func:`request` (the path the bare one must equal: a differential test compares the two
on generated requests and answers over loopback, tests/core/test_core_http_bare.py;
ledger: docs/benchmarks.md)."""

# What request() and send_body() translate into notifykit errors.
_FOREIGN: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.InvalidURL, *_UNMAPPED)


def _translated(exc: Exception, provider: str) -> ProviderError:
    """The notifykit error for a foreign exception of :data:`_FOREIGN`."""
    if isinstance(exc, httpx.HTTPError):
        return classify_transport_error(exc, provider)
    if isinstance(exc, httpx.InvalidURL):
        return ProviderUnavailable(f"{provider}: invalid request URL", provider=provider)
    return UnknownOutcome(
        f"{provider}: transport failed: {describe_transport_error(exc)}; the vendor may have "
        "accepted it",
        provider=provider,
    )
