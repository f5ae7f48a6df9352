"""One configuration, two vendors: Chinese numbers go to Veesing by a country rule, the
rest to Twilio by the default route."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx
import notifykit_twilio
import notifykit_veesing
import pytest

from notifykit import AsyncNotifier, Config
from notifykit.plugins import get_plugin_manager

pytestmark = pytest.mark.anyio

ACCOUNT = "AC" + "1234abcd" * 4
TWILIO = "https://api.twilio.test"
VEESING = "https://veesing.test"


def config(**routing: Any) -> Config:
    return Config.from_dict(
        {
            "providers": {
                "cn": {
                    "type": "veesing",
                    "app_id": "2RYN7CQHL1MABCDE",
                    "app_key": "WVNA4A0SECRETKEY",
                    "base_url": VEESING,
                },
                "intl": {
                    "type": "twilio",
                    "account_sid": ACCOUNT,
                    "auth_token": "auth-token-0042",
                    "from_number": "+15005550006",
                    "base_url": TWILIO,
                },
            },
            "templates": {
                "verify_code": {
                    "cn": {"template_id": "540"},
                    "intl": {"body": "Your code is {code}"},
                }
            },
            "routing": {
                "providers": ["intl"],
                "rules": [{"country": ["CN"], "providers": ["cn"]}],
                **routing,
            },
        }
    )


class Vendors:
    """One transport answering both vendors as their documentation says, recording calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, list[str]]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        self.calls.append((request.url.host, form))
        n = len(self.calls)
        if request.url.host == "veesing.test":
            return httpx.Response(
                200,
                json={
                    "returnStatus": "1",
                    "message": "成功",
                    "remainPoint": "241",
                    "taskId": str(3313746 + n),
                    "successCounts": "1",
                },
            )
        return httpx.Response(201, json={"sid": f"SM{n:032x}", "status": "queued"})


@pytest.fixture
def pm() -> Any:
    manager = get_plugin_manager(load_entrypoints=False)
    manager.register(notifykit_veesing, name="veesing")
    manager.register(notifykit_twilio, name="twilio")
    return manager


@pytest.mark.parametrize(
    ("to", "provider", "host"),
    [
        ("+8615612341090", "cn", "veesing.test"),
        ("+8613800138000", "cn", "veesing.test"),
        ("+14155550123", "intl", "api.twilio.test"),
        ("+447911123456", "intl", "api.twilio.test"),
        ("+4915123456789", "intl", "api.twilio.test"),
        ("+85251234567", "intl", "api.twilio.test"),  # Hong Kong is not CN
    ],
)
async def test_country_rule_chooses_the_vendor(pm: Any, to: str, provider: str, host: str) -> None:
    vendors = Vendors()
    async with AsyncNotifier(
        config(), plugin_manager=pm, transport=httpx.MockTransport(vendors)
    ) as notifier:
        result = await notifier.send(to, template="verify_code", params={"code": "4821"})
    assert result.provider == provider
    # chosen by the rule, not by one vendor declining and the other taking over
    assert [(a.provider, a.outcome) for a in result.attempts] == [(provider, "accepted")]
    assert [h for h, _ in vendors.calls] == [host]
    form = vendors.calls[0][1]
    if provider == "intl":
        assert form["Body"] == ["Your code is 4821"] and form["To"] == [to]
    else:
        assert form["templateId"] == ["540"] and form["variables"] == ["4821"]


async def test_both_vendors_from_one_notifier(pm: Any) -> None:
    vendors = Vendors()
    async with AsyncNotifier(
        config(), plugin_manager=pm, transport=httpx.MockTransport(vendors)
    ) as notifier:
        chosen = [
            (await notifier.send(to, template="verify_code", params={"code": "12"})).provider
            for to in ("+8615612341090", "+14155550123", "+8613800138000", "+447911123456")
        ]
    assert chosen == ["cn", "intl", "cn", "intl"]
    assert [h for h, _ in vendors.calls] == [
        "veesing.test",
        "api.twilio.test",
        "veesing.test",
        "api.twilio.test",
    ]


async def test_too_many_requests_is_retried_on_twilio(pm: Any) -> None:
    answers = iter(
        [
            httpx.Response(
                429, json={"code": 20429, "message": "Too Many Requests", "status": 429}
            ),
            httpx.Response(429, text=""),
            httpx.Response(201, json={"sid": "SM" + "ab" * 16, "status": "queued"}),
        ]
    )
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return next(answers)

    retry = {"attempts": 3, "initial_delay": 0.001, "max_delay": 0.01}
    async with AsyncNotifier(
        config(retry=retry), plugin_manager=pm, transport=httpx.MockTransport(handler)
    ) as notifier:
        result = await notifier.send("+14155550123", template="verify_code", params={"code": "1"})
    assert result.provider == "intl"
    assert calls == ["api.twilio.test"] * 3
    assert [a.outcome for a in result.attempts] == ["failed", "failed", "accepted"]
