"""Alibaba's own Python SDKs against the sandbox: the current one signs V3
(``alibabacloud-dysmsapi20170525``), the classic one signs the RPC HMAC-SHA1 signature
(``aliyun-python-sdk-core``). Each test skips, saying why, when its SDK is not installed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from notifykit_aliyun import AliyunSandbox, AliyunSandboxSettings

from notifykit.server import ServerThread

SIGN = "阿里云短信测试"
CODE = "SMS_15305001"


@pytest.fixture
def sandbox() -> Iterator[tuple[AliyunSandbox, ServerThread]]:
    sb = AliyunSandbox(
        AliyunSandboxSettings(
            port=0, sign_name=[SIGN], template_code=[f"{CODE}:code"], receipt_delay=60
        )
    )
    server = ServerThread(sb.app()).start()
    try:
        yield sb, server
    finally:
        server.stop()


def test_current_sdk_v3_send_and_query(sandbox: tuple[AliyunSandbox, ServerThread]) -> None:
    client_mod = pytest.importorskip(
        "alibabacloud_dysmsapi20170525.client",
        reason="alibabacloud-dysmsapi20170525 is not installed",
    )
    models = pytest.importorskip("alibabacloud_dysmsapi20170525.models")
    openapi = pytest.importorskip("alibabacloud_tea_openapi.models")
    sb, server = sandbox
    config = openapi.Config(
        access_key_id=sb.settings.access_key_id,
        access_key_secret=sb.settings.access_key_secret,
        endpoint=f"127.0.0.1:{server.port}",
        protocol="http",
    )
    client = client_mod.Client(config)
    answer: Any = client.send_sms(
        models.SendSmsRequest(
            phone_numbers="15612341090",
            sign_name=SIGN,
            template_code=CODE,
            template_param=json.dumps({"code": "4821"}),
            out_id="abc",
        )
    )
    assert answer.body.code == "OK", answer.body
    assert answer.body.biz_id.endswith("^0")
    assert sb.state.signatures["V3"] == 1
    (sms,) = sb.state.sent.values()
    assert (sms.phone, sms.out_id) == ("15612341090", "abc")
    day = sms.sent_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    details: Any = client.query_send_details(
        models.QuerySendDetailsRequest(
            phone_number="15612341090",
            biz_id=answer.body.biz_id,
            send_date=day.strftime("%Y%m%d"),
            page_size=10,
            current_page=1,
        )
    )
    assert details.body.code == "OK"
    (dto,) = details.body.sms_send_detail_dtos.sms_send_detail_dto
    assert (dto.send_status, dto.out_id) == (1, "abc")


def test_current_sdk_wrong_secret_is_refused(sandbox: tuple[AliyunSandbox, ServerThread]) -> None:
    client_mod = pytest.importorskip(
        "alibabacloud_dysmsapi20170525.client",
        reason="alibabacloud-dysmsapi20170525 is not installed",
    )
    models = pytest.importorskip("alibabacloud_dysmsapi20170525.models")
    openapi = pytest.importorskip("alibabacloud_tea_openapi.models")
    sb, server = sandbox
    client = client_mod.Client(
        openapi.Config(
            access_key_id=sb.settings.access_key_id,
            access_key_secret="wrong",
            endpoint=f"127.0.0.1:{server.port}",
            protocol="http",
        )
    )
    with pytest.raises(Exception) as info:
        client.send_sms(
            models.SendSmsRequest(phone_numbers="15612341090", sign_name=SIGN, template_code=CODE)
        )
    assert "SignatureDoesNotMatch" in str(info.value)
    assert sb.state.sent == {}


def test_classic_sdk_rpc_signature_send(sandbox: tuple[AliyunSandbox, ServerThread]) -> None:
    acs = pytest.importorskip(
        "aliyunsdkcore.client", reason="aliyun-python-sdk-core is not installed"
    )
    request_mod = pytest.importorskip("aliyunsdkcore.request")
    sb, server = sandbox
    client = acs.AcsClient(sb.settings.access_key_id, sb.settings.access_key_secret, "cn-hangzhou")
    for method in ("POST", "GET"):
        request = request_mod.CommonRequest()
        request.set_accept_format("json")
        request.set_domain(f"127.0.0.1:{server.port}")
        request.set_protocol_type("http")
        request.set_method(method)
        request.set_version("2017-05-25")
        request.set_action_name("SendSms")
        number = "15612341090" if method == "POST" else "13800138000"
        request.add_query_param("PhoneNumbers", number)
        request.add_query_param("SignName", SIGN)
        request.add_query_param("TemplateCode", CODE)
        request.add_query_param("TemplateParam", json.dumps({"code": "1234"}))
        answer = json.loads(client.do_action_with_exception(request))
        assert answer["Code"] == "OK", answer
    assert sb.state.signatures["HMAC-SHA1"] == 2
