"""The recipient guard and idempotency keys: in one process, and across two sharing SQLite."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from notifykit import errors
from notifykit.models import DeliveryStatus, SmsMessage
from notifykit.store.memory import MemoryStore

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
OTHER = "+8615612341091"


def message(key: str | None = None, to: str = PHONE, template: str = "verify_code") -> SmsMessage:
    return SmsMessage(to=to, template=template, params={"code": "4821"}, idempotency_key=key)


async def test_recipient_guard_refuses_a_second_send_locally(make_router) -> None:
    h = make_router({"recipient_min_interval": "60s"})
    await h.router.send(message())
    with pytest.raises(errors.RecipientRateLimited) as info:
        await h.router.send(message())
    assert h["primary"].calls == 1
    assert info.value.attempts == []
    assert PHONE not in str(info.value)
    assert "+86156****1090" in str(info.value)
    assert "routing.recipient_min_interval" in str(info.value)
    records = await h.store.list_messages(status=DeliveryStatus.FAILED)
    assert len(records) == 1
    await h.router.send(message(to=OTHER))  # another number is not held back
    assert h["primary"].calls == 2


async def test_no_guard_without_an_interval(make_router) -> None:
    h = make_router()
    await h.router.send(message())
    await h.router.send(message())
    assert h["primary"].calls == 2


async def test_repeat_with_the_same_key_returns_the_first_result(make_router) -> None:
    h = make_router()
    h["primary"].fail_next(errors.ProviderUnavailable)
    first = await h.router.send(message("order-17"))
    again = await h.router.send(message("order-17"))
    assert not first.replayed and again.replayed  # nothing was sent the second time
    assert again.model_copy(update={"replayed": False}) == first
    assert again.provider == "backup"
    assert [a.outcome for a in again.attempts] == ["failed", "accepted"]
    assert h["primary"].calls + h["backup"].calls == 2
    assert len(await h.store.list_messages()) == 1


async def test_repeat_is_not_held_back_by_the_recipient_guard(make_router) -> None:
    h = make_router({"recipient_min_interval": 60})
    first = await h.router.send(message("k"))
    again = await h.router.send(message("k"))
    assert again.replayed and again.model_copy(update={"replayed": False}) == first


async def test_key_reused_for_another_message_is_refused(make_router) -> None:
    h = make_router()
    await h.router.send(message("k"))
    with pytest.raises(errors.InvalidMessage, match="idempotency key already used"):
        await h.router.send(message("k", to=OTHER))
    with pytest.raises(errors.InvalidMessage):
        await h.router.send(message("k", template="other"))
    assert h["primary"].calls == 1


async def test_failed_first_send_gives_the_key_back(make_router) -> None:
    h = make_router()
    h["primary"].fail_next(errors.ProviderError)
    h["backup"].fail_next(errors.TemplateError)
    with pytest.raises(errors.AllProvidersFailed):
        await h.router.send(message("k"))
    retried = await h.router.send(message("k"))
    assert retried.provider == "primary"
    assert h["primary"].calls == 2


async def test_unknown_first_send_never_sends_again(make_router) -> None:
    h = make_router()
    h["primary"].fail_next(errors.UnknownOutcome)
    with pytest.raises(errors.UnknownOutcome):
        await h.router.send(message("k"))
    with pytest.raises(errors.UnknownOutcome, match="may have reached a vendor") as info:
        await h.router.send(message("k"))
    assert [a.error_type for a in info.value.attempts] == ["UnknownOutcome"]
    assert h["primary"].calls == 1
    assert h["backup"].calls == 0


async def test_unknown_then_failed_keeps_the_key(make_router) -> None:
    h = make_router({"on_unknown_outcome": "failover"})
    h["primary"].fail_next(errors.UnknownOutcome)
    h["backup"].fail_next(errors.ProviderError)
    with pytest.raises(errors.AllProvidersFailed):
        await h.router.send(message("k"))
    # The first vendor may have sent it: the record says unknown, not failed.
    (record,) = await h.store.list_messages()
    assert record.status is DeliveryStatus.UNKNOWN
    with pytest.raises(errors.UnknownOutcome):
        await h.router.send(message("k"))
    assert h["primary"].calls + h["backup"].calls == 2


async def test_local_refusal_gives_the_key_back(make_router) -> None:
    store = MemoryStore()
    h = make_router({"recipient_min_interval": 60}, store=store)
    await h.router.send(message())
    with pytest.raises(errors.RecipientRateLimited):
        await h.router.send(message("k"))
    assert await store.claim_idempotency_key("k", "someone-else", 60) is None


async def test_concurrent_repeat_waits_for_the_first(make_router) -> None:
    h = make_router(providers={"primary": {"delay": 0.05}, "backup": {}})
    results = await asyncio.gather(*(h.router.send(message("k")) for _ in range(5)))
    assert len({r.message_id for r in results}) == 1
    assert h["primary"].calls == 1


async def test_repeat_waits_no_longer_than_its_deadline(make_router) -> None:
    h = make_router({"deadline": 0.1}, providers={"primary": {"delay": 5}, "backup": {}})
    outcomes = await asyncio.gather(
        *(h.router.send(message("k")) for _ in range(2)), return_exceptions=True
    )
    assert all(isinstance(o, errors.UnknownOutcome) for o in outcomes)
    assert h["primary"].calls == 1


async def test_key_left_by_a_dead_failed_send_is_taken_back(make_router) -> None:
    h = make_router()
    h["primary"].fail_next(errors.InvalidRecipient)
    with pytest.raises(errors.InvalidRecipient):
        await h.router.send(message("k"))
    (record,) = await h.store.list_messages()
    # As if the process had died before giving the key back.
    assert await h.store.claim_idempotency_key("k", record.message_id, 60) is None
    result = await h.router.send(message("k"))
    assert result.message_id != record.message_id


# -- across processes ---------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, pathlib, sys, time
    from notifykit import AsyncNotifier, Config
    from notifykit.errors import NotifyKitError

    async def main(db, key, barrier):
        config = Config.from_dict({
            "providers": {"fake": {"type": "memory", "delay": 0.2}},
            "routing": {"recipient_min_interval": "60s", "deadline": 10},
            "store": {"url": "sqlite:///" + db},
        })
        async with AsyncNotifier(config) as notifier:
            # A file barrier: both processes are up, with the store open, before either sends.
            barrier = pathlib.Path(barrier)
            (barrier / f"ready-{os.getpid()}").touch()
            give_up = time.monotonic() + 20
            while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < give_up:
                await asyncio.sleep(0.005)
            try:
                result = await notifier.send(
                    "+8615612341090", template="verify_code", params={"code": "1"},
                    idempotency_key=key or None,
                )
                out = {"ok": result.message_id}
            except NotifyKitError as exc:
                out = {"error": type(exc).__name__}
            out["calls"] = notifier.providers["fake"].calls
            print(json.dumps(out))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
    """
)


def run_two(tmp_path: Path, key: str) -> list[dict[str, object]]:
    script = tmp_path / "send.py"
    script.write_text(SCRIPT)
    db = tmp_path / "shared.sqlite3"
    env = {**os.environ, "NOTIFYKIT_LOAD_PLUGINS": ""}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), key, str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_recipient_guard_holds_across_two_processes(tmp_path: Path) -> None:
    results = run_two(tmp_path, key="")
    assert sorted("ok" in r for r in results) == [False, True]
    refused = next(r for r in results if "error" in r)
    assert refused == {"error": "RecipientRateLimited", "calls": 0}
    assert sum(int(r["calls"]) for r in results) == 1  # type: ignore[call-overload]


def test_idempotency_holds_across_two_processes(tmp_path: Path) -> None:
    results = run_two(tmp_path, key="signup-42")
    assert all("ok" in r for r in results), results
    assert results[0]["ok"] == results[1]["ok"]
    assert sum(int(r["calls"]) for r in results) == 1  # type: ignore[call-overload]


def test_the_fingerprint_key_is_shared_by_the_processes_of_one_deployment() -> None:
    from pydantic import SecretStr

    from notifykit.default_plugins.memory import MemoryOptions
    from notifykit.routing.guard import fingerprint_key

    class Keyed(MemoryOptions):
        api_key: SecretStr

    verify = SecretStr("a-verify-secret-of-some-length")
    assert fingerprint_key(verify, []) == fingerprint_key(verify, [])
    keyed = [Keyed(api_key=SecretStr("key-1"))]
    assert fingerprint_key(None, keyed) == fingerprint_key(
        None, [Keyed(api_key=SecretStr("key-1"))]
    )
    assert fingerprint_key(None, keyed) != fingerprint_key(
        None, [Keyed(api_key=SecretStr("key-2"))]
    )
    # No secret anywhere: one key per process, never shared by accident.
    assert fingerprint_key(None, [MemoryOptions()]) != fingerprint_key(None, [MemoryOptions()])


async def test_a_fingerprint_under_another_key_is_not_compared(make_router) -> None:
    store = MemoryStore()
    first = make_router(store=store)
    other = make_router(store=store)  # another process: its own per-process key
    sent = await first.router.send(message("k"))
    changed = message("k").model_copy(update={"params": {"code": "999999"}})
    # Not provably different (another key): the number and template match, so a repeat.
    assert (await other.router.send(changed)).message_id == sent.message_id
    with pytest.raises(errors.InvalidMessage, match="different message"):
        await first.router.send(changed)
