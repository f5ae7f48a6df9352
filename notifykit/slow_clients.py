"""Slow and stuck clients: request timeouts and a connection cap for ``notifykit serve``.

A vendor push is a few hundred bytes sent at once, so the receiver's HTTP server gives each
request little time and holds few connections at a time:

* ``[callbacks] header_timeout`` (seconds, default 5): from the first byte of a request (or
  from the connection, for the first one) until its headers are complete. A client that
  has not sent them by then is answered ``408`` and disconnected, however steadily it
  trickles bytes.
* ``[callbacks] body_timeout`` (seconds, default 10): from the end of the headers until the
  whole body has arrived; then the same.
* ``[callbacks] max_connections`` (default 500): connections held at once. One more is
  answered ``503`` at once, before anything is read, and closed, so that it holds its
  descriptor for as short a time as the event loop allows. The cap is lowered to what the
  process's descriptor limit (``RLIMIT_NOFILE``) allows, less
  :data:`RESERVED_DESCRIPTORS`, so that the server never runs out of descriptors: an
  ``accept`` that fails with "Too many open files" shuts every client out.

asyncio accepts up to the listen backlog's number of connections at once, before any of
them reaches the protocol (and so the cap): ``notifykit serve`` listens with a backlog of
:data:`ACCEPT_BACKLOG`, and the reserve covers a few such bursts of refused connections
still being closed, plus the process's own descriptors (store files, logs, the loop).

An idle keep-alive connection is closed by uvicorn after its ``timeout_keep_alive`` (5 s).
These limits apply to ``notifykit serve``; a host that mounts the receiver in its own
server sets its own (``docs/callbacks.md``).
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from notifykit.log import get_logger

__all__ = [
    "ACCEPT_BACKLOG",
    "RESERVED_DESCRIPTORS",
    "LimitedH11Protocol",
    "effective_cap",
    "limited_protocol",
]

log = get_logger("notifykit.callbacks")

ACCEPT_BACKLOG = 64
"""The listen backlog of ``notifykit serve``: also the most connections accepted at once."""

RESERVED_DESCRIPTORS = 64 + 3 * ACCEPT_BACKLOG
"""Descriptors kept free of held connections: the process's own (64) and three accept
bursts of refused connections not yet closed."""


def _answer(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
    )


_BUSY = _answer(b"503 Service Unavailable", b"too many connections")
_LATE = _answer(b"408 Request Timeout", b"request too slow")


def effective_cap(configured: int) -> int:
    """``configured``, lowered to what ``RLIMIT_NOFILE`` leaves after the reserve (at least 1)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - RESERVED_DESCRIPTORS))


class _Cap:
    """Connections held by one server, and whether the cap is being hit (logged once)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body timeouts and a connection cap (the
    values are set on the subclass :func:`limited_protocol` makes)."""

    header_timeout: ClassVar[float] = 5.0
    body_timeout: ClassVar[float] = 10.0
    cap: ClassVar[_Cap] = _Cap(500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._timing: object | None = None  # the h11 state being timed (IDLE, SEND_BODY)
        self._counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        cap = self.cap
        if cap.open >= cap.limit:
            cap.refused += 1
            if cap.refused == 1:
                log.warning("connection_cap_reached", max_connections=cap.limit)
            transport.write(_BUSY)
            transport.close()
            return
        if cap.refused:
            log.warning("connection_cap_cleared", refused_connections=cap.refused)
            cap.refused = 0
        cap.open += 1
        self._counted = True
        super().connection_made(transport)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._counted:
            return  # refused in connection_made: uvicorn never saw it
        self._counted = False
        self.cap.open -= 1
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._timer is None and self.conn.their_state is h11.IDLE:
            self._start(h11.IDLE, self.header_timeout)  # the next request's first bytes
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle now: uvicorn's keep-alive timeout takes over until the next request begins.
        self._stop_timer()

    def _watch(self) -> None:
        """Time the part of the request the client owes: its headers, then its body."""
        state = self.conn.their_state
        if state is h11.IDLE and self.cycle is None:
            if self._timing is not h11.IDLE:
                self._start(h11.IDLE, self.header_timeout)  # a new connection
        elif state is h11.SEND_BODY:
            if self._timing is not h11.SEND_BODY:
                self._start(h11.SEND_BODY, self.body_timeout)
        elif self._timing is not None and state is not h11.IDLE:
            self._stop_timer()  # complete (DONE) or broken: nothing more is owed

    def _start(self, state: object, seconds: float) -> None:
        self._stop_timer()
        self._timing = state
        self._timer = self.loop.call_later(seconds, self._too_slow)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timing = None

    def _too_slow(self) -> None:
        self._timer = None
        waiting_for = "headers" if self._timing is h11.IDLE else "body"
        self._timing = None
        log.info("request_timed_out", waiting_for=waiting_for)
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_LATE)
        self.transport.close()


def limited_protocol(
    *, header_timeout: float, body_timeout: float, max_connections: int
) -> type[LimitedH11Protocol]:
    """A :class:`LimitedH11Protocol` subclass with these values, for one server
    (``uvicorn.Config(app, http=limited_protocol(...))``); the cap is lowered per
    :func:`effective_cap` (logged as ``max_connections_lowered``)."""
    cap = effective_cap(max_connections)
    if cap < max_connections:
        log.warning(
            "max_connections_lowered",
            max_connections=max_connections,
            lowered_to=cap,
            reason="the descriptor limit (RLIMIT_NOFILE)",
        )
    return type(
        "ReceiverH11Protocol",
        (LimitedH11Protocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "cap": _Cap(cap),
        },
    )
