"""The bare endpoint a user would write instead of notifykit's receiver: a Starlette route
that reads the body and answers ``200 ok``, nothing stored.

The benchmark runs it the ordinary way, with the ``uvicorn`` command line, which binds its
own port (``uvicorn bench.bare_starlette:app --port 0``): no socket of notifykit's making
is involved, so a stall in notifykit's sockets cannot hide in the baseline.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def receive(request: Request) -> PlainTextResponse:
    await request.body()
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/callbacks/{provider}", receive, methods=["POST"])])
