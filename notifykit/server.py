"""Listening sockets, and running an ASGI application on one in a background thread.

Every server notifykit starts on a socket it makes itself (``notifykit serve``,
:class:`ServerThread` for ``notifykit demo`` and the tests, the benchmarks' baselines) makes
it with :func:`listening_socket`. The socket is created with protocol ``IPPROTO_TCP``:
asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on connections whose socket
reports that protocol, and a socket made as ``socket.socket(AF_INET, SOCK_STREAM)`` reports
0. With Nagle on, the second write of each response waits for the client's delayed ACK
(about 40 ms on Linux), so a sequential client on a keep-alive connection gets about 25
answers a second (docs/benchmarks.md, "The stall").
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["ServerThread", "listening_socket"]


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one), not yet listening.

    The address family comes from ``host`` (an IPv4 or IPv6 address, or a name resolved
    the way ``bind`` would). The socket's protocol is ``IPPROTO_TCP`` and ``TCP_NODELAY``
    is set on it (Linux passes it on to accepted connections), so that a server on it, asyncio's
    or another, answers without waiting on the peer's ACK. Raises :class:`OSError` when
    the address cannot be resolved or bound (the socket is closed first).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class ServerThread:
    """Serve ``app`` with uvicorn on ``host:port`` (port 0: a free one) until ``stop()``."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.socket = listening_socket(host, port)
        """The listening socket (see :func:`listening_socket`)."""
        self.host = host
        self.port: int = self.socket.getsockname()[1]
        config.setdefault("log_level", "warning")
        config.setdefault("access_log", False)
        config.setdefault("lifespan", "off")
        # A client holding a request open (a sandbox hang) must not keep stop() waiting.
        config.setdefault("timeout_graceful_shutdown", 1)
        self._server = uvicorn.Server(uvicorn.Config(app, **config))
        self._thread = threading.Thread(
            target=self._run, name=f"notifykit-server-{self.port}", daemon=True
        )

    @property
    def uvicorn_server(self) -> uvicorn.Server:
        """The uvicorn server (``.started``, ``.server_state.connections``)."""
        return self._server

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self.socket]))

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            deadline.wait(0.01)
        raise RuntimeError(f"server on {self.url} did not start")

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.socket.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
