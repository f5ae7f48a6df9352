"""A too-large push gets a 413 its sender can read, through real sockets.

A vendor's HTTP client typically sends its whole body before it reads the answer. A
receiver that answers after the headers and closes with body bytes still unread makes the
kernel reset the connection, and the vendor logs "connection reset" instead of the 413.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from notifykit.asgi import create_app, drain_bound
from notifykit.config import Config
from notifykit.server import ServerThread

LIMIT = 65536  # the default [callbacks] max_body_bytes


def _config(db: Path) -> Config:
    return Config.from_dict(
        {
            "providers": {"vs": {"type": "veesing", "app_id": "app", "app_key": "k"}},
            "store": {"url": f"sqlite:///{db}", "timeout": 2},
        }
    )


def _request(port: int, body: bytes, *, length: int | None = None) -> bytes:
    return (
        b"POST /callbacks/vs HTTP/1.1\r\n"
        + f"host: 127.0.0.1:{port}\r\n".encode()
        + b"content-type: application/x-www-form-urlencoded\r\n"
        + f"content-length: {len(body) if length is None else length}\r\n\r\n".encode()
        + body
    )


def _read_response(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """One HTTP/1.1 response with a content-length: (status line, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, value in (line.decode("latin-1").split(":", 1) for line in lines)
    }
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the response body"
        rest += chunk
    return status, headers, rest[:length]


def _serve(db: Path, **config: Any) -> ServerThread:
    return ServerThread(create_app(_config(db)), lifespan="on", **config)


def test_a_client_sending_its_whole_oversized_body_first_reads_the_413(tmp_path: Path) -> None:
    body = b"x=" + b"y" * 199_998  # 200,000 bytes, the size of the report in issue 12
    assert LIMIT < len(body) <= drain_bound(LIMIT)
    with (
        _serve(tmp_path / "r.sqlite3") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        # A small send buffer: the body cannot all wait in this side's kernel, so the
        # receiver must read it for sendall to finish.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        sock.sendall(_request(server.port, body))  # all of it, before reading anything
        status, headers, text = _read_response(sock)
        assert status.startswith(b"HTTP/1.1 413"), status
        assert text == b"request body too large"
        assert headers.get("connection") != "close"
        # The body was read to its end, so the connection serves the next request.
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\n" + f"host: 127.0.0.1:{server.port}\r\n\r\n".encode()
        )
        status, _, text = _read_response(sock)
        assert status.startswith(b"HTTP/1.1 200"), status
        assert text == b"ok"


def test_a_body_declared_beyond_the_drain_bound_is_cut_off_at_once(tmp_path: Path) -> None:
    """Nothing of it is read: the 413 comes after the headers alone, and the connection
    is closed."""
    with (
        _serve(tmp_path / "r.sqlite3") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(_request(server.port, b"", length=drain_bound(LIMIT) + 1))
        status, headers, _ = _read_response(sock)
        assert status.startswith(b"HTTP/1.1 413"), status
        assert headers.get("connection") == "close"
        assert sock.recv(1) == b""  # closed by the receiver


def test_a_body_streamed_beyond_the_drain_bound_is_cut_off(tmp_path: Path) -> None:
    """No content-length: the receiver counts as it reads, and stops at the bound."""
    bound = drain_bound(LIMIT)
    with (
        _serve(tmp_path / "r.sqlite3") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST /callbacks/vs HTTP/1.1\r\n"
            + f"host: 127.0.0.1:{server.port}\r\n".encode()
            + b"content-type: application/x-www-form-urlencoded\r\n"
            + b"transfer-encoding: chunked\r\n\r\n"
        )
        chunk = b"y" * 65536
        sent = 0
        closed = False
        # Up to three times the bound: the receiver must stop reading long before.
        while sent < 3 * bound:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sent += len(chunk)
        if not closed:
            # Everything fitted in the socket buffers: the answer (or the reset)
            # is there to read.
            try:
                status, headers, _ = _read_response(sock)
            except ConnectionResetError:
                closed = True
            else:
                assert status.startswith(b"HTTP/1.1 413"), status
                assert headers.get("connection") == "close"
                closed = True
        assert closed
