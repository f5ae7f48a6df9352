"""The provider against the sandbox over real loopback sockets: both signatures, the
rules, QuerySendDetails and the reconciler, balance, batch pushes with retries."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from notifykit_aliyun import AliyunSandbox

from notifykit.asgi import create_app
from notifykit.errors import (
    AuthenticationError,
    InsufficientBalance,
    NotSupported,
    RecipientRateLimited,
    TemplateError,
)
from notifykit.events import DeliveryReceipt, InboundMessage
from notifykit.models import DeliveryStatus, SmsMessage
from notifykit.server import ServerThread

from .conftest import CODE, MOBILE, SIGN, aliyun_config, make_notifier, sandbox_running

pytestmark = pytest.mark.anyio

TOKEN = "cb-token-5f1e0a"


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("method", ["HMAC-SHA1", "ACS3-HMAC-SHA256"])
async def test_send_with_either_signature_then_poll_to_delivered(method: str) -> None:
    async with (
        sandbox_running(sign_name=[SIGN], template_code=[f"{CODE}:code"]) as (sb, url),
        make_notifier(aliyun_config(url, sb, signature_method=method)) as n,
    ):
        result = await n.send(MOBILE, template="verify_code", params={"otp": "4821"})
        (sms,) = sb.state.sent.values()
        assert result.provider_message_id == sms.biz_id and "^" in sms.biz_id
        assert sms.out_id == result.message_id and sms.phone == "15612341090"
        assert sms.content.endswith("code:4821")
        key = "HMAC-SHA1" if method == "HMAC-SHA1" else "V3"
        assert sb.state.signatures[key] == 1
        await wait_for(lambda: sms.status == 3)
        report = await n.reconcile(0)
        assert (report.checked, report.events, report.failed) == (1, 1, 0)
        record = await n.get_message(result.message_id)
        assert record is not None and record.status is DeliveryStatus.DELIVERED


async def test_status_moves_from_waiting_to_failed() -> None:
    async with (
        sandbox_running(receipt_delay=30, undelivered_rate=1.0) as (sb, url),
        make_notifier(aliyun_config(url, sb)) as n,
    ):
        result = await n.send(MOBILE, template="verify_code", params={"otp": "1"})
        waiting = await n.reconcile(0)
        assert (waiting.checked, waiting.events) == (1, 0)  # SendStatus 1: nothing new
        (sms,) = sb.state.sent.values()
        sms.status, sms.err_code = 2, "UNDELIV"  # the receipt arrives now
        sms.received_at = sms.sent_at + timedelta(seconds=3)
        failed = await n.reconcile(0)
        assert failed.events == 1
        (event,) = await n.store.list_events(message_id=result.message_id)
        assert isinstance(event, DeliveryReceipt)
        assert (event.status, event.error_code) == (DeliveryStatus.UNDELIVERED, "UNDELIV")


async def test_wrong_secret_is_signature_does_not_match_as_documented() -> None:
    async with sandbox_running() as (sb, url):
        config = aliyun_config(url, sb, access_key_secret="not-the-secret")
        async with make_notifier(config) as n:
            with pytest.raises(AuthenticationError) as info:
                await n.providers["ali"].balance()
    assert info.value.vendor_code == "SignatureDoesNotMatch"
    assert "access_key_secret" in info.value.message and "not-the-secret" not in str(info.value)


def msg(to: str = MOBILE, otp: str = "1") -> SmsMessage:
    return SmsMessage(to=to, template="verify_code", params={"otp": otp})


async def test_refusals_map_to_the_right_classes() -> None:
    async with (
        sandbox_running(sign_name=["其他签名"], template_code=["SMS_1"], per_number_minute=1) as (
            sb,
            url,
        ),
        make_notifier(aliyun_config(url, sb)) as n,
    ):
        provider = n.providers["ali"]
        with pytest.raises(TemplateError) as sign:
            await provider.send(msg())
        assert sign.value.vendor_code == "isv.SMS_SIGNATURE_ILLEGAL"
        sb.configure(sign_name=[SIGN])
        with pytest.raises(TemplateError) as template:
            await provider.send(msg())
        assert template.value.vendor_code == "isv.SMS_TEMPLATE_ILLEGAL"
        sb.configure(template_code=[f"{CODE}:code+product"])
        with pytest.raises(TemplateError) as missing:
            await provider.send(msg())
        assert missing.value.vendor_code == "isv.TEMPLATE_MISSING_PARAMETERS"
        sb.configure(template_code=[CODE])
        await provider.send(msg())
        with pytest.raises(RecipientRateLimited) as limited:
            await provider.send(msg(otp="2"))
        assert "触发分钟级流控Permits:1" in limited.value.message
        # Through the router: the vendor's flow control stops like the local guard.
        with pytest.raises(RecipientRateLimited):
            await n.send(MOBILE, template="verify_code", params={"otp": "3"})
        sb.configure(fail_code="isv.AMOUNT_NOT_ENOUGH", per_number_minute=0)
        with pytest.raises(InsufficientBalance):
            await provider.send(msg("+8613800138000"))


async def test_hour_and_day_flow_control_with_a_moving_clock() -> None:
    async with sandbox_running(per_number_hour=2, per_number_day=3, timestamp_window=86400) as (
        sb,
        url,
    ):
        start = sb.clock()
        offset = timedelta()
        sb.clock = lambda: start + offset
        async with make_notifier(aliyun_config(url, sb)) as n:
            provider = n.providers["ali"]

            async def send_at(minutes: int) -> None:
                nonlocal offset
                offset = timedelta(minutes=minutes)
                await provider.send(msg())

            await send_at(0)
            await send_at(2)
            with pytest.raises(RecipientRateLimited, match="小时级"):
                await send_at(4)
            await send_at(70)
            with pytest.raises(RecipientRateLimited, match="天级"):
                await send_at(140)


async def test_timestamp_window_and_nonce_reuse() -> None:
    async with sandbox_running() as (sb, url), make_notifier(aliyun_config(url, sb)) as n:
        provider = n.providers["ali"]
        target, headers, body = provider.signed(url, "SendSms", "2017-05-25", {})
        first = httpx.post(target, headers=headers, content=body)
        again = httpx.post(target, headers=headers, content=body)
        assert first.json()["Code"] == "MissingPhoneNumbers"
        assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
        assert {"HostId", "Recommend", "RequestId"} <= set(again.json())
        sb.clock = lambda: (
            __import__("datetime").datetime.now(__import__("datetime").UTC) + timedelta(minutes=16)
        )
        with pytest.raises(AuthenticationError) as info:
            await provider.balance()
        assert info.value.vendor_code == "InvalidTimeStamp.Expired"
        assert "clock" in info.value.message


async def test_balance_in_cny_or_not_supported_naming_the_permission() -> None:
    async with (
        sandbox_running(balance="12.50") as (sb, url),
        make_notifier(aliyun_config(url, sb)) as n,
    ):
        await n.send(MOBILE, template="verify_code", params={"otp": "1"})
        found = await n.balance("ali")
        assert (found.remaining, found.unit) == (
            Decimal("12.46"),
            "CNY",
        )  # 12.50 - 0.045, to the fen
        sb.configure(balance_permission=False)
        with pytest.raises(NotSupported, match="AliyunBSSReadOnlyAccess"):
            await n.balance("ali")


async def test_batch_pushes_reach_the_receiver_after_a_get_check(tmp_path: Path) -> None:
    async with sandbox_running(reply_rate=1.0, mask_numbers=True) as (sb, url):
        config = aliyun_config(url, sb, token=TOKEN, store=f"sqlite:///{tmp_path / 'nk.db'}")
        receiver = ServerThread(create_app(config), lifespan="on").start()
        try:
            sb.configure(callback_url=f"{receiver.url}/callbacks/ali/{TOKEN}")
            async with make_notifier(config) as sender:
                ids = [
                    (await sender.send(p, template="verify_code", params={"otp": "7"})).message_id
                    for p in (MOBILE, "+8613800138000", "+8613900139000")
                ]
                await wait_for(lambda: sb.state.pushes_sent >= 1 and sb.pending == 0)
        finally:
            receiver.stop()
        assert sb.state.url_checks == [200]
        assert sb.state.pushes_failed == 0
        items = [item for batch in sb.state.pushes for item in batch]
        assert any(len(batch) > 1 for batch in sb.state.pushes)  # really batched
        assert sum(1 for i in items if "biz_id" in i) == 3
        assert sum(1 for i in items if "content" in i) == 3
        assert all(i["phone_number"].endswith("****") for i in items)
        async with make_notifier(config) as check:
            events = await check.store.list_events()
            receipts = [e for e in events if isinstance(e, DeliveryReceipt)]
            replies = [e for e in events if isinstance(e, InboundMessage)]
            assert len(receipts) == 3 and len(replies) == 3
            assert all(r.phone is None for r in receipts)  # masked: tied by BizId
            for message_id in ids:
                record = await check.get_message(message_id)
                assert record is not None and record.status is DeliveryStatus.DELIVERED


async def test_unacknowledged_push_is_retried() -> None:
    answers = [500, 200]
    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            status, out = 200, b'{"code":0,"msg":"\xe6\x88\x90\xe5\x8a\x9f"}'
        else:
            seen.append(body)
            status = answers.pop(0) if answers else 200
            out = json.dumps({"code": 0, "msg": "ok"}).encode()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": out})

    hook = ServerThread(app).start()
    try:
        async with sandbox_running(
            callback_url=hook.url + "/hook", push_retry_delays=[0.05, 0.05]
        ) as (sb, url):
            async with make_notifier(aliyun_config(url, sb)) as n:
                await n.send(MOBILE, template="verify_code", params={"otp": "1"})
                await wait_for(lambda: sb.state.pushes_sent == 1)
            assert sb.state.push_attempts == 2 and len(seen) == 2 and seen[0] == seen[1]
    finally:
        hook.stop()


async def test_faults_are_injected_on_demand() -> None:
    from notifykit.errors import ProviderUnavailable, UnknownOutcome

    async with (
        sandbox_running(error_rate=1.0) as (sb, url),
        make_notifier(aliyun_config(url, sb)) as n,
    ):
        with pytest.raises(ProviderUnavailable):
            await n.providers["ali"].balance()
        sb.configure(error_rate=0.0, garbage_rate=1.0)
        with pytest.raises(UnknownOutcome):
            await n.providers["ali"].send(msg())
        assert sb.snapshot()["faults_injected"] == {"error": 1, "hang": 0, "garbage": 1}
        assert "access_key_secret" not in sb.snapshot()["settings"]


def test_admin_endpoint_reads_and_changes_settings() -> None:
    sandbox = AliyunSandbox()
    server = ServerThread(sandbox.app()).start()
    try:
        changed = httpx.post(
            server.url + "/_sandbox/admin", json={"fail_code": "isv.OUT_OF_SERVICE"}
        )
        assert changed.json()["faults"]["fail_code"] == "isv.OUT_OF_SERVICE"
        bad = httpx.post(server.url + "/_sandbox/admin", json={"fail_code": "nope"})
        assert bad.status_code == 400 and "unknown code" in bad.text
    finally:
        server.stop()


async def test_admin_state_hides_the_callback_token() -> None:
    """The receiver's token is never shown: the admin page names it ``<token>``."""
    sandbox = AliyunSandbox()
    sandbox.configure(callback_url="http://127.0.0.1:9/callbacks/ali/tok-never-shown-77")
    transport = httpx.ASGITransport(app=sandbox.app())
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ali") as client:
            for answer in (
                await client.get("/_sandbox/admin"),
                await client.post("/_sandbox/admin", json={}),
            ):
                assert "tok-never-shown-77" not in answer.text
                assert "/callbacks/ali/<token>" in answer.text
    finally:
        await sandbox.aclose()
