"""Send and balance against the vendor's document, through respx and real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from notifykit_veesing.errors import ERROR_TABLE, error_class_for, meaning_of
from notifykit_veesing.messages import MEANINGS

from notifykit import errors
from notifykit.models import SmsMessage

pytestmark = pytest.mark.anyio

APP_KEY = "WVNA4A0SECRETKEY"
BASE = "https://vip.veesing.com"
SEND_URL = f"{BASE}/smsApi/verifyCode"
BALANCE_URL = f"{BASE}/smsApi/verifyCode/getBalance"
MESSAGE = SmsMessage(to="+8615612341090", template="verify", params={"code": "1234"})

DOC_SUCCESS = {
    "returnStatus": "1 ",
    "message": "成功",
    "remainPoint": "241",
    "taskId": "3313746",
    "successCounts": "1",
}


def failure(message: str) -> dict[str, Any]:
    return {
        "returnStatus": "0",
        "message": message,
        "remainPoint": None,
        "taskId": None,
        "successCounts": None,
    }


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.MockRouter(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


def transport(router: respx.MockRouter) -> httpx.MockTransport:
    return httpx.MockTransport(router.async_handler)


# -- success -------------------------------------------------------------------------------


async def test_documented_success_with_trailing_space(router, make_provider) -> None:
    route = router.post(SEND_URL).mock(return_value=httpx.Response(200, json=DOC_SUCCESS))
    provider = make_provider(transport(router))
    receipt = await provider.send(MESSAGE)
    await provider.aclose()
    assert receipt.provider_message_id == "3313746"
    assert receipt.remaining_credits == 241
    assert receipt.raw["successCounts"] == "1"
    assert route.call_count == 1


async def test_exact_form_fields_and_no_secret_in_url(router, make_provider) -> None:
    route = router.post(SEND_URL).mock(return_value=httpx.Response(200, json=DOC_SUCCESS))
    provider = make_provider(transport(router))
    await provider.send(MESSAGE)
    await provider.aclose()
    request = route.calls.last.request
    assert request.url == SEND_URL
    assert APP_KEY not in str(request.url)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded;charset=utf-8"
    assert parse_qsl(request.content.decode("utf-8"), strict_parsing=True) == [
        ("appId", "2RYN7CQHL1MABCDE"),
        ("appKey", APP_KEY),
        ("phone", "15612341090"),
        ("templateId", "540"),
        ("variables", "1234"),
    ]


async def test_a_template_id_is_form_encoded(router, make_provider) -> None:
    route = router.post(SEND_URL).mock(return_value=httpx.Response(200, json=DOC_SUCCESS))
    provider = make_provider(transport(router))
    provider.templates["verify"] = provider.templates["verify"].model_copy(
        update={"template_id": "a b&c=d+é"}
    )
    await provider.send(MESSAGE)
    await provider.aclose()
    fields = dict(parse_qsl(route.calls.last.request.content.decode(), strict_parsing=True))
    assert fields["templateId"] == "a b&c=d+é"
    assert (fields["phone"], fields["variables"]) == ("15612341090", "1234")


async def test_app_key_in_no_log_line(router, make_provider, caplog) -> None:
    router.post(SEND_URL).mock(return_value=httpx.Response(200, json=failure("余额不足")))
    router.post(BALANCE_URL).mock(return_value=httpx.Response(200, json=failure("IP受限")))
    provider = make_provider(transport(router))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.InsufficientBalance) as sent:
        await provider.send(MESSAGE)
    with pytest.raises(errors.AuthenticationError) as balance:
        await provider.balance()
    await provider.aclose()
    assert caplog.records, "expected the plugin to log at DEBUG"
    for record in caplog.records:
        assert APP_KEY not in record.getMessage()
        assert APP_KEY not in str(record.__dict__)
        assert "15612341090" not in str(record.__dict__)
    for exc in (sent.value, balance.value):
        assert APP_KEY not in str(exc) and APP_KEY not in repr(exc)
    assert APP_KEY not in repr(provider.options) and APP_KEY not in str(provider.describe())


@pytest.mark.parametrize(
    ("status", "expected"),
    [(" 1", True), ("1\n", True), ("\t1 ", True), (1, True), ("0 ", False), (" 0", False)],
)
async def test_return_status_whitespace_variants(router, make_provider, status, expected) -> None:
    body = {**DOC_SUCCESS, "returnStatus": status} if expected else failure("余额不足")
    if not expected:
        body["returnStatus"] = status
    router.post(SEND_URL).mock(return_value=httpx.Response(200, json=body))
    provider = make_provider(transport(router))
    if expected:
        assert (await provider.send(MESSAGE)).provider_message_id == "3313746"
    else:
        with pytest.raises(errors.InsufficientBalance):
            await provider.send(MESSAGE)
    await provider.aclose()


async def test_unescaped_utf8_and_gb18030_answers(router, make_provider) -> None:
    text = '{"returnStatus":"0","message":"余额不足","remainPoint":null,"taskId":null,"successCounts":null}'
    route = router.post(SEND_URL)
    provider = make_provider(transport(router))
    for encoding in ("utf-8", "gb18030"):
        route.mock(
            return_value=httpx.Response(
                200, content=text.encode(encoding), headers={"content-type": "application/json"}
            )
        )
        with pytest.raises(errors.InsufficientBalance):
            await provider.send(MESSAGE)
    await provider.aclose()


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("application/json;charset=gb18030", "gb18030"),
        ('application/json; charset="UTF-16"', "utf-16"),
        ("application/json; charset=no-such-codec", "utf-8"),
        ("text/html", "gb18030"),
    ],
)
async def test_the_declared_charset_decides_each_answer(
    router, make_provider, content_type, encoding
) -> None:
    # Each content type's encodings are worked out once: the second answer of the same
    # content type, with another message, must be read the same way.
    route = router.post(SEND_URL)
    provider = make_provider(transport(router))
    for message, cls in (
        ("余额不足", errors.InsufficientBalance),
        ("IP受限", errors.AuthenticationError),
    ):
        text = f'{{"returnStatus":"0","message":"{message}","remainPoint":null,"taskId":null}}'
        route.mock(
            return_value=httpx.Response(
                200, content=text.encode(encoding), headers={"content-type": content_type}
            )
        )
        with pytest.raises(cls):
            await provider.send(MESSAGE)
    await provider.aclose()


# -- the error table -----------------------------------------------------------------------

TABLE = [
    ("账号或密码错误", errors.AuthenticationError),
    ("您的账户已被锁定,请联系您的专属客服", errors.AuthenticationError),
    ("IP受限", errors.AuthenticationError),
    ("缺少参数", errors.ProviderError),
    ("参数错误", errors.ProviderError),
    ("模板不存在或者未通过", errors.TemplateError),
    ("模板id格式不正确", errors.TemplateError),
    ("余额不足", errors.InsufficientBalance),
    ("当日发送量已超出最大发送限制", errors.QuotaExceeded),
    ("手机号码格式不正确", errors.InvalidRecipient),
    ("该号码今日发送次数已达上限", errors.RecipientRateLimited),
    ("相同手机号码一分钟之内只可发送一次", errors.RecipientRateLimited),
    ("未知原因,请联系客服", errors.ProviderError),
    ("服务升级中", errors.ProviderError),
]


def test_table_covers_every_documented_message() -> None:
    assert set(ERROR_TABLE) == {message for message, _ in TABLE[:-1]}


@pytest.mark.parametrize(("message", "cls"), TABLE)
async def test_every_documented_message(router, make_provider, message, cls) -> None:
    router.post(SEND_URL).mock(return_value=httpx.Response(200, json=failure(message)))
    provider = make_provider(transport(router))
    with pytest.raises(errors.ProviderError) as caught:
        await provider.send(MESSAGE)
    await provider.aclose()
    assert type(caught.value) is cls
    assert caught.value.vendor_message == message
    assert caught.value.vendor_code == "0"
    assert caught.value.provider == "vs"
    assert message in caught.value.message
    if message in MEANINGS:  # the vendor's words kept, notifykit's English beside them
        assert f"{message} ({MEANINGS[message]})" in caught.value.message


def test_every_documented_message_has_an_english_meaning() -> None:
    assert set(ERROR_TABLE) <= set(MEANINGS)
    assert meaning_of(" 余额不足 ") == "insufficient balance: no credits left"
    assert meaning_of("未知原因，请联系客服") == MEANINGS["未知原因,请联系客服"]  # full-width comma
    assert meaning_of("服务升级中") is None


async def test_a_vendor_message_echoing_the_key_never_shows_it(router, make_provider) -> None:
    echoed = f"参数错误: appKey={APP_KEY}"
    router.post(SEND_URL).mock(return_value=httpx.Response(200, json=failure(echoed)))
    provider = make_provider(transport(router))
    with pytest.raises(errors.ProviderError) as caught:
        await provider.send(MESSAGE)
    await provider.aclose()
    assert APP_KEY not in str(caught.value) and APP_KEY not in repr(caught.value)
    assert caught.value.vendor_message == "参数错误: appKey=***"


@pytest.mark.parametrize(
    "variant",
    [
        " 余额不足 ",
        "余额不足\n",
        "余额不足。",
        "余额不足!",
        "余额不足！",
        "\u3000余额不足",
    ],
)
def test_message_whitespace_and_punctuation_variants(variant) -> None:
    assert error_class_for(variant) is errors.InsufficientBalance


@pytest.mark.parametrize(
    "variant",
    [
        "您的账户已被锁定，请联系您的专属客服",
        "您的账户已被锁定, 请联系您的专属客服",
        " 您的账户已被锁定,请联系您的专属客服。",
    ],
)
def test_full_width_comma_variants(variant) -> None:
    assert error_class_for(variant) is errors.AuthenticationError


@pytest.mark.parametrize("variant", ["ip受限", "ＩＰ受限", " IP 受限 "])
def test_ip_variants(variant) -> None:
    assert error_class_for(variant) is errors.AuthenticationError


def test_unknown_and_empty_messages_are_provider_errors() -> None:
    for message in (None, "", "余额", "余额不足够了吗"):
        assert error_class_for(message) is errors.ProviderError


# -- answers that are not the documented JSON -----------------------------------------------


@pytest.mark.parametrize(
    ("response", "cls"),
    [
        (
            httpx.Response(
                500, html="<html><body><h1>500 Internal Server Error</h1></body></html>"
            ),
            errors.ProviderUnavailable,
        ),
        (httpx.Response(503, json=failure("余额不足")), errors.ProviderUnavailable),
        (httpx.Response(502, text="Bad Gateway"), errors.ProviderUnavailable),
        (httpx.Response(200, html="<html><body>维护中</body></html>"), errors.ProviderUnavailable),
        (httpx.Response(200, text='{"returnStatus":"1","message":"成'), errors.ProviderUnavailable),
        (httpx.Response(200, text=""), errors.ProviderUnavailable),
        (httpx.Response(200, json=["1"]), errors.ProviderUnavailable),
        (httpx.Response(404, text="Not Found"), errors.ProviderUnavailable),
        (
            httpx.Response(302, headers={"location": "https://example.com/"}),
            errors.ProviderUnavailable,
        ),
        (httpx.Response(200, json={"message": "成功", "taskId": "1"}), errors.ProviderError),
        (httpx.Response(200, json={**DOC_SUCCESS, "returnStatus": "2"}), errors.ProviderError),
        (httpx.Response(200, json={**DOC_SUCCESS, "returnStatus": None}), errors.ProviderError),
        (httpx.Response(200, json={**DOC_SUCCESS, "returnStatus": "成功"}), errors.ProviderError),
        (httpx.Response(400, json=DOC_SUCCESS), errors.ProviderUnavailable),
    ],
)
async def test_unusable_answers_are_never_success(router, make_provider, response, cls) -> None:
    router.post(SEND_URL).mock(return_value=response)
    provider = make_provider(transport(router))
    with pytest.raises(errors.ProviderError) as caught:
        await provider.send(MESSAGE)
    await provider.aclose()
    assert type(caught.value) is cls
    assert APP_KEY not in str(caught.value)


async def test_5xx_retryable_flag_follows_core(router, make_provider) -> None:
    route = router.post(SEND_URL)
    provider = make_provider(transport(router))
    route.mock(return_value=httpx.Response(503, text="busy"))
    with pytest.raises(errors.ProviderUnavailable) as busy:
        await provider.send(MESSAGE)
    route.mock(return_value=httpx.Response(500, html="<html></html>"))
    with pytest.raises(errors.ProviderUnavailable) as broken:
        await provider.send(MESSAGE)
    await provider.aclose()
    assert busy.value.retryable is True and busy.value.vendor_code == "503"
    assert broken.value.retryable is False and broken.value.vendor_code == "500"


async def test_success_without_task_id_is_still_accepted(router, make_provider) -> None:
    router.post(SEND_URL).mock(
        return_value=httpx.Response(200, json={**DOC_SUCCESS, "taskId": None, "remainPoint": None})
    )
    provider = make_provider(transport(router))
    receipt = await provider.send(MESSAGE)
    await provider.aclose()
    assert receipt.provider_message_id is None and receipt.remaining_credits is None


# -- transport faults ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "cls", "retryable"),
    [
        (httpx.ConnectTimeout("connect timed out"), errors.ProviderUnavailable, True),
        (httpx.ConnectError("refused"), errors.ProviderUnavailable, True),
        (httpx.ReadTimeout("read timed out"), errors.UnknownOutcome, None),
        (httpx.RemoteProtocolError("closed"), errors.UnknownOutcome, None),
    ],
)
async def test_transport_faults_through_respx(router, make_provider, fault, cls, retryable) -> None:
    router.post(SEND_URL).mock(side_effect=fault)
    provider = make_provider(transport(router))
    with pytest.raises(errors.ProviderError) as caught:
        await provider.send(MESSAGE)
    await provider.aclose()
    assert type(caught.value) is cls
    assert isinstance(caught.value.__cause__, httpx.HTTPError)
    if retryable is not None:
        assert caught.value.retryable is retryable  # type: ignore[attr-defined]


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("kind", ["default", "httpx"])
async def test_refused_connection_on_a_real_port(make_provider, kind) -> None:
    chosen = httpx.AsyncHTTPTransport() if kind == "httpx" else None
    provider = make_provider(chosen, base_url=f"http://127.0.0.1:{closed_port()}", timeout=2.0)
    with pytest.raises(errors.ProviderUnavailable) as caught:
        await provider.send(MESSAGE)
    await provider.aclose()
    assert caught.value.retryable is True
    # In words, with the class name beside them (not the class name alone).
    words = "connection refused" if kind == "default" else "could not open a connection"
    assert f"could not connect: {words}" in caught.value.message, caught.value.message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback server that accepts connections, reads, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("kind", ["default", "httpx"])
async def test_read_timeout_on_a_silent_server_is_unknown_outcome(
    make_provider, silent_server, kind
) -> None:
    chosen = httpx.AsyncHTTPTransport() if kind == "httpx" else None
    provider = make_provider(chosen, base_url=f"http://127.0.0.1:{silent_server}", timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.UnknownOutcome):
        await provider.send(MESSAGE)
    await provider.aclose()
    assert loop.time() - started < 3


# -- balance -------------------------------------------------------------------------------


async def test_balance_form_body(router, make_provider) -> None:
    route = router.post(BALANCE_URL).mock(
        return_value=httpx.Response(
            200,
            json={
                "returnStatus": "1 ",
                "message": "成功",
                "remainPoint": "241",
                "taskId": None,
                "successCounts": None,
            },
        )
    )
    provider = make_provider(transport(router))
    balance = await provider.balance()
    await provider.aclose()
    assert balance.remaining == Decimal(241) and balance.unit == "credits"
    assert balance.provider == "vs"
    request = route.calls.last.request
    assert request.url == BALANCE_URL
    assert dict(parse_qsl(request.content.decode())) == {
        "appId": "2RYN7CQHL1MABCDE",
        "appKey": APP_KEY,
    }


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("账号或密码错误", errors.AuthenticationError),
        ("缺少参数", errors.ProviderError),
        ("您的账户已被锁定,请联系您的专属客服", errors.AuthenticationError),
        ("未知原因,请联系客服", errors.ProviderError),
        ("IP受限", errors.AuthenticationError),
    ],
)
async def test_balance_errors(router, make_provider, message, cls) -> None:
    router.post(BALANCE_URL).mock(return_value=httpx.Response(200, json=failure(message)))
    provider = make_provider(transport(router))
    with pytest.raises(errors.ProviderError) as caught:
        await provider.balance()
    await provider.aclose()
    assert type(caught.value) is cls


async def test_balance_without_remain_point(router, make_provider) -> None:
    router.post(BALANCE_URL).mock(
        return_value=httpx.Response(200, json={**DOC_SUCCESS, "remainPoint": None})
    )
    provider = make_provider(transport(router))
    with pytest.raises(errors.ProviderError, match="remainPoint"):
        await provider.balance()
    await provider.aclose()


async def test_one_pooled_client_closed_on_aclose(router, make_provider) -> None:
    router.post(SEND_URL).mock(return_value=httpx.Response(200, json=DOC_SUCCESS))
    provider = make_provider(transport(router))
    await provider.send(MESSAGE)
    client = provider._client
    await provider.send(MESSAGE)
    assert provider._client is client and client is not None
    await provider.aclose()
    assert client.is_closed and provider._client is None
