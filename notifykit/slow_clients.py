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

How: uvicorn takes the HTTP protocol class as its documented ``http`` option. The class
given, :class:`LimitedProtocol`, is a plain :class:`asyncio.Protocol` that sits in front of
uvicorn's own h11 protocol and uses nothing of it but the :class:`asyncio.Protocol`
interface: it creates uvicorn's protocol with the arguments uvicorn passed, hands it every
connection it accepts, forwards every protocol call, and gives it a transport that
forwards to the real one (counting what it writes). It follows the client's bytes itself
to know when a request's headers and body are complete, without parsing them a second
time: the headers end at the first blank line (where h11 ends them) and the body is
``Content-Length`` bytes (none without one). A request framed any other way
(``Transfer-Encoding``, a repeated or unusual ``Content-Length``) is followed with an
``h11.Connection`` (h11's public API) from then on. It never reads or writes an attribute
of uvicorn's objects.

A request that arrives whole in one read is never timed; one that does not is timed by one
timer per connection, moved only when it would fire too early.

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
import re
import resource
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from notifykit.log import get_logger

__all__ = [
    "ACCEPT_BACKLOG",
    "RESERVED_DESCRIPTORS",
    "LimitedProtocol",
    "effective_cap",
    "limited_protocol",
]

log = get_logger("notifykit.callbacks")

ACCEPT_BACKLOG = 64
"""The listen backlog of ``notifykit serve``: also the most connections accepted at once."""

RESERVED_DESCRIPTORS = 64 + 3 * ACCEPT_BACKLOG
"""Descriptors kept free of held connections: the process's own (64) and three accept
bursts of refused connections not yet closed."""

_MAX_HEADER_BYTES = 64 * 1024
"""What the request reader buffers of incomplete headers at most (h11's limit is 16 KiB,
uvicorn's default too): above it the reader stops, and the header timer still runs."""


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


class _CountingTransport(asyncio.Transport):
    """The transport the inner protocol writes to: the real one, with the bytes it was
    given counted (so that a timeout knows whether an answer has begun), and what it
    writes in one turn of the event loop sent with one write at the end of the turn.

    uvicorn writes a response's head and its body separately; gathered, a small answer
    leaves in one ``send`` (one segment) rather than two. Closing, or ending the writing
    side, sends what is held first; aborting discards it, as it discards the real
    transport's buffer."""

    def __init__(self, real: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._real = real
        self._loop = loop
        self._held: list[bytes] = []  # written in this turn, not yet handed to the real one
        self.written = 0

    def flush(self) -> None:
        """Hand what is held to the real transport now."""
        held = self._held
        if held:
            self._held = []
            if not self._real.is_closing():  # else lost with the connection
                self._real.write(held[0] if len(held) == 1 else b"".join(held))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._real.is_closing()

    def close(self) -> None:
        self.flush()
        self._real.close()

    def abort(self) -> None:
        self._held = []
        self._real.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # Switching protocols (websockets) would take the connection out of the cap's count.
        raise RuntimeError("the callback receiver does not switch protocols")

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._real.get_protocol()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size() + sum(len(data) for data in self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return  # as the real transport: nothing to send
        self.written += len(data)
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))  # a copy, as the real transport keeps one

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._real.write_eof()

    def can_write_eof(self) -> bool:
        return self._real.can_write_eof()


_Owed = Literal["headers", "body"]

_BLANK_LINE = re.compile(b"\n\r?\n")
"""The end of a request's headers, as h11 finds it (its ``blank_line_regex``)."""

_FRAMING = re.compile(
    rb"^(content-length|transfer-encoding):[ \t]*([^\r\n]*?)[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)
"""A header line that frames the body. Every such line h11 reads matches (its field names
start a line, its values hold neither CR nor LF); a line h11 refuses may match too, and
then uvicorn answers 400 and closes the connection whatever the reader concludes."""

_FAST, _H11, _STOPPED = 0, 1, 2
"""How the client's requests are followed: by :func:`_body_length`, by h11, not at all."""


def _body_length(head: bytes) -> int | None:
    """The body length of the request whose headers are ``head``: its single plain
    ``Content-Length`` (0 without one); None when it is framed any other way."""
    found = _FRAMING.findall(head)
    if not found:
        return 0
    if len(found) == 1:
        name, value = found[0]
        if len(name) == len(b"content-length") and value.isdigit():
            return int(value)
    return None


class LimitedProtocol(asyncio.Protocol):
    """uvicorn's h11 protocol behind header and body timeouts and a connection cap (the
    values are set on the subclass :func:`limited_protocol` makes; see the module
    docstring for how)."""

    header_timeout: ClassVar[float] = 5.0
    body_timeout: ClassVar[float] = 10.0
    cap: ClassVar[_Cap] = _Cap(500)
    inner_protocol: ClassVar[Callable[..., asyncio.Protocol]] = H11Protocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._inner_args = (args, kwargs)  # uvicorn's, passed on unread
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._counting: _CountingTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._mode = _FAST
        self._head = b""  # the current request's bytes while its headers are incomplete
        self._body_left = 0  # what the current request's body still owes, in bytes
        self._reader: h11.Connection | None = None  # in the _H11 mode
        self._owed: _Owed | None = None  # what the client owes now, while timed
        self._deadline: float | None = None  # when it is due (None: from now, not yet set)
        self._timer: asyncio.TimerHandle | None = None
        self._written_at_start = 0  # the inner protocol's bytes when the request began

    @property
    def owed(self) -> _Owed | None:
        """What the client owes now: a request's ``"headers"`` (from its first byte, or
        from the connection for the first one), its ``"body"``, or None (between requests,
        or not followed any more: a request h11 refuses, which uvicorn answers itself)."""
        return self._owed

    # -- the asyncio.Protocol interface ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
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
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._counting = _CountingTransport(transport, self._loop)
        args, kwargs = self._inner_args
        self._inner = self.inner_protocol(*args, **kwargs)
        self._begin("headers")  # the first request is owed from the connection on
        self._arm()
        self._inner.connection_made(self._counting)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return  # refused: closing
        if self._mode == _FAST:
            self._read(data)
        elif self._mode == _H11:
            self._read_h11(data)
        if self._owed is not None:
            self._arm()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is None:
            return None
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        inner, self._inner = self._inner, None
        if inner is None:
            return  # refused in connection_made: uvicorn never saw it
        self.cap.open -= 1
        self._complete()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._mode = _STOPPED
        self._reader = None
        inner.connection_lost(exc)

    # -- what the client owes ----------------------------------------------------------------

    def _read(self, data: bytes) -> None:
        """Follow the client's requests by their framing: the headers owed from a
        request's first byte, the body from the end of its headers."""
        while data:
            if self._owed is None:
                self._begin("headers")  # the first byte of the next request
            if self._owed == "body":
                left = self._body_left
                if len(data) < left:
                    self._body_left = left - len(data)
                    return
                data = data[left:]
                self._complete()  # the answer is uvicorn's business now
                continue
            head = self._head + data if self._head else data
            if head[:1] == b"\n" or head[:2] == b"\r\n":
                # h11 refuses a request that starts with a blank line (uvicorn answers
                # 400); the header timer still runs.
                self._stop_reading()
                return
            end = _BLANK_LINE.search(head, max(0, len(self._head) - 2))
            if end is None:
                if len(head) > _MAX_HEADER_BYTES:
                    self._stop_reading()  # the header timer still runs
                else:
                    self._head = head
                return
            self._head = b""
            cut = end.end()
            length = _body_length(head[:cut])
            if length is None:  # framed otherwise: h11 follows from this request on
                self._mode = _H11
                self._reader = self._new_reader()
                self._read_h11(head)
                return
            data = head[cut:]
            if length:
                self._begin("body")
                self._body_left = length
            else:
                self._complete()

    @staticmethod
    def _new_reader() -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER_BYTES)

    def _read_h11(self, data: bytes) -> None:
        """Follow the client's requests with h11, for requests framed other than by a
        plain ``Content-Length``: the same timing as :meth:`_read`."""
        reader = self._reader
        if reader is None:
            return
        if self._owed is None and data:
            self._begin("headers")  # the first byte of the next request
        reader.receive_data(data)
        while True:
            try:
                event = reader.next_event()
            except h11.RemoteProtocolError:
                # uvicorn answers a malformed request itself (400); the timer still runs.
                self._stop_reading()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                if reader.their_state is h11.SEND_BODY:
                    self._begin("body")
            elif isinstance(event, h11.EndOfMessage):
                self._complete()  # the answer is uvicorn's business now
                leftover, closed = reader.trailing_data
                if closed:
                    self._stop_reading()
                    return
                self._reader = reader = self._new_reader()
                if not leftover:
                    return
                self._begin("headers")  # a pipelined request
                reader.receive_data(leftover)
            elif isinstance(event, h11.ConnectionClosed):
                self._stop_reading()
                return

    def _stop_reading(self) -> None:
        self._mode = _STOPPED
        self._reader = None
        self._head = b""

    def _begin(self, owed: _Owed) -> None:
        """The client owes ``owed`` from now on (the deadline is set by :meth:`_arm`)."""
        if owed == "headers":
            assert self._counting is not None
            self._written_at_start = self._counting.written
        self._owed = owed
        self._deadline = None

    def _complete(self) -> None:
        """Nothing is owed (a timer still pending finds so when it fires)."""
        self._owed = None
        self._deadline = None

    def _arm(self) -> None:
        """Make sure a timer fires by the deadline of what is owed."""
        assert self._loop is not None
        if self._deadline is None:
            seconds = self.header_timeout if self._owed == "headers" else self.body_timeout
            self._deadline = self._loop.time() + seconds
        timer = self._timer
        if timer is not None:
            if timer.when() <= self._deadline:
                return  # it fires first, and moves itself on to the deadline
            timer.cancel()
        self._timer = self._loop.call_at(self._deadline, self._check, self._deadline)

    def _check(self, scheduled: float) -> None:
        self._timer = None
        if self._owed is None or self._deadline is None:
            return
        if self._deadline > scheduled:
            self._arm()  # owed since the timer was set: due later
            return
        self._too_slow()

    def _too_slow(self) -> None:
        owed = self._owed
        self._complete()
        transport, counting = self._transport, self._counting
        if transport is None or counting is None or transport.is_closing():
            return
        log.info("request_timed_out", waiting_for=owed)
        counting.flush()  # what was written before goes first
        if counting.written == self._written_at_start:
            transport.write(_LATE)  # nothing of an answer to this request has gone out
        transport.close()


def limited_protocol(
    *, header_timeout: float, body_timeout: float, max_connections: int
) -> type[LimitedProtocol]:
    """A :class:`LimitedProtocol` subclass with these values, for one server
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
        "ReceiverProtocol",
        (LimitedProtocol,),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "cap": _Cap(cap),
        },
    )
