"""``[shared_state] url = "redis://…"``: breakers and the recipient guard in Redis.

Each read-modify-write is one Lua script (``lua/*.lua`` beside this module), timed by
Redis's own clock, so that no two processes race and no machine's clock matters. Keys
carry ``key_prefix`` and a TTL: ``<prefix>breaker:<instance>`` (a hash) and
``<prefix>recipient:<sha256 of the number>`` (the number itself never becomes a key).

Redis must not become the weak point: when a call fails or takes longer than
``[shared_state] timeout``, this process falls back to its own breakers and the store's
recipient guard, logs one warning for the outage, reports it in ``health()``, and tries
Redis again every ``retry_after`` seconds until it answers (logged once more).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from notifykit.config import mask_url_password
from notifykit.routing.breaker import Admission, Breaker
from notifykit.routing.policy import BreakerEffect
from notifykit.shared.base import SharedState

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from notifykit.config import Config
    from notifykit.store.base import Store

__all__ = ["RedisState", "SharedAdmission"]

log = logging.getLogger("notifykit.shared")

_MIN_TTL = 2 * 86400.0
"""Seconds a breaker key lives after its last change at least (refreshed by each one)."""


def _lua(name: str) -> str:
    return (resources.files(__package__ or "notifykit.shared") / "lua" / name).read_text("utf-8")


@dataclass(frozen=True, slots=True)
class SharedAdmission(Admission):
    """An admission Redis gave (its verdict goes back to Redis)."""


class _Down(Exception):
    """Redis did not answer: use the local fallback."""


@dataclass(slots=True)
class _Seen:
    """A breaker as Redis last described it, and when (``time.monotonic``)."""

    open: bool
    retry_in: float
    failures: int
    reason: str
    at: float


class RedisState(SharedState):
    """Shared state in one Redis (see the module docstring).

    ``fallback``: the router's own breakers, one per provider instance, used while Redis
    is unreachable; ``store``: whose recipient guard is used meanwhile."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        store: Store,
        fallback: Mapping[str, Breaker],
        failure_threshold: int,
        cooldown: float,
        account_cooldown: float,
        probe_lease: float,
        timeout: float,
        retry_after: float,
        where: str = "redis",
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._store = store
        self._fallback = fallback
        self._threshold = failure_threshold
        self._cooldown_ms = int(cooldown * 1000)
        self._account_ms = int(account_cooldown * 1000)
        self._probe_ms = max(1, int(probe_lease * 1000))
        self._ttl_ms = int(max(_MIN_TTL, 2 * cooldown, 2 * account_cooldown) * 1000)
        self._timeout = timeout
        self._retry_after = retry_after
        self._where = where
        self._admit: AsyncScript = client.register_script(_lua("breaker_admit.lua"))
        self._record: AsyncScript = client.register_script(_lua("breaker_record.lua"))
        self._release: AsyncScript = client.register_script(_lua("breaker_release.lua"))
        self._claim: AsyncScript = client.register_script(_lua("recipient_claim.lua"))
        self._unclaim: AsyncScript = client.register_script(_lua("recipient_release.lua"))
        self._seen: dict[str, _Seen] = {}
        self._down_since: datetime | None = None
        self._retry_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(
        cls, config: Config, store: Store, fallback: Mapping[str, Breaker]
    ) -> RedisState:
        shared, breaker = config.shared_state, config.routing.breaker
        assert shared.url is not None
        client = Redis.from_url(
            shared.url,
            decode_responses=True,
            socket_timeout=shared.timeout,
            socket_connect_timeout=shared.timeout,
            # No retries of its own: a failed call falls back at once (see _call).
            retry=Retry(NoBackoff(), 0),
        )
        return cls(
            client,
            prefix=shared.key_prefix,
            store=store,
            fallback=fallback,
            failure_threshold=breaker.failure_threshold,
            cooldown=breaker.cooldown,
            account_cooldown=breaker.account_cooldown,
            # A probe's send ends by its deadline: after that, another caller may probe.
            probe_lease=config.routing.deadline + 1.0,
            timeout=shared.timeout,
            retry_after=shared.retry_after,
            where=mask_url_password(shared.url),
        )

    def __repr__(self) -> str:
        return f"<RedisState {self._where!r} prefix={self._prefix!r} {self.status}>"

    @property
    def available(self) -> bool:
        """False while this process is using its local fallback."""
        return self._down_since is None

    @property
    def status(self) -> str:
        """``"redis"``, or ``"local (redis unreachable since …)"`` during an outage."""
        if self._down_since is None:
            return "redis"
        return f"local (redis unreachable since {self._down_since:%Y-%m-%d %H:%M:%SZ})"

    async def close(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        await self._client.aclose()

    # -- the one way to Redis ---------------------------------------------------------------

    async def _call(self, script: AsyncScript, key: str, *args: Any) -> Any:
        if self._down_since is not None and time.monotonic() < self._retry_at:
            raise _Down
        try:
            async with asyncio.timeout(self._timeout):
                result = await script(keys=[key], args=list(args))
        except (RedisError, OSError, TimeoutError) as exc:
            self._retry_at = time.monotonic() + self._retry_after
            if self._down_since is None:
                self._down_since = datetime.now(UTC)
                log.warning(
                    "shared state unavailable (%s at %s): circuit breakers and the recipient "
                    "guard are process-local until it answers again",
                    type(exc).__name__,
                    self._where,
                    extra={"error_type": type(exc).__name__},
                )
            raise _Down from None
        if self._down_since is not None:
            log.warning(
                "shared state available again (%s): breakers and the recipient guard are "
                "shared again",
                self._where,
            )
            self._down_since = None
        return result

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def _remember(
        self, instance: str, is_open: int, retry_ms: int, failures: int, reason: str
    ) -> None:
        self._seen[instance] = _Seen(
            bool(is_open), retry_ms / 1000, int(failures), reason or "", time.monotonic()
        )

    # -- breakers -----------------------------------------------------------------------------

    async def admit(self, instance: str) -> Admission | str:
        try:
            admitted, probe, retry_ms, failures, reason = await self._call(
                self._admit, self._key("breaker", instance), self._probe_ms
            )
        except _Down:
            return self._fallback[instance].admit()
        is_open = not admitted or bool(probe)
        self._remember(instance, int(is_open), int(retry_ms), int(failures), reason)
        if admitted:
            return SharedAdmission(probe=bool(probe))
        if probe:
            return f"circuit half-open, a probe is in flight ({reason})"
        return f"circuit open ({reason}); next try in {int(retry_ms) / 1000:.1f} s"

    async def record(
        self, instance: str, admission: Admission, effect: BreakerEffect, detail: str
    ) -> None:
        local = self._fallback[instance]
        if not isinstance(admission, SharedAdmission):
            local.record(admission, effect, detail)  # admitted during an outage
            return
        try:
            answer = await self._call(
                self._record,
                self._key("breaker", instance),
                1 if admission.probe else 0,
                effect.value,
                detail,
                self._threshold,
                self._cooldown_ms,
                self._account_ms,
                self._ttl_ms,
            )
        except _Down:
            local.record(Admission(), effect, detail)
            return
        self._remember(instance, *answer)

    def release(self, instance: str, admission: Admission) -> None:
        if not isinstance(admission, SharedAdmission):
            self._fallback[instance].release(admission)
            return
        if admission.probe:
            task = asyncio.get_running_loop().create_task(self._release_probe(instance))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _release_probe(self, instance: str) -> None:
        with contextlib.suppress(_Down):  # down: the probe's lease ends by itself
            await self._call(self._release, self._key("breaker", instance))

    def is_closed(self, instance: str) -> bool:
        seen = self._seen.get(instance)
        if self._down_since is not None or seen is None:
            return self._fallback[instance].is_closed()
        return not seen.open

    def snapshot(self, instance: str) -> dict[str, Any]:
        seen = self._seen.get(instance)
        if self._down_since is not None or seen is None:
            return {**self._fallback[instance].snapshot(), "shared_state": self.status}
        retry_in = max(0.0, seen.retry_in - (time.monotonic() - seen.at)) if seen.open else None
        state = "closed" if not seen.open else ("open" if retry_in else "half_open")
        return {
            "state": state,
            "consecutive_failures": seen.failures,
            "reason": seen.reason or None,
            "retry_in": None if retry_in is None else round(retry_in, 3),
            "shared_state": self.status,
        }

    # -- the recipient guard ---------------------------------------------------------------------

    def _recipient_key(self, phone: str) -> str:
        return self._key("recipient", hashlib.sha256(phone.encode()).hexdigest()[:32])

    async def check_recipient(
        self, phone: str, interval: float, *, message_id: str | None = None
    ) -> float | None:
        try:
            left_ms = await self._call(
                self._claim,
                self._recipient_key(phone),
                max(1, int(interval * 1000)),
                message_id or "",
            )
        except _Down:
            return await self._store.check_recipient(phone, interval, message_id=message_id)
        return None if int(left_ms) < 0 else int(left_ms) / 1000

    async def release_recipient(self, phone: str, message_id: str) -> bool:
        try:
            return bool(await self._call(self._unclaim, self._recipient_key(phone), message_id))
        except _Down:
            return False  # the claim ends with its interval (the store's fallback claim
            # is given back by the store's own sweep)
