"""Routing with the Veesing plugin, its HTTP mocked by respx through an injected transport."""

from __future__ import annotations

import httpx
import pytest
import respx
from notifykit_veesing import messages as veesing_messages

from notifykit import AsyncNotifier, Config, DeliveryStatus, errors

pytestmark = pytest.mark.anyio

PHONE = "+8615612341090"
PRIMARY = "https://primary.veesing.test/smsApi/verifyCode"
BACKUP = "https://backup.veesing.test/smsApi/verifyCode"
SECRET = "PRIMARY-APP-KEY-0042"


def accepted(task_id: str, remain: int) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "returnStatus": "1 ",
            "message": "成功",
            "remainPoint": str(remain),
            "taskId": task_id,
            "successCounts": "1",
        },
    )


def refused(message: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "returnStatus": "0",
            "message": message,
            "remainPoint": None,
            "taskId": None,
            "successCounts": None,
        },
    )


def config(**routing: object) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "primary": {
                    "type": "veesing",
                    "app_id": "APPID1",
                    "app_key": SECRET,
                    "base_url": "https://primary.veesing.test",
                },
                "backup": {
                    "type": "veesing",
                    "app_id": "APPID2",
                    "app_key": "BACKUP-APP-KEY-0043",
                    "base_url": "https://backup.veesing.test",
                },
                "world": {"type": "memory"},
            },
            "templates": {
                "verify_code": {"primary": {"template_id": "540"}, "backup": {"template_id": 611}}
            },
            "routing": {
                "providers": ["world"],
                "rules": [{"country": ["CN"], "providers": ["primary", "backup"]}],
                "retry": {"initial_delay": 0.001, "max_delay": 0.005},
                **routing,
            },
        }
    )


@pytest.fixture
def vendor() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False, assert_all_mocked=True)


def notifier(vendor: respx.MockRouter, **routing: object) -> AsyncNotifier:
    return AsyncNotifier(config(**routing), transport=httpx.MockTransport(vendor.async_handler))


async def test_unavailable_primary_is_retried_then_backup_takes_it(vendor) -> None:
    primary = vendor.post(PRIMARY).mock(
        side_effect=[httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(502)]
    )
    backup = vendor.post(BACKUP).mock(return_value=accepted("3313746", 241))
    async with notifier(vendor) as n:
        result = await n.send(PHONE, template="verify_code", params={"code": "4821"})
        record = await n.get_message(result.message_id)
    assert primary.call_count == 3
    assert backup.call_count == 1
    assert (result.provider, result.provider_message_id, result.remaining_credits) == (
        "backup",
        "3313746",
        241,
    )
    assert [(a.provider, a.outcome) for a in result.attempts] == [
        ("primary", "failed"),
        ("primary", "failed"),
        ("primary", "failed"),
        ("backup", "accepted"),
    ]
    form = dict(httpx.QueryParams(backup.calls.last.request.content.decode()))
    assert form["templateId"] == "611"
    assert form["variables"] == "4821"
    assert record is not None and record.status is DeliveryStatus.ACCEPTED


async def test_account_refusal_fails_over_and_takes_primary_out(vendor) -> None:
    primary = vendor.post(PRIMARY).mock(return_value=refused(veesing_messages.INSUFFICIENT_BALANCE))
    vendor.post(BACKUP).mock(side_effect=[accepted("1", 10), accepted("2", 9)])
    async with notifier(vendor) as n:
        first = await n.send(PHONE, template="verify_code", params={"code": "4821"})
        second = await n.send(PHONE, template="verify_code", params={"code": "4822"})
        health = await n.health()
    assert first.attempts[0].error_type == "InsufficientBalance"
    assert second.attempts[0].outcome == "skipped"
    assert primary.call_count == 1
    assert health["primary"]["state"] == "open"
    assert "InsufficientBalance" in health["primary"]["reason"]


async def test_read_timeout_is_unknown_and_stops(vendor) -> None:
    vendor.post(PRIMARY).mock(side_effect=httpx.ReadTimeout("slow"))
    backup = vendor.post(BACKUP).mock(return_value=accepted("1", 10))
    async with notifier(vendor) as n:
        with pytest.raises(errors.UnknownOutcome) as info:
            await n.send(PHONE, template="verify_code", params={"code": "4821"})
        (record,) = await n.store.list_messages()
    assert backup.call_count == 0
    assert record.status is DeliveryStatus.UNKNOWN
    assert SECRET not in str(info.value)
    assert PHONE not in str(info.value)


async def test_per_number_limit_stops_by_default(vendor) -> None:
    vendor.post(PRIMARY).mock(return_value=refused(veesing_messages.NUMBER_PER_MINUTE))
    backup = vendor.post(BACKUP).mock(return_value=accepted("1", 10))
    async with notifier(vendor) as n:
        with pytest.raises(errors.RecipientRateLimited):
            await n.send(PHONE, template="verify_code", params={"code": "4821"})
    assert backup.call_count == 0


async def test_non_chinese_number_goes_the_default_route(vendor) -> None:
    async with notifier(vendor) as n:
        result = await n.send("+12025550143", template="verify_code", params={"code": "4821"})
    assert result.provider == "world"
    assert vendor.calls.call_count == 0


async def test_veesing_declines_what_it_cannot_carry(vendor) -> None:
    async with notifier(vendor, providers=["primary", "backup"], rules=[]) as n:
        with pytest.raises(errors.InvalidMessage) as info:
            await n.send("+12025550143", template="verify_code", params={"code": "4821"})
    assert "Chinese mobile" in info.value.message
    assert [a.outcome for a in info.value.attempts] == ["skipped", "skipped"]
    assert vendor.calls.call_count == 0


async def test_an_accepted_answer_echoing_secrets_leaves_them_nowhere(vendor, caplog) -> None:
    """The receipt's ``raw`` is not redacted on the send path because nothing of it is
    kept, logged or returned: the result and the record take its id and credits only."""
    echoed = {
        "returnStatus": "1",
        "message": f"ok appKey={SECRET} phone={PHONE[3:]}",
        "remainPoint": "77",
        "taskId": "T-1",
        "successCounts": "1",
    }
    vendor.post(PRIMARY).mock(return_value=httpx.Response(200, json=echoed))
    caplog.set_level("DEBUG", logger="notifykit")
    async with notifier(vendor) as sms:
        result = await sms.send(PHONE, template="verify_code", params={"code": "1234"})
        record = await sms.get_message(result.message_id)
    assert (result.provider_message_id, result.remaining_credits) == ("T-1", 77)
    assert record is not None
    for text in (result.model_dump_json(), record.model_dump_json(), caplog.text):
        assert SECRET not in text
        assert "appKey=" not in text
        assert PHONE[3:] not in text.replace(PHONE, "")
