"""The HTTP edge shared by provider plugins: client construction and fault classification.

The default transport is aiohttp's, through ``httpx-aiohttp``: httpx's own connection pool
spends quadratic time assigning requests to connections at concurrency 50 and above (see
docs/benchmarks.md), while the httpx API stays what plugins and tests use. Tests inject any
``httpx.AsyncBaseTransport`` (``httpx.MockTransport``, a respx router, or
``httpx.AsyncHTTPTransport()`` under ``respx.mock``) through :class:`ProviderContext`.

Transport faults are classified by whether the request may have reached the vendor:
no connection made (refused, DNS failure, connect timeout, pool timeout) is
:class:`ProviderUnavailable` with ``retryable=True``; anything after the request bytes may
have left (read or write timeout, reset, server closed without answering) is
:class:`UnknownOutcome`.
"""

from __future__ import annotations

from typing import Any

import httpx

from notifykit.errors import ProviderError, ProviderUnavailable, UnknownOutcome
from notifykit.provider import ProviderContext

__all__ = [
    "RETRYABLE_STATUS",
    "classify_transport_error",
    "create_client",
    "default_transport",
    "request",
    "status_error",
]

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})

try:  # aiohttp is a dependency of httpx-aiohttp; imported here only to read its exceptions.
    import aiohttp
    from httpx_aiohttp import AiohttpTransport
except ImportError:  # pragma: no cover - both are declared dependencies
    aiohttp = None  # type: ignore[assignment]
    AiohttpTransport = None  # type: ignore[assignment,misc]


# What a transport may let through unmapped: httpx-aiohttp re-raises an aiohttp error it has
# no httpx equivalent for (e.g. a malformed HTTP answer); OS errors and bare timeouts.
_UNMAPPED: tuple[type[Exception], ...] = (OSError, TimeoutError) + (
    (aiohttp.ClientError,) if aiohttp is not None else ()
)


def default_transport() -> httpx.AsyncBaseTransport:
    """notifykit's default transport: aiohttp's connection pool behind the httpx API."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=30)
    if AiohttpTransport is None:  # pragma: no cover
        return httpx.AsyncHTTPTransport(limits=limits)
    return AiohttpTransport(limits=limits, trust_env=False)


def create_client(
    context: ProviderContext, *, timeout: float, base_url: str = "", **kwargs: Any
) -> httpx.AsyncClient:
    """One pooled client for one provider instance; ``timeout`` (seconds) bounds connect and
    read alike."""
    transport = context.transport if context.transport is not None else default_transport()
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        base_url=base_url,
        follow_redirects=False,
        **kwargs,
    )


def _never_connected(exc: BaseException) -> bool:
    """True when the fault provably happened before any request byte left."""
    cause = exc.__cause__
    if aiohttp is not None and isinstance(cause, aiohttp.ClientError):
        # httpx-aiohttp maps every aiohttp connection error to ConnectTimeout, including a
        # server that closed without answering; read the original to tell them apart.
        return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return isinstance(
        exc,
        httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol,
    )


def classify_transport_error(exc: httpx.HTTPError, provider: str) -> ProviderError:
    """Translate an httpx transport exception into the notifykit error it means."""
    kind = type(exc.__cause__ if exc.__cause__ is not None else exc).__name__
    if _never_connected(exc):
        return ProviderUnavailable(
            f"{provider}: could not connect ({kind})", provider=provider, retryable=True
        )
    return UnknownOutcome(
        f"{provider}: no answer after the request was sent ({kind}); the vendor may have accepted it",
        provider=provider,
    )


def status_error(response: httpx.Response, provider: str) -> ProviderUnavailable:
    """The error for an HTTP answer that is not a usable one (5xx, 429, an HTML page)."""
    status = response.status_code
    return ProviderUnavailable(
        f"{provider}: HTTP {status} from the vendor",
        provider=provider,
        vendor_code=str(status),
        retryable=status in RETRYABLE_STATUS,
    )


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
        return await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise classify_transport_error(exc, provider) from exc
    except httpx.InvalidURL as exc:
        raise ProviderUnavailable(f"{provider}: invalid request URL", provider=provider) from exc
    except _UNMAPPED as exc:
        raise UnknownOutcome(
            f"{provider}: transport failed ({type(exc).__name__}); the vendor may have accepted it",
            provider=provider,
        ) from exc
