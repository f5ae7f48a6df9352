"""Redis shared state: breakers and the recipient guard shared by every instance, atomic
under contention, degrading to local state while Redis is down and resuming by itself.

Two ``RedisState`` objects on one Redis stand for two processes here (each has its own
client and connections); tests/multi proves the same with real processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from notifykit.config import Config
from notifykit.routing.breaker import Admission, CircuitBreaker
from notifykit.routing.policy import BreakerEffect
from notifykit.store import MemoryStore

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

RedisState = pytest.importorskip("notifykit.shared.redis").RedisState
SharedAdmission = pytest.importorskip("notifykit.shared.redis").SharedAdmission

PHONE = "+8615612341090"

Make = Callable[..., Any]


def config(url: str, prefix: str, **breaker: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {"vs": {"type": "console"}},
            "routing": {"breaker": {"failure_threshold": 3, **breaker}},
            # A generous timeout: a slow machine must not look like an outage here.
            "shared_state": {"url": url, "key_prefix": prefix, "retry_after": 0, "timeout": 10},
        }
    )


@pytest.fixture
async def make(redis_url: str, redis_prefix: str) -> AsyncIterator[Make]:
    """``make(url=..., **breaker)``: a RedisState ("a process") with its own fallbacks."""
    made: list[Any] = []

    def build(url: str = redis_url, **breaker: Any) -> Any:
        cfg = config(url, redis_prefix, **breaker)
        fallback = {"vs": CircuitBreaker.from_config(cfg.routing.breaker)}
        state = RedisState.from_config(cfg, MemoryStore(), fallback)
        made.append(state)
        return state

    yield build
    for state in made:
        await state.close()


async def fail(
    state: Any, times: int, effect: BreakerEffect = BreakerEffect.VENDOR_FAILURE
) -> None:
    for _ in range(times):
        admission = await state.admit("vs")
        assert isinstance(admission, Admission), admission
        await state.record("vs", admission, effect, "ProviderUnavailable")


async def test_failures_of_one_process_open_the_breaker_for_another(make: Make) -> None:
    a, b = make(), make()
    await fail(a, 2)
    await fail(b, 0)
    assert isinstance(await b.admit("vs"), SharedAdmission)  # 2 < threshold 3
    await fail(b, 1)  # the third failure overall, counted across both
    reason = await a.admit("vs")
    assert isinstance(reason, str) and reason.startswith("circuit open (3 consecutive failures")
    assert not a.is_closed("vs")
    snap = a.snapshot("vs")
    assert snap["state"] == "open" and snap["consecutive_failures"] == 3
    assert snap["shared_state"] == "redis"
    # Neither process's own breaker saw anything: the state is Redis's.
    assert a._fallback["vs"].is_closed() and b._fallback["vs"].is_closed()


async def test_one_probe_at_a_time_across_processes_after_the_cooldown(make: Make) -> None:
    a, b = make(cooldown=0), make(cooldown=0)
    await fail(a, 3)
    answers = await asyncio.gather(*(s.admit("vs") for s in (a, b) * 10))
    probes = [x for x in answers if isinstance(x, Admission)]
    assert len(probes) == 1 and probes[0].probe
    assert all("a probe is in flight" in x for x in answers if isinstance(x, str))
    # The probe fails: open again (cooldown 0: the next caller is the next probe).
    await a.record("vs", probes[0], BreakerEffect.VENDOR_FAILURE, "ProviderUnavailable")
    second = await b.admit("vs")
    assert isinstance(second, Admission) and second.probe
    await b.record("vs", second, BreakerEffect.HEALTHY, "accepted")
    after = await a.admit("vs")
    assert isinstance(after, Admission) and not after.probe
    assert a.snapshot("vs")["state"] == "closed"


async def test_a_cancelled_probe_lets_the_next_caller_probe(make: Make) -> None:
    a, b = make(cooldown=0), make(cooldown=0)
    await fail(a, 3)
    probe = await a.admit("vs")
    assert isinstance(probe, Admission) and probe.probe
    assert isinstance(await b.admit("vs"), str)
    a.release("vs", probe)
    await asyncio.gather(*a._tasks)
    again = await b.admit("vs")
    assert isinstance(again, Admission) and again.probe


async def test_an_account_failure_takes_the_instance_out_for_everyone(make: Make) -> None:
    a, b = make(account_cooldown=300), make(account_cooldown=300)
    await fail(a, 1, BreakerEffect.ACCOUNT_FAILURE)
    reason = await b.admit("vs")
    assert isinstance(reason, str) and "account unusable: ProviderUnavailable" in reason
    assert 299 < b.snapshot("vs")["retry_in"] <= 300


async def test_recipient_guard_is_shared_and_atomic(make: Make) -> None:
    a, b = make(), make()
    answers = await asyncio.gather(*(s.check_recipient(PHONE, 60) for s in (a, b) * 10))
    assert answers.count(None) == 1
    waits = [w for w in answers if w is not None]
    assert all(59 < w <= 60 for w in waits)
    assert await a.check_recipient("+8613800138000", 60) is None


async def test_keys_carry_the_prefix_and_a_ttl_and_no_number(
    make: Make, redis_url: str, redis_prefix: str
) -> None:
    import redis.asyncio

    a = make()
    await fail(a, 1)
    await a.check_recipient(PHONE, 60)
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
        assert len(keys) == 2
        for key in keys:
            assert key.startswith(redis_prefix) and PHONE[1:] not in key
            assert await client.pttl(key) > 0
    finally:
        await client.aclose()


class Proxy:
    """A TCP proxy on loopback in front of Redis, to take Redis away and bring it back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._streams):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._streams.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_redis_down_falls_back_warns_once_and_resumes_by_itself(
    make: Make, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from urllib.parse import urlsplit

    target = urlsplit(redis_url)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    db = target.path or "/0"
    a = make(url=f"redis://127.0.0.1:{proxy.port}{db}")
    b = make()  # straight to Redis: sees what a writes once a is back
    await fail(a, 1)
    assert a.snapshot("vs")["shared_state"] == "redis"

    await proxy.stop()
    caplog.set_level(logging.WARNING, logger="notifykit.shared")
    for _ in range(3):  # sends go on: local breaker, store guard
        admission = await a.admit("vs")
        assert isinstance(admission, Admission) and not isinstance(admission, SharedAdmission)
        await a.record("vs", admission, BreakerEffect.VENDOR_FAILURE, "ProviderUnavailable")
    assert await a.check_recipient(PHONE, 60) is None  # the store's guard now
    assert await a.check_recipient(PHONE, 60) is not None
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    health = a.snapshot("vs")
    assert health["shared_state"].startswith("local (redis unreachable since")
    assert health["state"] == "open"  # the local breaker counted the outage's failures
    assert isinstance(await b.admit("vs"), SharedAdmission)  # Redis itself never saw them

    await proxy.start()  # Redis is back, on the same address
    await fail(a, 2)  # shared again: 1 before the outage + 2 = threshold 3
    assert a.snapshot("vs")["shared_state"] == "redis"
    assert any("available again" in r.getMessage() for r in caplog.records)
    assert isinstance(await b.admit("vs"), str)  # b sees the breaker a opened
    await proxy.stop()


async def test_a_password_in_the_url_query_never_shows(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    """redis-py reads ``?password=`` as well as ``user:password@``: both are secrets in
    the outage warning, the health answer and the configuration's repr."""
    with contextlib.closing(__import__("socket").socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the test runs: nothing listens there
    url = f"redis://:pw-user-part-7@127.0.0.1:{port}/0?password=pw-query-part-7&db=0"
    caplog.set_level(logging.WARNING, logger="notifykit.shared")
    state = make(url=url)
    await state.admit("vs")
    said = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert said, [r.getMessage() for r in caplog.records]
    shown = [*said, repr(config(url, "p:").shared_state), str(state.snapshot("vs"))]
    for text in shown:
        assert "pw-user-part-7" not in text and "pw-query-part-7" not in text, text
    assert "password=***" in said[0]
