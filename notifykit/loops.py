"""What notifykit holds on an event loop, released when that loop shuts down.

Connection pools, locks and background tasks belong to the event loop that made them. A
notifier made once and used from several loops in turn (``asyncio.run(a())`` then
``asyncio.run(b())``, a test framework's loop per test) follows the running loop: what it
held on a loop is released on that loop while the loop shuts down, and made again on the
next loop that uses it.

"While the loop shuts down" is the loop's own finalisation of asynchronous generators
(``loop.shutdown_asyncgens()``), which ``asyncio.run``, ``asyncio.Runner`` and the test
runners' loops call after cancelling the loop's tasks and before closing it. A
:class:`ShutdownHook` is such a generator, suspended until then. A loop closed without that
call (``loop.close()`` alone) leaves its resources to the next loop, which drops them
without I/O (the sockets of a closed loop can no longer be shut down politely).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from notifykit.log import get_logger

__all__ = ["ShutdownHook"]

_log = get_logger("notifykit.loops")


class ShutdownHook:
    """Run ``release()`` on the running event loop when that loop shuts down.

    ``await hook.arm()`` on the loop to watch; ``disarm()`` when the resources were
    released another way. ``release`` runs at most once; an exception from it is logged
    (its class only), never raised into the loop's shutdown. The hook must be kept
    referenced while armed (the loop holds its generator weakly).
    """

    __slots__ = ("_gen", "_release")

    def __init__(self, release: Callable[[], Awaitable[None]]) -> None:
        self._release: Callable[[], Awaitable[None]] | None = release
        self._gen: AsyncGenerator[None, None] | None = None

    async def arm(self) -> None:
        """Register with the running loop (its first-iteration hook) and suspend."""
        if self._gen is None:
            self._gen = self._wait()
            await anext(self._gen)

    def disarm(self) -> None:
        """Forget ``release``: the loop's shutdown finds nothing left to do."""
        self._release = None

    async def _wait(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            release, self._release = self._release, None
            if release is not None:
                try:
                    await release()
                except Exception as exc:  # the loop is shutting down: say so, go on
                    _log.warning("loop_release_failed", error_type=type(exc).__name__)
