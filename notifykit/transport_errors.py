"""Plain-English meanings for transport faults, shown beside the exception's class name.

``could not connect: connection refused, nothing listens at that address
(ClientConnectorError)`` says what happened; the class name alone (``ClientConnectorError``)
says only which library noticed. The class name stays, for searching and for bug reports.
"""

from __future__ import annotations

import errno

__all__ = ["describe_transport_error", "transport_meaning"]

_BY_CLASS: dict[str, str] = {
    # aiohttp (notifykit's default transport); the most specific class comes first in an MRO
    "ClientConnectorDNSError": "the vendor's host name did not resolve (DNS)",
    "ClientConnectorCertificateError": "the vendor's TLS certificate is not trusted",
    "ClientConnectorSSLError": "the TLS handshake failed",
    "ClientSSLError": "the TLS handshake failed",
    "ClientProxyConnectionError": "could not connect to the proxy",
    "ClientConnectorError": "could not open a connection",
    "ConnectionTimeoutError": "no connection within the timeout",
    "SocketTimeoutError": "no answer within the timeout",
    "ServerTimeoutError": "no answer within the timeout",
    "ServerDisconnectedError": "the server closed the connection without answering",
    "ClientPayloadError": "the answer's body was cut off or malformed",
    "ClientResponseError": "the answer was not valid HTTP",
    "NonHttpUrlClientError": "the URL is not an http(s) URL",
    "InvalidURL": "the URL is not valid",
    # httpx
    "ConnectTimeout": "no connection within the timeout",
    "ReadTimeout": "no answer within the timeout",
    "WriteTimeout": "the request could not be sent within the timeout",
    "PoolTimeout": "no free pooled connection within the timeout",
    "ConnectError": "could not open a connection",
    "ReadError": "the connection failed while the answer was read",
    "WriteError": "the connection failed while the request was sent",
    "RemoteProtocolError": "the server closed the connection or answered with broken HTTP",
    "LocalProtocolError": "the request could not be written as HTTP",
    "UnsupportedProtocol": "the URL is not an http(s) URL",
    "ProxyError": "the proxy failed",
    # the standard library
    "ConnectionRefusedError": "connection refused: nothing listens at that address",
    "ConnectionResetError": "the connection was reset by the other end",
    "ConnectionAbortedError": "the connection was aborted",
    "BrokenPipeError": "the other end closed the connection",
    "TimeoutError": "timed out",
    "OSError": "an operating-system error on the connection",
}

_BY_ERRNO: dict[int, str] = {
    errno.ECONNREFUSED: "connection refused: nothing listens at that address",
    errno.ECONNRESET: "the connection was reset by the other end",
    errno.EHOSTUNREACH: "the host is unreachable",
    errno.ENETUNREACH: "the network is unreachable",
    errno.ETIMEDOUT: "the connection timed out",
    errno.EADDRNOTAVAIL: "the address cannot be used from this host",
}


def _errno_of(exc: BaseException) -> int | None:
    # aiohttp's ClientConnectorError carries the OSError it wraps as ``os_error`` (public).
    for candidate in (getattr(exc, "os_error", None), exc, exc.__cause__, exc.__context__):
        if isinstance(candidate, OSError) and candidate.errno in _BY_ERRNO:
            return candidate.errno
    return None


def transport_meaning(exc: BaseException) -> str | None:
    """notifykit's English for a transport exception (its class, refined by the OS error
    number where there is one); None for a class not in the table."""
    number = _errno_of(exc)
    if number is not None:
        return _BY_ERRNO[number]
    for cls in type(exc).__mro__:
        meaning = _BY_CLASS.get(cls.__name__)
        if meaning is not None:
            return meaning
    return None


def describe_transport_error(exc: BaseException) -> str:
    """``"<meaning> (<ClassName>)"``, or the class name alone when there is no meaning;
    never the exception's own text (it can hold a URL with a credential in it)."""
    meaning = transport_meaning(exc)
    kind = type(exc).__name__
    return f"{meaning} ({kind})" if meaning is not None else kind
