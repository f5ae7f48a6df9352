"""The sandbox's answers, rules (in order), admin endpoint and faults, with plain httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from notifykit_veesing import VeesingSandbox, VeesingSandboxSettings

pytestmark = pytest.mark.anyio

SEND = "/smsApi/verifyCode"
BALANCE = "/smsApi/verifyCode/getBalance"
ADMIN = "/_sandbox/admin"
CREDS = {"appId": "sandbox-app", "appKey": "sandbox-key"}
GOOD = {**CREDS, "phone": "15612341090", "templateId": "540", "variables": "1234"}


def sandbox_with(**settings: Any) -> VeesingSandbox:
    return VeesingSandbox(VeesingSandboxSettings(**settings))


@pytest.fixture
async def sandbox() -> AsyncIterator[VeesingSandbox]:
    box = sandbox_with(seed=7)
    yield box
    await box.aclose()


def client_for(box: VeesingSandbox) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=box.app()), base_url="http://vs")


async def send(box: VeesingSandbox, **params: str) -> dict[str, Any]:
    async with client_for(box) as client:
        response = await client.post(SEND, data={**GOOD, **params})
    assert response.status_code == 200
    return dict(response.json())


def refusal(message: str) -> dict[str, Any]:
    return {
        "returnStatus": "0",
        "message": message,
        "remainPoint": None,
        "taskId": None,
        "successCounts": None,
    }


async def test_success_is_the_documented_json_unescaped(sandbox) -> None:
    async with client_for(sandbox) as client:
        response = await client.post(SEND, data=GOOD)
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert "成功".encode() in response.content and b"\\u" not in response.content
    body = json.loads(response.content)
    assert list(body) == ["returnStatus", "message", "remainPoint", "taskId", "successCounts"]
    assert body["returnStatus"] == "1" and body["message"] == "成功"
    assert body["remainPoint"] == "999" and body["successCounts"] == "1"
    assert body["taskId"].isdigit()
    assert sandbox.state.balance == 999 and sandbox.state.accepted == 1
    assert sandbox.state.sent[0].variables == "1234"


async def test_refusal_is_the_documented_json_unescaped(sandbox) -> None:
    async with client_for(sandbox) as client:
        response = await client.post(SEND, data={**GOOD, "variables": "x"})
    assert (
        response.content
        == (
            '{"returnStatus": "0", "message": "参数错误", "remainPoint": null, '
            '"taskId": null, "successCounts": null}'
        ).encode()
    )


async def test_query_string_body_and_merge(sandbox) -> None:
    async with client_for(sandbox) as client:
        by_query = await client.post(SEND, params=GOOD)
        merged = await client.post(
            SEND,
            params={**GOOD, "appKey": "wrong", "phone": "15612341091"},
            data={"appKey": "sandbox-key"},
        )
        no_content_type = await client.post(
            SEND,
            content=httpx.QueryParams({**GOOD, "phone": "15612341092"}).__str__().encode(),
            headers={"content-type": ""},
        )
    assert by_query.json()["returnStatus"] == "1"
    assert merged.json()["returnStatus"] == "1"  # the body's appKey wins
    assert no_content_type.json()["returnStatus"] == "1"
    assert [s.phone for s in sandbox.state.sent] == ["15612341090", "15612341091", "15612341092"]


async def test_get_is_not_allowed(sandbox) -> None:
    async with client_for(sandbox) as client:
        response = await client.get(SEND, params=GOOD)
    assert response.status_code == 405


# Each row breaks two rules; the earlier one must decide the answer.
RULES: list[tuple[str, dict[str, Any], dict[str, str], int, str]] = [
    ("credentials", {}, {"appKey": "nope", "phone": ""}, 0, "账号或密码错误"),
    ("missing credentials", {}, {"appKey": ""}, 0, "账号或密码错误"),
    ("locked", {"locked": True}, {"phone": ""}, 0, "您的账户已被锁定,请联系您的专属客服"),
    ("ip", {"allowed_ips": ["10.0.0.1"]}, {"phone": ""}, 0, "IP受限"),
    ("missing", {}, {"phone": "", "templateId": "x"}, 0, "缺少参数"),
    ("missing variables", {}, {"variables": " ", "templateId": "x"}, 0, "缺少参数"),
    ("template id format", {}, {"templateId": "54O", "phone": "123"}, 0, "模板id格式不正确"),
    ("template unknown", {}, {"templateId": "999", "phone": "123"}, 0, "模板不存在或者未通过"),
    ("phone", {}, {"phone": "+8615612341090", "variables": "1"}, 0, "手机号码格式不正确"),
    ("phone digits", {}, {"phone": "1561234109", "variables": "1"}, 0, "手机号码格式不正确"),
    ("variables short", {}, {"variables": "1"}, 1, "参数错误"),
    ("variables long", {}, {"variables": "123456789"}, 1, "参数错误"),
    ("variables letters", {}, {"variables": "12ab"}, 1, "参数错误"),
    ("variables full-width", {}, {"variables": "１２３４"}, 1, "参数错误"),
    ("per minute", {"per_number_daily_cap": 1}, {}, 1, "相同手机号码一分钟之内只可发送一次"),
    (
        "per number daily",
        {"per_number_interval": 0, "per_number_daily_cap": 1, "account_daily_cap": 1},
        {},
        1,
        "该号码今日发送次数已达上限",
    ),
    (
        "account daily",
        {"per_number_interval": 0, "account_daily_cap": 1, "balance": 1},
        {"phone": "13800138000"},
        1,
        "当日发送量已超出最大发送限制",
    ),
    ("balance", {"balance": 0}, {}, 0, "余额不足"),
    ("balance spent", {"balance": 1, "per_number_interval": 0}, {}, 1, "余额不足"),
]


@pytest.mark.parametrize(
    ("settings", "params", "earlier", "message"),
    [row[1:] for row in RULES],
    ids=[row[0] for row in RULES],
)
async def test_rules_in_order(settings, params, earlier, message) -> None:
    box = sandbox_with(**settings)
    for _ in range(earlier):
        assert (await send(box))["returnStatus"] == "1"
    balance = box.state.balance
    assert await send(box, **params) == refusal(message)
    assert box.state.balance == balance  # a refusal costs nothing
    assert box.state.accepted == earlier
    await box.aclose()


async def test_minute_and_day_rules_follow_the_clock() -> None:
    box = sandbox_with(per_number_daily_cap=2)
    now = datetime(2024, 5, 1, 15, 59, 30, tzinfo=UTC)  # 23:59:30 in Shanghai
    box.clock = lambda: now
    assert (await send(box))["returnStatus"] == "1"
    now += timedelta(seconds=59)  # past midnight in Shanghai: the minute rule still holds
    assert (await send(box))["message"] == "相同手机号码一分钟之内只可发送一次"
    now += timedelta(seconds=1)
    assert (await send(box))["returnStatus"] == "1"
    now += timedelta(seconds=60)
    assert (await send(box))["returnStatus"] == "1"
    assert box.state.accepted == 3


async def test_daily_cap_is_per_shanghai_day() -> None:
    box = sandbox_with(per_number_daily_cap=1, per_number_interval=0)
    now = datetime(2024, 5, 1, 15, 0, 0, tzinfo=UTC)  # 23:00 Shanghai
    box.clock = lambda: now
    assert (await send(box))["returnStatus"] == "1"
    now = datetime(2024, 5, 1, 15, 30, 0, tzinfo=UTC)
    assert (await send(box))["message"] == "该号码今日发送次数已达上限"
    now = datetime(2024, 5, 1, 16, 0, 0, tzinfo=UTC)  # midnight in Shanghai
    assert (await send(box))["returnStatus"] == "1"


async def test_task_ids_are_unique_and_balance_counts_down() -> None:
    box = sandbox_with(balance=50, per_number_interval=0, per_number_daily_cap=100)
    answers = [await send(box) for _ in range(40)]
    assert len({a["taskId"] for a in answers}) == 40
    assert [a["remainPoint"] for a in answers] == [str(n) for n in range(49, 9, -1)]


async def test_balance_endpoint(sandbox) -> None:
    async with client_for(sandbox) as client:
        ok = await client.post(BALANCE, data=CREDS)
        okhttp_style = await client.post(
            BALANCE, params=CREDS, content=b"", headers={"content-type": "text/plain"}
        )
        wrong = await client.post(BALANCE, data={**CREDS, "appKey": "x"})
    expected = {
        "returnStatus": "1",
        "message": "成功",
        "remainPoint": "1000",
        "taskId": None,
        "successCounts": None,
    }
    assert ok.json() == expected and okhttp_style.json() == expected
    assert wrong.json() == refusal("账号或密码错误")


# -- faults and the admin endpoint -------------------------------------------------------------


async def test_error_fault_is_an_html_500(sandbox) -> None:
    sandbox.set_faults(error_rate=1.0)
    async with client_for(sandbox) as client:
        response = await client.post(SEND, data=GOOD)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert sandbox.state.accepted == 0 and sandbox.state.faults_injected["error"] == 1


async def test_garbage_fault_is_200_not_json(sandbox) -> None:
    sandbox.set_faults(garbage_rate=1.0)
    async with client_for(sandbox) as client:
        response = await client.post(SEND, data=GOOD)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)
    assert sandbox.state.balance == 1000


async def test_latency_fault(sandbox) -> None:
    sandbox.set_faults(latency=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await send(sandbox))["returnStatus"] == "1"
    assert loop.time() - started >= 0.19


async def test_fault_shares_are_roughly_honoured() -> None:
    box = sandbox_with(seed=3, error_rate=0.3, garbage_rate=0.2)
    async with client_for(box) as client:
        codes = [(await client.post(BALANCE, data=CREDS)).status_code for _ in range(200)]
    assert 40 <= codes.count(500) <= 80
    assert 20 <= box.state.faults_injected["garbage"] <= 60


async def test_balance_runs_out_after_n_sends() -> None:
    box = sandbox_with(balance_after=2, per_number_interval=0)
    assert (await send(box))["remainPoint"] == "1"
    assert (await send(box))["remainPoint"] == "0"
    assert (await send(box))["message"] == "余额不足"
    box.configure(balance=5)
    assert (await send(box))["remainPoint"] == "4"


async def test_hang_ends_when_released(sandbox) -> None:
    sandbox.set_faults(hang_rate=1.0)
    async with client_for(sandbox) as client:
        pending = asyncio.ensure_future(client.post(SEND, data=GOOD))
        await asyncio.sleep(0.3)
        assert not pending.done()
        await sandbox.aclose()
        response = await asyncio.wait_for(pending, 2)
    assert response.status_code == 504
    assert sandbox.state.accepted == 0 and sandbox.state.faults_injected["hang"] == 1


async def test_admin_get_and_post(sandbox) -> None:
    async with client_for(sandbox) as client:
        await client.post(SEND, data=GOOD)
        state = (await client.get(ADMIN)).json()
        changed = await client.post(ADMIN, json={"latency": 0.01, "templates": ["540", "700"]})
        new_template = await client.post(
            SEND, data={**GOOD, "templateId": "700", "phone": "13800138000"}
        )
        broken = await client.post(ADMIN, json={"error_rate": 1})
        failed = await client.post(SEND, data={**GOOD, "phone": "13800138001"})
    assert state["balance"] == 999 and state["accepted"] == 1
    assert state["faults"] == {
        "latency": 0.0,
        "error_rate": 0.0,
        "hang_rate": 0.0,
        "garbage_rate": 0.0,
        "balance_after": None,
    }
    assert state["pushes_sent"] == 0 and "app_key" not in state["settings"]
    assert "sandbox-key" not in json.dumps(state)
    assert changed.status_code == 200
    assert changed.json()["faults"]["latency"] == 0.01
    assert changed.json()["settings"]["templates"] == ["540", "700"]
    assert new_template.json()["returnStatus"] == "1"
    assert broken.json()["faults"]["error_rate"] == 1.0
    assert failed.status_code == 500
    assert sandbox.state.accepted == 2


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"error_rate": 2}', "error_rate"),
        (b'{"latency": -1}', "latency"),
        (b'{"port": 1}', "port"),
        (b'{"colour": "red"}', "unknown settings: colour"),
        (b"[1, 2]", "JSON object"),
        (b"not json", "not JSON"),
        (b'{"balance_after": "many"}', "balance_after"),
        (b'{"callback_url": "ftp://x"}', "callback_url"),
    ],
)
async def test_admin_refuses_bad_input(sandbox, body, problem) -> None:
    async with client_for(sandbox) as client:
        response = await client.post(
            ADMIN, content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert problem in response.json()["error"]
    assert sandbox.settings.error_rate == 0.0 and sandbox.settings.port == 8555


def test_settings_defaults_and_cli_friendly_types() -> None:
    settings = VeesingSandboxSettings()
    assert settings.port == 8555 and settings.host == "127.0.0.1"
    assert settings.templates == ["540", "611"] and settings.balance == 1000
    assert settings.receipt_delay == 0.2 and settings.per_number_daily_cap == 5
    assert settings.per_number_interval == 60
    for name, field in VeesingSandboxSettings.model_fields.items():
        if name not in ("host", "port"):
            assert field.description, name
    assert VeesingSandboxSettings(templates="540, 611,700").templates == ["540", "611", "700"]


def test_cli_builds_options_from_the_settings() -> None:
    from notifykit.cli.sandbox import settings_options

    flags = {opt.opts[0] for opt in settings_options(VeesingSandboxSettings)}
    assert {"--app-id", "--templates", "--receipt-delay", "--hang-rate", "--balance-after"} <= flags


async def test_task_ids_are_never_handed_out_twice_even_with_the_same_seed() -> None:
    """A seed repeats the draws, never the ids: a second run's receipts must not name the
    first run's messages (``demo --keep DIR`` twice into one store)."""
    ids = []
    for _ in range(2):
        box = sandbox_with(seed=7)
        try:
            for n in range(3):
                ids.append((await send(box, phone=f"1561234109{n}"))["taskId"])
        finally:
            await box.aclose()
    assert len(set(ids)) == len(ids) == 6, ids


async def test_admin_state_hides_the_callback_token() -> None:
    """The receiver's token keeps strangers out of it: the admin page shows the URL with
    ``<token>`` in its place (as the banner does), never the token."""
    box = sandbox_with(callback_url="http://127.0.0.1:9/callbacks/vs/tok-never-shown-77")
    try:
        async with client_for(box) as client:
            for answer in (await client.get(ADMIN), await client.post(ADMIN, json={})):
                assert "tok-never-shown-77" not in answer.text
                assert "/callbacks/vs/<token>" in answer.text
    finally:
        await box.aclose()
