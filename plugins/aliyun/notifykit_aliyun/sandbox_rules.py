"""The Alibaba sandbox's settings, state and the vendor's rules, without any I/O.

A request is checked in this order, the first failure decides: Action and Version, the
signature (RPC HMAC-SHA1 or V3 ACS3-HMAC-SHA256: AccessKeyId, then the signature, the
timestamp window, the nonce), then the operation's own rules. SendSms: required
parameters, the number(s), the signature name, the template code, ``TemplateParam`` (a
JSON object of strings covering the template's variables), per-number flow control
(default 1 a minute, 5 an hour, 10 a rolling day), then an injected ``fail_code``.
Answers are the documented shapes (fact sheet §2.2, §2.3, §7, §8).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from notifykit.compare import constant_time_equal
from notifykit.sandbox import SandboxSettings, unique_number
from notifykit_aliyun.errors import ERROR_TABLE
from notifykit_aliyun.signature import (
    Authorization,
    rpc_signature,
    sha256_hex,
    v3_canonical_request,
    v3_signature,
)

__all__ = [
    "FAULT_FIELDS",
    "VENDOR_ZONE",
    "AliyunSandboxSettings",
    "Answer",
    "SandboxState",
    "SentSms",
    "authenticate",
    "business_error",
    "check_send",
    "gateway_error",
    "query_balance",
    "query_details",
]

VENDOR_ZONE = ZoneInfo("Asia/Shanghai")
FAULT_FIELDS = ("latency", "error_rate", "hang_rate", "garbage_rate", "fail_code")
API_VERSION = "2017-05-25"
BSS_VERSION = "2017-12-14"

_PHONE = re.compile(r"^(?:\+?86|0086)?(1[3-9][0-9]{9})$")
_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
_GATEWAY_STATUS = {
    "InvalidAccessKeyId.NotFound": 404,
    "InvalidAction.NotFound": 404,
    "InvalidApi.NotFound": 404,
}
_GATEWAY_MESSAGES = {
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "InvalidTimeStamp.Expired": "Specified time stamp or date value is expired.",
    "InvalidTimeStamp.Format": "Specified time stamp or date value is not well formatted.",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
    "InvalidSignatureMethod": "Specified signature method is not valid.",
    "InvalidParameter.Format": "Specified parameter format is not valid.",
    "InvalidVersion": "Specified parameter Version is not valid.",
    "InvalidAction.NotFound": "Specified api is not found, please check your url and method.",
    "Throttling.User": "Request was denied due to user flow control.",
}
_BUSINESS_MESSAGES = {
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.MOBILE_COUNT_OVER_LIMIT": "手机号码数量超过限制",
    "isv.SMS_SIGNATURE_ILLEGAL": "该账号下找不到对应签名",
    "isv.SMS_TEMPLATE_ILLEGAL": "该账号下找不到对应模板",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模版缺少变量",
    "isv.INVALID_PARAMETERS": "参数异常",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.DAY_LIMIT_CONTROL": "触发日发送限额",
    "isv.MONTH_LIMIT_CONTROL": "触发月发送限额",
    "isp.SYSTEM_ERROR": "系统错误",
    "isp.RAM_PERMISSION_DENY": "没有访问权限",
}


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class AliyunSandboxSettings(SandboxSettings):
    """Options of ``notifykit sandbox aliyun``."""

    port: int = Field(default=8557, ge=0, le=65535, description="Port to listen on (0: any).")
    access_key_id: str = Field(default="sandbox-ak", min_length=1, description="AccessKey ID.")
    access_key_secret: str = Field(
        default="sandbox-secret", min_length=1, description="Its secret (verifies signatures)."
    )
    sign_name: list[str] = Field(
        default_factory=list, description="Approved signature names (none: any)."
    )
    template_code: list[str] = Field(
        default_factory=list,
        description="Approved template codes (none: any); CODE:var1+var2 also requires "
        "those TemplateParam variables.",
    )
    callback_url: str | None = Field(
        default=None, description="Where SmsReport/SmsUp batches are POSTed (none: no pushes)."
    )
    receipt_delay: float = Field(
        default=0.2, ge=0, le=3600, description="Seconds until a message's receipt (status 3/2)."
    )
    undelivered_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of messages that fail (SendStatus 2)."
    )
    reply_rate: float = Field(default=0.0, ge=0, le=1, description="Share that get an SmsUp.")
    mask_numbers: bool = Field(default=False, description="Push numbers masked (138****1234).")
    push_batch: int = Field(default=100, ge=1, description="Most items in one pushed array.")
    push_retry_delays: list[float] = Field(
        default_factory=lambda: [60.0, 300.0, 600.0],
        description="Seconds before each retry of an unacknowledged push (Alibaba: 1, 5, 10 min).",
    )
    per_number_minute: int = Field(default=1, ge=0, description="Sends per number per minute.")
    per_number_hour: int = Field(default=5, ge=0, description="Sends per number per hour.")
    per_number_day: int = Field(default=10, ge=0, description="Sends per number per 24 h.")
    timestamp_window: float = Field(
        default=900.0, gt=0, description="Seconds a request time may differ from the clock."
    )
    balance: Decimal = Field(default=Decimal("100.00"), description="Account balance, CNY.")
    balance_permission: bool = Field(
        default=True, description="Whether the AccessKey may call QueryAccountBalance."
    )
    seed: int | None = Field(default=None, description="Random seed, for repeatable runs.")
    latency: float = Field(default=0.0, ge=0, le=60, description="Fault: seconds before answers.")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="Fault: share answered 500.")
    hang_rate: float = Field(default=0.0, ge=0, le=1, description="Fault: share never answered.")
    garbage_rate: float = Field(
        default=0.0, ge=0, le=1, description="Fault: share answered 200 with a broken body."
    )
    fail_code: str | None = Field(
        default=None, description="Fault: answer every SendSms with this error code."
    )

    @field_validator("sign_name", "template_code", "push_retry_delays", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("fail_code")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in ERROR_TABLE:
            raise ValueError(f"unknown code {value!r} (one of the fact sheet's §4)")
        return value

    def templates(self) -> dict[str, list[str]]:
        """Approved template code -> the variables it requires."""
        found: dict[str, list[str]] = {}
        for entry in self.template_code:
            code, _, names = entry.partition(":")
            found[code.strip()] = [n.strip() for n in names.split("+") if n.strip()]
        return found


@dataclass
class SentSms:
    """A message the sandbox accepted, as QuerySendDetails and pushes report it."""

    biz_id: str
    phone: str
    sign_name: str
    template_code: str
    content: str
    out_id: str
    sent_at: datetime
    status: int = 1
    err_code: str = ""
    received_at: datetime | None = None


@dataclass
class SandboxState:
    """What the sandbox remembers. Mutated under the sandbox's lock."""

    balance: Decimal
    accepted: int = 0
    refused: int = 0
    requests: int = 0
    signatures: dict[str, int] = field(default_factory=lambda: {"HMAC-SHA1": 0, "V3": 0})
    refusals: dict[str, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(
        default_factory=lambda: {"error": 0, "hang": 0, "garbage": 0}
    )
    sent: dict[str, SentSms] = field(default_factory=dict)
    nonces: dict[str, datetime] = field(default_factory=dict)
    per_number: dict[str, list[datetime]] = field(default_factory=dict)
    pushes_sent: int = 0
    pushes_failed: int = 0
    push_attempts: int = 0
    pushes: list[list[dict[str, Any]]] = field(default_factory=list)
    url_checks: list[int | None] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status and JSON body."""

    status: int
    body: dict[str, Any]


def _request_id(rng: random.Random) -> str:
    # Random, not from the seeded ``rng``: a vendor id is never handed out twice across runs.
    return str(uuid.uuid4()).upper()


def gateway_error(code: str, rng: random.Random, host: str = "dysmsapi.aliyuncs.com") -> Answer:
    """A POP gateway error: HTTP 4xx with ``HostId`` and ``Recommend`` (§2.3)."""
    message = _GATEWAY_MESSAGES.get(code)
    if message is None and code.startswith("Missing"):
        message = f"{code.removeprefix('Missing')} is mandatory for this action."
    return Answer(
        _GATEWAY_STATUS.get(code, 400),
        {
            "RequestId": _request_id(rng),
            "HostId": host,
            "Code": code,
            "Message": message or code,
            "Recommend": f"https://error-center.aliyun.com/status/search?Keyword={code}&source=PopGw",
        },
    )


def business_error(code: str, rng: random.Random, message: str | None = None) -> Answer:
    """A business error: HTTP 200, the success shape without ``BizId`` (§2.3)."""
    return Answer(
        200,
        {
            "RequestId": _request_id(rng),
            "Code": code,
            "Message": message or _BUSINESS_MESSAGES.get(code, code),
        },
    )


def authenticate(
    settings: AliyunSandboxSettings,
    state: SandboxState,
    method: str,
    query: list[tuple[str, str]],
    form: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    rng: random.Random,
) -> tuple[dict[str, str], Answer | None]:
    """Verify either signature; ``(parameters, None)`` when it holds, else the refusal.

    V3 when an ``Authorization: ACS3-HMAC-SHA256`` header is present (Action and Version in
    ``x-acs-*`` headers), else RPC (every query and form parameter but ``Signature``)."""
    header = headers.get("authorization", "")
    if header.startswith("ACS3-"):
        return _authenticate_v3(settings, state, method, query, form, headers, body, now, rng)
    params = dict(query)
    params.update(form)
    for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "SignatureMethod"):
        if name not in params:
            return params, gateway_error(f"Missing{name}", rng)
    if params["SignatureMethod"] != "HMAC-SHA1" or params.get("SignatureVersion", "1.0") != "1.0":
        return params, gateway_error("InvalidSignatureMethod", rng)
    if params["AccessKeyId"] != settings.access_key_id:
        return params, gateway_error("InvalidAccessKeyId.NotFound", rng)
    expected = rpc_signature(method, params, settings.access_key_secret)
    if not constant_time_equal(params["Signature"], expected):
        return params, gateway_error("SignatureDoesNotMatch", rng)
    refusal = _fresh(settings, state, params["Timestamp"], params["SignatureNonce"], now, rng)
    if refusal is None:
        state.signatures["HMAC-SHA1"] += 1
    return params, refusal


def _authenticate_v3(
    settings: AliyunSandboxSettings,
    state: SandboxState,
    method: str,
    query: list[tuple[str, str]],
    form: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    rng: random.Random,
) -> tuple[dict[str, str], Answer | None]:
    params = dict(query)
    params.update(form)
    params["Action"] = headers.get("x-acs-action", params.get("Action", ""))
    params["Version"] = headers.get("x-acs-version", params.get("Version", ""))
    auth = Authorization.parse(headers["authorization"])
    if auth is None:
        return params, gateway_error("InvalidSignatureMethod", rng)
    if auth.access_key_id != settings.access_key_id:
        return params, gateway_error("InvalidAccessKeyId.NotFound", rng)
    required = {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"}
    present = {n for n in headers if n.startswith("x-acs-")} | {"host"}
    if not required <= set(auth.signed_headers) or not present <= set(auth.signed_headers):
        return params, gateway_error("SignatureDoesNotMatch", rng)
    payload = headers.get("x-acs-content-sha256", "")
    if payload != sha256_hex(body):
        return params, gateway_error("SignatureDoesNotMatch", rng)
    canonical = v3_canonical_request(method, query, headers, auth.signed_headers, payload)
    if not constant_time_equal(auth.signature, v3_signature(canonical, settings.access_key_secret)):
        return params, gateway_error("SignatureDoesNotMatch", rng)
    refusal = _fresh(
        settings, state, headers["x-acs-date"], headers["x-acs-signature-nonce"], now, rng
    )
    if refusal is None:
        state.signatures["V3"] += 1
    return params, refusal


def _fresh(
    settings: AliyunSandboxSettings,
    state: SandboxState,
    timestamp: str,
    nonce: str,
    now: datetime,
    rng: random.Random,
) -> Answer | None:
    try:
        at = datetime.strptime(timestamp, _TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return gateway_error("InvalidTimeStamp.Format", rng)
    window = timedelta(seconds=settings.timestamp_window)
    if abs(now - at) > window:
        return gateway_error("InvalidTimeStamp.Expired", rng)
    for old in [n for n, seen in state.nonces.items() if now - seen > window]:
        del state.nonces[old]  # a nonce only has to be unique inside the window
    if nonce in state.nonces:
        return gateway_error("SignatureNonceUsed", rng)
    state.nonces[nonce] = now
    return None


def _flow_control(
    settings: AliyunSandboxSettings, state: SandboxState, phone: str, now: datetime
) -> str | None:
    times = [t for t in state.per_number.get(phone, []) if now - t < timedelta(days=1)]
    state.per_number[phone] = times
    limits = (
        (timedelta(minutes=1), settings.per_number_minute, "分钟"),
        (timedelta(hours=1), settings.per_number_hour, "小时"),
        (timedelta(days=1), settings.per_number_day, "天"),
    )
    for span, limit, unit in limits:
        if limit and sum(1 for t in times if now - t < span) >= limit:
            return f"触发{unit}级流控Permits:{limit}"
    return None


def check_send(
    settings: AliyunSandboxSettings,
    state: SandboxState,
    params: dict[str, str],
    now: datetime,
    rng: random.Random,
) -> tuple[Answer, list[SentSms]]:
    """SendSms's rules; the answer and what was accepted (one per number)."""
    for name in ("PhoneNumbers", "SignName", "TemplateCode"):
        if not params.get(name):
            return gateway_error(f"Missing{name}", rng), []
    numbers = [n.strip() for n in params["PhoneNumbers"].split(",")]
    if len(numbers) > 1000:
        return business_error("isv.MOBILE_COUNT_OVER_LIMIT", rng), []
    phones = []
    for number in numbers:
        match = _PHONE.match(number)
        if match is None:
            return business_error("isv.MOBILE_NUMBER_ILLEGAL", rng), []
        phones.append(match.group(1))
    sign = params["SignName"]
    if settings.sign_name and sign not in settings.sign_name:
        return business_error("isv.SMS_SIGNATURE_ILLEGAL", rng), []
    templates = settings.templates()
    code = params["TemplateCode"]
    if templates and code not in templates:
        return business_error("isv.SMS_TEMPLATE_ILLEGAL", rng), []
    variables: dict[str, Any] = {}
    if params.get("TemplateParam"):
        try:
            variables = json.loads(params["TemplateParam"])
        except ValueError:
            return business_error("isv.INVALID_JSON_PARAM", rng), []
        if not isinstance(variables, dict) or not all(
            isinstance(v, str) for v in variables.values()
        ):
            return business_error("isv.INVALID_JSON_PARAM", rng), []
    missing = [n for n in templates.get(code, []) if n not in variables]
    if missing:
        return business_error("isv.TEMPLATE_MISSING_PARAMETERS", rng), []
    for phone in phones:
        limited = _flow_control(settings, state, phone, now)
        if limited is not None:
            return business_error("isv.BUSINESS_LIMIT_CONTROL", rng, limited), []
    if settings.fail_code is not None:
        fault = settings.fail_code
        if fault.startswith("isv.") or fault.startswith("isp."):
            return business_error(fault, rng), []
        return gateway_error(fault, rng), []
    biz_id = f"{unique_number()}^0"  # never one of an earlier run's, whatever the seed
    content = f"【{sign}】" + " ".join(f"{k}:{v}" for k, v in variables.items())
    accepted = []
    for phone in phones:
        state.per_number.setdefault(phone, []).append(now)
        sms = SentSms(biz_id, phone, sign, code, content, params.get("OutId", ""), now)
        state.sent[f"{biz_id}/{phone}"] = sms
        accepted.append(sms)
    return Answer(
        200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": _request_id(rng)}
    ), accepted


def _vendor_time(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(VENDOR_ZONE).strftime("%Y-%m-%d %H:%M:%S")


def query_details(
    state: SandboxState, params: dict[str, str], now: datetime, rng: random.Random
) -> Answer:
    """QuerySendDetails (§7): one number, optional BizId, a ``yyyyMMdd`` date in the last
    30 days, paged."""
    for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
        if not params.get(name):
            return gateway_error(f"Missing{name}", rng)
    match = _PHONE.match(params["PhoneNumber"].strip())
    if match is None:
        return business_error("isv.MOBILE_NUMBER_ILLEGAL", rng)
    try:
        day = datetime.strptime(params["SendDate"], "%Y%m%d").date()
        size, page = int(params["PageSize"]), int(params["CurrentPage"])
    except ValueError:
        return business_error("isv.INVALID_PARAMETERS", rng)
    if not 1 <= size <= 50 or page < 1 or (now.astimezone(VENDOR_ZONE).date() - day).days > 30:
        return business_error("isv.INVALID_PARAMETERS", rng)
    phone, biz_id = match.group(1), params.get("BizId")
    found = [
        s
        for s in state.sent.values()
        if s.phone == phone
        and s.sent_at.astimezone(VENDOR_ZONE).date() == day
        and (not biz_id or s.biz_id == biz_id)
    ]
    shown = found[(page - 1) * size : page * size]
    return Answer(
        200,
        {
            "Code": "OK",
            "Message": "OK",
            "RequestId": _request_id(rng),
            "TotalCount": str(len(found)),
            "SmsSendDetailDTOs": {
                "SmsSendDetailDTO": [
                    {
                        "PhoneNum": s.phone,
                        "SendStatus": s.status,
                        "ErrCode": s.err_code,
                        "TemplateCode": s.template_code,
                        "Content": s.content,
                        "SendDate": _vendor_time(s.sent_at),
                        "ReceiveDate": _vendor_time(s.received_at),
                        "OutId": s.out_id,
                    }
                    for s in shown
                ]
            },
        },
    )


def query_balance(
    settings: AliyunSandboxSettings, state: SandboxState, rng: random.Random
) -> Answer:
    """BssOpenApi QueryAccountBalance (§8); 403 ``NoPermission`` without the permission."""
    if not settings.balance_permission:
        return Answer(
            403,
            {
                "RequestId": _request_id(rng),
                "HostId": "business.aliyuncs.com",
                "Code": "NoPermission",
                "Message": "You are not authorized to do this action. "
                "You should be authorized by RAM.",
            },
        )
    amount = f"{state.balance:.2f}"
    return Answer(
        200,
        {
            "Code": "200",
            "Message": "success",
            "RequestId": _request_id(rng),
            "Success": True,
            "Data": {
                "AvailableAmount": amount,
                "AvailableCashAmount": amount,
                "CreditAmount": "0.00",
                "MybankCreditAmount": "0.00",
                "Currency": "CNY",
                "QuotaLimit": "0.00",
            },
        },
    )
