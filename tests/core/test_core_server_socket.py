"""Every server notifykit starts on its own socket answers without Nagle's stall.

asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on connections whose socket
reports protocol ``IPPROTO_TCP``; a socket made as ``socket.socket(AF_INET, SOCK_STREAM)``
reports 0, and then each response's second write waits for the client's delayed ACK
(about 40 ms). These tests read the option on real accepted connections, so they fail when
the stall comes back without timing anything.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from notifykit.cli import cli
from notifykit.server import ServerThread, listening_socket


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")),
]


def _nodelay(sock: Any) -> int:
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


@pytest.mark.parametrize("host", HOSTS)
def test_the_listening_socket_is_tcp_with_nagle_off(host: str) -> None:
    with listening_socket(host, 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
        assert _nodelay(sock) == 1
        assert sock.getsockname()[1] != 0


@pytest.mark.parametrize("host", HOSTS)
def test_asyncio_turns_nagle_off_on_connections_it_accepts_from_it(host: str) -> None:
    async def run() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.set_result(_nodelay(writer.get_extra_info("socket")))
            writer.close()

        sock = listening_socket(host, 0)
        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(host, sock.getsockname()[1])
            try:
                return await asyncio.wait_for(seen, 10)
            finally:
                writer.close()

    assert asyncio.run(run()) == 1


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("host", HOSTS)
def test_server_thread_connections_have_nagle_off(host: str) -> None:
    """The server behind the demo, the sandboxes' tests and the receiver's tests."""
    with ServerThread(_ok, host=host) as server, httpx.Client() as client:
        assert server.socket.proto == socket.IPPROTO_TCP
        assert client.get(server.url).text == "ok"  # the connection stays open (keep-alive)
        connections = list(server.uvicorn_server.server_state.connections)
        assert connections
        for connection in connections:
            assert _nodelay(connection.transport.get_extra_info("socket")) == 1


@pytest.mark.parametrize("host", HOSTS)
def test_serve_listens_on_a_socket_with_nagle_off(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[socket.socket] = []

    def run(self: uvicorn.Server, sockets: list[socket.socket]) -> None:
        seen.extend(sockets)
        for sock in sockets:
            assert sock.proto == socket.IPPROTO_TCP
            assert _nodelay(sock) == 1

    monkeypatch.setattr(uvicorn.Server, "run", run)
    config = tmp_path / "notifykit.toml"
    config.write_text('[store]\nurl = "memory://"\n', encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["serve", "--host", host, "--port", "0", "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert len(seen) == 1
    assert seen[0].family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
