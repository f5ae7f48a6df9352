"""The sandbox's pushes: receipts and replies POSTed to the callback URL, as Veesing does."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

import httpx

from notifykit_veesing.sandbox_rules import (
    VENDOR_ZONE,
    Accepted,
    SandboxState,
    VeesingSandboxSettings,
)

__all__ = ["PUSH_ATTEMPTS", "REPLIES", "Pusher", "receivetime"]

PUSH_ATTEMPTS = 3
PUSH_TIMEOUT = 5.0
REPLY_DELAY = 0.05
REPLIES = ("收到", "好的，谢谢👍", "已收到验证码 OK")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"


def receivetime(at: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in China Standard Time, as the vendor writes it."""
    return at.astimezone(VENDOR_ZONE).strftime("%Y-%m-%d %H:%M:%S")


class Pusher:
    """Delivers pushes from background tasks on the server's event loop; retries a failed
    delivery a few times; ``aclose()`` cancels what is pending."""

    def __init__(
        self,
        settings: Callable[[], VeesingSandboxSettings],
        state: SandboxState,
        rng: random.Random,
        lock: threading.Lock,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._state = state
        self._rng = rng
        self._lock = lock
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def schedule(self, accepted: Accepted) -> None:
        """Push this message's receipt (and maybe a reply) later, if a callback URL is set."""
        url = self._settings().callback_url
        if url is None or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(self._deliver(url, accepted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, accepted: Accepted) -> None:
        settings = self._settings()
        await asyncio.sleep(settings.receipt_delay)
        with self._lock:
            undelivered = self._rng.random() < settings.undelivered_rate
            replies = self._rng.random() < settings.reply_rate
            text = self._rng.choice(REPLIES)
        async with httpx.AsyncClient(timeout=PUSH_TIMEOUT, trust_env=False) as client:
            await self._post(
                client,
                url,
                {
                    "mobile": accepted.phone,
                    "taskid": accepted.task_id,
                    "status": "0" if undelivered else "1",
                    "receivetime": receivetime(self._clock()),
                },
            )
            if replies:
                await asyncio.sleep(REPLY_DELAY)
                await self._post(
                    client,
                    url,
                    {
                        "mobile": accepted.phone,
                        "taskid": accepted.task_id,
                        "content": text,
                        "receivetime": receivetime(self._clock()),
                    },
                )

    async def _post(self, client: httpx.AsyncClient, url: str, fields: dict[str, str]) -> None:
        body = urlencode(fields, encoding="utf-8").encode("ascii")
        for attempt in range(PUSH_ATTEMPTS):
            try:
                response = await client.post(
                    url, content=body, headers={"content-type": FORM_CONTENT_TYPE}
                )
                if response.is_success:
                    with self._lock:
                        self._state.pushes_sent += 1
                        self._state.pushes.append(dict(fields))
                    return
            except httpx.HTTPError:
                pass
            if attempt + 1 < PUSH_ATTEMPTS:
                await asyncio.sleep(0.1 * 2**attempt)
        with self._lock:
            self._state.pushes_failed += 1

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (on the server's loop) until every scheduled push is done."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        """Cancel pending pushes, from the server's loop or any other."""
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # never pushed, or the server's loop ended and took its tasks with it
        if loop is asyncio.get_running_loop():
            await self._cancel()
        elif loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._cancel(), loop)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await asyncio.wrap_future(future)

    async def _cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
