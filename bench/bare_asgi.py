"""A bare ASGI endpoint on ``notifykit serve``'s server stack (uvicorn, same settings) that
reads and discards the body: the ceiling for callback ingestion. Prints ``PORT <n>``."""

from __future__ import annotations

from typing import Any

import uvicorn

from notifykit.server import listening_socket


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


if __name__ == "__main__":
    sock = listening_socket("127.0.0.1", 0)  # IPPROTO_TCP: no Nagle stall
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning")
    )
    server.run(sockets=[sock])
