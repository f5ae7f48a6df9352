"""The ``aliyun`` provider type: Alibaba Cloud SMS (Dysmsapi 2017-05-25) over httpx.

Send is ``SendSms`` (fact sheet §2), status is ``QuerySendDetails`` (§7), balance is
BssOpenApi ``QueryAccountBalance`` (§8), pushes are HTTP batch pushes (§9). Requests are
signed with the RPC signature (HMAC-SHA1) by default: it is the scheme the SMS product's
own "HTTP协议及签名" page documents, with a test vector of its own; ``signature_method =
"ACS3-HMAC-SHA256"`` switches to V3, which Alibaba now recommends but no SMS-specific
source confirms (fact sheet §6). Every request gets a fresh nonce and a UTC timestamp.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx

from notifykit.errors import (
    CallbackError,
    InvalidMessage,
    NotSupported,
    ProviderError,
    ProviderUnavailable,
    UnknownOutcome,
)
from notifykit.events import DeliveryReceipt
from notifykit.http import create_client, request, status_error
from notifykit.log import get_logger
from notifykit.models import Balance, DeliveryStatus, MessageRecord, SendReceipt, SmsMessage
from notifykit.phone import mask_phone
from notifykit.provider import (
    CallbackRequest,
    CallbackResult,
    ProviderOptions,
    SmsProvider,
    TemplateOptions,
)
from notifykit_aliyun.callbacks import (
    CHECK_BODY,
    JSON_HEADERS,
    parse_batch,
    parse_time,
    phone_from,
    receipt_event_id,
)
from notifykit_aliyun.errors import error_for
from notifykit_aliyun.options import AliyunOptions, AliyunTemplate
from notifykit_aliyun.signature import (
    EMPTY_SHA256,
    Authorization,
    rpc_signature,
    v3_canonical_request,
    v3_signature,
)

__all__ = ["API_VERSION", "BSS_VERSION", "AliyunProvider", "mainland_mobile"]

log = get_logger("notifykit.aliyun")

API_VERSION = "2017-05-25"
BSS_VERSION = "2017-12-14"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_PERMISSION_CODES = frozenset(
    {"NoPermission", "Forbidden.RAM", "Forbidden.NoPermission", "isp.RAM_PERMISSION_DENY"}
)


def mainland_mobile(e164: str) -> str | None:
    """The 11-digit national form of a mainland China mobile number, or None."""
    found = phone_from(e164)
    return found[3:] if found is not None else None


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AliyunProvider(SmsProvider[AliyunOptions]):
    """Alibaba Cloud SMS: mainland China mobile numbers, approved signature and templates."""

    name: ClassVar[str] = "aliyun"
    Options: ClassVar[type[ProviderOptions]] = AliyunOptions
    TemplateOptions: ClassVar[type[TemplateOptions]] = AliyunTemplate
    callback_check_methods: ClassVar[frozenset[str]] = frozenset({"GET"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: httpx.AsyncClient | None = None
        self.zone = ZoneInfo(self.options.vendor_timezone)

    # -- configuration -------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "access_key_id": self.options.access_key_id,
            "sign_name": self.options.sign_name,
            "region_id": self.options.region_id,
            "endpoint": self.options.endpoint,
            "signature_method": self.options.signature_method,
        }

    # -- checks made before any request --------------------------------------------------

    def decline(self, message: SmsMessage) -> str | None:
        if mainland_mobile(message.to) is None:
            return (
                f"{mask_phone(message.to)} is not a mainland China mobile number "
                "(Dysmsapi 2017-05-25 serves +86 mobiles here)"
            )
        reason = super().decline(message)
        if reason is not None:
            return reason
        template = self.templates[message.template]
        assert isinstance(template, AliyunTemplate)
        unknown = [n for n in template.param_names if n not in message.params]
        if unknown:
            return f"parameters {unknown} named in param_names are missing"
        return None

    def _template_param(self, message: SmsMessage, template: AliyunTemplate) -> str | None:
        variables = template.variables(dict(message.params))
        if not variables:
            return None
        return json.dumps(variables, ensure_ascii=False, separators=(",", ":"))

    # -- HTTP ----------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = create_client(
                self.context, timeout=self.options.timeout, headers={"accept": "application/json"}
            )
        return self._client

    def signed(
        self, endpoint: str, action: str, version: str, params: dict[str, str]
    ) -> tuple[str, dict[str, str], bytes]:
        """``(url, headers, body)`` of a signed POST of ``action`` with ``params``."""
        secret = self.options.access_key_secret.get_secret_value()
        nonce = uuid.uuid4().hex
        if self.options.signature_method == "HMAC-SHA1":
            form = {
                **params,
                "AccessKeyId": self.options.access_key_id,
                "Action": action,
                "Format": "JSON",
                "RegionId": self.options.region_id,
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": nonce,
                "SignatureVersion": "1.0",
                "Timestamp": _timestamp(),
                "Version": version,
            }
            form["Signature"] = rpc_signature("POST", form, secret)
            body = urlencode(form).encode()
            return endpoint + "/", {"content-type": FORM_CONTENT_TYPE}, body
        query = {**params, "RegionId": self.options.region_id}
        headers = {
            "host": urlsplit(endpoint).netloc,
            "x-acs-action": action,
            "x-acs-version": version,
            "x-acs-date": _timestamp(),
            "x-acs-signature-nonce": nonce,
            "x-acs-content-sha256": EMPTY_SHA256,
        }
        names = tuple(sorted(headers))
        canonical = v3_canonical_request("POST", query.items(), headers, names, EMPTY_SHA256)
        auth = Authorization(self.options.access_key_id, names, v3_signature(canonical, secret))
        headers["authorization"] = auth.header()
        del headers["host"]  # httpx sends the same value itself
        return f"{endpoint}/?{urlencode(query)}", headers, b""

    async def _call(
        self, endpoint: str, action: str, version: str, params: dict[str, str], what: str
    ) -> tuple[httpx.Response, dict[str, Any] | None]:
        url, headers, body = self.signed(endpoint, action, version, params)
        response = await request(
            self.client, "POST", url, provider=self.instance, headers=headers, content=body
        )
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            if response.status_code >= 500 or response.status_code == 429:
                raise status_error(response, self.instance)
            return response, None
        return response, data

    def _refusal(self, response: httpx.Response, data: dict[str, Any], what: str) -> ProviderError:
        code = data.get("Code")
        message = data.get("Message")
        if not isinstance(code, str) and response.status_code >= 500:
            return status_error(response, self.instance)
        return error_for(
            code if isinstance(code, str) else None,
            message if isinstance(message, str) else None,
            provider=self.instance,
            action=what,
            http_status=response.status_code,
        )

    # -- the interface -------------------------------------------------------------------

    async def send(self, message: SmsMessage) -> SendReceipt:
        reason = self.decline(message)
        if reason is not None:
            raise InvalidMessage(f"{self.instance}: {reason}")
        template = self.templates[message.template]
        assert isinstance(template, AliyunTemplate)
        phone = mainland_mobile(message.to)
        assert phone is not None
        params = {
            "PhoneNumbers": phone,
            "SignName": self.options.sign_name,
            "TemplateCode": template.template_code,
        }
        template_param = self._template_param(message, template)
        if template_param is not None:
            params["TemplateParam"] = template_param
        if message.message_id:
            params["OutId"] = message.message_id
        response, data = await self._call(
            self.options.endpoint, "SendSms", API_VERSION, params, "send"
        )
        if data is None:
            if response.is_success:
                # A 200 we cannot read: the message may be on its way; do not send twice.
                raise UnknownOutcome(
                    f"{self.instance}: HTTP {response.status_code} from Alibaba Cloud with an "
                    "unreadable body; the message may have been accepted",
                    provider=self.instance,
                )
            raise ProviderUnavailable(
                f"{self.instance}: HTTP {response.status_code} from Alibaba Cloud with an "
                "unreadable body",
                provider=self.instance,
            )
        if data.get("Code") != "OK":
            raise self._refusal(response, data, "send")
        biz_id = data.get("BizId")
        if not isinstance(biz_id, str) or not biz_id:
            raise UnknownOutcome(
                f"{self.instance}: Alibaba Cloud said OK without a BizId; "
                "the message may have been accepted",
                provider=self.instance,
            )
        raw: dict[str, Any] = {k: data[k] for k in ("BizId", "RequestId", "Code") if k in data}
        return SendReceipt(provider_message_id=biz_id, raw=raw)

    async def balance(self) -> Balance:
        """BssOpenApi ``QueryAccountBalance``: ``Data.AvailableAmount`` in ``Data.Currency``
        (CNY for a China-site account). Raises NotSupported naming the missing permission
        when the AccessKey may not call it."""
        response, data = await self._call(
            self.options.balance_endpoint, "QueryAccountBalance", BSS_VERSION, {}, "balance query"
        )
        if data is None:
            raise ProviderUnavailable(
                f"{self.instance}: HTTP {response.status_code} from BssOpenApi with an "
                "unreadable body",
                provider=self.instance,
            )
        code = data.get("Code")
        if code in _PERMISSION_CODES or response.status_code == 403:
            raise NotSupported(
                f"provider {self.instance!r} (aliyun): this AccessKey may not read the account "
                "balance: grant its RAM user the AliyunBSSReadOnlyAccess policy "
                "(action bss:DescribeAcccount) to use QueryAccountBalance"
            )
        if not response.is_success or data.get("Success") is False:
            raise self._refusal(response, data, "balance query")
        found = data.get("Data")
        found = found if isinstance(found, dict) else {}
        amount, currency = found.get("AvailableAmount"), found.get("Currency")
        try:
            remaining = Decimal(str(amount).replace(",", "")) if amount is not None else None
        except InvalidOperation:
            remaining = None
        if remaining is None or not remaining.is_finite() or not isinstance(currency, str):
            raise ProviderUnavailable(
                f"{self.instance}: QueryAccountBalance answered without a readable "
                "AvailableAmount and Currency",
                provider=self.instance,
            )
        return Balance(provider=self.instance, remaining=remaining, unit=currency.upper())

    async def fetch_status(self, record: MessageRecord) -> list[DeliveryReceipt]:
        """``QuerySendDetails`` for the message's BizId and number on its send date
        (Beijing time); SendStatus 1 (waiting) gives nothing, 3 a delivered receipt, 2 an
        undelivered one, each with the ``event_id`` of the matching SmsReport push."""
        biz_id = record.provider_message_id
        phone = mainland_mobile(record.to)
        if not biz_id or phone is None:
            return []
        send_date = record.created_at.astimezone(self.zone).strftime("%Y%m%d")
        params = {
            "PhoneNumber": phone,
            "BizId": biz_id,
            "SendDate": send_date,
            "PageSize": "10",
            "CurrentPage": "1",
        }
        response, data = await self._call(
            self.options.endpoint, "QuerySendDetails", API_VERSION, params, "status query"
        )
        if data is None:
            raise ProviderUnavailable(
                f"{self.instance}: HTTP {response.status_code} from Alibaba Cloud with an "
                "unreadable body",
                provider=self.instance,
            )
        if data.get("Code") != "OK":
            raise self._refusal(response, data, "status query")
        wrapper = data.get("SmsSendDetailDTOs")
        items = wrapper.get("SmsSendDetailDTO") if isinstance(wrapper, dict) else None
        receipts: list[DeliveryReceipt] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            out_id = item.get("OutId") if isinstance(item.get("OutId"), str) else None
            if out_id and out_id != record.message_id:
                continue  # another send of the same BizId and number
            status = item.get("SendStatus")
            if status not in (2, 3, "2", "3"):
                continue  # 1: still waiting for the carrier's receipt
            delivered = str(status) == "3"
            code = str(item.get("ErrCode") or "").strip()
            when = item.get("ReceiveDate") or item.get("SendDate")
            try:
                occurred = parse_time(when, self.zone, "ReceiveDate")
            except CallbackError:
                occurred = record.created_at
            raw = {**item, "BizId": biz_id}
            receipts.append(
                DeliveryReceipt(
                    event_id=receipt_event_id(
                        self.instance, biz_id, out_id or None, item.get("PhoneNum"), delivered, code
                    ),
                    provider=self.instance,
                    provider_message_id=biz_id,
                    phone=record.to,
                    occurred_at=occurred,
                    raw=raw,
                    status=DeliveryStatus.DELIVERED if delivered else DeliveryStatus.UNDELIVERED,
                    vendor_status="DELIVERED" if delivered else (code or "FAILED"),
                    error_code=None if delivered else (code or None),
                )
            )
        return receipts[:1]

    async def parse_callback(self, request: CallbackRequest) -> CallbackResult:
        return parse_batch(request.body, self.instance, self.zone)

    async def answer_check(self, request: CallbackRequest) -> CallbackResult:
        """Alibaba's GET check of the receiver URL: ``{"code":0,"msg":"成功"}`` at once."""
        return CallbackResult(events=[], headers=dict(JSON_HEADERS), body=CHECK_BODY)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
